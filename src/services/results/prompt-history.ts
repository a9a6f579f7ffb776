import { z } from 'zod';
import type { Storage } from '../storage/storage.js';

const entrySchema = z.object({
  at: z.number(),
  prompt: z.string(),
  seeds: z.array(z.number()),
  delivered: z.number(),
  channelId: z.string(),
  /** The server style applied, by name (`prompt` is then the member's own words, not the expansion). */
  style: z.string().optional(),
  /** Only the member saw the result: moderators see it here. */
  private: z.boolean().optional(),
});
export type HistoryEntry = z.infer<typeof entrySchema>;

const KEEP = 20;

/** A member's recent prompts with their seeds, for moderators (`/imagine-admin usage member:`). */
export class PromptHistory {
  constructor(private readonly storage: Storage) {}

  async add(guildId: string, userId: string, entry: HistoryEntry): Promise<void> {
    await this.storage.withLock(key(guildId, userId), async () => {
      const entries = await this.list(guildId, userId);
      await this.storage.kv.set(key(guildId, userId), [entry, ...entries].slice(0, KEEP));
    });
  }

  async list(guildId: string, userId: string): Promise<HistoryEntry[]> {
    const parsed = z.array(entrySchema).safeParse(await this.storage.kv.get(key(guildId, userId)));
    return parsed.success ? parsed.data : [];
  }
}

function key(guildId: string, userId: string): string {
  return `history:${guildId}:${userId}`;
}
