/** `/imagine-admin settings view|set|reset`: the server's settings for /imagine. */
import { OPTION_MESSAGES } from '../option-messages.js';
import { ApplicationCommandOptionType, ChannelType, DiscordAPIError } from 'discord.js';
import { UserFacingError } from '../../errors.js';
import { z } from 'zod';
import type { Translator } from '../../i18n/i18n.js';
import { SERVER_LANGUAGES, type Locale } from '../../i18n/locales.js';
import { IMAGE_CHECK_ACTIONS, NSFW_POLICIES, newGuildSettings, type EffectiveSettings, type GuildSettings, type ImageCheckAction } from '../../services/usage/guild-settings.js';
import { MAX_REPLY, channel, code, describeNsfwPolicy, describeOverride, fitList, moreOf, relative, roleMention, truncate, user } from './format.js';
import { ANYONE, handler, type AdminDeps, type AdminHandler, type AdminTools, type Autocompleter, type PathOf, type Text, translatorFor } from './handler.js';
import { MAX_COOLDOWN_SECONDS, MAX_CREDITS, choicesOf, count, group, integer, none, requireChannelType, snowflake, subcommand } from './options.js';

const MAX_SERVER_CAP = 10_000_000;
const MAX_FLAG_LIMIT = 1_000;
const MAX_GALLERY_STARS = 1_000;

/** Channels a log line can be posted to. */
const LOG_CHANNEL_TYPES = [ChannelType.GuildText, ChannelType.GuildAnnouncement] as const;

const SETTING_NAMES = [
  'daily_credits',
  'cooldown_seconds',
  'server_daily_cap',
  'max_samples',
  'max_steps',
  'moderator_role',
  'log_channel',
  'generation_log_channel',
  'nsfw_policy',
  'exempt_moderators',
  'image_check',
  'log_flagged_images',
  'flag_limit',
  'allow_private',
  'gallery_channel',
  'gallery_stars',
  'language',
] as const;
type SettingName = (typeof SETTING_NAMES)[number];

export const settingsGroup = group('settings', 'Server settings for /imagine', [
  subcommand('view', 'Show every setting that applies here'),
  subcommand('set', 'Change one or more settings', [
    count('daily_credits', 'Images per member per UTC day', 0, MAX_CREDITS),
    count('cooldown_seconds', 'Seconds between two requests of a member', 0, MAX_COOLDOWN_SECONDS),
    count('server_daily_cap', 'Images the whole server may make per UTC day (0 = no cap)', 0, MAX_SERVER_CAP),
    count('max_samples', 'Most images per request', 1, 4),
    count('max_steps', 'Most denoising steps per image', 1, 50),
    {
      type: ApplicationCommandOptionType.Role,
      name: 'moderator_role',
      description: 'Role that may use /imagine-admin (an admin must also allow it: Server Settings → Integrations)',
    },
    {
      type: ApplicationCommandOptionType.Channel,
      name: 'log_channel',
      description: 'Channel where moderator actions are posted',
      channel_types: [...LOG_CHANNEL_TYPES],
    },
    {
      type: ApplicationCommandOptionType.Channel,
      name: 'generation_log_channel',
      description: 'Channel that gets one line per image result: who, prompt, link (no pings)',
      channel_types: [...LOG_CHANNEL_TYPES],
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'nsfw_policy',
      description: 'NSFW prompts: off, or only in age-restricted channels',
      choices: choicesOf(NSFW_POLICIES),
    },
    { type: ApplicationCommandOptionType.Boolean, name: 'exempt_moderators', description: 'Moderators skip the cooldown' },
    {
      type: ApplicationCommandOptionType.String,
      name: 'image_check',
      description: 'Images the image check flags: posted as a spoiler, withheld (block), or as they are (off)',
      choices: choicesOf(IMAGE_CHECK_ACTIONS),
    },
    {
      type: ApplicationCommandOptionType.Boolean,
      name: 'log_flagged_images',
      description: 'Attach a flagged image (as a spoiler) to its report in the log channel',
    },
    count('flag_limit', 'Flagged images per member per UTC day before an automatic block (0 = never)', 0, MAX_FLAG_LIMIT),
    { type: ApplicationCommandOptionType.Boolean, name: 'allow_private', description: 'Members may ask for private results (/imagine private:true) here' },
    {
      type: ApplicationCommandOptionType.Channel,
      name: 'gallery_channel',
      description: 'Channel where ⭐ Share (and the starboard) posts results',
      channel_types: [...LOG_CHANNEL_TYPES],
    },
    count('gallery_stars', '⭐ reactions from other members that share a result to the gallery (0 = off)', 0, MAX_GALLERY_STARS),
    // Suggested rather than 9 choices: /imagine-admin is near Discord's 4000-character budget.
    { type: ApplicationCommandOptionType.String, name: 'language', description: "Bot language (auto: each member's)", autocomplete: true, max_length: 5 },
  ]),
  subcommand('reset', 'Put one setting back to the bot default', [
    { type: ApplicationCommandOptionType.String, name: 'setting', description: 'Which setting', choices: choicesOf(SETTING_NAMES), required: true },
  ]),
]);

