/** `/preferences set|view|reset`: a member's own defaults for `/imagine` in one server, answered privately. */
import {
  ApplicationCommandOptionType,
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  type ChatInputCommandInteraction,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../errors.js';
import { PREFERENCE_NAMES, type PreferenceStore, type Preferences } from '../services/creative/preference-store.js';
import { resolveImagine } from '../services/creative/resolve-imagine.js';
import { styleChoices } from '../services/creative/style-choices.js';
import { findStyle, NO_STYLE, sameName, STYLE_NAME_MAX, type ServerStyles, type StyleStore } from '../services/creative/style-store.js';
import { ASPECT_RATIOS, LIMITS, OUTPUT_FORMATS } from '../services/segmind/flux-params.js';
import type { GuildSettings, GuildSettingsRepository } from '../services/usage/guild-settings.js';
import type { UsagePolicy } from '../services/usage/usage-policy.js';
import { imagineFields } from './imagine.js';
import { memberContextOf } from './member-context.js';
import { parseOptionList } from './options.js';
import type { SlashCommand } from './types.js';

export const definition = {
  name: 'preferences',
  description: 'Your own defaults for /imagine in this server',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
  options: [
    {
      type: ApplicationCommandOptionType.Subcommand,
      name: 'set',
      description: 'Save defaults /imagine uses when you leave an option out (only those you give change)',
      options: [
        {
          type: ApplicationCommandOptionType.String,
          name: 'aspect_ratio',
          description: 'Width:height',
          choices: ASPECT_RATIOS.map((ratio) => ({ name: ratio, value: ratio })),
        },
        {
          type: ApplicationCommandOptionType.Number,
          name: 'guidance',
          description: `How closely to follow the prompt, ${LIMITS.guidance.min}–${LIMITS.guidance.max}`,
          min_value: LIMITS.guidance.min,
          max_value: LIMITS.guidance.max,
        },
        {
          type: ApplicationCommandOptionType.Integer,
          name: 'steps',
          description: `Denoising steps, ${LIMITS.steps.min}–${LIMITS.steps.max} (the server's limit still applies)`,
          min_value: LIMITS.steps.min,
          max_value: LIMITS.steps.max,
        },
        {
          type: ApplicationCommandOptionType.Integer,
          name: 'samples',
          description: `Number of images, ${LIMITS.samples.min}–${LIMITS.samples.max} (the server's limit still applies)`,
          min_value: LIMITS.samples.min,
          max_value: LIMITS.samples.max,
        },
        {
          type: ApplicationCommandOptionType.String,
          name: 'output_format',
          description: 'Image format',
          choices: OUTPUT_FORMATS.map((format) => ({ name: format, value: format })),
        },
        {
          type: ApplicationCommandOptionType.Integer,
          name: 'output_quality',
          description: `Quality of webp/jpg, ${LIMITS.outputQuality.min}–${LIMITS.outputQuality.max}`,
          min_value: LIMITS.outputQuality.min,
          max_value: LIMITS.outputQuality.max,
        },
        {
          type: ApplicationCommandOptionType.String,
          name: 'style',
          description: "One of this server's styles, or none: no style, not even the channel's default",
          autocomplete: true,
          min_length: 1,
          max_length: STYLE_NAME_MAX,
        },
        {
          type: ApplicationCommandOptionType.Boolean,
          name: 'private',
          description: 'Only you see your results (where the server allows it)',
        },
      ],
    },
    { type: ApplicationCommandOptionType.Subcommand, name: 'view', description: 'Show your preferences and what /imagine uses here now' },
    { type: ApplicationCommandOptionType.Subcommand, name: 'reset', description: 'Clear all your preferences in this server' },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

export const setSchema = z.object({
  aspect_ratio: imagineFields.aspect_ratio.optional(),
  guidance: imagineFields.guidance.optional(),
  steps: imagineFields.steps.optional(),
  samples: imagineFields.samples.optional(),
  output_format: imagineFields.output_format.optional(),
  output_quality: imagineFields.output_quality.optional(),
  style: imagineFields.style.optional(),
  private: imagineFields.private.optional(),
});

export interface PreferencesDeps {
  preferences: PreferenceStore;
  styles: StyleStore;
  settings: GuildSettingsRepository;
  policy: UsagePolicy;
}

type GuildInteraction = ChatInputCommandInteraction<'cached' | 'raw'>;

export function createPreferencesCommand(deps: PreferencesDeps): SlashCommand {
  return {
    definition,
    async autocomplete(interaction) {
      if (!interaction.inGuild()) return interaction.respond([]);
      await interaction.respond(styleChoices(await deps.styles.cached(interaction.guildId), String(interaction.options.getFocused())));
    },
    async execute(interaction) {
      if (!interaction.inGuild()) throw new UserFacingError('`/preferences` works in servers only.');
      const sub = interaction.options.data[0];
      if (sub?.type !== ApplicationCommandOptionType.Subcommand) throw new UserFacingError('Pick `set`, `view` or `reset`.', 'invalid_options');
      // Options are checked before anything is read; storage only after the deferral (Discord's 3 s).
      const changes = sub.name === 'set' ? parseOptionList(setSchema, sub.options ?? []) : undefined;
      if (changes && Object.keys(changes).length === 0)
        throw new UserFacingError(`Give at least one preference to save: ${PREFERENCE_NAMES.map((name) => `\`${name}\``).join(', ')}.`, 'invalid_options');
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      let content: string;
      if (changes) content = await set(deps, interaction, changes);
      else if (sub.name === 'view') content = await view(deps, interaction);
      else if (sub.name === 'reset')
        content = (await deps.preferences.reset(interaction.guildId, interaction.user.id))
          ? '✅ Cleared your preferences in this server: `/imagine` uses the server’s styles and the bot’s defaults again.'
          : 'You had no preferences in this server.';
      else throw new UserFacingError('This subcommand is not available any more.', 'unknown_subcommand');
      await interaction.editReply({ content, allowedMentions: { parse: [] } });
    },
  };
}

async function set(deps: PreferencesDeps, interaction: GuildInteraction, changes: Preferences): Promise<string> {
  const [settings, styles] = await Promise.all([deps.settings.get(interaction.guildId), deps.styles.get(interaction.guildId)]);
  if (changes.style !== undefined) {
    if (sameName(changes.style, NO_STYLE)) changes.style = NO_STYLE;
    else {
      const style = findStyle(styles, changes.style);
      if (!style)
        throw new UserFacingError(`This server has no style named \`${changes.style.replace(/`/g, 'ˋ')}\`. Pick one from the suggestions, or \`none\`. Nothing was saved.`);
      changes.style = style.name;
    }
  }
  if (changes.private === true && !settings.allowPrivate)
    throw new UserFacingError(
      'Private results are not allowed in this server: its moderators decide (`/imagine-admin settings set allow_private`). Nothing was saved.',
      'refused_private',
    );
  await deps.preferences.set(interaction.guildId, interaction.user.id, changes);
  const saved = (Object.keys(changes) as Array<keyof Preferences>).map((name) => `\`${name}\` ${describeValue(name, changes[name])}`);
  return [`✅ Saved ${saved.join(', ')}. \`/imagine\` uses them when you leave those options out.`, ...limitNotes(deps, interaction, settings, changes)].join('\n');
}

