import { Writable } from 'node:stream';
import { describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { FairScheduler, type JobProgress } from '../../../src/services/generation/fair-scheduler.js';
import type { LimiterPermit, SegmindLimiter } from '../../../src/services/generation/segmind-limiter.js';

/** A one-slot limiter whose slot the test frees by finishing tasks. */
function oneSlot(): SegmindLimiter {
  let free = 1;
  const waiters: Array<() => void> = [];
  return {
    async acquire(signal) {
      while (free === 0) {
        await new Promise<void>((resolve, reject) => {
          waiters.push(resolve);
          signal?.addEventListener('abort', () => reject(signal.reason as Error), { once: true });
        });
      }
      free--;
      let released = false;
      const permit: LimiterPermit = {
        id: 'p',
        release: () => {
          if (!released) {
            released = true;
            free++;
            waiters.shift()?.();
          }
          return Promise.resolve();
        },
      };
      return permit;
    },
    inFlight: () => Promise.resolve(1 - free),
    close: () => Promise.resolve(),
  };
}

function harness() {
  const order: string[] = [];
  const finishers: Array<() => void> = [];
  const scheduler = new FairScheduler(oneSlot(), createLogger({ level: 'silent', secrets: [] }));
  const job = (id: string, userId: string, tasks: number, progress?: JobProgress[]) =>
    scheduler.submit({
      id,
      userId,
      tasks,
      runTask: (index) =>
        new Promise<void>((resolve) => {
          order.push(`${id}${index}`);
          finishers.push(resolve);
        }),
      onProgress: (p) => progress?.push(p),
    });
  /** Lets the scheduler react (acquire a permit, dispatch). */
  const tick = async () => {
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  /** Finishes the running task and lets the scheduler start the next one. */
  const step = async () => {
    finishers.shift()?.();
    await tick();
  };
  return { scheduler, order, job, step, tick };
}

describe('fair scheduler', () => {
  it('interleaves users round-robin, one image at a time', async () => {
    const { order, job, step, tick } = harness();
    const a = job('a', 'alice', 4);
    await tick(); // alice's first image starts before the others arrive
    const b = job('b', 'bob', 1);
    const c = job('c', 'carol', 2);
    for (let i = 0; i < 7; i++) await step();
    expect(order).toEqual(['a0', 'b0', 'c0', 'a1', 'c1', 'a2', 'a3']);
    await expect(Promise.all([a.done, b.done, c.done])).resolves.toEqual(['finished', 'finished', 'finished']);
  });

  it('tells a waiting job how many images are ahead of it', async () => {
    const { job, step, tick } = harness();
    job('a', 'alice', 3);
    await tick();
    const seen: JobProgress[] = [];
    job('b', 'bob', 1, seen);
    await tick(); // positions are published once per turn of the event loop
    expect(seen.at(-1)).toEqual({ phase: 'queued', imagesAhead: 0 });
    const seenC: JobProgress[] = [];
    job('c', 'carol', 1, seenC);
    await tick();
    expect(seenC.at(-1)).toEqual({ phase: 'queued', imagesAhead: 1 });
    await step();
    expect(seen.at(-1)).toMatchObject({ phase: 'running', total: 1 });
  });

  it('cancels a waiting job but not a started one', async () => {
    const { scheduler, order, job, step, tick } = harness();
    const a = job('a', 'alice', 1);
    await tick();
    const b = job('b', 'bob', 1);
    expect(scheduler.cancel('a')).toBe(false);
    expect(scheduler.cancel('b')).toBe(true);
    await expect(b.done).resolves.toBe('cancelled');
    await step();
    await expect(a.done).resolves.toBe('finished');
    expect(order).toEqual(['a0']);
  });

  it('counts a member’s active jobs and stops queued ones on shutdown', async () => {
    const { scheduler, job, tick } = harness();
    const a1 = job('a1', 'alice', 1);
    await tick();
    const a2 = job('a2', 'alice', 1);
    expect(scheduler.activeJobs('alice')).toBe(2);
    scheduler.stop();
    await expect(a2.done).resolves.toBe('stopped');
    expect(scheduler.activeJobs('alice')).toBe(1);
    void a1;
  });

  it('on shutdown lets a started multi-image job finish its running image, then ends it as stopped without starting the rest', async () => {
    const { scheduler, order, job, step, tick } = harness();
    const a = settles(job('a', 'alice', 2).done);
    await tick();
    expect(order).toEqual(['a0']);
    scheduler.stop();
    await tick();
    expect(a.value).toBeUndefined(); // its first image is still being generated

    await step();
    expect(a.value).toBe('stopped');
    expect(order).toEqual(['a0']);
    expect(scheduler.stats()).toEqual({ jobs: 0, tasks: 0, running: 0 });
  });

  it('on shutdown ends at once a started job waiting for its next turn, while another member’s image finishes', async () => {
    const { scheduler, order, job, step, tick } = harness();
    const a = settles(job('a', 'alice', 2).done);
    await tick();
    const b = settles(job('b', 'bob', 1).done);
    await step(); // a0 done, b0 runs: alice waits for her second image (round-robin)
    expect(order).toEqual(['a0', 'b0']);
    scheduler.stop();
    await tick();
    expect(a.value).toBe('stopped');
    expect(b.value).toBeUndefined();
    await step();
    expect(b.value).toBe('finished');
    expect(order).toEqual(['a0', 'b0']);
  });
});

/** One-shot timers the test fires by hand (the scheduler's backoff between failed limiter attempts). */
function manualTimers() {
  const pending: Array<{ fn: () => void; ms: number }> = [];
  return {
    pending,
    schedule(fn: () => void, ms: number) {
      const timer = { fn, ms };
      pending.push(timer);
      return () => {
        const at = pending.indexOf(timer);
        if (at >= 0) pending.splice(at, 1);
      };
    },
    /** Fires every timer armed so far. */
    fireAll() {
      for (const timer of pending.splice(0)) timer.fn();
    },
  };
}

/**
 * A limiter whose storage can go away: while `down`, acquire rejects at once, as the Redis limiter does when
 * node-redis (with `disableOfflineQueue`) is disconnected. After `spinGuard` failed attempts in a row it stops
 * answering at all, so a scheduler that retries without yielding shows up as a failed assertion instead of a hung test.
 */
function flakyLimiter(spinGuard = 1_000) {
  const state = { down: false, attempts: 0, failedInARow: 0, held: 0, grantsLeft: Infinity };
  const limiter: SegmindLimiter = {
    acquire(signal) {
      state.attempts++;
      if (state.down) {
        state.failedInARow++;
        if (state.failedInARow >= spinGuard) return new Promise<LimiterPermit>(() => undefined);
        return Promise.reject(new Error('The client is closed'));
      }
      if (signal?.aborted) return Promise.reject(signal.reason as Error);
      state.failedInARow = 0;
      state.held++;
      if (--state.grantsLeft <= 0) state.down = true;
      let released = false;
      return Promise.resolve({
        id: `p${state.attempts}`,
        release: () => {
          if (!released) {
            released = true;
            state.held--;
          }
          return Promise.resolve();
        },
      });
    },
    inFlight: () => Promise.resolve(state.held),
    close: () => Promise.resolve(),
  };
  return { limiter, state };
}

function capturedLogger() {
  const lines: Array<{ level: number; msg: string; [key: string]: unknown }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as (typeof lines)[number]);
      done();
    },
  });
  return { lines, logger: createLogger({ level: 'debug', secrets: [], destination }) };
}