const settingsSetSchema = z.object({
  daily_credits: integer(0, MAX_CREDITS).optional(),
  cooldown_seconds: integer(0, MAX_COOLDOWN_SECONDS).optional(),
  server_daily_cap: integer(0, MAX_SERVER_CAP).optional(),
  max_samples: integer(1, 4).optional(),
  max_steps: integer(1, 50).optional(),
  moderator_role: snowflake.optional(),
  log_channel: snowflake.optional(),
  generation_log_channel: snowflake.optional(),
  nsfw_policy: z.enum(NSFW_POLICIES, { error: `must be one of ${NSFW_POLICIES.join(', ')}` }).optional(),
  exempt_moderators: z.boolean({ error: 'must be true or false' }).optional(),
  image_check: z.enum(IMAGE_CHECK_ACTIONS, { error: `must be one of ${IMAGE_CHECK_ACTIONS.join(', ')}` }).optional(),
  log_flagged_images: z.boolean({ error: 'must be true or false' }).optional(),
  flag_limit: integer(0, MAX_FLAG_LIMIT).optional(),
  allow_private: z.boolean({ error: 'must be true or false' }).optional(),
  gallery_channel: snowflake.optional(),
  gallery_stars: integer(0, MAX_GALLERY_STARS).optional(),
  language: z.enum(SERVER_LANGUAGES, { error: `must be one of ${SERVER_LANGUAGES.join(', ')}` }).optional(),
});
type SettingsChange = z.output<typeof settingsSetSchema>;

/** Each language by its own name, as a member of that language looks for it. */
const LANGUAGE_NAMES: Record<Locale, string> = {
  'en-US': 'English',
  'es-ES': 'Español',
  'pt-BR': 'Português (Brasil)',
  fr: 'Français',
  de: 'Deutsch',
  ja: '日本語',
  ko: '한국어',
  'zh-CN': '简体中文',
};

export const settingsAutocomplete: Partial<Record<PathOf<typeof settingsGroup>, Autocompleter>> = {
  'settings/set': ({ typed }) => {
    const needle = typed.trim().toLowerCase();
    return SERVER_LANGUAGES.map((value) => ({ name: value === 'auto' ? 'auto' : `${value} — ${LANGUAGE_NAMES[value]}`, value })).filter(
      (choice) => choice.name.toLowerCase().includes(needle),
    );
  },
};

