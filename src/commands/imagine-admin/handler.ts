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
import { UserFacingError, type LocalizedText } from '../../errors.js';
import type adminCatalog from '../../i18n/catalog/en-US/admin.js';
import { translator, type Translator } from '../../i18n/i18n.js';
import { localeFor, SOURCE_LOCALE, type ServerLanguage } from '../../i18n/locales.js';
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

/**
 * Who acts, where: all a change needs, whichever interaction it came from (a command, a moderator's button). The
 * server's Discord locale picks the log channel's language when moderators fixed none.
 */
export type AdminActor = Pick<AdminContext, 'guildId' | 'actorId'> & { guildLocale?: string | null };

/**
 * A text not yet put into words: a change's details are shown to the moderator in their language, posted to the log
 * channel in the server's, and kept in the audit (and the operators' log) in English.
 */
export type Text = LocalizedText;

export type AuditAction = keyof (typeof adminCatalog)['audit']['actions'];

/** The source language: what the audit keeps and operators read. */
export const english = translator(SOURCE_LOCALE);

/** A refusal put into the language the server fixed, which the central error reply (the member's locale only) cannot know. */
export class FixedLanguageRefusal extends UserFacingError {
  override readonly text: LocalizedText;

  constructor(error: UserFacingError, t: Translator) {
    super(error.message, error.code, { cause: error });
    const shown = error.text(t);
    this.text = () => shown;
  }
}

/**
 * The `t` for a server language other than the stored one (a change just made): `member` for the moderator's reply,
 * `channel` for a channel's readers.
 */
export function translatorFor(context: Pick<AdminContext, 'interaction' | 'guildLocale'>, language: ServerLanguage, audience: 'member' | 'channel'): Translator {
  return translator(localeFor({ memberLocale: context.interaction.locale, guildLocale: context.guildLocale, serverLanguage: language }, audience));
}

export interface AdminContext {
  interaction: Interaction;
  guildId: string;
  actorId: string;
  guildLocale: string | null;
  /** The moderator's language (or the one the server fixed). */
  t: Translator;
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
  async function change(context: AdminActor, action: AuditAction, mutate: (settings: GuildSettings) => Text): Promise<Text> {
    let details: Text = () => '';
    let previousLogChannel: string | null = null;
    const updated = await repository.update(context.guildId, (settings) => {
      previousLogChannel = settings.logChannelId;
      details = mutate(settings);
    });
    await post(context, updated, updated.logChannelId ?? previousLogChannel, action, details);
    return details;
  }
  async function record(context: AdminActor & Pick<AdminContext, 'settings'>, action: AuditAction, details: Text): Promise<void> {
    await post(context, context.settings, context.settings.logChannelId, action, details);
  }
  /** Into the audit in English; into the log channel in the server's language (as it is after the change). */
  async function post(actor: AdminActor, settings: GuildSettings, logChannelId: string | null, action: AuditAction, details: Text): Promise<void> {
    // Without the interaction's guild locale (a moderator's button), the audit log asks Discord's cache for it.
    const locale = actor.guildLocale === undefined ? undefined : localeFor({ guildLocale: actor.guildLocale, serverLanguage: settings.language }, 'channel');
    await audit.record(
      actor.guildId,
      logChannelId,
      { actorId: actor.actorId, action: english(`admin:audit.actions.${action}`), details: details(english) },
      { ...(locale === undefined ? {} : { locale }), details },
    );
  }
  const effective = (settings: GuildSettings) => policy.limitsFor(ANYONE, settings);
  /**
   * Refuses a value above the operator's ceiling (0 = none) before anything is stored: the policy would hold it at
   * the ceiling anyway, and moderators should know why.
   */
  function requireUnderCeiling(option: string, value: number | undefined, ceiling: 'dailyCredits' | 'guildDailyCap'): void {
    const limit = policy.ceilings[ceiling];
    if (value === undefined || limit === 0 || value <= limit) return;
    throw new UserFacingError((t) => t(`admin:ceiling.${ceiling}`, { option, limit: String(limit) }), 'above_ceiling');
  }

  return { change, record, effective, requireUnderCeiling };
}

// Changes replace lists and records instead of editing them in place: a fresh record's empty defaults may be shared.
export function without<T>(record: Record<string, T>, key: string): Record<string, T> {
  return Object.fromEntries(Object.entries(record).filter(([k]) => k !== key));
}