const nextMacrotask = () => new Promise<void>((resolve) => setImmediate(resolve));
const settles = <T>(promise: Promise<T>) => {
  const seen: { value?: T } = {};
  void promise.then((value) => (seen.value = value));
  return seen;
};

describe('fair scheduler when the limiter’s storage is down', () => {
  function outageHarness(opts: { hold?: boolean } = {}) {
    const { limiter, state } = flakyLimiter();
    const timers = manualTimers();
    const clock = { at: 0, now: () => clock.at, sleep: () => Promise.resolve() };
    const { lines, logger } = capturedLogger();
    const scheduler = new FairScheduler(limiter, logger, { clock, timers, outageLimitMs: 60_000, random: () => 0.5 });
    const ran: string[] = [];
    const running: Array<() => void> = [];
    const job = (id: string, userId: string, tasks = 1) =>
      scheduler.submit({
        id,
        userId,
        tasks,
        runTask: (index) => {
          ran.push(`${id}${index}`);
          return opts.hold ? new Promise<void>((resolve) => running.push(resolve)) : Promise.resolve();
        },
      });
    /** Finishes the images being generated (with `hold`, they run until this is called). */
    const finishRunning = () => {
      for (const finish of running.splice(0)) finish();
    };
    return { scheduler, state, timers, clock, lines, job, ran, finishRunning };
  }

  it('backs off instead of retrying in a loop: other callbacks run before the limiter is asked 100 times', async () => {
    const { state, job } = outageHarness();
    state.down = true;
    job('a', 'alice');
    await nextMacrotask();
    expect(state.attempts).toBeLessThan(100);
    expect(state.attempts).toBeGreaterThanOrEqual(1);
  });

  it('waits longer after each failure, with jitter, up to a few seconds', async () => {
    const { state, timers, job } = outageHarness();
    state.down = true;
    job('a', 'alice');
    const delays: number[] = [];
    for (let i = 0; i < 10; i++) {
      await nextMacrotask();
      expect(timers.pending).toHaveLength(1);
      delays.push(timers.pending[0]!.ms);
      timers.fireAll();
    }
    for (let i = 1; i < delays.length; i++) expect(delays[i]).toBeGreaterThanOrEqual(delays[i - 1]!);
    expect(delays[0]).toBeLessThan(500);
    expect(Math.max(...delays)).toBeLessThanOrEqual(5_000);
    expect(delays.at(-1)).toBeGreaterThanOrEqual(2_000);
    expect(state.attempts).toBe(10);
  });

  it('keeps the queue while the limiter fails and runs it once the limiter is back, logging the outage once and the recovery once', async () => {
    const { scheduler, state, timers, clock, lines, job, ran } = outageHarness();
    state.down = true;
    const a = settles(job('a', 'alice', 2).done);
    const b = settles(job('b', 'bob').done);
    for (let i = 0; i < 5; i++) {
      await nextMacrotask();
      clock.at += 1_000;
      timers.fireAll();
    }
    await nextMacrotask();
    expect(ran).toEqual([]);
    expect(scheduler.stats()).toEqual({ jobs: 2, tasks: 3, running: 0 });
    expect(a.value).toBeUndefined();

    state.down = false;
    timers.fireAll();
    await vi.waitFor(() => expect(b.value).toBe('finished'));
    await vi.waitFor(() => expect(a.value).toBe('finished'));
    expect(ran.sort()).toEqual(['a0', 'a1', 'b0']);
    const errors = lines.filter((l) => l.level >= 50);
    expect(errors.map((l) => l.msg)).toEqual(['Segmind slots unavailable: the limiter is failing; waiting jobs are kept and retried']);
    expect(lines.filter((l) => l.msg === 'Segmind slots available again')).toEqual([
      expect.objectContaining({ level: 30, attempts: 6 }),
    ]);
  });

  it('fails the waiting jobs closed once the limiter has failed without a break for the outage limit', async () => {
    const { scheduler, state, timers, clock, lines, job, ran } = outageHarness();
    state.down = true;
    const a = settles(job('a', 'alice').done);
    const b = settles(job('b', 'bob', 4).done);
    await nextMacrotask();
    clock.at += 59_999;
    timers.fireAll();
    await nextMacrotask();
    expect([a.value, b.value]).toEqual([undefined, undefined]); // not yet: 1 ms short of the limit

    clock.at += 1;
    timers.fireAll();
    await vi.waitFor(() => expect([a.value, b.value]).toEqual(['unavailable', 'unavailable']));
    expect(ran).toEqual([]);
    expect(scheduler.stats()).toEqual({ jobs: 0, tasks: 0, running: 0 });
    expect(lines.filter((l) => l.level >= 50).map((l) => l.msg)).toEqual([
      'Segmind slots unavailable: the limiter is failing; waiting jobs are kept and retried',
      'waiting jobs failed closed: the limiter has been failing for too long',
    ]);

    // Later jobs get their own full outage limit, and run when the limiter is back.
    const c = settles(job('c', 'carol').done);
    await nextMacrotask();
    clock.at += 1_000;
    timers.fireAll();
    await nextMacrotask();
    expect(c.value).toBeUndefined();
    state.down = false;
    timers.fireAll();
    await vi.waitFor(() => expect(c.value).toBe('finished'));
  });

  it('ends a started job cut short by the outage once its running image is done, without starting the rest', async () => {
    const { state, timers, clock, job, ran, finishRunning } = outageHarness({ hold: true });
    state.grantsLeft = 1; // the storage goes away right after the first image got its slot
    const a = settles(job('a', 'alice', 3).done);
    await nextMacrotask();
    expect(ran).toEqual(['a0']);
    clock.at += 60_000;
    timers.fireAll();
    await nextMacrotask();
    expect(a.value).toBeUndefined(); // its first image is still being generated

    finishRunning();
    await vi.waitFor(() => expect(a.value).toBe('unavailable'));
    expect(ran).toEqual(['a0']);
  });

  it('stops retrying at once when the scheduler is stopped during an outage', async () => {
    const { scheduler, state, timers, job } = outageHarness();
    state.down = true;
    const a = settles(job('a', 'alice').done);
    await nextMacrotask();
    scheduler.stop();
    await vi.waitFor(() => expect(a.value).toBe('stopped'));
    expect(timers.pending).toEqual([]);
  });
});