export function settingsHandlers(deps: AdminDeps, { change, effective, requireUnderCeiling }: AdminTools): Record<PathOf<typeof settingsGroup>, AdminHandler> {
  const { settings: repository, policy, postToChannel } = deps;

  /**
   * A channel is taken only once a test line has reached it: a log channel the bot cannot post to would lose every
   * report and action silently, and the moderator setting it is the one who can fix its permissions, now.
   */
  async function postTestLine(channelId: string, text: string): Promise<void> {
    try {
      await postToChannel(channelId, text);
    } catch (error) {
      const code = error instanceof DiscordAPIError ? Number(error.code) : undefined;
      if (code === 50001 || code === 50013 || code === 10003)
        throw new UserFacingError((t) => t('admin:settings.set.cannotPost', { channel: channel(channelId) }), 'log_channel_unusable');
      throw new UserFacingError((t) => t('admin:settings.set.testFailed', { channel: channel(channelId) }), 'log_channel_unusable');
    }
  }
  const botDefaults = () => policy.limitsFor(ANYONE, newGuildSettings());

  return {
    'settings/view': handler(none, ({ t, settings, guildLocale }) =>
      Promise.resolve(describeSettings(t, settings, effective(settings), botDefaults(), policy.ceilings, guildLocale)),
    ),

    'settings/set': handler(settingsSetSchema, async (context, options) => {
      if (Object.values(options).every((value) => value === undefined)) throw new UserFacingError((t) => t('admin:settings.set.nothing'), 'invalid_options');
      if (options.moderator_role === context.guildId) throw new UserFacingError((t) => t('admin:settings.set.everyoneModerator'), 'invalid_options');
      requireChannelType(context.options, 'log_channel', LOG_CHANNEL_TYPES);
      requireChannelType(context.options, 'generation_log_channel', LOG_CHANNEL_TYPES);
      requireChannelType(context.options, 'gallery_channel', LOG_CHANNEL_TYPES);
      requireUnderCeiling('daily_credits', options.daily_credits, 'dailyCredits');
      requireUnderCeiling('server_daily_cap', options.server_daily_cap, 'guildDailyCap');
      // A test line is read by whoever watches that channel: in the server's language, as the new setting has it.
      const channelT = translatorFor(context, options.language ?? context.settings.language, 'channel');
      const actor = user(context.actorId);
      if (options.log_channel !== undefined) await postTestLine(options.log_channel, channelT('admin:settings.set.testLogChannel', { user: actor }));
      if (options.generation_log_channel !== undefined)
        await postTestLine(options.generation_log_channel, channelT('admin:settings.set.testGenerationLog', { user: actor }));
      if (options.gallery_channel !== undefined) await postTestLine(options.gallery_channel, channelT('admin:settings.set.testGallery', { user: actor }));
      const details = await change(context, 'changedSettings', (settings) => applySettings(settings, options));
      // The reply speaks the language just chosen, so moderators see at once what members will.
      const t = options.language === undefined ? context.t : translatorFor(context, options.language, 'member');
      const ceiling = policy.ceilings.guildDailyCap;
      // "No cap" cannot lift the operator's ceiling: say what applies instead.
      const notes = [
        options.server_daily_cap === 0 && ceiling > 0 ? t('admin:settings.set.noteCeiling', { n: String(ceiling) }) : '',
        options.moderator_role !== undefined ? ` ${t('admin:settings.moderatorRoleNote')}` : '',
        options.log_channel !== undefined || options.generation_log_channel !== undefined || options.gallery_channel !== undefined ? t('admin:settings.set.noteTestLine') : '',
        options.gallery_stars !== undefined && options.gallery_stars > 0 && (options.gallery_channel ?? context.settings.galleryChannelId) === null
          ? t('admin:settings.set.noteStarboard')
          : '',
      ];
      return `${t('admin:settings.set.changed', { details: details(t) })}${notes.join('')}`;
    }),

    'settings/reset': handler(z.object({ setting: z.enum(SETTING_NAMES, { error: OPTION_MESSAGES.notSetting }) }), async (context, { setting }) => {
      const details = await change(context, 'resetSetting', (settings) => {
        resetSetting(settings, setting);
        return (t) => t('admin:settings.reset.details', { name: code(setting) });
      });
      const now = await repository.get(context.guildId);
      // Back to `auto`: the reply follows the moderator's own language again.
      const t = setting === 'language' ? translatorFor(context, 'auto', 'member') : context.t;
      if (setting in SHOWN) return t('admin:settings.reset.doneNow', { details: details(t), value: SHOWN[setting as keyof typeof SHOWN](t, effective(now)) });
      return t('admin:settings.reset.done', { details: details(t) });
    }),
  };
}

/** What applies: the server's settings with the bot defaults filled in. */
type Limits = EffectiveSettings;

/** How much of a pause reason the view shows (escaped, it may double). */
const MAX_REASON_SHOWN = 80;
/** Each list of the view gets at least this much, whatever the other lines take (else it reads `… and 50 more`). */
const MIN_LIST_BUDGET = 0;

const IMAGE_CHECK_SHOWN = {
  spoiler: 'admin:shown.imageCheckSpoiler',
  block: 'admin:shown.imageCheckBlock',
  off: 'admin:shown.imageCheckOff',
} as const satisfies Record<ImageCheckAction, string>;

/** How each numeric setting reads in a reply. */
const SHOWN = {
  daily_credits: (t: Translator, l: Limits) => t('admin:shown.dailyCredits', { n: String(l.dailyCredits) }),
  cooldown_seconds: (t: Translator, l: Limits) => t('admin:shown.cooldown', { n: String(l.cooldownSeconds) }),
  server_daily_cap: (t: Translator, l: Limits) =>
    l.guildDailyCap > 0 ? t('admin:shown.serverCap', { n: String(l.guildDailyCap) }) : t('admin:shown.noServerCap'),
  max_samples: (t: Translator, l: Limits) => t('admin:shown.maxSamples', { n: String(l.maxSamples) }),
  max_steps: (t: Translator, l: Limits) => t('admin:shown.maxSteps', { n: String(l.maxSteps) }),
} as const;

