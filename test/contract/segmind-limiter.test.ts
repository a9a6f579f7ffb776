import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { systemClock, type Clock } from '../../src/clock.js';
import { createSegmindLimiter } from '../../src/services/generation/create-segmind-limiter.js';
import { LocalLimiter } from '../../src/services/generation/local-limiter.js';
import { RedisLimiter, redisLimiterKeys } from '../../src/services/generation/redis-limiter.js';
import {
  LimiterClosedError,
  type LimiterOptions,
  type LimiterTimers,
  type SegmindLimiter,
} from '../../src/services/generation/segmind-limiter.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import {
  REDIS_URL,
  TcpProxy,
  deleteRedisKeys,
  describeWithRedis,
  listRedisKeys,
  redisTestNamespace,
  withRedisClient,
} from '../support/redis.js';

const silent = pino({ level: 'silent' });
const ROOT = resolve(import.meta.dirname, '../..');
const T0 = Date.UTC(2025, 0, 1, 12);

type MakeOptions = { concurrency: number } & Partial<Omit<LimiterOptions, 'concurrency' | 'clock' | 'logger'>>;

/** Observes a promise without awaiting it. */
function track<T>(promise: Promise<T>) {
  const state = { settled: false, value: undefined as T | undefined, error: undefined as unknown, promise };
  promise.then(
    (value) => Object.assign(state, { settled: true, value }),
    (error: unknown) => Object.assign(state, { settled: true, error }),
  );
  return state;
}

/** Lets every pending promise callback and I/O callback run (no timers involved). */
const flush = () => new Promise<void>((r) => setImmediate(r));

/** Short async "Segmind call". */
const work = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls until `fn` succeeds or the deadline passes (then its last error is thrown). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/** A clock and one-shot timers that move only when the test says so. */
class FakeTime {
  #now: number;
  #timers: Array<{ at: number; fn: () => void }> = [];

  constructor(start: number) {
    this.#now = start;
  }

  readonly clock: Clock = {
    now: () => this.#now,
    sleep: (ms, signal) =>
      new Promise<void>((resolveSleep, reject) => {
        if (signal?.aborted) return reject(signal.reason as Error);
        const cancel = this.timers.schedule(resolveSleep, ms);
        signal?.addEventListener('abort', () => (cancel(), reject(signal.reason as Error)), { once: true });
      }),
  };

