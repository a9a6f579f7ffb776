import {
  ComponentType,
  DiscordAPIError,
  MessageFlags,
  TextInputStyle,
  type ButtonInteraction,
  type ModalSubmitInteraction,
  type StringSelectMenuInteraction,
} from 'discord.js';
import { memberContextOf } from '../discord/member-context.js';
import { UserFacingError } from '../errors.js';
import type { Logger } from '../logger.js';
import { randomSeed, type FluxDevParams } from '../services/flux-params.js';
import type { GuildSettingsRepository } from '../services/guild-settings.js';
import { parseResultCustomId, RESULT_PREFIX, resultCustomId } from '../services/result-components.js';
import type { ResultRecord, ResultStore } from '../services/result-store.js';
import type { ButtonHandler } from './cancel-button.js';
import { optionsSchema } from './imagine.js';
import { submitImagine, type SubmitDeps } from './submit-imagine.js';

export interface ResultControlsDeps extends SubmitDeps {
  results: ResultStore;
  settings: GuildSettingsRepository;
  random: () => number;
}

type Control =
  | ButtonInteraction<'cached' | 'raw'>
  | StringSelectMenuInteraction<'cached' | 'raw'>
  | ModalSubmitInteraction<'cached' | 'raw'>;

const EXPIRED =
  'The settings of this result are no longer kept (results are kept for a limited time, or it was deleted). Use `/imagine` again.';

/**
 * The buttons, menu and remix modal under every result. Each reads the result back from storage by the id in its
 * custom_id, so they work after restarts and long after the interaction token; new images go through
 * `submitImagine`, charged to whoever pressed.
 */
export function createResultControls(deps: ResultControlsDeps): ButtonHandler {
  return {
    prefix: RESULT_PREFIX,
    async execute(interaction, log) {
      if (!interaction.inGuild()) throw new UserFacingError('These buttons work in servers only.');
      const parsed = parseResultCustomId(interaction.customId);
      if (!parsed) throw new UserFacingError('This button does not work any more.');
      const record = await deps.results.get(parsed.id);
      if (!record) throw new UserFacingError(EXPIRED);
      await handle(interaction, parsed.action, parsed.extra, record, deps, log);
    },
  };
}

