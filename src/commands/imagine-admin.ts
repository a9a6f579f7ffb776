import {
  ApplicationCommandOptionType,
  ApplicationIntegrationType,
  ChannelType,
  InteractionContextType,
  MessageFlags,
  PermissionFlagsBits,
  PermissionsBitField,
  GuildMember,
  escapeMarkdown,
  type APIApplicationCommandBasicOption,
  type APIApplicationCommandOptionChoice,
  type ChatInputCommandInteraction,
  type CommandInteractionOption,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { z } from 'zod';
import type { Clock } from '../clock.js';
import { memberContextOf } from './member-context.js';
import { UserFacingError } from '../errors.js';
import type { AuditLog } from '../services/usage/audit-log.js';
import {
  DEFAULT_NSFW_WORDS,
  NSFW_POLICIES,
  newGuildSettings,
  type GuildSettings,
  type GuildSettingsRepository,
} from '../services/usage/guild-settings.js';
import type { PromptHistory } from '../services/results/prompt-history.js';
import { dayOf, type QuotaStore } from '../services/storage/quota/quota-store.js';
import type { MemberContext, RefusalReason, UsagePolicy } from '../services/usage/usage-policy.js';
import { compileRule, findBrokenRule } from '../services/usage/word-filter.js';
import type { SlashCommand } from './types.js';

// ---------------------------------------------------------------------------------------------------------------------
// Limits: Discord caps a reply at 2000 characters; the lists below are capped so a settings record stays small.

const MAX_REPLY = 2000;
const MAX_CREDITS = 100_000;
const MAX_COOLDOWN_SECONDS = 86_400;
const MAX_SERVER_CAP = 10_000_000;
const MAX_ALLOWED_CHANNELS = 50;
const MAX_ROLE_OVERRIDES = 50;
const MAX_MEMBER_ALLOWANCES = 1_000;
const MAX_WORDS_PER_LIST = 500;
const MAX_PHRASE_LENGTH = 100;
const MAX_REASON_LENGTH = 500;
const MAX_TEST_PROMPT_LENGTH = 2000;
const USAGE_DAYS = 7;
const TOP_USERS = 5;

/** Channels a log line can be posted to. */
const LOG_CHANNEL_TYPES = [ChannelType.GuildText, ChannelType.GuildAnnouncement] as const;
/** Channels `/imagine` can be used in (voice channels have a text chat). */
const IMAGINE_CHANNEL_TYPES = [ChannelType.GuildText, ChannelType.GuildAnnouncement, ChannelType.GuildVoice] as const;

const SETTING_NAMES = [
  'daily_credits',
  'cooldown_seconds',
  'server_daily_cap',
  'max_samples',
  'max_steps',
  'moderator_role',
  'log_channel',
  'nsfw_policy',
  'exempt_moderators',
] as const;
type SettingName = (typeof SETTING_NAMES)[number];

const WORD_LISTS = ['banned', 'nsfw'] as const;
type WordList = (typeof WORD_LISTS)[number];

// ---------------------------------------------------------------------------------------------------------------------
// Definition

type BasicOption = APIApplicationCommandBasicOption;
const choicesOf = (values: readonly string[]): APIApplicationCommandOptionChoice<string>[] =>
  values.map((value) => ({ name: value, value }));

const member = (description = 'The member'): BasicOption => ({
  type: ApplicationCommandOptionType.User,
  name: 'member',
  description,
  required: true,
});
const role = (): BasicOption => ({ type: ApplicationCommandOptionType.Role, name: 'role', description: 'The role', required: true });
const count = (name: string, description: string, min: number, max: number, required = false): BasicOption => ({
  type: ApplicationCommandOptionType.Integer,
  name,
  description,
  min_value: min,
  max_value: max,
  required,
});
const text = (name: string, description: string, maxLength: number, required = false): BasicOption => ({
  type: ApplicationCommandOptionType.String,
  name,
  description,
  min_length: 1,
  max_length: maxLength,
  required,
});
const wordList = (): BasicOption => ({
  type: ApplicationCommandOptionType.String,
  name: 'list',
  description: 'Which word list',
  choices: choicesOf(WORD_LISTS),
  required: true,
});
const reason = (description: string) => text('reason', description, MAX_REASON_LENGTH);

function subcommand<const N extends string>(name: N, description: string, options: BasicOption[] = []) {
  return { type: ApplicationCommandOptionType.Subcommand, name, description, options } as const;
}
function group<const N extends string, const S extends ReturnType<typeof subcommand>[]>(name: N, description: string, subcommands: S) {
  return { type: ApplicationCommandOptionType.SubcommandGroup, name, description, options: subcommands } as const;
}

export const definition = {
  name: 'imagine-admin',
  description: 'Moderator controls for /imagine in this server',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
  default_member_permissions: PermissionFlagsBits.ManageGuild.toString(),
  options: [
    group('settings', 'Server settings for /imagine', [
      subcommand('view', 'Show every setting that applies here'),
      subcommand('set', 'Change one or more settings', [
        count('daily_credits', 'Images per member per UTC day', 0, MAX_CREDITS),
        count('cooldown_seconds', 'Seconds between two requests of a member', 0, MAX_COOLDOWN_SECONDS),
        count('server_daily_cap', 'Images the whole server may make per UTC day (0 = no cap)', 0, MAX_SERVER_CAP),
        count('max_samples', 'Most images per request', 1, 4),
        count('max_steps', 'Most denoising steps per image', 1, 50),
        { type: ApplicationCommandOptionType.Role, name: 'moderator_role', description: 'Role that may use /imagine-admin' },
        {
          type: ApplicationCommandOptionType.Channel,
          name: 'log_channel',
          description: 'Channel where moderator actions are posted',
          channel_types: [...LOG_CHANNEL_TYPES],
        },
        {
          type: ApplicationCommandOptionType.String,
          name: 'nsfw_policy',
          description: 'NSFW prompts: off, or only in age-restricted channels',
          choices: choicesOf(NSFW_POLICIES),
        },
        { type: ApplicationCommandOptionType.Boolean, name: 'exempt_moderators', description: 'Moderators skip the cooldown' },
      ]),
      subcommand('reset', 'Put one setting back to the bot default', [
        { type: ApplicationCommandOptionType.String, name: 'setting', description: 'Which setting', choices: choicesOf(SETTING_NAMES), required: true },
      ]),
    ]),
    group('credits', 'Credits of one member', [
      subcommand('give', 'Give bonus credits (they never expire)', [member(), count('amount', 'Credits to give', 1, MAX_CREDITS, true)]),
      subcommand('take', 'Take bonus credits away', [member(), count('amount', 'Credits to take', 1, MAX_CREDITS, true)]),
      subcommand('reset', "Clear today's usage and the cooldown", [member()]),
      subcommand('allowance', 'Set a personal daily allowance', [member(), count('amount', 'Credits per UTC day', 0, MAX_CREDITS, true)]),
      subcommand('clear-allowance', 'Remove a personal daily allowance', [member()]),
    ]),
    group('role', 'Allowances for members with a role', [
      subcommand('set', 'Set the allowance and/or cooldown for a role', [
        role(),
        count('daily_credits', 'Images per member per UTC day', 0, MAX_CREDITS),
        count('cooldown_seconds', 'Seconds between two requests', 0, MAX_COOLDOWN_SECONDS),
      ]),
      subcommand('clear', 'Remove the override of a role', [role()]),
      subcommand('list', 'Show the role overrides'),
    ]),
    group('block', 'Members who may not use /imagine', [
      subcommand('add', 'Block a member', [member(), reason('Shown to the member')]),
      subcommand('remove', 'Unblock a member', [member()]),
      subcommand('list', 'Show blocked members'),
    ]),
    group('channels', 'Channels where /imagine works (none listed = everywhere)', [
      subcommand('add', 'Allow /imagine in a channel', [
        { type: ApplicationCommandOptionType.Channel, name: 'channel', description: 'The channel', channel_types: [...IMAGINE_CHANNEL_TYPES], required: true },
      ]),
      subcommand('remove', 'Remove a channel from the list', [
        { type: ApplicationCommandOptionType.Channel, name: 'channel', description: 'The channel', required: true },
      ]),
      subcommand('list', 'Show the allowed channels'),
      subcommand('clear', 'Allow /imagine everywhere again'),
    ]),
    group('words', 'Banned and NSFW word lists', [
      subcommand('add', 'Add a word or phrase (end with * for a prefix)', [
        text('phrase', 'Word or phrase', MAX_PHRASE_LENGTH, true),
        wordList(),
      ]),
      subcommand('remove', 'Remove a word or phrase', [text('phrase', 'Word or phrase', MAX_PHRASE_LENGTH, true), wordList()]),
      subcommand('list', 'Show a word list', [wordList()]),
      subcommand('test', 'Check a prompt against the word lists', [text('prompt', 'The prompt', MAX_TEST_PROMPT_LENGTH, true)]),
      subcommand('reset', 'Restore a list (banned: empty, nsfw: built-in)', [wordList()]),
    ]),
    subcommand('pause', 'Pause /imagine for everyone in this server', [reason('Shown to members')]),
    subcommand('resume', 'Resume /imagine'),
    subcommand('usage', 'Server usage, or one member’s credits and prompts', [
      { type: ApplicationCommandOptionType.User, name: 'member', description: 'The member (default: whole server)' },
    ]),
    subcommand('audit', 'Recent moderator actions', [count('count', 'How many (default 10)', 1, 25)]),
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

type TopOption = (typeof definition.options)[number];
/** `group/subcommand` or `subcommand`, derived from the definition so the handler table must cover every one. */
export type AdminPath = TopOption extends infer O
  ? O extends { type: ApplicationCommandOptionType.SubcommandGroup; name: infer G extends string; options: readonly { name: infer N extends string }[] }
    ? `${G}/${N}`
    : O extends { type: ApplicationCommandOptionType.Subcommand; name: infer N extends string }
      ? N
      : never
  : never;

// ---------------------------------------------------------------------------------------------------------------------
// Option schemas (validated again: Discord's client enforces the declared limits, its server does not)

const snowflake = z.string({ error: 'is required' }).regex(/^\d{17,20}$/, 'must be a Discord id');
const integer = (min: number, max: number) => {
  const range = `must be between ${min} and ${max}`;
  return z.number({ error: 'must be a number' }).int('must be a whole number').min(min, range).max(max, range);
};
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
const line = (max: number) =>
  z
    .string({ error: 'must be text' })
    .trim()
    .min(1, 'is empty')
    .max(max, `is longer than ${max} characters`)
    .refine((value) => !CONTROL_CHARACTERS.test(value), 'contains control characters (line breaks, tabs…)');
const none = z.object({});
const memberOnly = z.object({ member: snowflake });
const memberAmount = z.object({ member: snowflake, amount: integer(1, MAX_CREDITS) });
const roleOnly = z.object({ role: snowflake });
const listOnly = z.object({ list: z.enum(WORD_LISTS, { error: 'must be banned or nsfw' }) });
const phraseInList = z.object({ phrase: line(MAX_PHRASE_LENGTH), list: listOnly.shape.list });
const optionalReason = z.object({ reason: line(MAX_REASON_LENGTH).optional() });

const settingsSetSchema = z.object({
  daily_credits: integer(0, MAX_CREDITS).optional(),
  cooldown_seconds: integer(0, MAX_COOLDOWN_SECONDS).optional(),
  server_daily_cap: integer(0, MAX_SERVER_CAP).optional(),
  max_samples: integer(1, 4).optional(),
  max_steps: integer(1, 50).optional(),
  moderator_role: snowflake.optional(),
  log_channel: snowflake.optional(),
  nsfw_policy: z.enum(NSFW_POLICIES, { error: `must be one of ${NSFW_POLICIES.join(', ')}` }).optional(),
  exempt_moderators: z.boolean({ error: 'must be true or false' }).optional(),
});
type SettingsChange = z.output<typeof settingsSetSchema>;

// ---------------------------------------------------------------------------------------------------------------------
// Formatting

const user = (id: string) => `<@${id}>`;
const roleMention = (id: string) => `<@&${id}>`;
const channel = (id: string) => `<#${id}>`;
const relative = (epochMs: number) => `<t:${Math.floor(epochMs / 1000)}:R>`;
const code = (value: string) => `\`${value.replace(/`/g, 'ˋ')}\``;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Joins as many items as fit in `budget` characters, then says how many were left out. */
export function fitList(items: readonly string[], separator: string, budget: number): string {
  let out = '';
  for (const [i, item] of items.entries()) {
    const next = out === '' ? item : `${out}${separator}${item}`;
    const rest = items.length - i - 1;
    const tail = rest > 0 ? `${separator}… and ${rest} more` : '';
    if (next.length + tail.length > budget) return `${out}${separator}… and ${items.length - i} more`;
    out = next;
  }
  return out;
}

/** Never more than Discord's 2000 characters. */
export function fitReply(content: string): string {
  return content.length <= MAX_REPLY ? content : `${content.slice(0, MAX_REPLY - 1)}…`;
}

function truncate(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

const REFUSAL_LABELS: Record<RefusalReason, string> = {
  paused: 'generation paused',
  blocked: 'blocked member',
  channel: 'channel not allowed',
  banned_word: 'banned word',
  nsfw: 'NSFW',
  limits: 'over server limits',
  cooldown: 'cooldown',
  allowance: 'out of credits',
  guild_cap: 'server budget used up',
  unavailable: 'storage unavailable',
  queue_full: 'too many waiting requests',
  restarting: 'bot restarting',
  segmind_down: 'Segmind outage',
  operator_pause: 'paused by operator',
};
const refusalLabel = (reason: string) => REFUSAL_LABELS[reason as RefusalReason] ?? reason;

// ---------------------------------------------------------------------------------------------------------------------
// Reading the chosen subcommand and its options

type Interaction = ChatInputCommandInteraction<'cached' | 'raw'>;

/** Walks group → subcommand in the options Discord sent; returns `group/sub` (or `sub`) and the leaf options. */
export function selectedSubcommand(data: readonly CommandInteractionOption[]): {
  path: string;
  options: readonly CommandInteractionOption[];
} {
  const first = data[0];
  if (first?.type === ApplicationCommandOptionType.SubcommandGroup) {
    const sub = first.options?.[0];
    if (sub?.type === ApplicationCommandOptionType.Subcommand) return { path: `${first.name}/${sub.name}`, options: sub.options ?? [] };
  } else if (first?.type === ApplicationCommandOptionType.Subcommand) {
    return { path: first.name, options: first.options ?? [] };
  }
  throw new UserFacingError('Pick one of the `/imagine-admin` subcommands.', 'invalid_options');
}

/** Like parseOptions, for a subcommand's options. */
export function parseSubcommandOptions<S extends z.ZodType>(schema: S, options: readonly CommandInteractionOption[]): z.output<S> {
  const raw = Object.fromEntries(options.map((option) => [option.name, option.value]));
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.');
    return name ? `• \`${name}\`: ${issue.message}` : `• ${issue.message}`;
  });
  throw new UserFacingError(`Some options are not valid:\n${lines.join('\n')}`, 'invalid_options');
}

