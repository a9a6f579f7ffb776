import { z } from 'zod';
import type { Clock } from '../../clock.js';
import { fluxDevParamsSchema, type FluxDevParams } from '../segmind/flux-params.js';
import type { Storage } from '../storage/storage.js';

const DAY_MS = 86_400_000;

/**
 * A server style applied to a request: the member's own prompt and the template it went into. `params.prompt` is the
 * expansion, what Segmind got; the template is kept so Re-roll and Remix expand the same way after the style changed.
 */
export const appliedStyleSchema = z.object({
  name: z.string().min(1).max(32),
  template: z.string(),
  memberPrompt: z.string(),
});
export type AppliedStyle = z.infer<typeof appliedStyleSchema>;

const recordSchema = z.object({
  v: z.literal(1),
  id: z.string(),
  guildId: z.string(),
  channelId: z.string(),
  ownerId: z.string(),
  params: fluxDevParamsSchema,
  /** The images actually posted, in message order. */
  /** `spoiler`: flagged by the image check and posted blurred (never shared to a gallery). */
  images: z.array(z.object({ index: z.number().int(), seed: z.number().int(), spoiler: z.boolean().optional() })),
  createdAt: z.number(),
  style: appliedStyleSchema.optional(),
  /** Posted as an ephemeral message only its member sees (or by direct message). */
  private: z.boolean().optional(),
});

export type ResultRecord = z.infer<typeof recordSchema>;

/**
 * What a delivered result's buttons need, kept in storage so the buttons work after restarts and long after the
 * interaction token: the `custom_id` carries only the id. Records expire after RESULT_RETENTION_DAYS.
 */
export class ResultStore {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly retentionDays: number,
  ) {}

  async save(record: Omit<ResultRecord, 'v' | 'createdAt'> & { params: FluxDevParams }): Promise<void> {
    const full: ResultRecord = { ...record, v: 1, createdAt: this.clock.now() };
    await this.storage.kv.set(key(record.id), full, this.retentionDays * DAY_MS);
  }

  /** The record, or undefined when it expired, was deleted, or cannot be read any more. */
  async get(id: string): Promise<ResultRecord | undefined> {
    const parsed = recordSchema.safeParse(await this.storage.kv.get(key(id)));
    if (!parsed.success) return undefined;
    if (parsed.data.createdAt + this.retentionDays * DAY_MS < this.clock.now()) return undefined;
    return parsed.data;
  }

  async delete(id: string): Promise<void> {
    await this.storage.kv.delete(key(id));
  }
}

function key(id: string): string {
  return `result:${id}`;
}
