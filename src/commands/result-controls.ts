import {
  ComponentType,
  DiscordAPIError,
  MessageFlags,
  TextInputStyle,
  escapeMarkdown,
  type ButtonInteraction,
  type ModalSubmitInteraction,
  type StringSelectMenuInteraction,
} from 'discord.js';
import { memberContextOf } from './member-context.js';
import { UserFacingError, type LocalizedText } from '../errors.js';
import { translator, type Translator } from '../i18n/i18n.js';
import { localeFor, type ServerLanguage } from '../i18n/locales.js';
import { DEFAULTS, randomSeed, type FluxDevParams } from '../services/segmind/flux-params.js';
import type { GuildSettingsRepository } from '../services/usage/guild-settings.js';
import { RESULT_DELETED, resultDeletedDetails, type AuditLog } from '../services/usage/audit-log.js';
import { parseResultCustomId, PRIVATE_EXTRA, RESULT_PREFIX, resultCustomId } from '../services/results/result-components.js';
import { ResultReports } from '../services/results/result-reports.js';
import type { ResultRecord, ResultStore } from '../services/results/result-store.js';
import type { Storage } from '../services/storage/storage.js';
import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { ButtonHandler } from './cancel-button.js';
import { optionsSchema, type ImagineOptions } from './imagine.js';
import { expandWithinLimit } from '../services/creative/expand-style.js';
import { submitImagine, type ImagineInput, type SubmitDeps } from './submit-imagine.js';
import { invalidOptionLines } from './option-messages.js';

export interface ResultControlsDeps extends SubmitDeps {
  results: ResultStore;
  settings: GuildSettingsRepository;
  random: () => number;
  /** Where the Report button's marks are kept (with the results' retention), and its clock. */
  storage: Storage;
  clock: Clock;
  retentionDays: number;
  /** Posts to a server's log channel (the Report button); throws when Discord refuses. */
  postToChannel: (channelId: string, text: string) => Promise<void>;
  /** Where a moderator's deletion of someone else's result is recorded. */
  audit: Pick<AuditLog, 'record'>;
}

type Control =
  | ButtonInteraction<'cached' | 'raw'>
  | StringSelectMenuInteraction<'cached' | 'raw'>
  | ModalSubmitInteraction<'cached' | 'raw'>;

const EXPIRED: LocalizedText = (t) => t('imagine:controls.expired');
const NOT_ANY_MORE: LocalizedText = (t) => t('common:errors.buttonGone');
/** Older results' menus still offer "Reproduce image N alone" (`repro-<index>`), which is gone. */
const REPRODUCE_GONE: LocalizedText = (t) => t('imagine:controls.reproduceGone');

/** The language of an answer to the member who pressed: theirs, unless the server's moderators fixed one. */
function memberT(interaction: Control, serverLanguage?: ServerLanguage): Translator {
  return translator(localeFor({ memberLocale: interaction.locale, guildLocale: interaction.guildLocale, serverLanguage }, 'member'));
}

/**
 * The buttons, menu and remix modal under every result. Each reads the result back from storage by the id in its
 * custom_id, so they work after restarts and long after the interaction token; new images go through
 * `submitImagine`, charged to whoever pressed, and acknowledged before the result is read back (Discord's 3 s rule
 * holds whatever storage's load). A private result's controls carry a mark (`p`, kept by its remix form) that makes
 * their new request private from its first message, before storage is read; a styled result's keep its style.
 */
export function createResultControls(deps: ResultControlsDeps): ButtonHandler {
  const reports = new ResultReports(deps.storage, deps.clock, deps.retentionDays);
  return {
    prefix: RESULT_PREFIX,
    async execute(interaction, log) {
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('imagine:controls.serversOnly'));
      const parsed = parseResultCustomId(interaction.customId);
      if (!parsed) throw new UserFacingError(NOT_ANY_MORE);
      const load = async () => {
        const record = await deps.results.get(parsed.id);
        if (!record) throw new UserFacingError(EXPIRED);
        return record;
      };
      // Details and the remix form answer in the server's fixed language when moderators set one: its settings are
      // read beside the result (a failed read leaves the member's own language).
      const loadWithLanguage = async () => {
        const [record, settings] = await Promise.all([load(), deps.settings.get(interaction.guildId).catch(() => undefined)]);
        return { record, language: settings?.language };
      };
      if (parsed.action === 'report') {
        if (!interaction.isButton()) throw new UserFacingError(NOT_ANY_MORE);
        // Answered privately, acknowledged before storage is read, whatever its load (as Details).
        await interaction.deferReply({ flags: MessageFlags.Ephemeral });
        return report(interaction, parsed.id, reports, deps, log);
      }
      if (parsed.action === 'pick' && interaction.isStringSelectMenu() && (interaction.values[0] ?? '').startsWith('repro-'))
        throw new UserFacingError(REPRODUCE_GONE);
      const { private: isPrivate, extra } = privateMark(parsed.extra);
      const generate = generation(interaction, parsed.action, extra, deps);
      if (generate) return submitImagine(interaction, async () => generate(await load()), deps, log, { private: isPrivate });
      // A form must be the first answer, so its read is bounded to stay inside Discord's 3 s.
      if (opensForm(interaction, parsed.action)) return handle(interaction, parsed.action, await beforeFormDeadline(loadWithLanguage()), deps, isPrivate);
      if (!answersPrivately(interaction, parsed.action)) throw new UserFacingError(NOT_ANY_MORE);
      // Details and Delete answer privately: acknowledged before storage is read, whatever its load.
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      await handle(interaction, parsed.action, await loadWithLanguage(), deps, isPrivate);
    },
  };
}