/** Discord's client only offers the declared channel types; check again when the resolved channel is known. */
function requireChannelType(options: readonly CommandInteractionOption[], name: string, allowed: readonly ChannelType[]): void {
  const resolved = options.find((option) => option.name === name)?.channel;
  if (resolved && !allowed.includes(resolved.type)) throw new UserFacingError(`${channel(resolved.id)} is not a channel this can use.`, 'invalid_options');
}

// ---------------------------------------------------------------------------------------------------------------------
// Handlers

export interface AdminDeps {
  settings: GuildSettingsRepository;
  audit: AuditLog;
  history: PromptHistory;
  quota: QuotaStore;
  policy: UsagePolicy;
  clock: Clock;
}

interface AdminContext {
  interaction: Interaction;
  guildId: string;
  actorId: string;
  /** As read when the moderator was authorised; changes re-read them under the store's lock. */
  settings: GuildSettings;
  options: readonly CommandInteractionOption[];
}

export interface AdminHandler {
  readonly schema: z.ZodObject;
  run(context: AdminContext, options: unknown): Promise<string>;
}

function handler<S extends z.ZodObject>(schema: S, run: (context: AdminContext, options: z.output<S>) => Promise<string>): AdminHandler {
  return { schema, run: (context, options) => run(context, options as z.output<S>) };
}

