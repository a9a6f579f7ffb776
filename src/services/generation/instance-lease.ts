import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { z } from 'zod';
import { systemClock, type Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';
import { lua, runLua, type LuaScript } from '../storage/quota/redis-scripts.js';
import { reasonOf } from '../storage/assemble-storage.js';
import type { Storage } from '../storage/storage.js';

/**
 * One live process per INSTANCE_ID on a Redis. The journal index (`journal:index:<INSTANCE_ID>`) is written by one
 * process only, from its own set: two live processes with one INSTANCE_ID would overwrite each other's index, and
 * after a crash one could resume the other's running jobs (Segmind paid twice) and lose its own.
 *
 * The lease is a key holding this process's token with an expiry: taken with SET NX PX, renewed by compare-and-extend,
 * deleted on a clean shutdown by compare-and-delete. A crashed process's lease expires on its own.
 *
 * The lease also says whose journal is orphaned: every INSTANCE_ID that ever took one is in the set
 * `<prefix>:instances`, and once its lease is gone live processes adopt its unfinished jobs (journal-adoption.ts).
 * An adoption leaves a marker (`<prefix>:instance-adopted:<id>`): a process whose lease lapsed (Redis unreachable
 * longer than the lease) and was adopted from must not take its lease back and go on as if nothing happened, or it
 * would run the adopted jobs a second time. It stops instead (`lost`); a fresh start reads only what is still its own.
 */

const leaseLua = (source: string): LuaScript => lua('instance-lease', source);

/**
 * KEYS: lease, instances, adopted marker. ARGV: token, leaseMs, instanceId.
 * Returns {1} when taken, else {0, holder's token, holder's remaining ms (PTTL)}. A fresh start reads its journal
 * after this, so an older adoption marker no longer concerns it.
 */
const TAKE = leaseLua(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  redis.call('SADD', KEYS[2], ARGV[3])
  redis.call('DEL', KEYS[3])
  return {1}
end
return {0, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}
`);

/**
 * KEYS: lease, instances, adopted marker. ARGV: token, leaseMs, instanceId.
 * Extends the lease when this token holds it, takes it again when it is free (it expired during a Redis outage, or a
 * Redis restart lost it) unless another process adopted jobs from it meanwhile (returns 2), returns 0 when another
 * process holds it.
 */
const RENEW = leaseLua(`
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
if not holder then
  if redis.call('EXISTS', KEYS[3]) == 1 then
    return 2
  end
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[3])
  return 1
end
return 0
`);

/** KEYS: lease. ARGV: token. Deletes the lease only while this token holds it. */
const RELEASE = leaseLua(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`);

const int = z.coerce.number().int();
const takeReply = z.union([z.tuple([z.literal(1).or(z.literal('1'))]), z.tuple([int, z.string(), int])]);

/** The process could not take its INSTANCE_ID's lease. The message is for the operator (no secrets). */
export class InstanceLeaseError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'InstanceLeaseError';
  }
}

export function instanceLeaseKey(prefix: string, instanceId: string): string {
  return `${prefix}:instance:${instanceId}`;
}

/** Every INSTANCE_ID that took a lease on this Redis: where adopters look for orphaned journals. */
export function knownInstancesKey(prefix: string): string {
  return `${prefix}:instances`;
}

/** Set when another process adopted jobs from this INSTANCE_ID while its lease was gone. */
export function adoptedMarkerKey(prefix: string, instanceId: string): string {
  return `${prefix}:instance-adopted:${instanceId}`;
}

/** How long a lease lives without renewal unless configured: then its jobs are adopted by the live processes. */
export const DEFAULT_LEASE_MS = 60_000;
/** Renewals at most this far apart, so a second process with the same INSTANCE_ID is refused quickly. */
const MAX_RENEW_EVERY_MS = 10_000;

export interface InstanceLeaseOptions {
  client: RedisCommandSender;
  /** The storage namespace. */
  keyPrefix: string;
  instanceId: string;
  logger: Logger;
  clock?: Clock;
  /**
   * How long the lease lives without renewal: how long a restart after a crash may wait, and how long a dead
   * process's jobs wait before live processes adopt them. Default 60 s.
   */
  leaseMs?: number;
  /** Default a third of the lease, at most 10 s. */
  renewEveryMs?: number;
  /** How often a process waiting for a previous holder's lease looks again. Default 1 s. */
  pollMs?: number;
}