/** The operator's ceilings (0 = none), shown so moderators know what no setting of theirs can exceed. */
interface Ceilings {
  dailyCredits: number;
  guildDailyCap: number;
}

function describeCeilings(t: Translator, { dailyCredits, guildDailyCap }: Ceilings): string {
  const parts = [
    dailyCredits > 0 ? t('admin:settings.view.ceilingsDailyCredits', { n: String(dailyCredits) }) : null,
    guildDailyCap > 0 ? t('admin:settings.view.ceilingsGuildDailyCap', { n: String(guildDailyCap) }) : null,
  ].filter((part) => part !== null);
  if (parts.length === 0) return t('admin:settings.view.ceilingsNone');
  const value =
    parts.length === 1 ? t('admin:settings.view.ceilingsOne', { a: parts[0]! }) : t('admin:settings.view.ceilingsBoth', { a: parts[0]!, b: parts[1]! });
  return t('admin:settings.view.ceilings', { value });
}

function describeLanguage(t: Translator, settings: GuildSettings, guildLocale: string | null): string {
  if (settings.language === 'auto')
    return t('admin:settings.view.language', {
      value: t('admin:shown.languageAuto', { guild: code(guildLocale ?? 'en-US') }),
      origin: t('admin:settings.view.botDefault'),
    });
  const value = t('admin:shown.languageFixed', { name: LANGUAGE_NAMES[settings.language], code: settings.language });
  return t('admin:settings.view.language', { value, origin: t('admin:settings.view.serverSetting') });
}

