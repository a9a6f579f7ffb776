import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';

/** The right to make one Segmind call: holds a concurrency slot until released. */
export interface LimiterPermit {
  readonly id: string;
  /**
   * The member this slot was granted for, when the limiter takes turns between members itself (Redis: the member
   * served least recently bot-wide among those the caller offered). Undefined: the caller picks (local limiter).
   */
  readonly member?: string;
  /** Frees the slot. Idempotent; never rejects (a Redis slot that cannot be freed expires with its lease). */
  release(): Promise<void>;
}

/**
 * The bot-wide limit on Segmind calls: at most `concurrency` in flight and at most `rpm` started in any sliding
 * minute, across every bot process sharing the store.
 */
export interface SegmindLimiter {
  /**
   * Resolves when a call may start (a concurrency slot is free AND the minute window has room); the permit holds the
   * slot until released. Rejects with the signal's reason if aborted while waiting (and then holds nothing).
   * `wanting` (asked again at each attempt) lists the members this process has work waiting for, its own turn order
   * first: a fleet-wide limiter uses it to serve members in turn across processes and names the one in the permit.
   */
  acquire(signal?: AbortSignal, wanting?: () => readonly string[]): Promise<LimiterPermit>;
  /** Calls in flight bot-wide right now (for metrics). */
  inFlight(): Promise<number>;
  /** Stops timers and rejects waiters; releases nothing (permits still held stay held, or expire on Redis). */
  close(): Promise<void>;
}

export interface LimiterOptions {
  /** Calls in flight at once, bot-wide (SEGMIND_CONCURRENCY). */
  concurrency: number;
  /** Calls started in any sliding window of `windowMs` (SEGMIND_RPM); 0 = no limit. */
  rpm: number;
  /** Window arithmetic of the local limiter. The Redis limiter uses the Redis server's clock instead. */
  clock: Clock;
  logger: Logger;
  /** The rpm window; 60 000 ms unless a test shortens it. */
  windowMs?: number;
  /** Wake-up timers of the local limiter (tests drive them together with a fake clock); real timers by default. */
  timers?: LimiterTimers;
  /** Redis only: key prefix, normally the storage namespace (default `flux`). Keys are `<prefix>:{limiter}:…`. */
  keyPrefix?: string;
  /** Redis only: how long a held slot survives without renewal (a crashed process's slots free themselves). */
  leaseMs?: number;
  /** Redis only: how often held leases are renewed; a third of the lease by default. */
  renewEveryMs?: number;
  /** Redis only: mean delay between retries while every slot is taken (jittered ±50 %). */
  pollMs?: number;
  /** Redis only: how long a process's place in the fleet-wide turn order outlives its last attempt (a dead one's lapses). */
  waitingTtlMs?: number;
}

/** One-shot timers, injectable so a test can fire them together with a fake clock. Returns a cancel function. */
export interface LimiterTimers {
  schedule(fn: () => void, ms: number): () => void;
}

export const realTimers: LimiterTimers = {
  schedule(fn, ms) {
    const timer = setTimeout(fn, ms);
    return () => clearTimeout(timer);
  },
};

export class LimiterClosedError extends Error {
  constructor() {
    super('The Segmind limiter is closed');
    this.name = 'LimiterClosedError';
  }
}

export function validateLimits(opts: { concurrency: number; rpm: number; windowMs: number }): void {
  if (!Number.isInteger(opts.concurrency) || opts.concurrency < 1) {
    throw new RangeError(`concurrency must be a positive integer, got ${opts.concurrency}`);
  }
  if (!Number.isInteger(opts.rpm) || opts.rpm < 0) throw new RangeError(`rpm must be an integer >= 0, got ${opts.rpm}`);
  if (!Number.isInteger(opts.windowMs) || opts.windowMs < 1) {
    throw new RangeError(`windowMs must be a positive integer, got ${opts.windowMs}`);
  }
}
