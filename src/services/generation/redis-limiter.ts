import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Logger } from '../../logger.js';
import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';
import { lua, runLua, type LuaScript } from '../storage/quota/redis-scripts.js';
import { EXTEND_TTL, SERVER_NOW, limiterKeyTag } from './redis-lua.js';
import { LimiterClosedError, validateLimits, type LimiterPermit, type SegmindLimiter } from './segmind-limiter.js';

const limiterLua = (source: string): LuaScript => lua('limiter', source);

/** How many of a process's waiting members an attempt offers: its own round-robin order puts the likeliest first. */
const MAX_OFFERED = 16;
/** Members whose last turn is remembered; beyond it the oldest are forgotten (they count as newcomers again). */
const SERVED_KEEP = 10_000;
/**
 * A member's place in the turn order is `grant number × SPAN`; newcomers seen since the latest grant fit in between
 * (in the order they were first seen), so every member has a distinct place and ties never go to whoever polls first.
 */
const SPAN = 2 ** 20;
/** The turn order is forgotten a day after the last grant that used it. */
const TURNS_TTL_MS = 24 * 60 * 60_000;

/**
 * KEYS: holders (ZSET member = permit id, score = lease expiry), starts (ZSET member = permit id, score = start),
 *       waiting (ZSET member = process id, score = the turn of its member who has waited longest),
 *       waitingUntil (ZSET member = process id, score = when its place lapses), served (ZSET member = member id,
 *       score = their place: grant number × SPAN of their last turn), turn (HASH: granted = grants made with turns;
 *       seenAt, seen = newcomers numbered since that grant)
 * ARGV: permit id, concurrency, rpm (0 = none), leaseMs, windowMs, process id, waitingTtlMs, members offered...
 * Returns {'ok', held, member} | {'busy', held, ''} | {'rpm', msUntilTheOldestStartLeavesTheWindow, ''}
 *       | {'turn', processesAhead, ''}
 *
 * Expired holders (crashed processes), starts that left the window and lapsed places in the turn order are dropped
 * first. With members offered, the process takes its place in the turn order under its member served least recently
 * bot-wide (a member never seen is placed just before the latest grant, after earlier newcomers: after everyone
 * already waiting, before whoever was served last). A free slot then goes to this process only if fewer processes wait under an older turn
 * than there are free slots; the grant names the member, and it becomes their latest turn. With nobody else waiting
 * this is still one round trip. All in one atomic step.
 */