/**
 * Redis only. SQLite and memory stores are single-process already (SQLite's credit operations rely on an in-process
 * mutex, memory is the process itself): they need no lease, and this returns undefined.
 */
export async function acquireInstanceLease(
  storage: Storage,
  opts: Omit<InstanceLeaseOptions, 'client' | 'keyPrefix'>,
): Promise<InstanceLease | undefined> {
  if (storage.kind !== 'redis') return undefined;
  if (storage.redis === undefined) throw new Error('Redis storage without a Redis connection');
  return InstanceLease.acquire({ ...opts, client: storage.redis, keyPrefix: storage.namespace });
}

export class InstanceLease {
  readonly #client: RedisCommandSender;
  readonly #key: string;
  readonly #instancesKey: string;
  readonly #markerKey: string;
  readonly #token: string;
  readonly #instanceId: string;
  readonly #logger: Logger;
  readonly #leaseMs: number;
  readonly #clock: Clock;
  readonly #renewEveryMs: number;
  /** When the last renewal (or the take) that Redis confirmed was sent: the key lives at least a lease from then. */
  #confirmedAt: number;
  #lostNow = false;
  #timer: NodeJS.Timeout | undefined;
  #renewing = false;
  #failing = false;
  #released = false;
  #resolveLost!: () => void;
  /** Resolves if another process took the lease (this one must stop); never once released. */
  readonly lost: Promise<void> = new Promise((resolve) => (this.#resolveLost = resolve));

  private constructor(opts: InstanceLeaseOptions, token: string, leaseMs: number, renewEveryMs: number, clock: Clock) {
    this.#client = opts.client;
    this.#key = instanceLeaseKey(opts.keyPrefix, opts.instanceId);
    this.#instancesKey = knownInstancesKey(opts.keyPrefix);
    this.#markerKey = adoptedMarkerKey(opts.keyPrefix, opts.instanceId);
    this.#token = token;
    this.#instanceId = opts.instanceId;
    this.#logger = opts.logger;
    this.#leaseMs = leaseMs;
    this.#clock = clock;
    this.#renewEveryMs = renewEveryMs;
    this.#confirmedAt = clock.now();
  }

  /**
   * Takes the lease. While another token holds it, waits: if that lease expires, its process is gone (a crash) and
   * this one takes over; if it is renewed (or taken by yet another process), a live process holds this INSTANCE_ID
   * and this rejects with an InstanceLeaseError. A live holder is recognised within one renewal interval.
   */
  static async acquire(opts: InstanceLeaseOptions): Promise<InstanceLease> {
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    const renewEveryMs = opts.renewEveryMs ?? Math.min(MAX_RENEW_EVERY_MS, Math.floor(leaseMs / 3));
    const pollMs = opts.pollMs ?? 1_000;
    if (!Number.isInteger(leaseMs) || leaseMs < 1) throw new RangeError('leaseMs must be a positive integer');
    if (!(renewEveryMs > 0 && renewEveryMs < leaseMs)) {
      throw new RangeError('renewEveryMs must be positive and shorter than the lease');
    }
    const clock = opts.clock ?? systemClock;
    const token = `${hostname()}/${process.pid}/${randomUUID()}`;
    const lease = new InstanceLease(opts, token, leaseMs, renewEveryMs, clock);
    const name = `INSTANCE_ID "${opts.instanceId}"`;
    let seen: { holder: string; ttl: number } | undefined;
    let sentAt = clock.now();
    for (;;) {
      let reply: z.infer<typeof takeReply>;
      sentAt = clock.now();
      try {
        reply = takeReply.parse(
          await runLua(opts.client, TAKE, lease.#keys(), [token, String(leaseMs), opts.instanceId]),
        );
      } catch (error) {
        throw new InstanceLeaseError(`${name}: could not take its lease on Redis (${reasonOf(error)})`, { cause: error });
      }
      if (reply.length === 1) break;
      const [, holder, ttl] = reply;
      // It expired between the two calls: try again at once.
      if (holder === '') continue;
      if (ttl < 0 || (seen !== undefined && (holder !== seen.holder || ttl > seen.ttl))) {
        throw new InstanceLeaseError(
          `${name} is in use by another running bot process on this Redis (${describeHolder(holder)}). ` +
            'Each process sharing a Redis needs its own INSTANCE_ID: stop the other process or give this one another.',
        );
      }
      if (seen === undefined) {
        opts.logger.warn(
          { instance: opts.instanceId, holder: describeHolder(holder), expiresInMs: ttl },
          `${name} is held on this Redis by another process: waiting up to ${Math.ceil(ttl / 1000)} s for its lease ` +
            'to expire (a process that crashed) or be renewed (a process still running: then this one stops)',
        );
      }
      seen = { holder, ttl };
      await clock.sleep(Math.min(pollMs, ttl + 1));
    }
    lease.#confirmedAt = sentAt;
    opts.logger.info({ instance: opts.instanceId, leaseMs }, `${name} lease taken`);
    lease.#timer = setInterval(() => void lease.renew(), renewEveryMs);
    lease.#timer.unref();
    return lease;
  }

  /**
   * Extends the lease (taking it again if it lapsed and nobody else took it). False when another process holds it:
   * then `lost` resolves and renewal stops. A Redis error is logged and retried at the next interval.
   */
  async renew(): Promise<boolean> {
    if (this.#released || this.#renewing) return !this.#released;
    this.#renewing = true;
    const sentAt = this.#clock.now();
    try {
      const reply = int.parse(
        await runLua(this.#client, RENEW, this.#keys(), [this.#token, String(this.#leaseMs), this.#instanceId]),
      );
      const held = reply === 1;
      this.#failing = false;
      if (held) this.#confirmedAt = sentAt;
      if (!held && !this.#released) {
        this.#stopRenewing();
        this.#logger.error(
          { instance: this.#instanceId },
          reply === 2
            ? `INSTANCE_ID "${this.#instanceId}" lease lapsed and another process adopted its unfinished jobs: this process stops (a restart resumes only what is still its own)`
            : `INSTANCE_ID "${this.#instanceId}" lease was taken by another process: this process stops`,
        );
        this.#lostNow = true;
        this.#resolveLost();
      }
      return held;
    } catch (error) {
      // Redis outages are logged by the connection; one line here says what is at stake.
      if (!this.#failing) {
        this.#failing = true;
        this.#logger.warn({ err: error, instance: this.#instanceId }, 'could not renew the INSTANCE_ID lease; retrying');
      }
      return true;
    } finally {
      this.#renewing = false;
    }
  }

  /**
   * Whether this process still owns its journal, asked before a step that must happen once fleet-wide (posting a
   * result, settling its credits). Answers at once while the last confirmed renewal leaves more than a renewal
   * interval of lease (the normal case: no Redis call). Otherwise (Redis unreachable for most of a lease) another
   * process may be adopting this one's jobs: waits for the next renewal's answer — true once Redis confirms the lease,
   * false if another process adopted from it (or took it) or when `signal` aborts. Never rejects.
   */
  async confirm(signal?: AbortSignal): Promise<boolean> {
    const margin = Math.max(this.#renewEveryMs, 1);
    for (;;) {
      if (this.#lostNow || this.#released) return false;
      if (this.#clock.now() < this.#confirmedAt + this.#leaseMs - margin) return true;
      if (signal?.aborted) return false;
      await this.renew();
      if (this.#lostNow || this.#released) return false;
      if (this.#clock.now() < this.#confirmedAt + this.#leaseMs - margin) return true;
      await this.#clock.sleep(Math.min(1_000, margin));
    }
  }

  /** On a clean shutdown: the next process with this INSTANCE_ID may start at once. Never rejects. */
  async release(): Promise<void> {
    if (this.#released) return;
    this.#released = true;
    this.#stopRenewing();
    try {
      await runLua(this.#client, RELEASE, [this.#key], [this.#token]);
    } catch (error) {
      this.#logger.warn({ err: error, instance: this.#instanceId }, 'could not release the INSTANCE_ID lease; it expires');
    }
  }

  get instanceId(): string {
    return this.#instanceId;
  }

  get leaseMs(): number {
    return this.#leaseMs;
  }

  #keys(): string[] {
    return [this.#key, this.#instancesKey, this.#markerKey];
  }

  #stopRenewing(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}

/** `host/pid/uuid` → "pid 123 on host worker-1" (the uuid says nothing to an operator). */
function describeHolder(token: string): string {
  const [host, pid] = token.split('/');
  return host && pid ? `pid ${pid} on host ${host}` : 'unknown process';
}
