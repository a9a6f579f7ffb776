/** `/imagine-admin settings view|set|reset`: the server's settings for /imagine. */
import { ApplicationCommandOptionType, ChannelType, DiscordAPIError, escapeMarkdown } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { IMAGE_CHECK_ACTIONS, NSFW_POLICIES, newGuildSettings, type EffectiveSettings, type GuildSettings, type ImageCheckAction } from '../../services/usage/guild-settings.js';
import { channel, code, describeNsfwPolicy, describeOverride, fitList, plural, relative, roleMention, user } from './format.js';
import { ANYONE, handler, type AdminDeps, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
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
});
type SettingsChange = z.output<typeof settingsSetSchema>;

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
        throw new UserFacingError(
          `The bot cannot post in ${channel(channelId)}, so nothing was changed. Give the bot **View Channel** and **Send Messages** there (Edit Channel → Permissions), then set it again.`,
          'log_channel_unusable',
        );
      throw new UserFacingError(`A test line could not be posted in ${channel(channelId)} just now, so nothing was changed. Try again in a minute.`, 'log_channel_unusable');
    }
  }
  const botDefaults = () => policy.limitsFor(ANYONE, newGuildSettings());

  return {
    'settings/view': handler(none, ({ settings }) =>
      Promise.resolve(describeSettings(settings, effective(settings), botDefaults(), policy.ceilings)),
    ),

    'settings/set': handler(settingsSetSchema, async (context, options) => {
      if (Object.values(options).every((value) => value === undefined))
        throw new UserFacingError('Give at least one setting to change.', 'invalid_options');
      if (options.moderator_role === context.guildId)
        throw new UserFacingError('@everyone cannot be the moderator role: pick a role only moderators have.', 'invalid_options');
      requireChannelType(context.options, 'log_channel', LOG_CHANNEL_TYPES);
      requireChannelType(context.options, 'generation_log_channel', LOG_CHANNEL_TYPES);
      requireChannelType(context.options, 'gallery_channel', LOG_CHANNEL_TYPES);
      requireUnderCeiling('daily_credits', options.daily_credits, 'dailyCredits');
      requireUnderCeiling('server_daily_cap', options.server_daily_cap, 'guildDailyCap');
      if (options.log_channel !== undefined)
        await postTestLine(
          options.log_channel,
          `🛠️ ${user(context.actorId)} made this the log channel of \`/imagine\`: moderator actions and members' reports are posted here.`,
        );
      if (options.generation_log_channel !== undefined)
        await postTestLine(
          options.generation_log_channel,
          `🛠️ ${user(context.actorId)} made this the generation log of \`/imagine\`: one line per image result is posted here (who, prompt, link).`,
        );
      if (options.gallery_channel !== undefined)
        await postTestLine(
          options.gallery_channel,
          `🛠️ ${user(context.actorId)} made this the gallery of \`/imagine\`: results members share with ⭐ are posted here.`,
        );
      const details = await change(context, 'changed settings', (settings) => applySettings(settings, options));
      const ceiling = policy.ceilings.guildDailyCap;
      // "No cap" cannot lift the operator's ceiling: say what applies instead.
      const notes = [
        options.server_daily_cap === 0 && ceiling > 0 ? ` The operator's ceiling of **${ceiling}** images per UTC day still applies.` : '',
        options.moderator_role !== undefined ? ` ${MODERATOR_ROLE_NOTE}` : '',
        options.log_channel !== undefined || options.generation_log_channel !== undefined || options.gallery_channel !== undefined ? ' A test line was posted there.' : '',
        options.gallery_stars !== undefined && options.gallery_stars > 0 && (options.gallery_channel ?? context.settings.galleryChannelId) === null
          ? ' The starboard starts once `gallery_channel` is set.'
          : '',
      ];
      return `✅ Changed ${details}.${notes.join('')}`;
    }),

    'settings/reset': handler(z.object({ setting: z.enum(SETTING_NAMES, { error: 'is not a setting' }) }), async (context, { setting }) => {
      const details = await change(context, 'reset a setting', (settings) => {
        resetSetting(settings, setting);
        return `${code(setting)} to the bot default`;
      });
      const now = effective(await repository.get(context.guildId));
      return `✅ Reset ${details}.${setting in SHOWN ? ` It is now ${SHOWN[setting as keyof typeof SHOWN](now)}.` : ''}`;
    }),
  };
}

/** What applies: the server's settings with the bot defaults filled in. */
type Limits = EffectiveSettings;

const IMAGE_CHECK_SHOWN: Record<ImageCheckAction, string> = {
  spoiler: '**spoiler** — flagged images are posted behind a spoiler',
  block: '**block** — flagged images are withheld (not charged)',
  off: '**off** — flagged images are posted as they are',
};

