import { z } from 'zod';
import type { Logger } from '../../logger.js';
import { EXTEND_TTL, SERVER_NOW, limiterKeyTag } from '../generation/redis-lua.js';
import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';
import { lua, runLua, type LuaScript } from '../storage/quota/redis-scripts.js';

/**
 * A member's open requests (admitted, not finished) counted across every bot process sharing the store. Each process
 * still counts its own synchronously before the acknowledgement; this is the fleet-wide check after it.
 */
export interface FleetOpenRequests {
  /** Takes a place for `slotId` unless the member already has `max` open on all processes together; false if so. */
  hold(userId: string, slotId: string, max: number): Promise<boolean>;
  /** Gives the place back. Idempotent; never rejects (a place that cannot be given back lapses with its lease). */
  release(userId: string, slotId: string): Promise<void>;
  /** Stops renewing: the places still held lapse, as when the process dies. */
  close(): void;
}

const openLua = (source: string): LuaScript => lua('open-requests', source);

/**
 * KEYS: the member's places (ZSET member = slot id, score = lease expiry). ARGV: slot id, max, leaseMs.
 * Returns 1 if held (now or already), 0 if the member is at `max`. Lapsed places (dead processes) are dropped first.
 */
const HOLD = openLua(`${SERVER_NOW}${EXTEND_TTL}
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[1])
extendTtl(KEYS[1], tonumber(ARGV[3]))
return 1
`);

/** KEYS: members' places; ARGV: leaseMs, then the slot id for each key. Renews the places still there. */
const RENEW = openLua(`${SERVER_NOW}${EXTEND_TTL}
local lease = tonumber(ARGV[1])
for i = 1, #KEYS do
  if redis.call('ZADD', KEYS[i], 'XX', 'CH', now + lease, ARGV[i + 1]) == 1 then extendTtl(KEYS[i], lease) end
end
return 1
`);

export const redisOpenRequestsKey = (prefix: string, userId: string) => `${limiterKeyTag(prefix)}:open:${userId}`;

export interface RedisOpenRequestsOptions {
  client: RedisCommandSender;
  /** The storage namespace, as for the Segmind limiter: keys are `<prefix>:{limiter}:open:<userId>`. */
  keyPrefix: string;
  logger: Logger;
  /** How long a place outlives its last renewal (a dead process's places free themselves); default 60 s. */
  leaseMs?: number;
  /** Default a third of the lease. */
  renewEveryMs?: number;
}

/** Places in Redis sorted sets, one per member, each held under a lease this process renews while the job runs. */
export class RedisOpenRequests implements FleetOpenRequests {
  readonly #client: RedisCommandSender;
  readonly #prefix: string;
  readonly #logger: Logger;
  readonly #lease: string;
  readonly #renewEveryMs: number;
  /** slot id → member, for the places held. */
  readonly #held = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: RedisOpenRequestsOptions) {
    const leaseMs = opts.leaseMs ?? 60_000;
    this.#renewEveryMs = opts.renewEveryMs ?? Math.floor(leaseMs / 3);
    if (!Number.isInteger(leaseMs) || leaseMs < 1) throw new RangeError('leaseMs must be a positive integer');
    if (!(this.#renewEveryMs > 0 && this.#renewEveryMs < leaseMs)) {
      throw new RangeError('renewEveryMs must be positive and shorter than the lease');
    }
    this.#lease = String(leaseMs);
    this.#client = opts.client;
    this.#prefix = opts.keyPrefix;
    this.#logger = opts.logger;
  }

  async hold(userId: string, slotId: string, max: number): Promise<boolean> {
    const reply = z.coerce
      .number()
      .int()
      .parse(await runLua(this.#client, HOLD, [redisOpenRequestsKey(this.#prefix, userId)], [slotId, String(max), this.#lease]));
    if (reply !== 1) return false;
    this.#held.set(slotId, userId);
    if (this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(() => void this.#renew(), this.#renewEveryMs);
      this.#timer.unref();
    }
    return true;
  }

  async release(userId: string, slotId: string): Promise<void> {
    this.#held.delete(slotId);
    if (this.#held.size === 0) this.#stopTimer();
    try {
      await this.#client.sendCommand(['ZREM', redisOpenRequestsKey(this.#prefix, userId), slotId]);
    } catch (error) {
      this.#logger.warn({ err: error, userId }, 'could not give back an open-request place in Redis; it lapses with its lease');
    }
  }

  close(): void {
    this.#closed = true;
    this.#stopTimer();
  }

  #stopTimer(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  async #renew(): Promise<void> {
    const held = [...this.#held];
    if (held.length === 0) return;
    try {
      await runLua(
        this.#client,
        RENEW,
        held.map(([, userId]) => redisOpenRequestsKey(this.#prefix, userId)),
        [this.#lease, ...held.map(([slotId]) => slotId)],
      );
    } catch (error) {
      this.#logger.warn({ err: error, held: held.length }, 'could not renew open-request places in Redis');
    }
  }
}