describe('fair scheduler under a fleet-wide limiter', () => {
  /** Grants at once, for the member a fleet-wide turn order chose: the last one offered (not the ring's next). */
  function fleetLimiter() {
    const offers: string[][] = [];
    const limiter: SegmindLimiter = {
      acquire(_signal, wanting) {
        const offered = [...(wanting?.() ?? [])];
        offers.push(offered);
        const member = offered.at(-1);
        return Promise.resolve({ id: 'p', ...(member === undefined ? {} : { member }), release: () => Promise.resolve() });
      },
      inFlight: () => Promise.resolve(0),
      close: () => Promise.resolve(),
    };
    return { limiter, offers };
  }

  it('offers its waiting members in ring order and serves the member the limiter names', async () => {
    const { limiter, offers } = fleetLimiter();
    const scheduler = new FairScheduler(limiter, createLogger({ level: 'silent', secrets: [] }));
    const order: string[] = [];
    const gates: Array<() => void> = [];
    const job = (id: string, userId: string, tasks: number) =>
      scheduler.submit({
        id,
        userId,
        tasks,
        runTask: (index) => new Promise<void>((resolve) => (order.push(`${id}${index}`), gates.push(resolve))),
      });
    job('a', 'alice', 2);
    job('b', 'bob', 1);
    job('c', 'carol', 1);
    await vi.waitFor(() => expect(order).toHaveLength(4));
    // alice came first and was offered alone; then the ring's order from its cursor, and the limiter (naming the last
    // offered) overrode the ring, which would have served bob second
    expect(offers).toEqual([['alice'], ['bob', 'carol', 'alice'], ['bob', 'carol'], ['bob']]);
    expect(order).toEqual(['a0', 'a1', 'c0', 'b0']);
    for (const open of gates) open();
    scheduler.stop();
  });
});

