/** `/imagine-admin styles add|remove|list|default`: the server's styles and its default styles, server-wide and per channel. */
import { OPTION_MESSAGES } from '../option-messages.js';
import { ApplicationCommandOptionType, ChannelType, escapeMarkdown } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { styleChoices } from '../../services/creative/style-choices.js';
import {
  DESCRIPTION_MAX,
  findStyle,
  MAX_CHANNEL_DEFAULTS,
  MAX_STYLES,
  NO_STYLE,
  PROMPT_PLACEHOLDER,
  sameName,
  STYLE_NAME_MAX,
  TEMPLATE_MAX,
  type ServerStyles,
  type Style,
} from '../../services/creative/style-store.js';
import { ASPECT_RATIOS, LIMITS } from '../../services/segmind/flux-params.js';
import type { GuildSettings } from '../../services/usage/guild-settings.js';
import { findBrokenRule } from '../../services/usage/word-filter.js';
import { imagineFields } from '../imagine.js';
import type { Translator } from '../../i18n/i18n.js';
import { channel, code, fitList, moreOf, truncate } from './format.js';
import { english, handler, type AdminDeps, type AdminHandler, type AdminTools, type Autocompleter, type PathOf } from './handler.js';
import { group, line, requireChannelType, snowflake, subcommand, text, type BasicOption } from './options.js';

/** Channels with a default style: where /imagine can be used (a thread takes its parent's). */
const STYLE_CHANNEL_TYPES = [
  ChannelType.GuildText,
  ChannelType.GuildAnnouncement,
  ChannelType.GuildVoice,
  ChannelType.GuildForum,
  ChannelType.GuildMedia,
] as const;

const styleOption = (name: string, description: string, required: boolean): BasicOption => ({
  type: ApplicationCommandOptionType.String,
  name,
  description,
  autocomplete: true,
  min_length: 1,
  max_length: STYLE_NAME_MAX,
  required,
});

// Discord allows 4000 characters of names, descriptions and choices for the whole of /imagine-admin, and the other
// subjects use most of them: terse descriptions, and aspect ratios suggested (autocomplete) rather than 9 choices.
export const stylesGroup = group('styles', 'Styles', [
  subcommand('add', 'Add/update a style', [
    styleOption('name', 'Name', true),
    text('template', `Text with ${PROMPT_PLACEHOLDER}`, TEMPLATE_MAX, true),
    text('description', 'Short note', DESCRIPTION_MAX),
    { type: ApplicationCommandOptionType.String, name: 'aspect_ratio', description: 'Width:height', autocomplete: true, min_length: 3, max_length: 4 },
    {
      type: ApplicationCommandOptionType.Number,
      name: 'guidance',
      description: `${LIMITS.guidance.min}–${LIMITS.guidance.max}`,
      min_value: LIMITS.guidance.min,
      max_value: LIMITS.guidance.max,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'steps',
      description: `${LIMITS.steps.min}–${LIMITS.steps.max}`,
      min_value: LIMITS.steps.min,
      max_value: LIMITS.steps.max,
    },
  ]),
  subcommand('remove', 'Remove a style', [styleOption('name', 'Name', true)]),
  subcommand('list', 'Show all'),
  subcommand('default', 'Set/clear a default', [
    styleOption('style', 'Style (omit: clear)', false),
    { type: ApplicationCommandOptionType.Channel, name: 'channel', description: "Else the server's", channel_types: [...STYLE_CHANNEL_TYPES] },
  ]),
]);

const styleName = line(STYLE_NAME_MAX).refine((name) => !sameName(name, NO_STYLE), OPTION_MESSAGES.styleNoneReserved);
const addSchema = z.object({
  name: styleName,
  template: line(TEMPLATE_MAX),
  description: line(DESCRIPTION_MAX).optional(),
  aspect_ratio: imagineFields.aspect_ratio.optional(),
  guidance: imagineFields.guidance.optional(),
  steps: imagineFields.steps.optional(),
});
const nameOnly = z.object({ name: line(STYLE_NAME_MAX) });
const defaultSchema = z.object({ style: line(STYLE_NAME_MAX).optional(), channel: snowflake.optional() });

/** Every suggestion is a stored style: `none` is not a style moderators can add, remove or make a default. */
export function stylesAutocomplete({ styles }: AdminDeps): Partial<Record<PathOf<typeof stylesGroup>, Autocompleter>> {
  const suggest: Autocompleter = async ({ interaction, typed }) => {
    if (interaction.options.getFocused(true).name === 'aspect_ratio')
      return ASPECT_RATIOS.filter((ratio) => ratio.startsWith(typed.trim())).map((ratio) => ({ name: ratio, value: ratio }));
    return styleChoices(await styles.cached(interaction.guildId), typed).filter((choice) => choice.value !== NO_STYLE);
  };
  return { 'styles/add': suggest, 'styles/remove': suggest, 'styles/default': suggest };
}

