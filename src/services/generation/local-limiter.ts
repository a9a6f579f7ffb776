import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import {
  LimiterClosedError,
  realTimers,
  validateLimits,
  type LimiterPermit,
  type LimiterTimers,
  type SegmindLimiter,
} from './segmind-limiter.js';

export interface LocalLimiterOptions {
  concurrency: number;
  /** Starts allowed in any sliding `windowMs`; 0 = no limit. */
  rpm: number;
  windowMs: number;
  clock: Clock;
  logger: Logger;
  timers?: LimiterTimers;
}

interface Waiter {
  resolve(permit: LimiterPermit): void;
  reject(reason: unknown): void;
  /** Detaches the abort listener. */
  cleanup(): void;
}


/**
 * The limiter of a single bot process (memory or SQLite storage): a semaphore with FIFO waiters, plus a log of the
 * start times inside the sliding window. When only the window is in the way, one timer wakes the queue at the exact
 * moment the oldest start leaves the window (times from the injected clock; the timer re-checks and re-arms if it
 * fires early).
 */
export class LocalLimiter implements SegmindLimiter {
  readonly #concurrency: number;
  readonly #rpm: number;
  readonly #windowMs: number;
  readonly #clock: Clock;
  readonly #logger: Logger;
  readonly #timers: LimiterTimers;
  readonly #held = new Set<string>();
  readonly #waiters: Waiter[] = [];
  /** Start times still inside the window, oldest first. */
  #starts: number[] = [];
  #cancelWake: (() => void) | undefined;
  #closed = false;

  constructor(opts: LocalLimiterOptions) {
    validateLimits(opts);
    this.#concurrency = opts.concurrency;
    this.#rpm = opts.rpm;
    this.#windowMs = opts.windowMs;
    this.#clock = opts.clock;
    this.#logger = opts.logger;
    this.#timers = opts.timers ?? realTimers;
  }

  acquire(signal?: AbortSignal): Promise<LimiterPermit> {
    if (this.#closed) return Promise.reject(new LimiterClosedError());
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<LimiterPermit>((resolve, reject) => {
      const onAbort = () => {
        const index = this.#waiters.indexOf(waiter);
        if (index === -1) return;
        this.#waiters.splice(index, 1);
        reject(signal?.reason as Error);
        // The head may have been the only one the window timer was for.
        this.#pump();
      };
      const waiter: Waiter = { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      this.#pump();
    });
  }

  inFlight(): Promise<number> {
    return Promise.resolve(this.#held.size);
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#cancelWake?.();
    this.#cancelWake = undefined;
    for (const waiter of this.#waiters.splice(0)) {
      waiter.cleanup();
      waiter.reject(new LimiterClosedError());
    }
    return Promise.resolve();
  }

  /** Hands out permits in arrival order while both limits allow; otherwise arms the window timer if it is the cause. */
  #pump(): void {
    this.#cancelWake?.();
    this.#cancelWake = undefined;
    while (!this.#closed && this.#waiters.length > 0) {
      if (this.#held.size >= this.#concurrency) return; // a release pumps again
      const now = this.#clock.now();
      const waitMs = this.#windowWaitMs(now);
      if (waitMs > 0) {
        this.#logger.debug({ waitMs, waiting: this.#waiters.length }, 'Segmind rpm window full, waiting');
        this.#cancelWake = this.#timers.schedule(() => {
          this.#cancelWake = undefined;
          this.#pump();
        }, waitMs);
        return;
      }
      const waiter = this.#waiters.shift();
      if (!waiter) return;
      waiter.cleanup();
      waiter.resolve(this.#grant(now));
    }
  }

  /** 0 when a call may start now; else how long until the oldest start leaves the window. */
  #windowWaitMs(now: number): number {
    if (this.#rpm === 0) return 0;
    const cutoff = now - this.#windowMs;
    if (this.#starts.length > 0 && (this.#starts[0] ?? Infinity) <= cutoff) {
      this.#starts = this.#starts.filter((t) => t > cutoff);
    }
    const oldest = this.#starts[0];
    if (this.#starts.length < this.#rpm || oldest === undefined) return 0;
    // Capped: a clock that stepped backwards must not park the queue for longer than one window.
    return Math.min(oldest + this.#windowMs - now, this.#windowMs);
  }

  #grant(now: number): LimiterPermit {
    const id = randomUUID();
    this.#held.add(id);
    if (this.#rpm > 0) this.#starts.push(now);
    return {
      id,
      release: () => {
        if (this.#held.delete(id)) this.#pump();
        return Promise.resolve();
      },
    };
  }
}
