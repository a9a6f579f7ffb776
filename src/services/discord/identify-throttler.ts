import { randomBytes } from 'node:crypto';
import type { IIdentifyThrottler } from 'discord.js';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';

/**
 * Discord lets a bot start `max_concurrency` gateway sessions per 5 s, one per bucket `shard_id % max_concurrency`,
 * whichever process starts them. A quarter second is added to the window: the slot is taken a moment before the
 * IDENTIFY leaves, and two identifies of one bucket must reach Discord 5 s apart.
 */
export const IDENTIFY_WINDOW_MS = 5_250;
/** Redis unreachable: ask again this often (the shard cannot log in safely without the fleet's word). */
const REDIS_RETRY_MS = 1_000;

export interface RedisIdentifyThrottlerOptions {
  client: RedisCommandSender;
  /** The storage namespace: every process of one bot shares it, so they share the buckets. */
  keyPrefix: string;
  /** From Discord's `GET /gateway/bot` (`session_start_limit.max_concurrency`). */
  maxConcurrency: number;
  clock: Clock;
  logger: Logger;
  /** Tests shorten it; production keeps IDENTIFY_WINDOW_MS. */
  windowMs?: number;
}

/**
 * The identify throttle of discord.js (`ws.buildIdentifyThrottler`) shared by every process through Redis: a shard
 * may identify once it holds its bucket's key, set with NX and a PX of the window, so the next identify of that
 * bucket, in this process or another, waits for the key to expire.
 */
export class RedisIdentifyThrottler implements IIdentifyThrottler {
  readonly #client: RedisCommandSender;
  readonly #prefix: string;
  readonly #maxConcurrency: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #windowMs: number;
  /** Written into the key, so an operator looking at Redis sees which process holds a bucket. */
  readonly #holder = randomBytes(6).toString('hex');

  constructor(opts: RedisIdentifyThrottlerOptions) {
    this.#client = opts.client;
    this.#prefix = opts.keyPrefix;
    this.#maxConcurrency = Math.max(1, Math.floor(opts.maxConcurrency));
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#windowMs = opts.windowMs ?? IDENTIFY_WINDOW_MS;
  }

  /** Resolves once `shardId` may send IDENTIFY; rejects with the signal's reason if the shard closes meanwhile. */
  async waitForIdentify(shardId: number, signal: AbortSignal): Promise<void> {
    const bucket = shardId % this.#maxConcurrency;
    const key = `${this.#prefix}:identify:${this.#maxConcurrency}:${bucket}`;
    for (;;) {
      signal.throwIfAborted();
      let waitMs: number;
      try {
        const taken = await this.#client.sendCommand(['SET', key, `${this.#holder}:${shardId}`, 'NX', 'PX', String(this.#windowMs)]);
        if (taken === 'OK') {
          this.#logger.debug({ shardId, bucket }, 'identify slot taken');
          return;
        }
        const left = Number(await this.#client.sendCommand(['PTTL', key]));
        // -1 (no expiry) cannot come from this code; -2 (just expired) or a race: ask again at once.
        waitMs = Number.isFinite(left) && left > 0 ? left : 0;
        this.#logger.debug({ shardId, bucket, waitMs }, 'waiting for an identify slot');
      } catch (error) {
        signal.throwIfAborted();
        this.#logger.warn({ err: error, shardId }, 'could not reach Redis for an identify slot; will retry');
        waitMs = REDIS_RETRY_MS;
      }
      if (waitMs > 0) await this.#clock.sleep(waitMs, signal);
    }
  }
}