const ACQUIRE = limiterLua(`${SERVER_NOW}${EXTEND_TTL}
local id = ARGV[1]
local concurrency = tonumber(ARGV[2])
local rpm = tonumber(ARGV[3])
local lease = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local proc = ARGV[6]
local waitingTtl = tonumber(ARGV[7])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)

if redis.call('ZSCORE', KEYS[1], id) then
  return {'ok', redis.call('ZCARD', KEYS[1]), ''}
end

local lapsed = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now)
for i = 1, #lapsed do
  redis.call('ZREM', KEYS[3], lapsed[i])
  redis.call('ZREM', KEYS[4], lapsed[i])
end

local member = nil
local turn = nil
if #ARGV > 7 then
  local counts = redis.call('HMGET', KEYS[6], 'granted', 'seenAt', 'seen')
  local latest = tonumber(counts[1]) or 0
  local seen = 0
  if tonumber(counts[2]) == latest then seen = tonumber(counts[3]) or 0 end
  local seenBefore = seen
  for i = 8, #ARGV do
    local last = redis.call('ZSCORE', KEYS[5], ARGV[i])
    if last then
      last = tonumber(last)
    else
      seen = math.min(seen + 1, ${SPAN - 1})
      last = (latest - 1) * ${SPAN} + seen
      redis.call('ZADD', KEYS[5], last, ARGV[i])
    end
    if turn == nil or last < turn then
      turn = last
      member = ARGV[i]
    end
  end
  if seen ~= seenBefore then
    redis.call('HSET', KEYS[6], 'seenAt', latest, 'seen', seen)
    extendTtl(KEYS[5], ${TURNS_TTL_MS})
    extendTtl(KEYS[6], ${TURNS_TTL_MS})
  end
end

-- Only a process that has to wait takes (or keeps) a place: an immediate grant writes none.
local function wait(ms)
  if not member then return end
  redis.call('ZADD', KEYS[3], turn, proc)
  redis.call('ZADD', KEYS[4], now + ms, proc)
  extendTtl(KEYS[3], ms)
  extendTtl(KEYS[4], ms)
end

local held = redis.call('ZCARD', KEYS[1])
if held >= concurrency then
  wait(waitingTtl)
  return {'busy', held, ''}
end
if rpm > 0 and redis.call('ZCARD', KEYS[2]) >= rpm then
  local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
  local waitMs = math.max(1, tonumber(oldest[2]) + window - now)
  -- The process sleeps until the window opens: its place must last that long.
  wait(waitMs + waitingTtl)
  return {'rpm', waitMs, ''}
end
if member then
  local ahead = redis.call('ZCOUNT', KEYS[3], '-inf', string.format('(%.17g', turn))
  -- Not behind itself: its own place may still hold an older turn (its member was served elsewhere meanwhile).
  local mine = redis.call('ZSCORE', KEYS[3], proc)
  if mine and tonumber(mine) < turn then ahead = ahead - 1 end
  if ahead >= concurrency - held then
    wait(waitingTtl)
    return {'turn', ahead, ''}
  end
end

redis.call('ZADD', KEYS[1], now + lease, id)
extendTtl(KEYS[1], lease)
if rpm > 0 then
  redis.call('ZADD', KEYS[2], now, id)
  extendTtl(KEYS[2], window)
end
if not member then
  return {'ok', held + 1, ''}
end
redis.call('ZREM', KEYS[3], proc)
redis.call('ZREM', KEYS[4], proc)
local granted = redis.call('HINCRBY', KEYS[6], 'granted', 1)
redis.call('ZADD', KEYS[5], granted * ${SPAN}, member)
local remembered = redis.call('ZCARD', KEYS[5])
if remembered > ${SERVED_KEEP} then
  redis.call('ZREMRANGEBYRANK', KEYS[5], 0, remembered - ${SERVED_KEEP} - 1)
end
redis.call('PEXPIRE', KEYS[5], ${TURNS_TTL_MS})
redis.call('PEXPIRE', KEYS[6], ${TURNS_TTL_MS})
return {'ok', held + 1, member}
`);