/** How each numeric setting reads in a reply. */
const SHOWN = {
  daily_credits: (l: Limits) => `**${l.dailyCredits}** credits per member per UTC day`,
  cooldown_seconds: (l: Limits) => `**${l.cooldownSeconds} s** between requests`,
  server_daily_cap: (l: Limits) => (l.guildDailyCap > 0 ? `**${l.guildDailyCap}** images per UTC day for the server` : '**no server cap**'),
  max_samples: (l: Limits) => `at most **${l.maxSamples}** images per request`,
  max_steps: (l: Limits) => `at most **${l.maxSteps}** steps per image`,
} as const;

/** Discord's own permission gate stays in front of the moderator role: say so wherever the role is set or shown. */
export const MODERATOR_ROLE_NOTE =
  'Discord still hides `/imagine-admin` from this role until a server admin allows it: Server Settings → Integrations → this bot → `/imagine-admin`, add the role.';

/** The operator's ceilings (0 = none), shown so moderators know what no setting of theirs can exceed. */
interface Ceilings {
  dailyCredits: number;
  guildDailyCap: number;
}

function describeCeilings({ dailyCredits, guildDailyCap }: Ceilings): string {
  const parts = [
    dailyCredits > 0 ? `**${dailyCredits}** credits per member per UTC day` : null,
    guildDailyCap > 0 ? `**${guildDailyCap}** images per UTC day for the server` : null,
  ].filter((part) => part !== null);
  return parts.length === 0 ? 'none' : `at most ${parts.join(' and ')}, whatever is set here`;
}

export function describeSettings(settings: GuildSettings, effective: Limits, defaults: Limits, ceilings: Ceilings = { dailyCredits: 0, guildDailyCap: 0 }): string {
  const origin = (value: unknown, defaultText: string) => (value === null ? ' _(bot default)_' : ` _(server setting; bot default ${defaultText})_`);
  const lines = [
    '**/imagine settings in this server**',
    `Daily credits: ${SHOWN.daily_credits(effective)}${origin(settings.dailyCredits, String(defaults.dailyCredits))}`,
    `Cooldown: ${SHOWN.cooldown_seconds(effective)}${origin(settings.cooldownSeconds, `${defaults.cooldownSeconds} s`)}`,
    `Server cap: ${SHOWN.server_daily_cap(effective)}${origin(settings.guildDailyCap, defaults.guildDailyCap > 0 ? String(defaults.guildDailyCap) : 'no cap')}`,
    `Operator's ceilings: ${describeCeilings(ceilings)}`,
    `Samples: ${SHOWN.max_samples(effective)}${origin(settings.maxSamples, String(defaults.maxSamples))}`,
    `Steps: ${SHOWN.max_steps(effective)}${origin(settings.maxSteps, String(defaults.maxSteps))}`,
    `Moderators: members with Manage Server${settings.moderatorRoleId ? ` and ${roleMention(settings.moderatorRoleId)} — ${MODERATOR_ROLE_NOTE}` : ' (no moderator role set)'}`,
    `Exempt from cooldown: ${settings.exemptModerators ? 'moderators' : 'nobody'}${settings.exemptModerators ? ' _(bot default)_' : ' _(server setting)_'}`,
    `Log channel: ${settings.logChannelId ? channel(settings.logChannelId) : 'none'}`,
    `Generation log: ${settings.generationLogChannelId ? `${channel(settings.generationLogChannelId)} (one line per image result)` : 'none'}`,
    `NSFW prompts: ${describeNsfwPolicy(settings)}${settings.nsfwPolicy === 'off' ? ' _(bot default)_' : ' _(server setting)_'}`,
    `Image check: ${IMAGE_CHECK_SHOWN[effective.imageCheck]}${origin(settings.imageCheck, defaults.imageCheck)}${
      settings.nsfwPolicy === 'age_restricted' ? '; in age-restricted channels, as they are' : ''
    }`,
    `Flagged images in the log channel: ${settings.logFlaggedImages ? 'reported with the image (as a spoiler)' : 'reported without the image'}${
      settings.logFlaggedImages ? ' _(server setting)_' : ' _(bot default)_'
    }`,
    `Flag limit: ${settings.flagLimit > 0 ? `blocked automatically at **${settings.flagLimit}** flagged ${settings.flagLimit === 1 ? 'image' : 'images'} per member per UTC day _(server setting)_` : 'none _(bot default)_'}`,
    `Private results: ${settings.allowPrivate ? 'allowed (`/imagine private:true`) _(server setting)_' : 'not allowed _(bot default)_'}`,
    `Gallery: ${settings.galleryChannelId ? `${channel(settings.galleryChannelId)} (⭐ Share)` : 'none'}`,
    `Starboard: ${settings.galleryStars > 0 ? `a result with **${settings.galleryStars}** ⭐ from other members is shared${settings.galleryChannelId ? '' : ' (once `gallery_channel` is set)'} _(server setting)_` : 'off _(bot default)_'}`,
    `Generation: ${
      settings.paused
        ? `⏸️ **paused** by ${user(settings.paused.by)} ${relative(settings.paused.at)}${settings.paused.reason ? ` — ${escapeMarkdown(settings.paused.reason)}` : ''}`
        : 'running'
    }`,
    `Allowed channels: ${settings.allowedChannels.length === 0 ? 'everywhere' : fitList(settings.allowedChannels.map(channel), ', ', 400)}`,
  ];
  const overrides = Object.entries(settings.roleOverrides);
  lines.push(
    `Role overrides: ${
      overrides.length === 0 ? 'none' : fitList(overrides.map(([id, o]) => `${roleMention(id)} ${describeOverride(o)}`), ' · ', 500)
    }`,
    `Personal allowances: ${plural(Object.keys(settings.memberAllowances).length, 'member')}`,
    `Word lists: ${plural(settings.bannedWords.length, 'banned word')}, ${plural(settings.nsfwWords.length, 'NSFW word')}`,
    `Blocked members: ${Object.keys(settings.blocked).length}`,
  );
  return lines.join('\n');
}