export function describeSettings(
  t: Translator,
  settings: GuildSettings,
  effective: Limits,
  defaults: Limits,
  ceilings: Ceilings = { dailyCredits: 0, guildDailyCap: 0 },
  guildLocale: string | null = null,
): string {
  const origin = (value: unknown, defaultText: string) =>
    value === null ? t('admin:settings.view.botDefault') : t('admin:settings.view.serverSettingWithDefault', { value: defaultText });
  const fixed = (isDefault: boolean) => (isDefault ? t('admin:settings.view.botDefault') : t('admin:settings.view.serverSetting'));
  const more = moreOf(t);
  const paused = settings.paused;
  // A long reason is the moderator's own words, in full in the audit: the view shows its start.
  const reason = paused ? truncate(paused.reason, MAX_REASON_SHOWN) : '';
  const overrides = Object.entries(settings.roleOverrides);
  const moderators = (withNote: boolean) =>
    settings.moderatorRoleId === null
      ? t('admin:settings.view.moderatorsNoRole')
      : withNote
        ? t('admin:settings.view.moderatorsWithRole', { role: roleMention(settings.moderatorRoleId), note: t('admin:settings.moderatorRoleNote') })
        : t('admin:settings.view.moderatorsWithRoleShort', { role: roleMention(settings.moderatorRoleId) });
  const head = [
    t('admin:settings.view.title'),
    t('admin:settings.view.dailyCredits', { value: SHOWN.daily_credits(t, effective), origin: origin(settings.dailyCredits, String(defaults.dailyCredits)) }),
    t('admin:settings.view.cooldown', {
      value: SHOWN.cooldown_seconds(t, effective),
      origin: origin(settings.cooldownSeconds, t('admin:settings.view.defaultSeconds', { n: String(defaults.cooldownSeconds) })),
    }),
    t('admin:settings.view.serverCap', {
      value: SHOWN.server_daily_cap(t, effective),
      origin: origin(settings.guildDailyCap, defaults.guildDailyCap > 0 ? String(defaults.guildDailyCap) : t('admin:settings.view.defaultNoCap')),
    }),
    describeCeilings(t, ceilings),
    t('admin:settings.view.samples', { value: SHOWN.max_samples(t, effective), origin: origin(settings.maxSamples, String(defaults.maxSamples)) }),
    t('admin:settings.view.steps', { value: SHOWN.max_steps(t, effective), origin: origin(settings.maxSteps, String(defaults.maxSteps)) }),
    moderators(true),
    settings.exemptModerators ? t('admin:settings.view.exemptModerators') : t('admin:settings.view.exemptNobody'),
    settings.logChannelId ? t('admin:settings.view.logChannel', { channel: channel(settings.logChannelId) }) : t('admin:settings.view.logChannelNone'),
    settings.generationLogChannelId
      ? t('admin:settings.view.generationLog', { channel: channel(settings.generationLogChannelId) })
      : t('admin:settings.view.generationLogNone'),
    t('admin:settings.view.nsfw', { policy: describeNsfwPolicy(t, settings), origin: fixed(settings.nsfwPolicy === 'off') }),
    t('admin:settings.view.imageCheck', {
      action: t(IMAGE_CHECK_SHOWN[effective.imageCheck]),
      origin: origin(settings.imageCheck, defaults.imageCheck),
      ageRestricted: settings.nsfwPolicy === 'age_restricted' ? t('admin:settings.view.imageCheckAgeRestricted') : '',
    }),
    settings.logFlaggedImages ? t('admin:settings.view.flaggedWithImage') : t('admin:settings.view.flaggedWithoutImage'),
    settings.flagLimit > 0 ? t('admin:settings.view.flagLimit', { count: settings.flagLimit }) : t('admin:settings.view.flagLimitNone'),
    settings.allowPrivate ? t('admin:settings.view.privateAllowed') : t('admin:settings.view.privateNotAllowed'),
    settings.galleryChannelId ? t('admin:settings.view.gallery', { channel: channel(settings.galleryChannelId) }) : t('admin:settings.view.galleryNone'),
    settings.galleryStars > 0
      ? t(settings.galleryChannelId ? 'admin:settings.view.starboard' : 'admin:settings.view.starboardPending', { n: String(settings.galleryStars) })
      : t('admin:settings.view.starboardOff'),
    paused
      ? reason
        ? t('admin:settings.view.pausedWithReason', { user: user(paused.by), when: relative(paused.at), reason })
        : t('admin:settings.view.paused', { user: user(paused.by), when: relative(paused.at) })
      : t('admin:settings.view.running'),
  ];
  const tail = [
    t('admin:settings.view.allowances', { count: Object.keys(settings.memberAllowances).length }),
    t('admin:settings.view.wordLists', {
      banned: t('admin:settings.view.bannedWords', { count: settings.bannedWords.length }),
      nsfw: t('admin:settings.view.nsfwWords', { count: settings.nsfwWords.length }),
    }),
    t('admin:settings.view.blocked', { n: String(Object.keys(settings.blocked).length) }),
    describeLanguage(t, settings, guildLocale),
  ];
  // The note on the moderator role is the first to go when a server has set everything (it is said when the role is set).
  if ([...head, ...tail].join('\n').length > MAX_REPLY - MAX_REPLY / 5) head[head.indexOf(moderators(true))] = moderators(false);
  // The two lists share what the other lines leave of one message (each line has its own line break).
  const allowedLabel = t('admin:settings.view.allowedChannels', { list: '' });
  const overridesLabel = t('admin:settings.view.roleOverrides', { list: '' });
  const left = MAX_REPLY - [...head, ...tail].join('\n').length - allowedLabel.length - overridesLabel.length - 2;
  const allowedBudget = Math.max(MIN_LIST_BUDGET, Math.floor(left * 0.4));
  const overridesBudget = Math.max(MIN_LIST_BUDGET, left - allowedBudget);
  const lists = [
    settings.allowedChannels.length === 0
      ? t('admin:settings.view.allowedEverywhere')
      : t('admin:settings.view.allowedChannels', { list: fitList(settings.allowedChannels.map(channel), ', ', Math.min(400, allowedBudget), more) }),
    overrides.length === 0
      ? t('admin:settings.view.roleOverridesNone')
      : t('admin:settings.view.roleOverrides', {
          list: fitList(
            overrides.map(([id, o]) => `${roleMention(id)} ${describeOverride(t, o)}`),
            ' · ',
            Math.min(500, overridesBudget),
            more,
          ),
        }),
  ];
  return [...head, ...lists, ...tail].join('\n');
}