const FORM_READ_DEADLINE_MS = 2_000;

/** A private result's mark, alone (`p`) or before a remix form's own extra (`pn2`, `ps123`), and what follows it. */
function privateMark(extra: string | undefined): { private: boolean; extra: string | undefined } {
  if (extra === undefined || !extra.startsWith(PRIVATE_EXTRA)) return { private: false, extra };
  const rest = extra.slice(PRIVATE_EXTRA.length);
  return { private: true, extra: rest === '' ? undefined : rest };
}

function opensForm(interaction: Control, action: string): boolean {
  if (action === 'remix') return interaction.isButton();
  return action === 'pick' && interaction.isStringSelectMenu() && (interaction.values[0] ?? '').startsWith('remix-');
}

function answersPrivately(interaction: Control, action: string): boolean {
  return interaction.isButton() && (action === 'details' || action === 'delete');
}

async function beforeFormDeadline<T>(read: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new UserFacingError((t) => t('imagine:controls.unreadable'))),
      FORM_READ_DEADLINE_MS,
    );
  });
  try {
    return await Promise.race([read, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The controls that make new images, told apart without storage: Re-roll and a remix form's submission (its fields
 * are checked at once, as `/imagine` options are). Returns how to make the request from the result once it is read
 * back, or undefined for any other control. Both keep the result's style: a re-roll sends the same expansion, a remix
 * expands the member's new prompt with the template the result was made with (the style may have changed since).
 */
function generation(
  interaction: Control,
  action: string,
  extra: string | undefined,
  deps: ResultControlsDeps,
): ((record: ResultRecord) => ImagineInput) | undefined {
  if (action === 'reroll' && interaction.isButton())
    return (record) => ({ params: { ...record.params, seed: randomSeed(deps.random) }, style: record.style });
  if (action === 'modal' && interaction.isModalSubmit()) {
    // Every field is checked on its own, so valid fields stay valid over any result's values.
    parseRemix(interaction, VALIDATION_BASE, extra);
    return (record) => {
      const remix = parseRemix(interaction, record.params, extra);
      const seed = remix.seed ?? randomSeed(deps.random);
      if (!record.style) return { params: { ...remix, seed } };
      const style = { ...record.style, memberPrompt: remix.prompt };
      return { params: { ...remix, prompt: expanded(style), seed }, style };
    };
  }
  return undefined;
}

/** The prompt Segmind gets for a style; refused (privately, before anything is charged) when it would be too long. */
function expanded(style: { name: string; template: string; memberPrompt: string }): string {
  return expandWithinLimit(style, style.memberPrompt);
}

async function handle(
  interaction: Control,
  action: string,
  { record, language }: { record: ResultRecord; language: ServerLanguage | undefined },
  deps: ResultControlsDeps,
  isPrivate: boolean,
): Promise<void> {
  // Each action belongs to one kind of control: a forged id on another kind does nothing.
  const button = interaction.isButton();
  if (['reroll', 'remix', 'details', 'delete'].includes(action) && !button) throw new UserFacingError(NOT_ANY_MORE);
  switch (action) {
    case 'remix':
      return showRemixModal(interaction, record, undefined, isPrivate, language);
    case 'details':
      await interaction.editReply({ ...describe(record, memberT(interaction, language)), allowedMentions: { parse: [] } });
      return;
    case 'delete':
      return deleteResult(interaction, record, deps);
    case 'pick': {
      if (!interaction.isStringSelectMenu()) break;
      const [kind, indexText] = (interaction.values[0] ?? '').split('-');
      const image = record.images.find((i) => String(i.index) === indexText);
      if (image && kind === 'remix') return showRemixModal(interaction, record, image.seed, isPrivate, language);
      break;
    }
  }
  throw new UserFacingError(NOT_ANY_MORE);
}

async function deleteResult(interaction: Control, record: ResultRecord, deps: ResultControlsDeps): Promise<void> {
  const settings = await deps.settings.get(record.guildId);
  if (interaction.user.id !== record.ownerId && !deps.policy.isModerator(memberContextOf(interaction), settings))
    throw new UserFacingError((t) => t('imagine:controls.deleteNotAllowed'));
  if (!interaction.isMessageComponent()) throw new UserFacingError(NOT_ANY_MORE);
  await interaction.message.delete().catch((error: unknown) => {
    // Someone already removed it: what the member wanted is done.
    if (!(error instanceof DiscordAPIError && error.code === 10008)) throw error;
  });
  await deps.results.delete(record.id);
  // A moderator removing someone else's images is a moderator action: kept with its prompt, the only trace left.
  if (interaction.user.id !== record.ownerId)
    await deps.audit.record(record.guildId, settings.logChannelId, {
      actorId: interaction.user.id,
      action: RESULT_DELETED,
      details: resultDeletedDetails({ ownerId: record.ownerId, channelId: record.channelId, prompt: record.params.prompt }),
    });
  await interaction.editReply({ content: memberT(interaction, settings.language)('imagine:controls.deleted') });
}

/**
 * 🚩 Report: tells the server's log channel about a result, once per member per result. Any member may report, a
 * blocked one too, in a paused server too: it generates nothing and costs nothing. A result whose settings are no
 * longer kept can still be reported (the message link comes from the interaction), without its prompt.
 */
async function report(
  interaction: ButtonInteraction<'cached' | 'raw'>,
  resultId: string,
  reports: ResultReports,
  deps: ResultControlsDeps,
  log: Logger,
): Promise<void> {
  const { guildId, message } = interaction;
  const { logChannelId, language } = await deps.settings.get(guildId);
  // Nothing is marked: once moderators set a log channel, the member may report it.
  if (!logChannelId) throw new UserFacingError((t) => t('imagine:controls.noLogChannel'));
  const t = memberT(interaction, language);
  // The log channel is the moderators': the server's language.
  const tLog = translator(localeFor({ guildLocale: interaction.guildLocale, serverLanguage: language }, 'channel'));
  const reporterId = interaction.user.id;
  if (!(await reports.claim(resultId, reporterId))) {
    await interaction.editReply({ content: t('imagine:controls.alreadyReported') });
    return;
  }
  try {
    const record = await deps.results.get(resultId);
    // A forgotten result still names its owner in the message's interaction (absent on a late, plain channel post).
    const ownerId = record?.ownerId ?? message.interactionMetadata?.user.id;
    const link = `https://discord.com/channels/${guildId}/${message.channelId}/${message.id}`;
    const prompt = record ? `> ${escapeMarkdown(truncate(record.params.prompt.replace(/\s+/g, ' '), 200))}` : tLog('imagine:controls.reportNotKept');
    const where = { reporter: `<@${reporterId}>`, channel: `<#${message.channelId}>`, link, prompt };
    const text =
      ownerId === undefined ? tLog('imagine:controls.reportPost', where) : tLog('imagine:controls.reportPostBy', { ...where, owner: `<@${ownerId}>` });
    await deps.postToChannel(logChannelId, text);
  } catch (error) {
    // Not delivered: the mark is taken back so that a press later can still reach the moderators.
    await reports.release(resultId, reporterId).catch((releaseError: unknown) =>
      log.warn({ err: releaseError, resultId }, 'could not take back the mark of an undelivered report'),
    );
    log.warn({ err: error, resultId, logChannelId }, 'could not post a report to the log channel');
    throw new UserFacingError((t) => t('imagine:controls.reportFailed'));
  }
  log.info({ resultId, logChannelId }, 'result reported');
  await interaction.editReply({ content: t('imagine:controls.reported') });
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/**
 * A modal must be the interaction's first answer: nothing slow may come before it. A styled result's form holds the
 * member's own prompt (its submission is expanded again); a private one's custom_id keeps the mark.
 */
async function showRemixModal(
  interaction: Control,
  record: ResultRecord,
  seed: number | undefined,
  isPrivate: boolean,
  language: ServerLanguage | undefined,
): Promise<void> {
  if (interaction.isModalSubmit()) throw new UserFacingError(NOT_ANY_MORE);
  const { params, style } = record;
  const t = memberT(interaction, language);
  const own = seed === undefined ? `n${params.samples}` : `s${seed}`;
  const input = (custom_id: string, label: string, value: string, kind = TextInputStyle.Short, max = 20) => ({
    type: ComponentType.ActionRow as const,
    components: [
      { type: ComponentType.TextInput as const, custom_id, label, style: kind, value, required: custom_id === 'prompt', max_length: max },
    ],
  });
  await interaction.showModal({
    custom_id: resultCustomId('modal', record.id, isPrivate ? `${PRIVATE_EXTRA}${own}` : own),
    // What it costs, in the title (≤ 45 characters in every language: test/unit/i18n/limits-imagine.test.ts).
    title: seed === undefined ? t('imagine:remix.title', { count: params.samples }) : t('imagine:remix.titleSeed', { seed }),
    components: [
      // A label holds 45 characters: a long style name is cut. The name is not markdown here (a label shows no markup).
      input(
        'prompt',
        style ? truncate(t('imagine:remix.promptStyled', { style: style.name }), 45) : t('imagine:remix.prompt'),
        style?.memberPrompt ?? params.prompt,
        TextInputStyle.Paragraph,
        2000,
      ),
      input('aspect_ratio', t('imagine:remix.aspectRatio'), params.aspect_ratio),
      input('steps', t('imagine:remix.steps'), String(params.steps)),
      input('guidance', t('imagine:remix.guidance'), String(params.guidance)),
      // "random" is what the form reads back, in every language (the label says so).
      input('seed', t('imagine:remix.seed'), seed === undefined ? 'random' : String(seed)),
    ],
  });
}

/** Stands in for a result's values when the form is checked before the result is read back. */
const VALIDATION_BASE: FluxDevParams = { ...DEFAULTS, prompt: 'x', seed: 0 };

/** The modal's text fields, validated exactly like `/imagine` options; an empty field keeps `base`'s value. */
function parseRemix(interaction: ModalSubmitInteraction, base: FluxDevParams, extra: string | undefined): ImagineOptions {
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
    ...base,
    prompt: field('prompt'),
    aspect_ratio: field('aspect_ratio') || base.aspect_ratio,
    steps: number(field('steps')) ?? base.steps,
    guidance: number(field('guidance')) ?? base.guidance,
    seed: seedText === '' || seedText === 'random' ? undefined : Number(seedText),
    samples: fixedSeed === undefined ? samples : 1,
  });
  if (!result.success) {
    const { issues } = result.error;
    throw new UserFacingError((t) => t('imagine:controls.invalidFields', { lines: invalidOptionLines(issues, t) }), 'invalid_options');
  }
  return result.data;
}

/**
 * Every parameter, and the `/imagine` command that makes each image again. A styled result shows the member's prompt
 * and the exact expansion Segmind got; its commands carry the expansion with `style:none`, as do all of them, so that
 * no style (the channel's default, or the member's preference) changes what they make.
 */
function describe(record: ResultRecord, t: Translator): { content: string; files?: Array<{ attachment: Buffer; name: string }> } {
  const { params, style } = record;
  const summary = [
    t('imagine:details.heading'),
    ...(style
      ? [
          t('imagine:details.style', { style: style.name }),
          t('imagine:details.memberPrompt', { prompt: truncate(style.memberPrompt, 400) }),
          t('imagine:details.expandedPrompt', { prompt: truncate(params.prompt, 900) }),
        ]
      : [t('imagine:details.prompt', { prompt: truncate(params.prompt, 900) })]),
    `aspect_ratio: ${params.aspect_ratio} · guidance: ${params.guidance} · steps: ${params.steps} · samples: ${params.samples}`,
    `output_format: ${params.output_format} · output_quality: ${params.output_quality} · prompt_strength: ${params.prompt_strength}`,
    t('imagine:details.seeds', { seeds: record.images.map((image, position) => `${position + 1}: \`${image.seed}\``).join(' · ') }),
  ];
  const escaped = params.prompt.replace(/\s+/g, ' ');
  const commands = record.images.map(
    (image) =>
      `/imagine prompt:${escaped} aspect_ratio:${params.aspect_ratio} guidance:${params.guidance} steps:${params.steps} samples:1 seed:${image.seed} output_format:${params.output_format} output_quality:${params.output_quality} prompt_strength:${params.prompt_strength} style:none`,
  );
  const inline = [
    ...summary,
    '',
    t('imagine:details.reproduce'),
    ...commands.flatMap((command, position) => [t('imagine:details.image', { n: position + 1 }), `\`\`\`${command}\`\`\``]),
  ].join('\n');
  if (inline.length <= 2000) return { content: inline };
  return {
    content: [...summary, '', t('imagine:details.inFile')].join('\n'),
    files: [{ attachment: Buffer.from(commands.join('\n\n')), name: 'reproduce.txt' }],
  };
}
