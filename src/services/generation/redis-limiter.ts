import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../logger.js';
import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';
import { lua, runLua, type LuaScript } from '../storage/quota/redis-scripts.js';
import { LimiterClosedError, validateLimits, type LimiterPermit, type SegmindLimiter } from './segmind-limiter.js';

const limiterLua = (source: string): LuaScript => lua('limiter', source);

/**
 * Time comes from the Redis server (TIME), never from the bot: bot processes on several hosts may disagree by
 * seconds, and lease expiries and the rpm window are compared across all of them. One clock, no skew. (TIME before
 * writes is fine on Redis >= 5: scripts replicate their effects, not the script.)
 */
const SERVER_NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Sets the key's expiry to at least `ms` from now (never shortens it: limiters may run with different settings). */
const EXTEND_TTL = `
local function extendTtl(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end
`;

/**
 * KEYS: holders (ZSET member = permit id, score = lease expiry), starts (ZSET member = permit id, score = start)
 * ARGV: permit id, concurrency, rpm (0 = none), leaseMs, windowMs
 * Returns {'ok', held} | {'busy', held} | {'rpm', msUntilTheOldestStartLeavesTheWindow}
 *
 * Expired holders (crashed processes) and starts that left the window are dropped first; then both limits are
 * checked and, when both allow, the holder and its start are added, all in one atomic step.
 */
const ACQUIRE = limiterLua(`${SERVER_NOW}${EXTEND_TTL}
local id = ARGV[1]
local concurrency = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local window = tonumber(ARGV[5])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)

if redis.call('ZSCORE', KEYS[1], id) then
  return {'ok', redis.call('ZCARD', KEYS[1])}
end
local held = redis.call('ZCARD', KEYS[1])
if held >= concurrency then
  return {'busy', held}
end
if rpm > 0 and redis.call('ZCARD', KEYS[2]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  return {'rpm', math.max(1, tonumber(oldest[2]) + window - now)}
end

redis.call('ZADD', KEYS[1], now + lease, id)
extendTtl(KEYS[1], lease)
if rpm > 0 then
  redis.call('ZADD', KEYS[2], now, id)
  extendTtl(KEYS[2], window)
end
return {'ok', held + 1}
`);

/**
 * KEYS: holders
 * ARGV: leaseMs, permit ids
 * Returns the ids that are no longer held (their lease ran out and the slot may have gone to someone else).
 * A holder that expired but is still in the set is renewed: only an acquire removes it, so nobody has its slot.
 */
const RENEW = limiterLua(`${SERVER_NOW}${EXTEND_TTL}
local lease = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], 'XX', now + lease, ARGV[i])
  else
    lost[#lost + 1] = ARGV[i]
  end
end
extendTtl(KEYS[1], lease)
return lost
`);

/** KEYS: holders. Returns the holders whose lease has not expired. */
const IN_FLIGHT = limiterLua(`${SERVER_NOW}
return redis.call('ZCOUNT', KEYS[1], string.format('(%d', now), '+inf')
`);

const int = z.coerce.number().int();
const acquireReply = z.union([
  z.tuple([z.literal('ok'), int]),
  z.tuple([z.literal('busy'), int]),
  z.tuple([z.literal('rpm'), int]),
]);
const idList = z.array(z.string());

export function redisLimiterKeys(prefix: string) {
  const tag = `${prefix}:{limiter}`;
  return { holders: `${tag}:holders`, starts: `${tag}:starts` };
}

export interface RedisLimiterOptions {
  client: RedisCommandSender;
  concurrency: number;
  rpm: number;
  windowMs: number;
  logger: Logger;
  keyPrefix: string;
  /** Default 30 s. */
  leaseMs?: number;
  /** Default a third of the lease. */
  renewEveryMs?: number;
  /** Mean retry delay while every slot is taken; default 50 ms (jittered to 25–75 ms). */
  pollMs?: number;
}

interface Waiter {
  resolve(permit: LimiterPermit): void;
  reject(reason: unknown): void;
  cleanup(): void;
}

/**
 * The limiter shared by every bot process on one Redis. Each process queues its own waiters (FIFO) and lets only the
 * head ask Redis; across processes it is first come, first served at each retry, with jittered polling. A release
 * in this process wakes the head at once; a release elsewhere is noticed at the next poll.
 */
export class RedisLimiter implements SegmindLimiter {
  readonly #client: RedisCommandSender;
  readonly #keys: ReturnType<typeof redisLimiterKeys>;
  readonly #logger: Logger;
  readonly #args: { concurrency: string; rpm: string; lease: string; window: string };
  readonly #leaseMs: number;
  readonly #renewEveryMs: number;
  readonly #pollMs: number;
  readonly #held = new Set<string>();
  readonly #waiters: Waiter[] = [];
  #driving = false;
  #closed = false;
  #wake: (() => void) | undefined;
  /** A wake-up that came while the loop was talking to Redis: the next pause is skipped. */
  #wokenDuringAttempt = false;
  #renewTimer: NodeJS.Timeout | undefined;
  #renewing = false;

