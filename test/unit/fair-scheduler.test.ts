import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { FairScheduler, type JobProgress } from '../../src/services/queue/fair-scheduler.js';
import type { LimiterPermit, SegmindLimiter } from '../../src/services/queue/segmind-limiter.js';

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
    expect(seen.at(-1)).toEqual({ phase: 'queued', imagesAhead: 0 });
    const seenC: JobProgress[] = [];
    job('c', 'carol', 1, seenC);
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
});