export function stylesHandlers({ styles, clock }: AdminDeps, { record }: AdminTools): Record<PathOf<typeof stylesGroup>, AdminHandler> {
  return {
    'styles/add': handler(addSchema, async (context, options) => {
      const { t } = context;
      const nsfwWord = checkTemplate(options.template, context.settings);
      const { result: previous } = await styles.update(context.guildId, (stored) => {
        const existing = findStyle(stored, options.name);
        if (!existing && stored.styles.length >= MAX_STYLES) throw new UserFacingError((t) => t('admin:styles.tooMany', { n: String(MAX_STYLES) }));
        const style: Style = {
          name: options.name,
          template: options.template,
          ...(options.description === undefined ? {} : { description: options.description }),
          ...(options.aspect_ratio === undefined ? {} : { aspect_ratio: options.aspect_ratio }),
          ...(options.guidance === undefined ? {} : { guidance: options.guidance }),
          ...(options.steps === undefined ? {} : { steps: options.steps }),
          createdBy: existing?.createdBy ?? context.actorId,
          createdAt: existing?.createdAt ?? clock.now(),
        };
        stored.styles = existing ? stored.styles.map((s) => (s === existing ? style : s)) : [...stored.styles, style];
        // Defaults name styles case-insensitively: a new spelling of the name keeps them.
        return existing;
      });
      await record(context, previous ? 'updatedStyle' : 'addedStyle', (t) => `${code(options.name)}: ${describeStyle(t, options)}`);
      const what = { name: code(options.name), style: describeStyle(t, options) };
      const lines: string[] = [
        previous ? t('admin:styles.updated', what) : t('admin:styles.added', what),
        t('admin:styles.howToUse', { command: `\`/imagine prompt:… style:${options.name}\`` }),
      ];
      if (!options.template.includes(PROMPT_PLACEHOLDER)) lines.push(t('admin:styles.noPlaceholder', { placeholder: PROMPT_PLACEHOLDER }));
      if (nsfwWord !== undefined) lines.push(t('admin:styles.nsfwWord', { word: code(nsfwWord) }));
      return lines.join('\n');
    }),

    'styles/remove': handler(nameOnly, async (context, { name }) => {
      const { result } = await styles.update(context.guildId, (stored) => {
        const style = findStyle(stored, name);
        if (!style) throw new UserFacingError((t) => t('admin:styles.noSuchStyle', { name: code(name) }));
        const wasServerDefault = stored.serverDefault !== null && sameName(stored.serverDefault, style.name);
        const channels = Object.keys(stored.channelDefaults).filter((id) => sameName(stored.channelDefaults[id]!, style.name));
        stored.styles = stored.styles.filter((s) => s !== style);
        if (wasServerDefault) stored.serverDefault = null;
        stored.channelDefaults = Object.fromEntries(Object.entries(stored.channelDefaults).filter(([id]) => !channels.includes(id)));
        return { removed: style.name, wasServerDefault, channels };
      });
      const cleared = (t: Translator) => {
        const defaults = [...(result.wasServerDefault ? [t('admin:styles.theServers')] : []), ...result.channels.map(channel)];
        return defaults.length === 0 ? '' : t('admin:styles.clearedDefaults', { list: fitList(defaults, ', ', 600, moreOf(t)) });
      };
      await record(context, 'removedStyle', (t) => `${code(result.removed)}${cleared(t)}`);
      return `${context.t('admin:styles.removed', { name: code(result.removed) })}${cleared(context.t)}`;
    }),

    'styles/list': handler(z.object({}), async (context) => Promise.resolve(describeStyles(await styles.get(context.guildId), context.t))),

    'styles/default': handler(defaultSchema, async (context, { style: typed, channel: channelId }) => {
      if (channelId !== undefined) requireChannelType(context.options, 'channel', STYLE_CHANNEL_TYPES);
      const where = (t: Translator) =>
        channelId === undefined ? t('admin:styles.whereServer') : t('admin:styles.whereChannel', { channel: channel(channelId) });
      // "none" is no style: the same as leaving the option out.
      const clearing = typed === undefined || sameName(typed, NO_STYLE);
      const { result } = await styles.update(context.guildId, (stored) => {
        const previous = channelId === undefined ? stored.serverDefault : (stored.channelDefaults[channelId] ?? null);
        if (clearing) {
          if (previous === null)
            throw new UserFacingError((t) => (channelId === undefined ? t('admin:styles.notSetServer') : t('admin:styles.notSetChannel', { channel: channel(channelId) })));
          if (channelId === undefined) stored.serverDefault = null;
          else stored.channelDefaults = Object.fromEntries(Object.entries(stored.channelDefaults).filter(([id]) => id !== channelId));
          return { name: null, previous };
        }
        const style = findStyle(stored, typed);
        if (!style) throw new UserFacingError((t) => t('admin:styles.addFirst', { name: code(typed) }));
        if (channelId === undefined) stored.serverDefault = style.name;
        else {
          if (previous === null && Object.keys(stored.channelDefaults).length >= MAX_CHANNEL_DEFAULTS)
            throw new UserFacingError((t) => t('admin:styles.tooManyDefaults', { n: String(MAX_CHANNEL_DEFAULTS) }));
          stored.channelDefaults = { ...stored.channelDefaults, [channelId]: style.name };
        }
        return { name: style.name, previous };
      });
      const { t } = context;
      if (result.name === null) {
        const previous = code(result.previous);
        await record(context, 'clearedDefaultStyle', (t) => t('admin:styles.clearedDetails', { where: where(t), previous }));
        return t('admin:styles.cleared', { where: where(t), previous });
      }
      const name = code(result.name);
      await record(context, 'setDefaultStyle', (t) => t('admin:styles.setDetails', { where: where(t), name }));
      const applies = channelId === undefined ? t('admin:styles.appliesServer') : t('admin:styles.appliesChannel', { channel: channel(channelId) });
      return t('admin:styles.set', { where: where(t), name, applies });
    }),
  };
}