/** No member: what applies to anyone without roles or a personal allowance. */
const ANYONE = { userId: '0', roleIds: [], canManageGuild: false } as const;

export function createAdminHandlers(deps: AdminDeps): Record<AdminPath, AdminHandler> {
  const { settings: repository, audit, history, quota, policy, clock } = deps;

  /**
   * Every change: under the settings lock, then into the audit log and the log channel (the old one when the change
   * removed it, so turning logging off is logged too).
   */
  async function change(context: AdminContext, action: string, mutate: (settings: GuildSettings) => string): Promise<string> {
    let details = '';
    let previousLogChannel: string | null = null;
    const updated = await repository.update(context.guildId, (settings) => {
      previousLogChannel = settings.logChannelId;
      details = mutate(settings);
    });
    await audit.record(context.guildId, updated.logChannelId ?? previousLogChannel, { actorId: context.actorId, action, details });
    return details;
  }
  async function record(context: AdminContext, action: string, details: string): Promise<void> {
    await audit.record(context.guildId, context.settings.logChannelId, { actorId: context.actorId, action, details });
  }
  const effective = (settings: GuildSettings) => policy.limitsFor(ANYONE, settings);
  const botDefaults = () => policy.limitsFor(ANYONE, newGuildSettings());

  return {
    'settings/view': handler(none, ({ settings }) => Promise.resolve(describeSettings(settings, effective(settings), botDefaults()))),

    'settings/set': handler(settingsSetSchema, async (context, options) => {
      if (Object.values(options).every((value) => value === undefined))
        throw new UserFacingError('Give at least one setting to change.', 'invalid_options');
      if (options.moderator_role === context.guildId)
        throw new UserFacingError('@everyone cannot be the moderator role: pick a role only moderators have.', 'invalid_options');
      requireChannelType(context.options, 'log_channel', LOG_CHANNEL_TYPES);
      const details = await change(context, 'changed settings', (settings) => applySettings(settings, options));
      return `✅ Changed ${details}.`;
    }),

    'settings/reset': handler(z.object({ setting: z.enum(SETTING_NAMES, { error: 'is not a setting' }) }), async (context, { setting }) => {
      const details = await change(context, 'reset a setting', (settings) => {
        resetSetting(settings, setting);
        return `${code(setting)} to the bot default`;
      });
      const now = effective(await repository.get(context.guildId));
      return `✅ Reset ${details}.${setting in SHOWN ? ` It is now ${SHOWN[setting as keyof typeof SHOWN](now)}.` : ''}`;
    }),

    'credits/give': handler(memberAmount, async (context, { member, amount }) => {
      const balance = await quota.adjustBonus(context.guildId, member, amount);
      await record(context, 'gave bonus credits', `${user(member)} +${amount} (bonus now ${balance})`);
      return `✅ Gave ${user(member)} ${plural(amount, 'bonus credit')}. Their bonus balance is now **${balance}**.`;
    }),

    'credits/take': handler(memberAmount, async (context, { member, amount }) => {
      const balance = await quota.adjustBonus(context.guildId, member, -amount);
      await record(context, 'took bonus credits', `${user(member)} −${amount} (bonus now ${balance})`);
      return `✅ Took up to ${plural(amount, 'bonus credit')} from ${user(member)}. Their bonus balance is now **${balance}**.`;
    }),

    'credits/reset': handler(memberOnly, async (context, { member }) => {
      await quota.resetUser(context.guildId, member, clock.now());
      await record(context, "reset a member's usage", `${user(member)}: today's usage and cooldown cleared`);
      return `✅ Cleared today's usage and the cooldown of ${user(member)}.`;
    }),

    'credits/allowance': handler(
      z.object({ member: snowflake, amount: integer(0, MAX_CREDITS) }),
      async (context, { member, amount }) => {
        await change(context, 'set a personal allowance', (settings) => {
          if (!(member in settings.memberAllowances) && Object.keys(settings.memberAllowances).length >= MAX_MEMBER_ALLOWANCES)
            throw new UserFacingError(`At most ${MAX_MEMBER_ALLOWANCES} members can have a personal allowance.`);
          settings.memberAllowances = { ...settings.memberAllowances, [member]: amount };
          return `${user(member)}: ${plural(amount, 'credit')} per day`;
        });
        return `✅ ${user(member)} now has a personal allowance of **${amount}** per UTC day (it replaces role and server allowances).`;
      },
    ),

    'credits/clear-allowance': handler(memberOnly, async (context, { member }) => {
      await change(context, 'cleared a personal allowance', (settings) => {
        if (!(member in settings.memberAllowances)) throw new UserFacingError(`${user(member)} has no personal allowance.`);
        settings.memberAllowances = without(settings.memberAllowances, member);
        return user(member);
      });
      return `✅ ${user(member)} follows the role and server allowances again.`;
    }),

    'role/set': handler(
      z.object({
        role: snowflake,
        daily_credits: integer(0, MAX_CREDITS).optional(),
        cooldown_seconds: integer(0, MAX_COOLDOWN_SECONDS).optional(),
      }),
      async (context, options) => {
        if (options.daily_credits === undefined && options.cooldown_seconds === undefined)
          throw new UserFacingError('Give `daily_credits` and/or `cooldown_seconds` for the role.', 'invalid_options');
        if (options.role === context.guildId)
          throw new UserFacingError('For everyone, use `/imagine-admin settings set` instead of a role override.', 'invalid_options');
        const details = await change(context, 'set a role override', (settings) => {
          const current = settings.roleOverrides[options.role];
          if (!current && Object.keys(settings.roleOverrides).length >= MAX_ROLE_OVERRIDES)
            throw new UserFacingError(`At most ${MAX_ROLE_OVERRIDES} roles can have an override.`);
          const next = {
            dailyCredits: options.daily_credits ?? current?.dailyCredits ?? null,
            cooldownSeconds: options.cooldown_seconds ?? current?.cooldownSeconds ?? null,
          };
          settings.roleOverrides = { ...settings.roleOverrides, [options.role]: next };
          return `${roleMention(options.role)}: ${describeOverride(next)}`;
        });
        return `✅ ${details}. Members with several roles get the most generous allowance and the shortest cooldown; a personal allowance wins over roles.`;
      },
    ),

    'role/clear': handler(roleOnly, async (context, { role }) => {
      await change(context, 'cleared a role override', (settings) => {
        if (!(role in settings.roleOverrides)) throw new UserFacingError(`${roleMention(role)} has no override.`);
        settings.roleOverrides = without(settings.roleOverrides, role);
        return roleMention(role);
      });
      return `✅ ${roleMention(role)} follows the server settings again.`;
    }),

    'role/list': handler(none, ({ settings }) => {
      const entries = Object.entries(settings.roleOverrides);
      if (entries.length === 0) return Promise.resolve('No role overrides: every role follows the server settings.');
      const lines = entries.map(([id, override]) => `• ${roleMention(id)}: ${describeOverride(override)}`);
      return Promise.resolve(`**Role overrides** (${entries.length})\n${fitList(lines, '\n', 1900)}`);
    }),

    'block/add': handler(memberOnly.extend(optionalReason.shape), async (context, { member, reason }) => {
      if (member === context.actorId) throw new UserFacingError('You cannot block yourself.');
      await change(context, 'blocked a member', (settings) => {
        settings.blocked = { ...settings.blocked, [member]: { by: context.actorId, at: clock.now(), reason: reason ?? '' } };
        return reason ? `${user(member)} — ${reason}` : user(member);
      });
      return `✅ Blocked ${user(member)} from \`/imagine\` in this server.${reason ? ` They will see: “${reason}”.` : ''}`;
    }),

    'block/remove': handler(memberOnly, async (context, { member }) => {
      await change(context, 'unblocked a member', (settings) => {
        if (!(member in settings.blocked)) throw new UserFacingError(`${user(member)} is not blocked.`);
        settings.blocked = without(settings.blocked, member);
        return user(member);
      });
      return `✅ ${user(member)} can use \`/imagine\` again.`;
    }),

    'block/list': handler(none, ({ settings }) => {
      const entries = Object.entries(settings.blocked).sort(([, a], [, b]) => b.at - a.at);
      if (entries.length === 0) return Promise.resolve('Nobody is blocked.');
      const lines = entries.map(
        ([id, block]) => `• ${user(id)} by ${user(block.by)} ${relative(block.at)}${block.reason ? ` — ${escapeMarkdown(block.reason)}` : ''}`,
      );
      return Promise.resolve(`**Blocked members** (${entries.length})\n${fitList(lines, '\n', 1900)}`);
    }),

    'channels/add': handler(z.object({ channel: snowflake }), async (context, { channel: id }) => {
      requireChannelType(context.options, 'channel', IMAGINE_CHANNEL_TYPES);
      const details = await change(context, 'allowed a channel', (settings) => {
        if (settings.allowedChannels.includes(id)) throw new UserFacingError(`${channel(id)} is already allowed.`);
        if (settings.allowedChannels.length >= MAX_ALLOWED_CHANNELS)
          throw new UserFacingError(`At most ${MAX_ALLOWED_CHANNELS} channels can be listed.`);
        settings.allowedChannels = [...settings.allowedChannels, id];
        return `${channel(id)} (now ${plural(settings.allowedChannels.length, 'channel')})`;
      });
      return `✅ \`/imagine\` is allowed in ${details}; everywhere else it is refused.`;
    }),

    'channels/remove': handler(z.object({ channel: snowflake }), async (context, { channel: id }) => {
      let left = 0;
      await change(context, 'removed an allowed channel', (settings) => {
        if (!settings.allowedChannels.includes(id)) throw new UserFacingError(`${channel(id)} is not in the list.`);
        settings.allowedChannels = settings.allowedChannels.filter((c) => c !== id);
        left = settings.allowedChannels.length;
        return channel(id);
      });
      return `✅ Removed ${channel(id)}.${left === 0 ? ' No channel is listed any more: `/imagine` works everywhere.' : ''}`;
    }),

    'channels/list': handler(none, ({ settings }) =>
      Promise.resolve(
        settings.allowedChannels.length === 0
          ? '`/imagine` works in every channel (no list set).'
          : `\`/imagine\` works only in: ${fitList(settings.allowedChannels.map(channel), ', ', 1900)}`,
      ),
    ),

    'channels/clear': handler(none, async (context) => {
      await change(context, 'cleared the allowed channels', (settings) => {
        if (settings.allowedChannels.length === 0) throw new UserFacingError('No channel is listed: `/imagine` already works everywhere.');
        const cleared = settings.allowedChannels.length;
        settings.allowedChannels = [];
        return plural(cleared, 'channel');
      });
      return '✅ `/imagine` works in every channel again.';
    }),

    'words/add': handler(phraseInList, async (context, { phrase, list }) => {
      if (compileRule(phrase) === undefined) throw new UserFacingError(`${code(phrase)} has no letters or digits to match.`, 'invalid_options');
      await change(context, `added to the ${list} words`, (settings) => {
        const words = wordsOf(settings, list);
        if (words.some((w) => w.toLowerCase() === phrase.toLowerCase())) throw new UserFacingError(`${code(phrase)} is already in the ${list} list.`);
        if (words.length >= MAX_WORDS_PER_LIST) throw new UserFacingError(`The ${list} list is full (${MAX_WORDS_PER_LIST}).`);
        setWords(settings, list, [...words, phrase]);
        return code(phrase);
      });
      return `✅ Added ${code(phrase)} to the ${list} list. Disguises like \`${disguise(phrase)}\` are caught too.`;
    }),

    'words/remove': handler(phraseInList, async (context, { phrase, list }) => {
      await change(context, `removed from the ${list} words`, (settings) => {
        const words = wordsOf(settings, list);
        const index = words.findIndex((w) => w.toLowerCase() === phrase.toLowerCase());
        if (index < 0) throw new UserFacingError(`${code(phrase)} is not in the ${list} list.`);
        setWords(settings, list, words.filter((_, i) => i !== index));
        return code(phrase);
      });
      return `✅ Removed ${code(phrase)} from the ${list} list.`;
    }),

    'words/list': handler(listOnly, ({ settings }, { list }) => {
      const words = wordsOf(settings, list);
      const title = list === 'banned' ? 'Banned words (refused everywhere)' : `NSFW words (${describeNsfwPolicy(settings)})`;
      return Promise.resolve(words.length === 0 ? `**${title}**: none.` : `**${title}** (${words.length})\n${fitList(words.map(code), ', ', 1850)}`);
    }),

    'words/test': handler(z.object({ prompt: line(MAX_TEST_PROMPT_LENGTH) }), ({ settings }, { prompt }) =>
      Promise.resolve(describeWordTest(prompt, settings)),
    ),

    'words/reset': handler(listOnly, async (context, { list }) => {
      await change(context, `reset the ${list} words`, (settings) => {
        if (list === 'banned') settings.bannedWords = [];
        else settings.nsfwWords = [...DEFAULT_NSFW_WORDS];
        return list === 'banned' ? 'emptied' : `back to the ${DEFAULT_NSFW_WORDS.length} built-in words`;
      });
      return list === 'banned' ? '✅ The banned list is empty.' : `✅ The NSFW list is back to its ${DEFAULT_NSFW_WORDS.length} built-in words.`;
    }),

    pause: handler(optionalReason, async (context, { reason }) => {
      await change(context, 'paused /imagine', (settings) => {
        settings.paused = { by: context.actorId, at: clock.now(), reason: reason ?? '' };
        return reason ?? 'no reason given';
      });
      return `⏸️ \`/imagine\` is paused in this server.${reason ? ` Members will see: “${reason}”.` : ''} Use \`/imagine-admin resume\` to resume.`;
    }),

    resume: handler(none, async (context) => {
      await change(context, 'resumed /imagine', (settings) => {
        if (!settings.paused) throw new UserFacingError('`/imagine` is not paused.');
        const since = settings.paused.at;
        settings.paused = null;
        return `paused since ${relative(since)}`;
      });
      return '▶️ `/imagine` works again in this server.';
    }),

    usage: handler(z.object({ member: snowflake.optional() }), (context, { member }) =>
      member === undefined ? serverUsage(context) : memberUsage(context, member),
    ),

    audit: handler(z.object({ count: integer(1, 25).optional() }), async (context, options) => {
      const entries = (await audit.list(context.guildId)).slice(0, options.count ?? 10);
      if (entries.length === 0) return 'No moderator actions recorded yet.';
      const lines = entries.map((e) => `• ${relative(e.at)} ${user(e.actorId)} ${e.action}: ${e.details}`);
      return `**Recent moderator actions** (newest first)\n${fitList(lines, '\n', 1900)}`;
    }),
  };

  async function serverUsage({ guildId, settings }: AdminContext): Promise<string> {
    const now = clock.now();
    const today = dayOf(now);
    const days = Array.from({ length: USAGE_DAYS }, (_, i) => today - i);
    const [perDay, usedToday] = await Promise.all([Promise.all(days.map((day) => quota.stats(guildId, day))), quota.guildUsage(guildId, now)]);
    const totals = new Map<string, number>();
    for (const stats of perDay) for (const [key, value] of Object.entries(stats)) totals.set(key, (totals.get(key) ?? 0) + value);
    const withPrefix = (prefix: string) =>
      [...totals]
        .filter(([key, value]) => key.startsWith(prefix) && value > 0)
        .map(([key, value]) => [key.slice(prefix.length), value] as const)
        .sort((a, b) => b[1] - a[1]);
    const top = withPrefix('user:').slice(0, TOP_USERS);
    const refused = withPrefix('refused:');
    const cap = effective(settings).guildDailyCap;

    const lines = [
      `**/imagine usage in this server** (UTC days)`,
      `Images today: **${perDay[0]?.images ?? 0}** · last ${USAGE_DAYS} days: **${totals.get('images') ?? 0}**`,
      `Per day, newest first: ${perDay.map((stats) => stats.images ?? 0).join(' · ')}`,
      `Server budget today: ${cap > 0 ? `**${usedToday}** of ${cap} credits used` : `**${usedToday}** credits used (no cap)`}`,
      `Credits refunded (${USAGE_DAYS} days): **${totals.get('refunded') ?? 0}**`,
      `Top members (${USAGE_DAYS} days): ${top.length === 0 ? 'none' : top.map(([id, n]) => `${user(id)} ${n}`).join(' · ')}`,
      `Refused requests (${USAGE_DAYS} days): ${
        refused.length === 0 ? 'none' : `**${refused.reduce((t, [, n]) => t + n, 0)}**\n${refused.map(([reason, n]) => `• ${refusalLabel(reason)}: ${n}`).join('\n')}`
      }`,
    ];
    return lines.join('\n');
  }

  async function memberUsage(context: AdminContext, memberId: string): Promise<string> {
    const { guildId, settings } = context;
    const target = targetMemberContext(context, memberId);
    const [view, entries] = await Promise.all([policy.usageView(target), history.list(guildId, memberId)]);
    const lines = [
      `**/imagine usage of ${user(memberId)}**`,
      `Today: **${view.remainingToday}** of ${view.allowance} credits left — resets ${relative(view.resetsAt)}`,
      `Allowance: ${view.allowance} per UTC day (${allowanceSource(settings, memberId, target.roleIds)})`,
      `Bonus: **${view.bonus}**`,
      `Cooldown: ${view.cooldownUntil === undefined ? 'none' : `ends ${relative(view.cooldownUntil)}`}`,
    ];
    const block = settings.blocked[memberId];
    if (block) lines.push(`⛔ Blocked by ${user(block.by)} ${relative(block.at)}${block.reason ? ` — ${escapeMarkdown(block.reason)}` : ''}`);
    if (!context.interaction.options.getMember('member'))
      lines.push('_Not a member of this server any more (or Discord did not send their roles): role overrides not shown._');
    const recent = [...entries].sort((a, b) => b.at - a.at);
    if (recent.length === 0) {
      lines.push('No prompts recorded.');
      return lines.join('\n');
    }
    lines.push(`**Recent prompts** (newest first)`);
    let content = lines.join('\n');
    for (const [i, entry] of recent.entries()) {
      const seeds = entry.seeds.map((seed) => code(String(seed))).join(', ');
      const next = `\n${relative(entry.at)} in ${channel(entry.channelId)} · seed${entry.seeds.length === 1 ? '' : 's'} ${seeds}\n> ${escapeMarkdown(truncate(entry.prompt, 200))}`;
      const more = `\n… and ${recent.length - i} more`;
      if (content.length + next.length + more.length > MAX_REPLY - 50) return content + more;
      content += next;
    }
    return content;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Pure helpers

function wordsOf(settings: GuildSettings, list: WordList): readonly string[] {
  return list === 'banned' ? settings.bannedWords : settings.nsfwWords;
}

// Changes replace lists and records instead of editing them in place: a fresh record's empty defaults may be shared.
function setWords(settings: GuildSettings, list: WordList, words: string[]): void {
  if (list === 'banned') settings.bannedWords = words;
  else settings.nsfwWords = words;
}

function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}

/** `nsfw` → `n.s.f.w`: shows moderators that the filter sees through separators. */
function disguise(phrase: string): string {
  const word = phrase.split(/\s+/)[0]?.replace(/\*$/, '') ?? phrase;
  return word.length > 1 && word.length <= 12 ? [...word].join('.') : word.toUpperCase();
}

function describeOverride(override: { dailyCredits: number | null; cooldownSeconds: number | null }): string {
  const parts = [
    override.dailyCredits === null ? 'server allowance' : `${plural(override.dailyCredits, 'credit')}/day`,
    override.cooldownSeconds === null ? 'server cooldown' : `cooldown ${override.cooldownSeconds} s`,
  ];
  return parts.join(', ');
}

function describeNsfwPolicy(settings: GuildSettings): string {
  return settings.nsfwPolicy === 'age_restricted' ? 'allowed only in age-restricted channels' : 'refused everywhere';
}

interface Limits {
  dailyCredits: number;
  cooldownSeconds: number;
  guildDailyCap: number;
  maxSamples: number;
  maxSteps: number;
}

/** How each numeric setting reads in a reply. */
const SHOWN = {
  daily_credits: (l: Limits) => `**${l.dailyCredits}** credits per member per UTC day`,
  cooldown_seconds: (l: Limits) => `**${l.cooldownSeconds} s** between requests`,
  server_daily_cap: (l: Limits) => (l.guildDailyCap > 0 ? `**${l.guildDailyCap}** images per UTC day for the server` : '**no server cap**'),
  max_samples: (l: Limits) => `at most **${l.maxSamples}** images per request`,
  max_steps: (l: Limits) => `at most **${l.maxSteps}** steps per image`,
} as const;

export function describeSettings(settings: GuildSettings, effective: Limits, defaults: Limits): string {
  const origin = (value: unknown, defaultText: string) => (value === null ? ' _(bot default)_' : ` _(server setting; bot default ${defaultText})_`);
  const lines = [
    '**/imagine settings in this server**',
    `Daily credits: ${SHOWN.daily_credits(effective)}${origin(settings.dailyCredits, String(defaults.dailyCredits))}`,
    `Cooldown: ${SHOWN.cooldown_seconds(effective)}${origin(settings.cooldownSeconds, `${defaults.cooldownSeconds} s`)}`,
    `Server cap: ${SHOWN.server_daily_cap(effective)}${origin(settings.guildDailyCap, defaults.guildDailyCap > 0 ? String(defaults.guildDailyCap) : 'no cap')}`,
    `Samples: ${SHOWN.max_samples(effective)}${origin(settings.maxSamples, String(defaults.maxSamples))}`,
    `Steps: ${SHOWN.max_steps(effective)}${origin(settings.maxSteps, String(defaults.maxSteps))}`,
    `Moderators: members with Manage Server${settings.moderatorRoleId ? ` and ${roleMention(settings.moderatorRoleId)}` : ' (no moderator role set)'}`,
    `Exempt from cooldown: ${settings.exemptModerators ? 'moderators' : 'nobody'}${settings.exemptModerators ? ' _(bot default)_' : ' _(server setting)_'}`,
    `Log channel: ${settings.logChannelId ? channel(settings.logChannelId) : 'none'}`,
    `NSFW prompts: ${describeNsfwPolicy(settings)}${settings.nsfwPolicy === 'off' ? ' _(bot default)_' : ' _(server setting)_'}`,
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
  if (change.nsfw_policy !== undefined) {
    settings.nsfwPolicy = change.nsfw_policy;
    note('nsfw_policy', change.nsfw_policy);
  }
  if (change.exempt_moderators !== undefined) {
    settings.exemptModerators = change.exempt_moderators;
    note('exempt_moderators', change.exempt_moderators ? 'yes' : 'no');
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
    case 'nsfw_policy':
      settings.nsfwPolicy = defaults.nsfwPolicy;
      return;
    case 'exempt_moderators':
      settings.exemptModerators = defaults.exemptModerators;
      return;
  }
}

export function describeWordTest(prompt: string, settings: GuildSettings): string {
  const banned = findBrokenRule(prompt, settings.bannedWords);
  const nsfw = findBrokenRule(prompt, settings.nsfwWords);
  const lines = [`**Word test** for “${escapeMarkdown(truncate(prompt, 300))}”`];
  lines.push(banned === undefined ? '• Banned list: no match' : `• Banned list: breaks ${code(banned)} → refused everywhere`);
  if (nsfw === undefined) lines.push('• NSFW list: no match');
  else
    lines.push(
      `• NSFW list: breaks ${code(nsfw)} → ${
        settings.nsfwPolicy === 'age_restricted' ? 'allowed only in age-restricted channels' : 'refused everywhere (NSFW policy is off)'
      }`,
    );
  const verdict =
    banned !== undefined
      ? '❌ This prompt would be refused everywhere.'
      : nsfw === undefined
        ? '✅ This prompt passes the word lists.'
        : settings.nsfwPolicy === 'age_restricted'
          ? '🔞 This prompt would be allowed only in age-restricted channels.'
          : '❌ This prompt would be refused everywhere.';
  lines.push(verdict);
  return lines.join('\n');
}

function allowanceSource(settings: GuildSettings, memberId: string, roleIds: readonly string[]): string {
  if (settings.memberAllowances[memberId] !== undefined) return 'personal allowance';
  const roles = roleIds.filter((id) => settings.roleOverrides[id]?.dailyCredits != null);
  if (roles.length > 0) return `role override: ${roles.map(roleMention).join(', ')}`;
  return settings.dailyCredits === null ? 'bot default' : 'server setting';
}

/** The member named in `member:` as the policy sees them: roles and permissions from what Discord resolved. */
function targetMemberContext(context: AdminContext, memberId: string): MemberContext {
  const resolved = context.interaction.options.getMember('member');
  let roleIds: string[] = [];
  let canManageGuild = false;
  if (resolved instanceof GuildMember) {
    roleIds = [...resolved.roles.cache.keys()];
    canManageGuild = resolved.permissions.has(PermissionFlagsBits.ManageGuild);
  } else if (resolved) {
    roleIds = resolved.roles;
    canManageGuild = new PermissionsBitField(BigInt(resolved.permissions)).has(PermissionFlagsBits.ManageGuild);
  }
  return {
    guildId: context.guildId,
    userId: memberId,
    channelId: context.interaction.channelId,
    parentChannelId: null,
    roleIds,
    canManageGuild,
    channelNsfw: false,
  };
}

// ---------------------------------------------------------------------------------------------------------------------

export function createImagineAdminCommand(deps: AdminDeps): SlashCommand {
  const handlers = new Map<string, AdminHandler>(Object.entries(createAdminHandlers(deps)));
  return {
    definition,
    async execute(interaction, log) {
      if (!interaction.inGuild()) throw new UserFacingError('`/imagine-admin` works in servers only.');
      // default_member_permissions only hides the command, and server admins can change who sees it: check again.
      const settings = await deps.settings.get(interaction.guildId);
      if (!deps.policy.isModerator(memberContextOf(interaction), settings))
        throw new UserFacingError('Only moderators can use /imagine-admin.', 'not_moderator');
      const { path, options } = selectedSubcommand(interaction.options.data);
      const selected = handlers.get(path);
      if (!selected) throw new UserFacingError('This subcommand is not available any more.', 'unknown_subcommand');
      const parsed = parseSubcommandOptions(selected.schema, options);
      // Storage reads and the log-channel post may take a moment: acknowledge inside Discord's 3 s first.
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      log.debug({ subcommand: path }, 'moderator command');
      const content = await selected.run({ interaction, guildId: interaction.guildId, actorId: interaction.user.id, settings, options }, parsed);
      await interaction.editReply({ content: fitReply(content), allowedMentions: { parse: [] } });
    },
  };
}
