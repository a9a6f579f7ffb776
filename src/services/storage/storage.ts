import type Keyv from 'keyv';
import type { QuotaStore } from './quota/quota-store.js';
import type { RedisCommandSender } from './quota/redis-quota-store.js';

export type StoreKind = 'memory' | 'sqlite' | 'redis';

/**
 * One opened backend: a keyv for records that change rarely (settings, lists, history), each parsed with zod on
 * the way out, and the QuotaStore for the counters that change concurrently.
 */
export interface Storage {
  readonly kind: StoreKind;
  /** Prefix of every key this bot writes; bots sharing a store must share it, tests vary it. */
  readonly namespace: string;
  /** The store's own guarded Redis connection (Redis only), for other atomic scripts such as the Segmind limiter. */
  readonly redis?: RedisCommandSender;
  /** Namespaced keyv with throwOnErrors: a broken store throws instead of silently failing open. */
  readonly kv: Keyv;
  readonly quota: QuotaStore;
  /** Serialises read-modify-write of one key inside this process (settings edits, history lists). */
  withLock<T>(key: string, fn: () => Promise<T>): Promise<T>;
  /** Cheap round trip used by health checks and to recover after an outage. */
  ping(): Promise<void>;
  /**
   * Deletes the records whose TTL ended before `now` (keyv's clock, Date.now()) and returns how many. keyv deletes an
   * expired record only when it is read, so SQLite and memory need this run now and then; Redis expires keys itself.
   */
  purgeExpired(now: number): Promise<number>;
  close(): Promise<void>;
}
