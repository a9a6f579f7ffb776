import { z } from 'zod';
import type { Clock } from '../../clock.js';
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

/** Posts a line to a server's log channel; failures are logged, never thrown (the action already happened). */
export type LogChannelPoster = (channelId: string, text: string) => Promise<void>;

/** Every moderator action: who, what, when — kept per server and posted to its log channel when one is set. */
export class AuditLog {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly post: LogChannelPoster,
    private readonly log: Logger,
  ) {}

  async record(guildId: string, logChannelId: string | null, entry: Omit<AuditEntry, 'at'>): Promise<void> {
    const full = { ...entry, at: this.clock.now() };
    await this.storage.withLock(key(guildId), async () => {
      const entries = await this.list(guildId);
      await this.storage.kv.set(key(guildId), [full, ...entries].slice(0, KEEP));
    });
    this.log.info({ guildId, moderatorId: entry.actorId, action: entry.action, details: entry.details }, 'moderator action');
    if (logChannelId) {
      const text = `🛠️ <@${entry.actorId}> ${entry.action}: ${entry.details}`;
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
