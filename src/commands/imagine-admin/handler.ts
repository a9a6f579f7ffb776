/**
 * What the router (index.ts) and every subject share: the services a handler may use, what it is given when it runs,
 * and `change`/`record`, the two ways a moderator action reaches the settings and the audit log.
 */
import type {
  ApplicationCommandOptionType,
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  CommandInteractionOption,
} from 'discord.js';
import type { z } from 'zod';
import type { Clock } from '../../clock.js';
import { UserFacingError } from '../../errors.js';
import type { AuditLog } from '../../services/usage/audit-log.js';
import type { GuildSettings, GuildSettingsRepository } from '../../services/usage/guild-settings.js';
import type { PromptHistory } from '../../services/results/prompt-history.js';
import type { QuotaStore } from '../../services/storage/quota/quota-store.js';
import type { UsagePolicy } from '../../services/usage/usage-policy.js';
import type { StyleStore } from '../../services/creative/style-store.js';

type Interaction = ChatInputCommandInteraction<'cached' | 'raw'>;

export interface AdminDeps {
  settings: GuildSettingsRepository;
  audit: AuditLog;
  history: PromptHistory;
  quota: QuotaStore;
  policy: UsagePolicy;
  styles: StyleStore;
  clock: Clock;
  /** Posts a line mentioning nobody in a channel of the server; rejects when Discord refuses (a log channel's test line). */
  postToChannel: (channelId: string, text: string) => Promise<void>;
}

/** Who acts, where: all a change needs, whichever interaction it came from (a command, a moderator's button). */
export type AdminActor = Pick<AdminContext, 'guildId' | 'actorId'>;

export interface AdminContext {
  interaction: Interaction;
  guildId: string;
  actorId: string;
  /** As read when the moderator was authorised; changes re-read them under the store's lock. */
  settings: GuildSettings;
  options: readonly CommandInteractionOption[];
}

/** A reply: its text, with files attached when a handler exports something (a word list). */
export type AdminReply = string | { content: string; files: Array<{ name: string; data: Buffer }> };

export interface AdminHandler {
  readonly schema: z.ZodObject;
  run(context: AdminContext, options: unknown): Promise<AdminReply>;
}

export function handler<S extends z.ZodObject>(schema: S, run: (context: AdminContext, options: z.output<S>) => Promise<AdminReply>): AdminHandler {
  return { schema, run: (context, options) => run(context, options as z.output<S>) };
}

/** What an option's autocomplete is given: the moderator's server, its settings, and what they have typed so far. */
export interface AutocompleteContext {
  interaction: AutocompleteInteraction<'cached' | 'raw'>;
  settings: GuildSettings;
  typed: string;
}

export interface AutocompleteChoice {
  name: string;
  value: string;
}

/** Choices for the focused option of one subcommand (at most 25 are shown). */
export type Autocompleter = (context: AutocompleteContext) => AutocompleteChoice[] | Promise<AutocompleteChoice[]>;

/** `group/subcommand` or `subcommand` of a definition fragment, so each subject's handler table must cover every one. */
export type PathOf<O> = O extends {
  type: ApplicationCommandOptionType.SubcommandGroup;
  name: infer G extends string;
  options: readonly { name: infer N extends string }[];
}
  ? `${G}/${N}`
  : O extends { type: ApplicationCommandOptionType.Subcommand; name: infer N extends string }
    ? N
    : never;

/** No member: what applies to anyone without roles or a personal allowance. */
export const ANYONE = { userId: '0', roleIds: [], canManageGuild: false } as const;

export type AdminTools = ReturnType<typeof createAdminTools>;

export function createAdminTools(deps: AdminDeps) {
  const { settings: repository, audit, policy } = deps;

  /**
   * Every change: under the settings lock, then into the audit log and the log channel (the old one when the change
   * removed it, so turning logging off is logged too).
   */
  async function change(context: AdminActor, action: string, mutate: (settings: GuildSettings) => string): Promise<string> {
    let details = '';
    let previousLogChannel: string | null = null;
    const updated = await repository.update(context.guildId, (settings) => {
      previousLogChannel = settings.logChannelId;
      details = mutate(settings);
    });
    await audit.record(context.guildId, updated.logChannelId ?? previousLogChannel, { actorId: context.actorId, action, details });
    return details;
  }
  async function record(context: Pick<AdminContext, 'guildId' | 'actorId' | 'settings'>, action: string, details: string): Promise<void> {
    await audit.record(context.guildId, context.settings.logChannelId, { actorId: context.actorId, action, details });
  }
  const effective = (settings: GuildSettings) => policy.limitsFor(ANYONE, settings);
  /**
   * Refuses a value above the operator's ceiling (0 = none) before anything is stored: the policy would hold it at
   * the ceiling anyway, and moderators should know why.
   */
  function requireUnderCeiling(option: string, value: number | undefined, ceiling: 'dailyCredits' | 'guildDailyCap'): void {
    const limit = policy.ceilings[ceiling];
    if (value === undefined || limit === 0 || value <= limit) return;
    const variable = ceiling === 'dailyCredits' ? 'MAX_DAILY_CREDITS' : 'MAX_GUILD_DAILY_CREDITS';
    const unit = ceiling === 'dailyCredits' ? 'credits per member per UTC day' : 'images per server per UTC day';
    throw new UserFacingError(
      `\`${option}\` can be at most **${limit}** here: the bot's operator set a ceiling of ${limit} ${unit} (\`${variable}\`) that no server setting can exceed.`,
      'above_ceiling',
    );
  }

  return { change, record, effective, requireUnderCeiling };
}

// Changes replace lists and records instead of editing them in place: a fresh record's empty defaults may be shared.
export function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}
