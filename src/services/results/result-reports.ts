import type { Clock } from '../../clock.js';
import type { Storage } from '../storage/storage.js';

const DAY_MS = 86_400_000;

/**
 * Who has reported which result (the 🚩 Report button): one mark per (result, member), kept as long as a result's
 * settings (RESULT_RETENTION_DAYS), so each member's report reaches the log channel once.
 *
 * Two presses at once must not both win: on Redis (shared by several processes) the mark is a `SET NX PX`, which
 * one caller only can take; on memory and SQLite (one process by design) a get-then-set under the store's per-key lock.
 */
export class ResultReports {
  constructor(
    private readonly storage: Storage,
    private readonly clock: Clock,
    private readonly retentionDays: number,
  ) {}

  /** Marks the report as made; true for the first call per (result, member), false once it is already marked. */
  async claim(resultId: string, memberId: string): Promise<boolean> {
    const ttlMs = this.retentionDays * DAY_MS;
    const at = String(this.clock.now());
    const { redis } = this.storage;
    if (redis) {
      const reply = await redis.sendCommand(['SET', this.redisKey(resultId, memberId), at, 'NX', 'PX', String(ttlMs)]);
      return reply === 'OK';
    }
    const key = kvKey(resultId, memberId);
    return this.storage.withLock(key, async () => {
      if ((await this.storage.kv.get(key)) !== undefined) return false;
      await this.storage.kv.set(key, at, ttlMs);
      return true;
    });
  }

  /** Takes a mark back (its report could not be delivered), so the member may try again. */
  async release(resultId: string, memberId: string): Promise<void> {
    const { redis } = this.storage;
    if (redis) await redis.sendCommand(['DEL', this.redisKey(resultId, memberId)]);
    else await this.storage.kv.delete(kvKey(resultId, memberId));
  }

  private redisKey(resultId: string, memberId: string): string {
    return `${this.storage.namespace}:report:${resultId}:${memberId}`;
  }
}

function kvKey(resultId: string, memberId: string): string {
  return `report:${resultId}:${memberId}`;
}
