import { z } from 'zod';
import { fluxDevParamsSchema } from '../flux-params.js';
import type { Storage } from '../storage/storage.js';

const reservationSchema = z.object({
  id: z.string(),
  guildId: z.string(),
  userId: z.string(),
  credits: z.number().int(),
  fromDaily: z.number().int(),
  fromBonus: z.number().int(),
  day: z.number().int(),
  createdAt: z.number(),
  expiresAt: z.number(),
});

const entrySchema = z.object({
  v: z.literal(1),
  id: z.string(),
  guildId: z.string(),
  channelId: z.string(),
  userId: z.string(),
  applicationId: z.string(),
  /** The interaction token: lets any restart edit the original reply while it lives (15 minutes). */
  token: z.string(),
  createdAt: z.number(),
  tokenExpiresAt: z.number(),
  attachmentSizeLimit: z.number(),
  params: fluxDevParamsSchema,
  reservation: reservationSchema,
  /** `delivering` means the result may already be posted: a restart checks before posting again. */
  state: z.enum(['queued', 'delivering']),
});

export type JournalEntry = z.infer<typeof entrySchema>;

/**
 * Every accepted request is written here before Segmind is called, and removed once its credits are settled, so a
 * crash or a restart can resume or refund it. Each bot process keeps its own index under a stable INSTANCE_ID, so
 * only that process writes it and a restarted process finds exactly its own unfinished work.
 */
export class Journal {
  constructor(
    private readonly storage: Storage,
    private readonly instanceId: string,
  ) {}

  async add(entry: JournalEntry): Promise<void> {
    await this.storage.kv.set(entryKey(entry.id), entry);
    await this.storage.withLock(this.indexKey(), async () => {
      const ids = await this.ids();
      if (!ids.includes(entry.id)) await this.storage.kv.set(this.indexKey(), [...ids, entry.id]);
    });
  }

  async markDelivering(id: string): Promise<void> {
    const entry = await this.get(id);
    if (entry) await this.storage.kv.set(entryKey(id), { ...entry, state: 'delivering' });
  }

  async remove(id: string): Promise<void> {
    await this.storage.withLock(this.indexKey(), async () => {
      const ids = await this.ids();
      await this.storage.kv.set(
        this.indexKey(),
        ids.filter((other) => other !== id),
      );
    });
    await this.storage.kv.delete(entryKey(id));
  }

  async get(id: string): Promise<JournalEntry | undefined> {
    const parsed = entrySchema.safeParse(await this.storage.kv.get(entryKey(id)));
    return parsed.success ? parsed.data : undefined;
  }

  /** Unfinished requests of this instance; unreadable entries are dropped (their reservation is swept and refunded). */
  async list(): Promise<JournalEntry[]> {
    const entries = await Promise.all((await this.ids()).map((id) => this.get(id)));
    return entries.filter((e) => e !== undefined);
  }

  private async ids(): Promise<string[]> {
    const parsed = z.array(z.string()).safeParse(await this.storage.kv.get(this.indexKey()));
    return parsed.success ? parsed.data : [];
  }

  private indexKey(): string {
    return `journal:index:${this.instanceId}`;
  }
}

function entryKey(id: string): string {
  return `journal:job:${id}`;
}
