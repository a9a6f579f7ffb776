import { escapeMarkdown } from 'discord.js';
import { z } from 'zod';
import type { Clock } from '../../clock.js';
import adminCatalog from '../../i18n/catalog/en-US/admin.js';
import { translator, type Translator } from '../../i18n/i18n.js';
import { SOURCE_LOCALE, type Locale } from '../../i18n/locales.js';
import type { Logger } from '../../logger.js';
import type { Storage } from '../storage/storage.js';

const entrySchema = z.object({
  at: z.number(),
  actorId: z.string(),
  action: z.string(),
  details: z.string(),
});
export type AuditEntry = z.infer<typeof entrySchema>;

const KEEP = 200;
/** Discord refuses a message over 2000 characters: a long entry is cut in the log channel (kept whole here). */
const MAX_POST = 2000;
/** How much of a deleted result's prompt the audit keeps. */
const MAX_PROMPT = 300;

export const RESULT_DELETED = adminCatalog.audit.actions.deletedResult;

type AuditActionKey = keyof typeof adminCatalog.audit.actions;
const ACTION_KEYS = new Map(Object.entries(adminCatalog.audit.actions).map(([key, english]) => [english as string, key as AuditActionKey]));

/** The catalog key of an action as the audit keeps it (in English), so it can be shown in another language. */
export function auditActionKey(english: string): AuditActionKey | undefined {
  return ACTION_KEYS.get(english);
}

/** How the log channel reads an entry: its language (else the server's), and the details put into it (else as kept). */
export interface LogChannelLine {
  locale?: Locale;
  details?: (t: Translator) => string;
}

/**
 * What the audit keeps of a result a moderator deleted: whose it was, where, and its prompt (the images are gone, so
 * this is all that is left to judge the deletion by). Whitespace is folded and Markdown escaped to keep one line.
 */
export function resultDeletedDetails(result: { ownerId: string; channelId: string; prompt: string }): string {
  const prompt = result.prompt.replace(/\s+/g, ' ').trim();
  const cut = prompt.length > MAX_PROMPT ? `${prompt.slice(0, MAX_PROMPT - 1)}…` : prompt;
  return `<@${result.ownerId}>'s result in <#${result.channelId}> — “${escapeMarkdown(cut)}”`;
}

/** Posts a line to a server's log channel; failures are logged, never thrown (the action already happened). */
export type LogChannelPoster = (channelId: string, text: string) => Promise<void>;

/** Every moderator action: who, what, when — kept per server and posted to its log channel when one is set. */
export class AuditLog {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly post: LogChannelPoster,
    private readonly log: Logger,
    /** The server's language for a post whose caller gave none (English without it). */
    private readonly channelLocale: (guildId: string) => Promise<Locale> = () => Promise.resolve(SOURCE_LOCALE),
  ) {}

  /** Kept as given (English); posted in `shown.locale` when given, else in the server's language. */
  async record(guildId: string, logChannelId: string | null, entry: Omit<AuditEntry, 'at'>, shown?: LogChannelLine): Promise<void> {
    const full = { ...entry, at: this.clock.now() };
    await this.storage.withLock(key(guildId), async () => {
      const entries = await this.list(guildId);
      await this.storage.kv.set(key(guildId), [full, ...entries].slice(0, KEEP));
    });
    this.log.info({ guildId, moderatorId: entry.actorId, action: entry.action, details: entry.details }, 'moderator action');
    if (logChannelId) {
      const locale = shown?.locale ?? (await this.channelLocale(guildId).catch(() => SOURCE_LOCALE));
      const t = translator(locale);
      const actionKey = auditActionKey(entry.action);
      const line = t('admin:audit.post', {
        actor: `<@${entry.actorId}>`,
        action: actionKey === undefined ? entry.action : t(`admin:audit.actions.${actionKey}`),
        details: shown?.details?.(t) ?? entry.details,
      });
      const text = line.length > MAX_POST ? `${line.slice(0, MAX_POST - 1)}…` : line;
      await this.post(logChannelId, text).catch((error: unknown) =>
        this.log.warn({ err: error, guildId, logChannelId }, 'could not post to the log channel'),
      );
    }
  }

  async list(guildId: string): Promise<AuditEntry[]> {
    const parsed = z.array(entrySchema).safeParse(await this.storage.kv.get(key(guildId)));
    return parsed.success ? parsed.data : [];
  }
}

function key(guildId: string): string {
  return `audit:${guildId}`;
}