async function handle(
  interaction: Control,
  action: string,
  extra: string | undefined,
  record: ResultRecord,
  deps: ResultControlsDeps,
  log: Logger,
): Promise<void> {
  // Each action belongs to one kind of control: a forged id on another kind does nothing.
  const button = interaction.isButton();
  if (['reroll', 'remix', 'details', 'delete'].includes(action) && !button)
    throw new UserFacingError('This button does not work any more.');
  switch (action) {
    case 'reroll':
      return submitImagine(interaction, { ...record.params, seed: randomSeed(deps.random) }, deps, log);
    case 'remix':
      return showRemixModal(interaction, record, undefined);
    case 'details':
      await interaction.reply({ ...describe(record), flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
      return;
    case 'delete':
      return deleteResult(interaction, record, deps);
    case 'pick': {
      if (!interaction.isStringSelectMenu()) break;
      const [kind, indexText] = (interaction.values[0] ?? '').split('-');
      const image = record.images.find((i) => String(i.index) === indexText);
      if (!image) break;
      if (kind === 'remix') return showRemixModal(interaction, record, image.seed);
      if (kind === 'repro') return submitImagine(interaction, { ...record.params, seed: image.seed, samples: 1 }, deps, log);
      break;
    }
    case 'modal':
      if (interaction.isModalSubmit()) return submitImagine(interaction, remixParams(interaction, record, extra, deps), deps, log);
      break;
  }
  throw new UserFacingError('This button does not work any more.');
}

async function deleteResult(interaction: Control, record: ResultRecord, deps: ResultControlsDeps): Promise<void> {
  const settings = await deps.settings.get(record.guildId);
  if (interaction.user.id !== record.ownerId && !deps.policy.isModerator(memberContextOf(interaction), settings))
    throw new UserFacingError('Only the member who asked for these images, or a moderator, can delete them.');
  if (!interaction.isMessageComponent()) throw new UserFacingError('This button does not work any more.');
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  await interaction.message.delete().catch((error: unknown) => {
    // Someone already removed it: what the member wanted is done.
    if (!(error instanceof DiscordAPIError && error.code === 10008)) throw error;
  });
  await deps.results.delete(record.id);
  await interaction.editReply({ content: '🗑️ Deleted.' });
}

/** A modal must be the interaction's first answer: nothing slow may come before it. */
async function showRemixModal(interaction: Control, record: ResultRecord, seed: number | undefined): Promise<void> {
  if (interaction.isModalSubmit()) throw new UserFacingError('This button does not work any more.');
  const { params } = record;
  const input = (custom_id: string, label: string, value: string, style = TextInputStyle.Short, max = 20) => ({
    type: ComponentType.ActionRow as const,
    components: [
      { type: ComponentType.TextInput as const, custom_id, label, style, value, required: custom_id === 'prompt', max_length: max },
    ],
  });
  await interaction.showModal({
    custom_id: resultCustomId('modal', record.id, seed === undefined ? `n${params.samples}` : `s${seed}`),
    title: seed === undefined ? 'Remix' : `Remix the image with seed ${seed}`,
    components: [
      input('prompt', 'Prompt', params.prompt, TextInputStyle.Paragraph, 2000),
      input('aspect_ratio', 'Aspect ratio (e.g. 1:1, 16:9, 2:3, 9:16)', params.aspect_ratio),
      input('steps', 'Steps (1–50)', String(params.steps)),
      input('guidance', 'Guidance (0–10)', String(params.guidance)),
      input('seed', 'Seed (a number, or "random")', seed === undefined ? 'random' : String(seed)),
    ],
  });
}

/** The modal's text fields, validated exactly like `/imagine` options. */
function remixParams(
  interaction: ModalSubmitInteraction,
  record: ResultRecord,
  extra: string | undefined,
  deps: ResultControlsDeps,
): FluxDevParams {
  const field = (id: string) => {
    try {
      return interaction.fields.getTextInputValue(id).trim();
    } catch {
      return '';
    }
  };
  const number = (text: string) => (text === '' ? undefined : Number(text));
  const seedText = field('seed').toLowerCase();
  const fixedSeed = extra?.startsWith('s') ? Number(extra.slice(1)) : undefined;
  const samples = extra?.startsWith('n') ? Number(extra.slice(1)) : 1;
  const result = optionsSchema.safeParse({
    ...record.params,
    prompt: field('prompt'),
    aspect_ratio: field('aspect_ratio') || record.params.aspect_ratio,
    steps: number(field('steps')) ?? record.params.steps,
    guidance: number(field('guidance')) ?? record.params.guidance,
    seed: seedText === '' || seedText === 'random' ? undefined : Number(seedText),
    samples: fixedSeed === undefined ? samples : 1,
  });
  if (!result.success) {
    const lines = result.error.issues.map((issue) => `• \`${issue.path.join('.')}\`: ${issue.message}`);
    throw new UserFacingError(`Some fields are not valid:\n${lines.join('\n')}`, 'invalid_options');
  }
  return { ...result.data, seed: result.data.seed ?? randomSeed(deps.random) };
}

function describe(record: ResultRecord): { content: string; files?: Array<{ attachment: Buffer; name: string }> } {
  const { params } = record;
  const summary = [
    '**Every parameter of this result**',
    `prompt: ${params.prompt.length > 900 ? `${params.prompt.slice(0, 899)}…` : params.prompt}`,
    `aspect_ratio: ${params.aspect_ratio} · guidance: ${params.guidance} · steps: ${params.steps} · samples: ${params.samples}`,
    `output_format: ${params.output_format} · output_quality: ${params.output_quality} · prompt_strength: ${params.prompt_strength}`,
    `seeds: ${record.images.map((image, position) => `${position + 1}: \`${image.seed}\``).join(' · ')}`,
  ];
  const escaped = params.prompt.replace(/\s+/g, ' ');
  const commands = record.images.map(
    (image) =>
      `/imagine prompt:${escaped} aspect_ratio:${params.aspect_ratio} guidance:${params.guidance} steps:${params.steps} samples:1 seed:${image.seed} output_format:${params.output_format} output_quality:${params.output_quality} prompt_strength:${params.prompt_strength}`,
  );
  const inline = [...summary, '', '**Reproduce one image**', ...commands.flatMap((command, position) => [`Image ${position + 1}`, `\`\`\`${command}\`\`\``])].join('\n');
  if (inline.length <= 2000) return { content: inline };
  return {
    content: [...summary, '', 'The `/imagine` command that reproduces each image is in the attached file.'].join('\n'),
    files: [{ attachment: Buffer.from(commands.join('\n\n')), name: 'reproduce.txt' }],
  };
}