describe('fair scheduler: the cost of a burst', () => {
  it('tells each running job of its own images only, so n jobs at once cost O(n) progress updates, not n²', async () => {
    const unlimited: SegmindLimiter = {
      acquire: () => Promise.resolve({ id: 'p', release: () => Promise.resolve() }),
      inFlight: () => Promise.resolve(0),
      close: () => Promise.resolve(),
    };
    const scheduler = new FairScheduler(unlimited, createLogger({ level: 'silent', secrets: [] }));
    const n = 200;
    const finishers: Array<() => void> = [];
    const updates = new Map<string, JobProgress[]>();
    const jobs = Array.from({ length: n }, (_, i) => {
      const progress: JobProgress[] = [];
      updates.set(`j${i}`, progress);
      return scheduler.submit({
        id: `j${i}`,
        userId: `u${i}`,
        tasks: 1,
        runTask: () => new Promise<void>((resolve) => finishers.push(resolve)),
        onProgress: (p) => progress.push(p),
      });
    });
    await vi.waitFor(() => expect(finishers).toHaveLength(n));
    for (const finish of finishers) finish();
    await Promise.all(jobs.map((job) => job.done));
    const total = [...updates.values()].reduce((sum, list) => sum + list.length, 0);
    expect(total).toBeLessThanOrEqual(3 * n);
    // each job still hears that its image started
    for (const list of updates.values()) expect(list).toContainEqual({ phase: 'running', started: 1, finished: 0, total: 1 });
  });
});