function applySettings(settings: GuildSettings, change: SettingsChange): Text {
  const changed: Text[] = [];
  const note = (name: SettingName, value: Text) => changed.push((t) => t('admin:settings.set.change', { name: code(name), value: value(t) }));
  const as = (value: string) => () => value;
  const yesNo = (value: boolean) => (t: Translator) => (value ? t('admin:settings.set.yes') : t('admin:settings.set.no'));
  if (change.daily_credits !== undefined) {
    settings.dailyCredits = change.daily_credits;
    note('daily_credits', as(String(change.daily_credits)));
  }
  if (change.cooldown_seconds !== undefined) {
    const seconds = change.cooldown_seconds;
    settings.cooldownSeconds = seconds;
    note('cooldown_seconds', (t) => t('admin:settings.set.seconds', { n: String(seconds) }));
  }
  if (change.server_daily_cap !== undefined) {
    const cap = change.server_daily_cap;
    settings.guildDailyCap = cap;
    note('server_daily_cap', (t) => (cap === 0 ? t('admin:settings.set.noCap') : String(cap)));
  }
  if (change.max_samples !== undefined) {
    settings.maxSamples = change.max_samples;
    note('max_samples', as(String(change.max_samples)));
  }
  if (change.max_steps !== undefined) {
    settings.maxSteps = change.max_steps;
    note('max_steps', as(String(change.max_steps)));
  }
  if (change.moderator_role !== undefined) {
    settings.moderatorRoleId = change.moderator_role;
    note('moderator_role', as(roleMention(change.moderator_role)));
  }
  if (change.log_channel !== undefined) {
    settings.logChannelId = change.log_channel;
    note('log_channel', as(channel(change.log_channel)));
  }
  if (change.generation_log_channel !== undefined) {
    settings.generationLogChannelId = change.generation_log_channel;
    note('generation_log_channel', as(channel(change.generation_log_channel)));
  }
  if (change.nsfw_policy !== undefined) {
    settings.nsfwPolicy = change.nsfw_policy;
    note('nsfw_policy', as(change.nsfw_policy));
  }
  if (change.exempt_moderators !== undefined) {
    settings.exemptModerators = change.exempt_moderators;
    note('exempt_moderators', yesNo(change.exempt_moderators));
  }
  if (change.image_check !== undefined) {
    settings.imageCheck = change.image_check;
    note('image_check', as(change.image_check));
  }
  if (change.log_flagged_images !== undefined) {
    settings.logFlaggedImages = change.log_flagged_images;
    note('log_flagged_images', yesNo(change.log_flagged_images));
  }
  if (change.flag_limit !== undefined) {
    const limit = change.flag_limit;
    settings.flagLimit = limit;
    note('flag_limit', (t) => (limit === 0 ? t('admin:settings.set.none') : t('admin:settings.set.flagLimit', { n: String(limit) })));
  }
  if (change.allow_private !== undefined) {
    settings.allowPrivate = change.allow_private;
    note('allow_private', yesNo(change.allow_private));
  }
  if (change.gallery_channel !== undefined) {
    settings.galleryChannelId = change.gallery_channel;
    note('gallery_channel', as(channel(change.gallery_channel)));
  }
  if (change.gallery_stars !== undefined) {
    const stars = change.gallery_stars;
    settings.galleryStars = stars;
    note('gallery_stars', (t) => (stars === 0 ? t('admin:settings.set.off') : t('admin:settings.set.stars', { n: String(stars) })));
  }
  if (change.language !== undefined) {
    settings.language = change.language;
    note('language', as(change.language));
  }
  return (t) => changed.map((text) => text(t)).join(', ');
}

function resetSetting(settings: GuildSettings, setting: SettingName): void {
  const defaults = newGuildSettings();
  switch (setting) {
    case 'daily_credits':
      settings.dailyCredits = null;
      return;
    case 'cooldown_seconds':
      settings.cooldownSeconds = null;
      return;
    case 'server_daily_cap':
      settings.guildDailyCap = null;
      return;
    case 'max_samples':
      settings.maxSamples = null;
      return;
    case 'max_steps':
      settings.maxSteps = null;
      return;
    case 'moderator_role':
      settings.moderatorRoleId = null;
      return;
    case 'log_channel':
      settings.logChannelId = null;
      return;
    case 'generation_log_channel':
      settings.generationLogChannelId = null;
      return;
    case 'nsfw_policy':
      settings.nsfwPolicy = defaults.nsfwPolicy;
      return;
    case 'exempt_moderators':
      settings.exemptModerators = defaults.exemptModerators;
      return;
    case 'image_check':
      settings.imageCheck = null;
      return;
    case 'log_flagged_images':
      settings.logFlaggedImages = defaults.logFlaggedImages;
      return;
    case 'flag_limit':
      settings.flagLimit = defaults.flagLimit;
      return;
    case 'allow_private':
      settings.allowPrivate = defaults.allowPrivate;
      return;
    case 'gallery_channel':
      settings.galleryChannelId = null;
      return;
    case 'gallery_stars':
      settings.galleryStars = defaults.galleryStars;
      return;
    case 'language':
      settings.language = defaults.language;
      return;
  }
}
