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
import type { Translator } from '../i18n/i18n.js';
import { PREFERENCE_NAMES, type PreferenceStore, type Preferences } from '../services/creative/preference-store.js';
import { resolveImagine } from '../services/creative/resolve-imagine.js';
import { styleChoices } from '../services/creative/style-choices.js';
import { findStyle, NO_STYLE, sameName, STYLE_NAME_MAX, type ServerStyles, type StyleStore } from '../services/creative/style-store.js';
import { ASPECT_RATIOS, LIMITS, OUTPUT_FORMATS } from '../services/segmind/flux-params.js';
import type { GuildSettings, GuildSettingsRepository } from '../services/usage/guild-settings.js';
import type { UsagePolicy } from '../services/usage/usage-policy.js';
import { imagineFields } from './imagine.js';
import { memberContextOf } from './member-context.js';
import { answeringIn, memberLanguage } from './member-language.js';
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
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('member:preferences.serversOnly'));
      const sub = interaction.options.data[0];
      if (sub?.type !== ApplicationCommandOptionType.Subcommand)
        throw new UserFacingError((t) => t('member:preferences.pickSubcommand'), 'invalid_options');
      // Options are checked before anything is read; storage only after the deferral (Discord's 3 s).
      const changes = sub.name === 'set' ? parseOptionList(setSchema, sub.options ?? []) : undefined;
      if (changes && Object.keys(changes).length === 0)
        throw new UserFacingError(
          (t) => t('member:preferences.nothingToSave', { names: PREFERENCE_NAMES.map((name) => `\`${name}\``).join(t('member:preferences.listSeparator')) }),
          'invalid_options',
        );
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const settings = await deps.settings.get(interaction.guildId);
      const t = memberLanguage(interaction, settings.language);
      const content = await answeringIn(t, async () => {
        if (changes) return set(deps, interaction, settings, changes, t);
        if (sub.name === 'view') return view(deps, interaction, settings, t);
        if (sub.name === 'reset')
          return (await deps.preferences.reset(interaction.guildId, interaction.user.id))
            ? t('member:preferences.cleared')
            : t('member:preferences.nothingToClear');
        throw new UserFacingError((tt) => tt('member:preferences.subcommandGone'), 'unknown_subcommand');
      });
      await interaction.editReply({ content, allowedMentions: { parse: [] } });
    },
  };
}

async function set(deps: PreferencesDeps, interaction: GuildInteraction, settings: GuildSettings, changes: Preferences, t: Translator): Promise<string> {
  const styles = await deps.styles.get(interaction.guildId);
  if (changes.style !== undefined) {
    if (sameName(changes.style, NO_STYLE)) changes.style = NO_STYLE;
    else {
      const style = findStyle(styles, changes.style);
      const typed = changes.style.replace(/`/g, 'ˋ');
      if (!style) throw new UserFacingError((tt) => tt('member:preferences.unknownStyle', { style: typed }));
      changes.style = style.name;
    }
  }
  if (changes.private === true && !settings.allowPrivate)
    throw new UserFacingError((tt) => tt('member:preferences.privateNotAllowed'), 'refused_private');
  await deps.preferences.set(interaction.guildId, interaction.user.id, changes);
  const saved = (Object.keys(changes) as Array<keyof Preferences>).map((name) => `\`${name}\` ${describeValue(name, changes[name], t)}`);
  return [
    t('member:preferences.saved', { saved: saved.join(t('member:preferences.listSeparator')) }),
    ...limitNotes(deps, interaction, settings, changes, t),
  ].join('\n');
}

async function view(deps: PreferencesDeps, interaction: GuildInteraction, settings: GuildSettings, t: Translator): Promise<string> {
  const [preferences, styles] = await Promise.all([deps.preferences.get(interaction.guildId, interaction.user.id), deps.styles.get(interaction.guildId)]);
  const names = Object.keys(preferences) as Array<keyof Preferences>;
  const lines: string[] =
    names.length === 0
      ? [t('member:preferences.none')]
      : [
          t('member:preferences.title'),
          ...names.map((name) => `• \`${name}\`: ${describeValue(name, preferences[name], t)}${caveat(name, preferences, settings, styles, t)}`),
        ];
  lines.push(...limitNotes(deps, interaction, settings, preferences, t));
  return [...lines, t('member:preferences.effective', { summary: describeEffective(deps, interaction, preferences, settings, styles, t) })].join('\n');
}

function describeValue(name: keyof Preferences, value: Preferences[keyof Preferences], t: Translator): string {
  if (name === 'private') return value === true ? t('member:preferences.yes') : t('member:preferences.no');
  if (name === 'style') return value === NO_STYLE ? t('member:preferences.styleNone') : `\`${String(value)}\``;
  return `**${String(value)}**`;
}

/** What no longer works as saved: a style since removed, privacy since turned off. Limits are said by limitNotes. */
function caveat(name: keyof Preferences, preferences: Preferences, settings: GuildSettings, styles: ServerStyles, t: Translator): string {
  if (name === 'style' && preferences.style !== undefined && !sameName(preferences.style, NO_STYLE) && !findStyle(styles, preferences.style))
    return t('member:preferences.styleGone');
  if (name === 'private' && preferences.private === true && !settings.allowPrivate) return t('member:preferences.privateRefused');
  return '';
}

/** The server's limits still apply to what a member saved: said, not refused (the member may keep it for later). */
function limitNotes(deps: PreferencesDeps, interaction: GuildInteraction, settings: GuildSettings, preferences: Preferences, t: Translator): string[] {
  const limits = deps.policy.limitsFor(memberContextOf(interaction), settings);
  const notes: string[] = [];
  if (preferences.samples !== undefined && preferences.samples > limits.maxSamples)
    notes.push(t('member:preferences.samplesCut', { count: limits.maxSamples, value: preferences.samples }));
  if (preferences.steps !== undefined && preferences.steps > limits.maxSteps)
    notes.push(t('member:preferences.stepsCut', { max: limits.maxSteps, value: preferences.steps }));
  return notes;
}

/** What the resolver makes of a bare prompt here: the same code /imagine runs, with the server's limits applied. */
function describeEffective(
  deps: PreferencesDeps,
  interaction: GuildInteraction,
  preferences: Preferences,
  settings: GuildSettings,
  styles: ServerStyles,
  t: Translator,
): string {
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
  const source = styleSource === 'preference' || styleSource === 'channel' || styleSource === 'server' ? t(`member:preferences.source.${styleSource}`) : String(styleSource);
  const parts = [
    style ? t('member:preferences.style', { name: style.name, source }) : t('member:preferences.noStyle'),
    params.aspect_ratio,
    t('member:preferences.guidance', { value: params.guidance }),
    t('member:preferences.steps', { count: Math.min(params.steps, limits.maxSteps) }),
    t('member:preferences.images', { count: samples }),
    params.output_format === 'png' ? 'png' : t('member:preferences.quality', { format: params.output_format, quality: params.output_quality }),
    preferences.private === true ? t('member:preferences.private') : t('member:preferences.public'),
  ];
  return parts.join(' · ');
}