/** KEYS: waiting, waitingUntil. ARGV: process id. Gives up this process's place in the turn order. */
const WITHDRAW = limiterLua(`
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
return 1
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
  z.tuple([z.literal('ok'), int, z.string()]),
  z.tuple([z.literal('busy'), int, z.string()]),
  z.tuple([z.literal('rpm'), int, z.string()]),
  z.tuple([z.literal('turn'), int, z.string()]),
]);
const idList = z.array(z.string());

export function redisLimiterKeys(prefix: string) {
  const tag = limiterKeyTag(prefix);
  return {
    holders: `${tag}:holders`,
    starts: `${tag}:starts`,
    waiting: `${tag}:waiting`,
    waitingUntil: `${tag}:waiting-until`,
    served: `${tag}:served`,
    turn: `${tag}:turn`,
  };
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
  /** How long this process's place in the turn order outlives its last attempt; default 40 polls, at least 2 s. */
  waitingTtlMs?: number;
}

interface Waiter {
  wanting: (() => readonly string[]) | undefined;
  resolve(permit: LimiterPermit): void;
  reject(reason: unknown): void;
  cleanup(): void;
}

/**
 * The limiter shared by every bot process on one Redis. Each process queues its own waiters (FIFO) and lets only the
 * head ask Redis, with jittered polling. A head that offers members (`wanting`) takes turns fleet-wide: a freed slot
 * goes to the process whose member was served least recently bot-wide, so one member waiting on a quiet process is
 * not starved by a busy one; a head that offers none is first come, first served. A release in this process wakes
 * the head at once; a release elsewhere is noticed at the next poll.
 */
export class RedisLimiter implements SegmindLimiter {
  readonly #client: RedisCommandSender;
  readonly #keys: ReturnType<typeof redisLimiterKeys>;
  readonly #logger: Logger;
  readonly #args: { concurrency: string; rpm: string; lease: string; window: string };
  readonly #leaseMs: number;
  readonly #renewEveryMs: number;
  readonly #pollMs: number;
  readonly #waitingTtl: string;
  /** This process's name in the turn order. */
  readonly #processId = randomUUID();
  /** This process holds a place in the turn order (its last attempt was not granted). */
  #inTurnOrder = false;
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
    const waitingTtlMs = opts.waitingTtlMs ?? Math.max(2_000, Math.ceil(this.#pollMs * 40));
    if (!Number.isInteger(waitingTtlMs) || waitingTtlMs < 1) throw new RangeError('waitingTtlMs must be a positive integer');
    this.#waitingTtl = String(waitingTtlMs);
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

  acquire(signal?: AbortSignal, wanting?: () => readonly string[]): Promise<LimiterPermit> {
    if (this.#closed) return Promise.reject(new LimiterClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const permit = new Promise<LimiterPermit>((resolve, reject) => {
      const onAbort = () => {
        if (!this.#remove(waiter)) return;
        reject(signal?.reason as Error);
        // If it was the head, the next waiter need not sit out the head's poll delay.
        this.#wakeUp();
      };
      const waiter: Waiter = { wanting, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
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
    // Not awaited: with Redis down, shutdown must not wait for it (the place lapses by itself).
    void this.#withdraw();
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
        const offered = [...new Set(waiter.wanting?.() ?? [])].slice(0, MAX_OFFERED);
        let reply: z.infer<typeof acquireReply>;
        try {
          reply = acquireReply.parse(
            await this.#run(
              ACQUIRE,
              [
                this.#keys.holders,
                this.#keys.starts,
                this.#keys.waiting,
                this.#keys.waitingUntil,
                this.#keys.served,
                this.#keys.turn,
              ],
              [
                id,
                this.#args.concurrency,
                this.#args.rpm,
                this.#args.lease,
                this.#args.window,
                this.#processId,
                this.#waitingTtl,
                ...offered,
              ],
            ),
          );
          this.#inTurnOrder = offered.length > 0 && reply[0] !== 'ok';
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
            waiter.resolve(this.#grant(id, reply[2] === '' ? undefined : reply[2]));
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
      // Nobody here waits any more (aborted, or failed): others need not wait for this place to lapse.
      if (this.#inTurnOrder && this.#waiters.length === 0) void this.#withdraw();
    }
  }

  /** Best effort: a place that cannot be given up lapses after waitingTtlMs. */
  async #withdraw(): Promise<void> {
    if (!this.#inTurnOrder) return;
    this.#inTurnOrder = false;
    try {
      await this.#run(WITHDRAW, [this.#keys.waiting, this.#keys.waitingUntil], [this.#processId]);
    } catch (error) {
      this.#logger.debug({ err: error }, 'could not leave the Segmind turn order in Redis; the place lapses by itself');
    }
  }

  #grant(id: string, member: string | undefined): LimiterPermit {
    this.#held.add(id);
    if (this.#renewTimer === undefined) {
      this.#renewTimer = setInterval(() => void this.#renew(), this.#renewEveryMs);
      this.#renewTimer.unref();
    }
    let released: Promise<void> | undefined;
    return {
      id,
      ...(member === undefined ? {} : { member }),
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