/**
 * A template is refused when it breaks a banned word (no prompt could pass with it); an NSFW word is refused where the
 * server refuses NSFW prompts everywhere, else returned so the moderator is told where the style works.
 */
function checkTemplate(template: string, settings: GuildSettings): string | undefined {
  const words = template.split(PROMPT_PLACEHOLDER).join(' ');
  const banned = findBrokenRule(words, settings.bannedWords);
  if (banned !== undefined) throw new UserFacingError((t) => t('admin:styles.bannedWord', { word: code(banned) }));
  const nsfw = findBrokenRule(words, settings.nsfwWords);
  if (nsfw !== undefined && settings.nsfwPolicy !== 'age_restricted') throw new UserFacingError((t) => t('admin:styles.nsfwRefused', { word: code(nsfw) }));
  return nsfw;
}

function describeStyle(t: Translator, style: Pick<Style, 'template' | 'description' | 'aspect_ratio' | 'guidance' | 'steps'>): string {
  const settings = [
    ...(style.aspect_ratio ? [style.aspect_ratio] : []),
    ...(style.guidance !== undefined ? [t('admin:styles.guidance', { n: String(style.guidance) })] : []),
    ...(style.steps !== undefined ? [t('admin:styles.steps', { count: style.steps })] : []),
  ];
  return [code(truncate(style.template, 300)), ...(settings.length > 0 ? [settings.join(' · ')] : [])].join(' · ');
}

/** Everything, defaults marked, within one Discord message. */
export function describeStyles(stored: ServerStyles, t: Translator = english): string {
  if (stored.styles.length === 0) return t('admin:styles.none');
  const channelsOf = (name: string) => Object.keys(stored.channelDefaults).filter((id) => sameName(stored.channelDefaults[id]!, name));
  const more = moreOf(t);
  const lines = stored.styles.map((style) => {
    const marks = [
      ...(stored.serverDefault !== null && sameName(stored.serverDefault, style.name) ? [t('admin:styles.markServer')] : []),
      ...(channelsOf(style.name).length > 0 ? [t('admin:styles.markChannels', { list: fitList(channelsOf(style.name).map(channel), ', ', 200, more) })] : []),
    ];
    const description = style.description ? ` — ${escapeMarkdown(style.description)}` : '';
    return `• **${escapeMarkdown(style.name)}**${description}${marks.length > 0 ? ` ⭐ ${marks.join('; ')}` : ''}\n  ${describeStyle(t, { ...style, template: truncate(style.template, 120) })}`;
  });
  const header = t('admin:styles.header', {
    n: String(stored.styles.length),
    max: String(MAX_STYLES),
    serverDefault: stored.serverDefault === null ? t('admin:styles.noServerDefault') : code(stored.serverDefault),
    count: Object.keys(stored.channelDefaults).length,
  });
  return `${header}\n${fitList(lines, '\n', 1990 - header.length, more)}`;
}