async function view(deps: PreferencesDeps, interaction: GuildInteraction): Promise<string> {
  const [preferences, settings, styles] = await Promise.all([
    deps.preferences.get(interaction.guildId, interaction.user.id),
    deps.settings.get(interaction.guildId),
    deps.styles.get(interaction.guildId),
  ]);
  const names = Object.keys(preferences) as Array<keyof Preferences>;
  const lines =
    names.length === 0
      ? ['You have no preferences in this server (save some with `/preferences set`).']
      : ['**Your preferences in this server**', ...names.map((name) => `• \`${name}\`: ${describeValue(name, preferences[name])}${caveat(name, preferences, settings, styles)}`)];
  lines.push(...limitNotes(deps, interaction, settings, preferences));
  return [...lines, `**\`/imagine\` with only a prompt, here, now:** ${describeEffective(deps, interaction, preferences, settings, styles)}`].join('\n');
}

function describeValue(name: keyof Preferences, value: Preferences[keyof Preferences]): string {
  if (name === 'private') return value === true ? 'yes' : 'no';
  if (name === 'style') return value === NO_STYLE ? '`none` (no style, not even the defaults)' : `\`${String(value)}\``;
  return `**${String(value)}**`;
}

/** What no longer works as saved: a style since removed, privacy since turned off. Limits are said by limitNotes. */
function caveat(name: keyof Preferences, preferences: Preferences, settings: GuildSettings, styles: ServerStyles): string {
  if (name === 'style' && preferences.style !== undefined && !sameName(preferences.style, NO_STYLE) && !findStyle(styles, preferences.style))
    return ' — ⚠️ no longer exists in this server: ignored';
  if (name === 'private' && preferences.private === true && !settings.allowPrivate)
    return ' — ⚠️ not allowed in this server now: `/imagine` is refused (free) until you set `private:false` or type `private:false`';
  return '';
}

/** The server's limits still apply to what a member saved: said, not refused (the member may keep it for later). */
function limitNotes(deps: PreferencesDeps, interaction: GuildInteraction, settings: GuildSettings, preferences: Preferences): string[] {
  const limits = deps.policy.limitsFor(memberContextOf(interaction), settings);
  const notes: string[] = [];
  if (preferences.samples !== undefined && preferences.samples > limits.maxSamples)
    notes.push(`ℹ️ This server allows at most ${limits.maxSamples} ${limits.maxSamples === 1 ? 'image' : 'images'} a request: your \`samples\` ${preferences.samples} will be cut to ${limits.maxSamples}.`);
  if (preferences.steps !== undefined && preferences.steps > limits.maxSteps)
    notes.push(`ℹ️ This server allows at most ${limits.maxSteps} steps: your \`steps\` ${preferences.steps} will be cut to ${limits.maxSteps}.`);
  return notes;
}

const SOURCE: Record<string, string> = { preference: 'your preference', channel: "this channel's default", server: "the server's default" };

/** What the resolver makes of a bare prompt here: the same code /imagine runs, with the server's limits applied. */
function describeEffective(deps: PreferencesDeps, interaction: GuildInteraction, preferences: Preferences, settings: GuildSettings, styles: ServerStyles): string {
  const { parentChannelId } = memberContextOf(interaction);
  const { params, style, styleSource } = resolveImagine({
    typed: { prompt: '' },
    preferences,
    styles,
    channelId: interaction.channelId,
    parentChannelId,
    random: () => 0,
  });
  const limits = deps.policy.limitsFor(memberContextOf(interaction), settings);
  const samples = Math.min(params.samples, limits.maxSamples);
  const parts = [
    style ? `style \`${style.name}\` (${SOURCE[styleSource ?? ''] ?? styleSource})` : 'no style',
    params.aspect_ratio,
    `guidance ${params.guidance}`,
    `${Math.min(params.steps, limits.maxSteps)} steps`,
    `${samples} ${samples === 1 ? 'image' : 'images'}`,
    params.output_format === 'png' ? 'png' : `${params.output_format} quality ${params.output_quality}`,
    preferences.private === true ? 'private' : 'public',
  ];
  return parts.join(' · ');
}