function applySettings(settings: GuildSettings, change: SettingsChange): string {
  const changed: string[] = [];
  const note = (name: SettingName, value: string) => changed.push(`${code(name)} → ${value}`);
  if (change.daily_credits !== undefined) {
    settings.dailyCredits = change.daily_credits;
    note('daily_credits', String(change.daily_credits));
  }
  if (change.cooldown_seconds !== undefined) {
    settings.cooldownSeconds = change.cooldown_seconds;
    note('cooldown_seconds', `${change.cooldown_seconds} s`);
  }
  if (change.server_daily_cap !== undefined) {
    settings.guildDailyCap = change.server_daily_cap;
    note('server_daily_cap', change.server_daily_cap === 0 ? 'no cap' : String(change.server_daily_cap));
  }
  if (change.max_samples !== undefined) {
    settings.maxSamples = change.max_samples;
    note('max_samples', String(change.max_samples));
  }
  if (change.max_steps !== undefined) {
    settings.maxSteps = change.max_steps;
    note('max_steps', String(change.max_steps));
  }
  if (change.moderator_role !== undefined) {
    settings.moderatorRoleId = change.moderator_role;
    note('moderator_role', roleMention(change.moderator_role));
  }
  if (change.log_channel !== undefined) {
    settings.logChannelId = change.log_channel;
    note('log_channel', channel(change.log_channel));
  }
  if (change.generation_log_channel !== undefined) {
    settings.generationLogChannelId = change.generation_log_channel;
    note('generation_log_channel', channel(change.generation_log_channel));
  }
  if (change.nsfw_policy !== undefined) {
    settings.nsfwPolicy = change.nsfw_policy;
    note('nsfw_policy', change.nsfw_policy);
  }
  if (change.exempt_moderators !== undefined) {
    settings.exemptModerators = change.exempt_moderators;
    note('exempt_moderators', change.exempt_moderators ? 'yes' : 'no');
  }
  if (change.image_check !== undefined) {
    settings.imageCheck = change.image_check;
    note('image_check', change.image_check);
  }
  if (change.log_flagged_images !== undefined) {
    settings.logFlaggedImages = change.log_flagged_images;
    note('log_flagged_images', change.log_flagged_images ? 'yes' : 'no');
  }
  if (change.flag_limit !== undefined) {
    settings.flagLimit = change.flag_limit;
    note('flag_limit', change.flag_limit === 0 ? 'none' : `${change.flag_limit} per member per UTC day`);
  }
  if (change.allow_private !== undefined) {
    settings.allowPrivate = change.allow_private;
    note('allow_private', change.allow_private ? 'yes' : 'no');
  }
  if (change.gallery_channel !== undefined) {
    settings.galleryChannelId = change.gallery_channel;
    note('gallery_channel', channel(change.gallery_channel));
  }
  if (change.gallery_stars !== undefined) {
    settings.galleryStars = change.gallery_stars;
    note('gallery_stars', change.gallery_stars === 0 ? 'off' : `${change.gallery_stars} ⭐`);
  }
  return changed.join(', ');
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
  }
}