  readonly timers: LimiterTimers = {
    schedule: (fn, ms) => {
      const timer = { at: this.#now + ms, fn };
      this.#timers.push(timer);
      return () => {
        this.#timers = this.#timers.filter((t) => t !== timer);
      };
    },
  };

  /** Delays of the timers still pending, from now. */
  pendingDelays(): number[] {
    return this.#timers.map((t) => t.at - this.#now);
  }

  advance(ms: number): void {
    this.#now += ms;
    for (;;) {
      const due = this.#timers.filter((t) => t.at <= this.#now).sort((a, b) => a.at - b.at)[0];
      if (!due) return;
      this.#timers = this.#timers.filter((t) => t !== due);
      due.fn();
    }
  }
}

/**
 * The behaviour every limiter owes its callers. `make` builds a fresh limiter (its own keys, on Redis); the suite
 * closes it afterwards.
 */
function runLimiterContract(name: string, make: (opts: MakeOptions) => Promise<SegmindLimiter>) {
  describe(`Segmind limiter contract: ${name}`, () => {
    const opened: SegmindLimiter[] = [];
    const open = async (opts: MakeOptions) => {
      const limiter = await make(opts);
      opened.push(limiter);
      return limiter;
    };

    afterEach(async () => {
      await Promise.all(opened.splice(0).map((l) => l.close()));
    });

    it('never holds more than `concurrency` permits at once under 50 concurrent acquirers', async () => {
      const limiter = await open({ concurrency: 4 });
      let current = 0;
      let max = 0;
      const inFlightSeen: number[] = [];
      await Promise.all(
        Array.from({ length: 50 }, async (_, i) => {
          const permit = await limiter.acquire();
          current += 1;
          max = Math.max(max, current);
          try {
            await work(1 + (i % 3));
            if (i % 5 === 0) inFlightSeen.push(await limiter.inFlight());
          } finally {
            current -= 1;
            await permit.release();
          }
        }),
      );
      expect(max).toBe(4);
      expect(Math.max(...inFlightSeen)).toBeLessThanOrEqual(4);
      expect(Math.min(...inFlightSeen)).toBeGreaterThanOrEqual(1);
      expect(await limiter.inFlight()).toBe(0);
    });

    it('wakes a waiter as soon as a permit is released (not at the next poll)', async () => {
      const limiter = await open({ concurrency: 2, pollMs: 5_000 });
      const held = [await limiter.acquire(), await limiter.acquire()];
      const waiter = track(limiter.acquire());
      await limiter.inFlight(); // after the waiter's first attempt on the same connection
      await flush();
      expect(waiter.settled).toBe(false);

      const releasedAt = performance.now();
      await held[0]?.release();
      const permit = await waiter.promise;
      expect(performance.now() - releasedAt).toBeLessThan(1_000); // a poll would take 2.5–7.5 s
      expect(await limiter.inFlight()).toBe(2);
      await Promise.all([permit.release(), held[1]?.release()]);
      expect(await limiter.inFlight()).toBe(0);
    });

    it('treats release as idempotent: releasing twice, or late, frees nothing held by someone else', async () => {
      const limiter = await open({ concurrency: 1 });
      const first = await limiter.acquire();
      await Promise.all([first.release(), first.release()]);
      await first.release();
      expect(await limiter.inFlight()).toBe(0);

      const second = await limiter.acquire();
      await first.release();
      expect(await limiter.inFlight()).toBe(1);
      const third = track(limiter.acquire());
      await limiter.inFlight();
      await flush();
      expect(third.settled).toBe(false);

      await second.release();
      const permit = await third.promise;
      expect(permit.id).not.toBe(second.id);
      await permit.release();
      expect(await limiter.inFlight()).toBe(0);
    });

    it('rejects a waiter aborted while waiting with the signal reason, and leaks no slot', async () => {
      const limiter = await open({ concurrency: 1 });
      const holder = await limiter.acquire();
      const controller = new AbortController();
      const reason = new Error('the user gave up');
      const aborted = limiter.acquire(controller.signal);
      const behind = track(limiter.acquire());
      await limiter.inFlight();
      await flush();

      controller.abort(reason);
      await expect(aborted).rejects.toBe(reason);
      const already = new Error('aborted before asking');
      await expect(limiter.acquire(AbortSignal.abort(already))).rejects.toBe(already);
      expect(await limiter.inFlight()).toBe(1);

      await holder.release();
      const next = await behind.promise;
      expect(await limiter.inFlight()).toBe(1);
      await next.release();
      expect(await limiter.inFlight()).toBe(0);
    });

    it('leaks no slot when many waiters abort at arbitrary moments while others come and go', async () => {
      const limiter = await open({ concurrency: 2 });
      const outcomes = await Promise.allSettled(
        Array.from({ length: 30 }, async (_, i) => {
          const controller = new AbortController();
          if (i % 2 === 0) {
            // Abort at different moments: at once, after a tick, after a little I/O.
            if (i % 3 === 0) queueMicrotask(() => controller.abort(new Error('gave up')));
            else setTimeout(() => controller.abort(new Error('gave up')), i % 4);
          }
          const permit = await limiter.acquire(controller.signal);
          try {
            await work(1);
          } finally {
            await permit.release();
          }
        }),
      );
      expect(outcomes.filter((o) => o.status === 'fulfilled').length).toBeGreaterThanOrEqual(15);
      expect(await limiter.inFlight()).toBe(0);
      // Both slots are really free: two permits at once, without waiting for any lease to expire.
      const both = await Promise.all([
        limiter.acquire(AbortSignal.timeout(2_000)),
        limiter.acquire(AbortSignal.timeout(2_000)),
      ]);
      expect(await limiter.inFlight()).toBe(2);
      await Promise.all(both.map((p) => p.release()));
    });

    it('rejects waiters and new acquires once closed', async () => {
      const limiter = await open({ concurrency: 1 });
      const holder = await limiter.acquire();
      const waiting = limiter.acquire();
      await limiter.close();
      await expect(waiting).rejects.toBeInstanceOf(LimiterClosedError);
      await expect(limiter.acquire()).rejects.toBeInstanceOf(LimiterClosedError);
      await holder.release();
    });
  });
}

describe('createSegmindLimiter', () => {
  it('keeps the limits in the process for memory storage', async () => {
    const storage = await openStorage('memory://', { logger: silent });
    const limiter = createSegmindLimiter(storage, { concurrency: 4, rpm: 0, clock: systemClock, logger: silent });
    expect(limiter).toBeInstanceOf(LocalLimiter);
    await limiter.close();
    await storage.close();
  });

  it('refuses limits that make no sense', async () => {
    const storage = await openStorage('memory://', { logger: silent });
    const make = (concurrency: number, rpm: number) =>
      createSegmindLimiter(storage, { concurrency, rpm, clock: systemClock, logger: silent });
    expect(() => make(0, 0)).toThrow(RangeError);
    expect(() => make(1.5, 0)).toThrow(RangeError);
    expect(() => make(1, -1)).toThrow(RangeError);
    await storage.close();
  });
});

describe('local limiter', () => {
  let storage: Storage;
  beforeAll(async () => {
    storage = await openStorage('memory://', { logger: silent });
  });
  afterAll(async () => {
    await storage.close();
  });

  runLimiterContract('local', (opts) =>
    Promise.resolve(createSegmindLimiter(storage, { rpm: 0, clock: systemClock, logger: silent, ...opts })),
  );

  it('hands out permits in arrival order', async () => {
    const limiter = createSegmindLimiter(storage, { concurrency: 1, rpm: 0, clock: systemClock, logger: silent });
    const holder = await limiter.acquire();
    const order: number[] = [];
    const waiters = [0, 1, 2, 3].map((i) =>
      limiter.acquire().then(async (permit) => {
        order.push(i);
        await permit.release();
      }),
    );
    await holder.release();
    await Promise.all(waiters);
    expect(order).toEqual([0, 1, 2, 3]);
    await limiter.close();
  });

  it('starts the 6th call of a window exactly when the oldest start leaves the window (rpm 5)', async () => {
    const time = new FakeTime(T0);
    const limiter = createSegmindLimiter(storage, {
      concurrency: 10,
      rpm: 5,
      clock: time.clock,
      timers: time.timers,
      logger: silent,
    });
    for (let i = 0; i < 5; i++) {
      const permit = await limiter.acquire(); // starts at T0, T0+1s, … T0+4s; released at once
      await permit.release();
      time.advance(1_000);
    }
    const sixth = track(limiter.acquire());
    await flush();
    expect(sixth.settled).toBe(false); // releasing gives no rpm budget back
    expect(time.pendingDelays()).toEqual([55_000]); // T0+60s − (T0+5s)

    time.advance(54_999);
    await flush();
    expect(sixth.settled).toBe(false);
    time.advance(1);
    await flush();
    expect(sixth.settled).toBe(true);

    // The 7th waits for the second start (T0+1s) to leave; an abort cancels its timer.
    const controller = new AbortController();
    const seventh = limiter.acquire(controller.signal);
    expect(time.pendingDelays()).toEqual([1_000]);
    controller.abort(new Error('gave up'));
    await expect(seventh).rejects.toThrow('gave up');
    expect(time.pendingDelays()).toEqual([]);
    await sixth.value?.release();
    await limiter.close();
  });

  it('re-arms the window timer when it fires before the clock reaches the wake-up time', async () => {
    const time = new FakeTime(T0);
    let fire: (() => void) | undefined;
    const early: LimiterTimers = {
      schedule: (fn, ms) => {
        fire = fn;
        return time.timers.schedule(fn, ms);
      },
    };
    const limiter = createSegmindLimiter(storage, {
      concurrency: 1,
      rpm: 1,
      clock: time.clock,
      timers: early,
      logger: silent,
    });
    await (await limiter.acquire()).release();
    const second = track(limiter.acquire());
    time.advance(30_000);
    fire?.(); // a real timer firing a little early
    await flush();
    expect(second.settled).toBe(false);
    expect(time.pendingDelays()).toContain(30_000);
    time.advance(30_000);
    await flush();
    expect(second.settled).toBe(true);
    await limiter.close();
  });

  it('waits for both limits: a free window does not help while every slot is taken', async () => {
    const time = new FakeTime(T0);
    const limiter = createSegmindLimiter(storage, {
      concurrency: 1,
      rpm: 5,
      clock: time.clock,
      timers: time.timers,
      logger: silent,
    });
    const holder = await limiter.acquire();
    const next = track(limiter.acquire());
    time.advance(120_000);
    await flush();
    expect(next.settled).toBe(false);
    expect(time.pendingDelays()).toEqual([]); // nothing to wake: the release will
    await holder.release();
    await flush();
    expect(next.settled).toBe(true);
    await limiter.close();
  });
});

describeWithRedis('redis limiter', () => {
  let storage: Storage;
  let secondStorage: Storage;
  const limiters: SegmindLimiter[] = [];
  const makeOn = (on: Storage, opts: MakeOptions & { keyPrefix: string }) => {
    const limiter = createSegmindLimiter(on, { rpm: 0, clock: systemClock, logger: silent, ...opts });
    limiters.push(limiter);
    return limiter;
  };

  beforeAll(async () => {
    // Two connections, as two bot processes would have.
    storage = await openStorage(REDIS_URL, { logger: silent, namespace: redisTestNamespace() });
    secondStorage = await openStorage(REDIS_URL, { logger: silent, namespace: redisTestNamespace() });
  });

  afterAll(async () => {
    await Promise.all(limiters.map((l) => l.close()));
    await Promise.all([storage.close(), secondStorage.close()]);
    await deleteRedisKeys();
  });

  runLimiterContract('redis', (opts) =>
    Promise.resolve(
      createSegmindLimiter(storage, {
        rpm: 0,
        clock: systemClock,
        logger: silent,
        keyPrefix: redisTestNamespace(),
        ...opts,
      }),
    ),
  );

  it('is the Redis limiter, with hash-tagged keys under the prefix that expire on their own', async () => {
    const keyPrefix = redisTestNamespace();
    const limiter = makeOn(storage, { concurrency: 2, rpm: 10, keyPrefix, leaseMs: 5_000, windowMs: 3_000 });
    expect(limiter).toBeInstanceOf(RedisLimiter);
    const permit = await limiter.acquire();
    const keys = redisLimiterKeys(keyPrefix);
    expect(keys).toEqual({
      holders: `${keyPrefix}:{limiter}:holders`,
      starts: `${keyPrefix}:{limiter}:starts`,
      waiting: `${keyPrefix}:{limiter}:waiting`,
      waitingUntil: `${keyPrefix}:{limiter}:waiting-until`,
      served: `${keyPrefix}:{limiter}:served`,
      turn: `${keyPrefix}:{limiter}:turn`,
    });
    expect(await listRedisKeys(keyPrefix)).toEqual([keys.holders, keys.starts].sort());
    const [holdersTtl, startsTtl] = await withRedisClient((c) =>
      Promise.all([c.pTTL(keys.holders), c.pTTL(keys.starts)]),
    );
    expect(holdersTtl).toBeGreaterThan(0);
    expect(holdersTtl).toBeLessThanOrEqual(5_000);
    expect(startsTtl).toBeGreaterThan(0);
    expect(startsTtl).toBeLessThanOrEqual(3_000);
    await permit.release();
    expect(await withRedisClient((c) => c.zCard(keys.holders))).toBe(0);
    expect(await withRedisClient((c) => c.zCard(keys.starts))).toBe(1); // the start still counts for the window
  });

  it('starts the 6th call only when the oldest start leaves the window (rpm 5, 1 s window, server time)', async () => {
    const limiter = makeOn(storage, { concurrency: 10, rpm: 5, windowMs: 1_000, keyPrefix: redisTestNamespace() });
    const before = Date.now();
    for (let i = 0; i < 5; i++) await (await limiter.acquire()).release();
    const fifthDoneAt = Date.now();
    const sixth = await limiter.acquire(AbortSignal.timeout(5_000));
    const grantedAt = Date.now();
    // Not before the first start (at or after `before`) has left the 1 s window; then within a few polls.
    expect(grantedAt - before).toBeGreaterThanOrEqual(995);
    expect(grantedAt - fifthDoneAt).toBeLessThan(1_500);
    await sixth.release();
  });

  it('keeps the concurrency across two limiters (two processes) on separate connections', async () => {
    const keyPrefix = redisTestNamespace();
    const a = makeOn(storage, { concurrency: 3, keyPrefix });
    const b = makeOn(secondStorage, { concurrency: 3, keyPrefix });
    let current = 0;
    let max = 0;
    const perLimiter = [0, 0];
    await Promise.all(
      Array.from({ length: 40 }, async (_, i) => {
        const permit = await (i % 2 === 0 ? a : b).acquire();
        current += 1;
        max = Math.max(max, current);
        perLimiter[i % 2] = (perLimiter[i % 2] ?? 0) + 1;
        try {
          await work(2);
        } finally {
          current -= 1;
          await permit.release();
        }
      }),
    );
    expect(max).toBe(3);
    expect(perLimiter).toEqual([20, 20]);
    expect(await a.inFlight()).toBe(0);
  });

  it('keeps the concurrency across two real bot processes', async () => {
    const keyPrefix = redisTestNamespace();
    const dir = await mkdtemp(join(tmpdir(), 'flux-limiter-'));
    const outFile = join(dir, 'intervals.jsonl');
    const workers = [0, 1].map(() => startWorker([REDIS_URL, keyPrefix, '3', '25', '4', outFile]));
    try {
      await Promise.all(workers.map((w) => w.ready));
      for (const w of workers) w.go();
      const summaries = await Promise.all(workers.map((w) => w.done));
      expect(summaries).toEqual([
        { done: 25, errors: [] },
        { done: 25, errors: [] },
      ]);
      const intervals = (await readFile(outFile, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { pid: number; start: number; end: number });
      expect(intervals).toHaveLength(50);
      expect(new Set(intervals.map((i) => i.pid)).size).toBe(2);
      expect(maxOverlap(intervals)).toBe(3);
    } finally {
      for (const w of workers) w.kill();
      await rm(dir, { recursive: true, force: true });
    }
  }, 20_000);

  it('frees the slot of a crashed holder once its lease expires, and not before while it is renewed', async () => {
    const keyPrefix = redisTestNamespace();
    const crashed = makeOn(storage, { concurrency: 2, keyPrefix, leaseMs: 400, renewEveryMs: 100 });
    const other = makeOn(secondStorage, { concurrency: 2, keyPrefix });
    await crashed.acquire(); // never released
    const alive = await other.acquire(); // a healthy holder with a 30 s lease keeps the keys themselves alive

    // Renewed every 100 ms, the 400 ms lease outlives 1 s of waiting.
    await expect(other.acquire(AbortSignal.timeout(1_000))).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(await other.inFlight()).toBe(2);

    await crashed.close(); // the renewal stops, as when the process dies
    const closedAt = performance.now();
    const permit = await other.acquire(AbortSignal.timeout(5_000));
    expect(performance.now() - closedAt).toBeLessThan(400 + 500);
    expect(await other.inFlight()).toBe(2);
    await Promise.all([permit.release(), alive.release()]);
  });

  it('fails closed while Redis is unreachable, and grants again once it is back', async () => {
    const proxy = await TcpProxy.start();
    const viaProxy = await openStorage(proxy.url, { logger: silent, namespace: redisTestNamespace() });
    try {
      const limiter = makeOn(viaProxy, { concurrency: 1, keyPrefix: redisTestNamespace() });
      await (await limiter.acquire()).release();
      await proxy.stop();
      await expect(limiter.acquire()).rejects.toThrow();
      await proxy.start();
      const permit = await eventually(() => limiter.acquire());
      await permit.release();
      expect(await limiter.inFlight()).toBe(0);
    } finally {
      await viaProxy.close();
      await proxy.stop();
    }
  });
});

/** The most intervals open at one moment; start and end are points of one global order (Redis INCR). */
function maxOverlap(intervals: Array<{ start: number; end: number }>): number {
  const events = intervals.flatMap((i) => [
    { at: i.start, delta: 1 },
    { at: i.end, delta: -1 },
  ]);
  events.sort((x, y) => x.at - y.at);
  let open = 0;
  let max = 0;
  for (const e of events) {
    open += e.delta;
    max = Math.max(max, open);
  }
  return max;
}

/** Another bot process (tsx) using the limiter; see limiter-worker.ts. */
function startWorker(args: string[]) {
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'test/contract/limiter-worker.ts'), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolveExit(code));
  });
  const ready = new Promise<void>((resolveReady, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith('ready\n')) resolveReady();
    });
    void exited.then((code) => reject(new Error(`worker exited (${code}) before it was ready: ${stderr}`)));
  });
  const done = exited.then((code) => {
    if (code !== 0) throw new Error(`worker exited with ${code}: ${stderr}`);
    const last = stdout.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as { done: number; errors: string[] };
  });
  return { ready, done, go: () => child.stdin.write('go\n'), kill: () => child.kill() };
}