  constructor(opts: RedisLimiterOptions) {
    validateLimits(opts);
    this.#leaseMs = opts.leaseMs ?? 30_000;
    this.#renewEveryMs = opts.renewEveryMs ?? Math.floor(this.#leaseMs / 3);
    this.#pollMs = opts.pollMs ?? 50;
    if (!Number.isInteger(this.#leaseMs) || this.#leaseMs < 1) {
      throw new RangeError('leaseMs must be a positive integer');
    }
    if (!(this.#renewEveryMs > 0 && this.#renewEveryMs < this.#leaseMs)) {
      throw new RangeError('renewEveryMs must be positive and shorter than the lease');
    }
    if (!(this.#pollMs > 0)) throw new RangeError('pollMs must be positive');
    this.#client = opts.client;
    this.#keys = redisLimiterKeys(opts.keyPrefix);
    this.#logger = opts.logger;
    this.#args = {
      concurrency: String(opts.concurrency),
      rpm: String(opts.rpm),
      lease: String(this.#leaseMs),
      window: String(opts.windowMs),
    };
  }

  acquire(signal?: AbortSignal): Promise<LimiterPermit> {
    if (this.#closed) return Promise.reject(new LimiterClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const permit = new Promise<LimiterPermit>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#remove(waiter)) return;
        reject(signal?.reason as Error);
        // If it was the head, the next waiter need not sit out the head's poll delay.
        this.#wakeUp();
      };
      const waiter: Waiter = { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
    });
    this.#startDriving();
    return permit;
  }

  async inFlight(): Promise<number> {
    return int.parse(await this.#run(IN_FLIGHT, [this.#keys.holders], []));
  }

  close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#renewTimer);
    this.#renewTimer = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.cleanup();
      waiter.reject(new LimiterClosedError());
    }
    this.#wakeUp();
    return Promise.resolve();
  }

  #startDriving(): void {
    if (this.#driving || this.#closed) return;
    this.#driving = true;
    void this.#drive();
  }

  /** One loop per process: the head waiter asks Redis until it gets a slot, then the next one. */
  async #drive(): Promise<void> {
    try {
      for (;;) {
        const waiter = this.#waiters[0];
        if (this.#closed || waiter === undefined) break; // the flag is cleared in the same tick (finally)
        const id = randomUUID();
        this.#wokenDuringAttempt = false;
        let reply: z.infer<typeof acquireReply>;
        try {
          reply = acquireReply.parse(
            await this.#run(
              ACQUIRE,
              [this.#keys.holders, this.#keys.starts],
              [id, this.#args.concurrency, this.#args.rpm, this.#args.lease, this.#args.window],
            ),
          );
        } catch (error) {
          // The outcome is unknown (a timeout may still have added the holder): take the id back, fail closed.
          void this.#forget(id);
          if (this.#remove(waiter)) waiter.reject(error);
          // Debug: the scheduler reports an outage once when it starts and once when it ends, not per attempt.
          this.#logger.debug({ err: error }, 'could not acquire a Segmind slot from Redis');
          continue;
        }
        if (reply[0] === 'ok') {
          if (this.#remove(waiter) && !this.#closed) {
            waiter.resolve(this.#grant(id));
          } else {
            void this.#forget(id); // aborted (or closed) while Redis was answering
          }
          continue;
        }
        if (this.#waiters[0] !== waiter) continue; // the head left meanwhile: the next one tries at once
        if (reply[0] === 'rpm') {
          this.#logger.debug({ waitMs: reply[1], waiting: this.#waiters.length }, 'Segmind rpm window full, waiting');
          await this.#pause(reply[1] + Math.floor(Math.random() * 20));
        } else {
          await this.#pause(this.#pollMs / 2 + Math.random() * this.#pollMs);
        }
      }
    } finally {
      this.#driving = false;
    }
  }

  #grant(id: string): LimiterPermit {
    this.#held.add(id);
    if (this.#renewTimer === undefined) {
      this.#renewTimer = setInterval(() => void this.#renew(), this.#renewEveryMs);
      this.#renewTimer.unref();
    }
    let released: Promise<void> | undefined;
    return {
      id,
      release: () => (released ??= this.#release(id)),
    };
  }

  async #release(id: string): Promise<void> {
    if (!this.#held.delete(id)) return;
    if (this.#held.size === 0) {
      clearInterval(this.#renewTimer);
      this.#renewTimer = undefined;
    }
    await this.#forget(id);
    this.#wakeUp();
  }

  /** Best effort: a holder that cannot be removed now expires with its lease. */
  async #forget(id: string): Promise<void> {
    try {
      await this.#client.sendCommand(['ZREM', this.#keys.holders, id]);
    } catch (error) {
      this.#logger.warn(
        { err: error, permitId: id, leaseMs: this.#leaseMs },
        'could not release a Segmind slot in Redis: it frees itself when its lease expires',
      );
    }
  }

  async #renew(): Promise<void> {
    if (this.#renewing || this.#held.size === 0) return;
    this.#renewing = true;
    const ids = [...this.#held];
    try {
      const lost = idList.parse(await this.#run(RENEW, [this.#keys.holders], [this.#args.lease, ...ids]));
      for (const id of lost) {
        if (!this.#held.has(id)) continue; // released while the renewal was under way
        this.#logger.warn(
          { permitId: id, leaseMs: this.#leaseMs },
          'a Segmind slot lease expired while the call was still running: the limit may be exceeded briefly',
        );
      }
    } catch (error) {
      this.#logger.warn({ err: error, held: ids.length }, 'could not renew Segmind slot leases in Redis');
    } finally {
      this.#renewing = false;
    }
  }

  /** Waits `ms`, or less when a local release, an abort of the head or close() wakes the loop. */
  #pause(ms: number): Promise<void> {
    if (this.#wokenDuringAttempt) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        if (this.#wake === done) this.#wake = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  #wakeUp(): void {
    if (this.#wake) this.#wake();
    else this.#wokenDuringAttempt = true;
  }

  #remove(waiter: Waiter): boolean {
    const index = this.#waiters.indexOf(waiter);
    if (index === -1) return false;
    this.#waiters.splice(index, 1);
    waiter.cleanup();
    return true;
  }

  #run(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    return runLua(this.#client, script, keys, args);
  }
}
