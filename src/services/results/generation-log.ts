import { escapeMarkdown } from 'discord.js';
import { translator } from '../../i18n/i18n.js';
import { SOURCE_LOCALE, type Locale } from '../../i18n/locales.js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';

/** How long a server's `generation_log_channel` is trusted before it is read again: every delivery would read it. */
const CACHE_MS = 30_000;
const MAX_PROMPT = 200;

export interface GenerationLogDeps {
  /** The server's generation log channel (null: none). Rejects when storage cannot say. */
  channelOf(guildId: string): Promise<string | null>;
  /** Posts a line mentioning nobody (`allowed_mentions: { parse: [] }`); rejects when Discord refuses. */
  post(channelId: string, text: string): Promise<void>;
  clock: Clock;
  log: Logger;
}

/** What the line needs of a result just delivered. */
export interface LoggedResult {
  guildId: string;
  channelId: string;
  userId: string;
  /** The member's own prompt (not a style's expansion). */
  prompt: string;
  /** The server style applied, by name. */
  style?: string | undefined;
  messageId: string;
  /** The server's language (default English): the line is a channel post nobody interacted with. */
  locale?: Locale | undefined;
}

/**
 * The optional generation log: one line per delivered result in the server's `generation_log_channel`,
 * "<@member> · prompt · link", so moderators can see who made what without a ping. The setting is cached for
 * CACHE_MS per server: a channel set or cleared takes effect within that time.
 */
export class GenerationLog {
  private readonly cache = new Map<string, { channelId: string | null; until: number }>();

  constructor(private readonly deps: GenerationLogDeps) {}

  /** Never rejects: a line that cannot be posted is logged and dropped. */
  async onDelivered(result: LoggedResult): Promise<void> {
    try {
      const channelId = await this.channelOf(result.guildId);
      if (channelId === null) return;
      await this.deps.post(channelId, generationLogLine(result));
    } catch (error) {
      this.deps.log.warn({ err: error, guildId: result.guildId }, 'could not post to the generation log channel');
    }
  }

  private async channelOf(guildId: string): Promise<string | null> {
    const now = this.deps.clock.now();
    const cached = this.cache.get(guildId);
    if (cached && cached.until > now) return cached.channelId;
    const channelId = await this.deps.channelOf(guildId);
    this.cache.set(guildId, { channelId, until: now + CACHE_MS });
    return channelId;
  }
}

/**
 * "<@member> · prompt · link" ("· style: name" before the link when one was applied): the prompt on one line, Markdown
 * escaped and cut to MAX_PROMPT characters.
 */
export function generationLogLine(result: LoggedResult): string {
  const prompt = result.prompt.replace(/\s+/g, ' ').trim();
  const cut = prompt.length > MAX_PROMPT ? `${prompt.slice(0, MAX_PROMPT - 1)}…` : prompt;
  const link = `https://discord.com/channels/${result.guildId}/${result.channelId}/${result.messageId}`;
  const style = result.style === undefined ? '' : ` · ${translator(result.locale ?? SOURCE_LOCALE)('imagine:log.style', { style: result.style })}`;
  return `<@${result.userId}> · ${escapeMarkdown(cut)}${style} · ${link}`;
}
