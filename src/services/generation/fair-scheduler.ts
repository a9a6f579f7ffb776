import { systemClock, type Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { realTimers, type LimiterPermit, type LimiterTimers, type SegmindLimiter } from './segmind-limiter.js';

export type JobProgress =
  | { phase: 'queued'; imagesAhead: number }
  | { phase: 'running'; started: number; finished: number; total: number };

export interface SchedulerJob {
  id: string;
  userId: string;
  /** Number of images: each is one Segmind call, dispatched on its own. */
  tasks: number;
  /** Generates image `index`; a bot-wide limiter permit is held while it runs. Must not throw. */
  runTask(index: number): Promise<void>;
  onProgress?(progress: JobProgress): void;
}

/**
 * How a job ended. `stopped` (shutdown) and `unavailable` (the limiter failed for longer than the outage limit) may
 * come after some images ran: the images not started never will, and `done` settles once the started ones finished.
 */
export type JobEnd = 'finished' | 'cancelled' | 'stopped' | 'unavailable';

export interface JobHandle {
  /** Settles when every task has finished, the job was cancelled before it started, or it was cut short. */
  readonly done: Promise<JobEnd>;
}

export interface SchedulerOptions {
  /** How long the limiter may fail without a break before the waiting jobs are failed closed; 60 s by default. */
  outageLimitMs?: number;
  /** Delay after the first failed attempt, doubled after each further one up to `maxMs` (then jittered). */
  retry?: { minMs: number; maxMs: number };
  clock?: Clock;
  /** Backoff timers (tests fire them by hand); real timers by default. */
  timers?: LimiterTimers;
  random?: () => number;
}

interface Entry {
  job: SchedulerJob;
  dispatched: number;
  finished: number;
  /** Set when the job gets no more images: it ends this way once its running images have finished. */
  cutShort?: 'stopped' | 'unavailable';
  /** When the limiter started failing while this job waited (cleared when it answers again). */
  failingSince?: number;
  resolve(end: JobEnd): void;
}

/** The limiter failing without a break (e.g. Redis gone): logged once when it starts and once when it ends. */
interface Outage {
  since: number;
  attempts: number;
}

/**
 * Dispatches image tasks one at a time, round-robin between users with waiting work, each under a bot-wide permit:
 * a member's 4-image request interleaves with the next member's single image instead of blocking it.
 */
export class FairScheduler {
  /** Waiting and running jobs per user, in arrival order. */
  private readonly queues = new Map<string, Entry[]>();
  private readonly byId = new Map<string, Entry>();
  /** Users with jobs, in the order they are served; `cursor` is who is served next. */
  private ring: string[] = [];
  private cursor = 0;
  private lastServed: string | undefined;
  private pumping = false;
  private stopped = false;
  private readonly stopController = new AbortController();
  private running = 0;
  private idleWaiters: Array<() => void> = [];
  private outage: Outage | undefined;
  private readonly outageLimitMs: number;
  private readonly retry: { minMs: number; maxMs: number };
  private readonly clock: Clock;
  private readonly timers: LimiterTimers;
  private readonly random: () => number;

  constructor(
    private readonly limiter: SegmindLimiter,
    private readonly log: Logger,
    opts: SchedulerOptions = {},
  ) {
    this.outageLimitMs = opts.outageLimitMs ?? 60_000;
    this.retry = opts.retry ?? { minMs: 100, maxMs: 5_000 };
    this.clock = opts.clock ?? systemClock;
    this.timers = opts.timers ?? realTimers;
    this.random = opts.random ?? Math.random;
  }

  /** Jobs of this user that are waiting or running. */
  activeJobs(userId: string): number {
    return this.queues.get(userId)?.length ?? 0;
  }

  /** Who asked for a job that is waiting or running. */
  ownerOf(jobId: string): string | undefined {
    return this.byId.get(jobId)?.job.userId;
  }

  stats(): { jobs: number; tasks: number; running: number } {
    let tasks = 0;
    for (const entries of this.queues.values()) for (const e of entries) tasks += waitingTasks(e);
    return { jobs: this.byId.size, tasks, running: this.running };
  }

  submit(job: SchedulerJob): JobHandle {
    if (this.stopped) return { done: Promise.resolve('stopped') };
    let resolve!: (end: JobEnd) => void;
    const done = new Promise<JobEnd>((r) => (resolve = r));
    const entry: Entry = { job, dispatched: 0, finished: 0, resolve };
    this.byId.set(job.id, entry);
    const queue = this.queues.get(job.userId);
    if (queue) queue.push(entry);
    else {
      this.queues.set(job.userId, [entry]);
      // A newcomer is served before whoever was served last gets another turn, after everyone else waiting.
      const at = this.lastServed === undefined ? -1 : this.ring.indexOf(this.lastServed);
      if (at < 0) this.ring.push(job.userId);
      else {
        this.ring.splice(at, 0, job.userId);
        if (at < this.cursor) this.cursor++;
      }
    }
    this.schedulePositions();
    void this.pump();
    return { done };
  }

  /** Cancels a job that has not started. False once its first image is being generated. */
  cancel(jobId: string): boolean {
    const entry = this.byId.get(jobId);
    if (!entry || entry.dispatched > 0) return false;
    this.remove(entry);
    entry.resolve('cancelled');
    this.schedulePositions();
    return true;
  }

  /**
   * Stops dispatching: every job ends as 'stopped', a job with images running once they have finished (its other
   * images are never started), so shutdown waits for running images only.
   */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort(new Error('scheduler stopped'));
    this.cutShort('stopped');
  }

  /** Resolves when no image is being generated, or after `timeoutMs`; true if idle. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.running === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    const idle = new Promise<boolean>((r) => this.idleWaiters.push(() => r(true)));
    try {
      return await Promise.race([idle, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.stopped && this.hasWaitingTask()) {
        let permit: LimiterPermit;
        try {
          permit = await this.limiter.acquire(this.stopController.signal, () => this.waitingMembers());
        } catch (error) {
          if (this.stopped) return;
          // An offline Redis client rejects at once: retrying without a pause would starve the event loop.
          this.limiterFailed(error);
          await this.backoff();
          continue;
        }
        this.limiterRecovered();
        // Chosen after the permit: the member the fleet-wide limiter granted it for if they still wait, else whoever
        // is next in the ring *now* (cancellations may have happened).
        const next = this.pickNext(permit.member);
        if (!next) {
          await permit.release();
          break;
        }
        this.start(next.entry, next.index, permit);
      }
    } finally {
      this.pumping = false;
    }
  }

  private start(entry: Entry, index: number, permit: LimiterPermit): void {
    this.running++;
    this.report(entry);
    this.schedulePositions();
    void entry.job
      .runTask(index)
      .catch((error: unknown) => this.log.error({ err: error, jobId: entry.job.id }, 'image task crashed'))
      .finally(() => {
        void permit.release();
        this.running--;
        entry.finished++;
        if (!this.endIfDone(entry)) this.report(entry);
        if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        void this.pump();
      });
  }

  /** Ends a job with no image running that will get no more: true if it ended. */
  private endIfDone(entry: Entry): boolean {
    if (entry.finished < entry.dispatched) return false;
    const end = entry.dispatched === entry.job.tasks ? 'finished' : entry.cutShort;
    if (end === undefined) return false;
    this.remove(entry);
    entry.resolve(end);
    return true;
  }

  /** No more images for these jobs: those with none running end now, the others when their running images finish. */
  private cutShort(end: 'stopped' | 'unavailable', entries: Iterable<Entry> = [...this.byId.values()]): void {
    for (const entry of entries) {
      if (entry.cutShort) continue;
      entry.cutShort = end;
      this.endIfDone(entry);
    }
    this.schedulePositions();
  }

  /** Counts a failed attempt; jobs that have waited through `outageLimitMs` of failures are failed closed. */
  private limiterFailed(error: unknown): void {
    const now = this.clock.now();
    if (this.outage === undefined) {
      this.outage = { since: now, attempts: 0 };
      this.log.error({ err: error }, 'Segmind slots unavailable: the limiter is failing; waiting jobs are kept and retried');
    }
    this.outage.attempts++;
    const expired: Entry[] = [];
    for (const entry of this.byId.values()) {
      if (entry.cutShort) continue;
      entry.failingSince ??= now;
      if (now - entry.failingSince >= this.outageLimitMs) expired.push(entry);
    }
    if (expired.length === 0) return;
    this.cutShort('unavailable', expired);
    this.log.error(
      { err: error, jobs: expired.map((e) => e.job.id), outageMs: now - this.outage.since },
      'waiting jobs failed closed: the limiter has been failing for too long',
    );
  }

  private limiterRecovered(): void {
    if (this.outage === undefined) return;
    this.log.info({ attempts: this.outage.attempts, outageMs: this.clock.now() - this.outage.since }, 'Segmind slots available again');
    this.outage = undefined;
    for (const entry of this.byId.values()) delete entry.failingSince;
  }

  /** Exponential backoff with jitter (half fixed, half random), cut short by stop(). */
  private backoff(): Promise<void> {
    const attempts = this.outage?.attempts ?? 1;
    const ceiling = Math.min(this.retry.maxMs, this.retry.minMs * 2 ** Math.min(attempts - 1, 30));
    const delay = Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
    return new Promise<void>((resolve) => {
      const signal = this.stopController.signal;
      if (signal.aborted) return resolve();
      const done = () => {
        signal.removeEventListener('abort', onStop);
        resolve();
      };
      const cancel = this.timers.schedule(done, delay);
      const onStop = () => {
        cancel();
        resolve();
      };
      signal.addEventListener('abort', onStop, { once: true });
    });
  }

  private hasWaitingTask(): boolean {
    for (const entries of this.queues.values()) if (entries.some((e) => waitingTasks(e) > 0)) return true;
    return false;
  }

  /** Users with an image waiting, in the order the ring would serve them. */
  private waitingMembers(): string[] {
    const members: string[] = [];
    for (let i = 0; i < this.ring.length; i++) {
      const user = this.ring[(this.cursor + i) % this.ring.length]!;
      if (this.queues.get(user)!.some((e) => waitingTasks(e) > 0)) members.push(user);
    }
    return members;
  }

  /** `preferred`'s next waiting image if they have one, else the next user's in the ring; and that image. */
  private pickNext(preferred?: string): { entry: Entry; index: number } | undefined {
    const at = preferred === undefined ? -1 : this.ring.indexOf(preferred);
    const entry = at < 0 ? undefined : this.queues.get(preferred!)!.find((e) => waitingTasks(e) > 0);
    if (entry) {
      this.cursor = (at + 1) % this.ring.length;
      this.lastServed = preferred;
      return { entry, index: entry.dispatched++ };
    }
    for (let i = 0; i < this.ring.length; i++) {
      const at = (this.cursor + i) % this.ring.length;
      const entry = this.queues.get(this.ring[at]!)!.find((e) => waitingTasks(e) > 0);
      if (entry) {
        this.cursor = (at + 1) % this.ring.length;
        this.lastServed = this.ring[at];
        return { entry, index: entry.dispatched++ };
      }
    }
    return undefined;
  }

  private remove(entry: Entry): void {
    this.byId.delete(entry.job.id);
    const user = entry.job.userId;
    const rest = (this.queues.get(user) ?? []).filter((e) => e !== entry);
    if (rest.length > 0) {
      this.queues.set(user, rest);
      return;
    }
    this.queues.delete(user);
    if (this.lastServed === user) this.lastServed = undefined;
    const at = this.ring.indexOf(user);
    if (at < 0) return;
    this.ring.splice(at, 1);
    if (at < this.cursor) this.cursor--;
    if (this.cursor >= this.ring.length) this.cursor = 0;
  }

  private report(entry: Entry): void {
    entry.job.onProgress?.({
      phase: 'running',
      started: entry.dispatched,
      finished: entry.finished,
      total: entry.job.tasks,
    });
  }

  private positionsDue = false;

  /** Queue positions are published once per turn of the event loop, however many jobs arrived or started in it. */
  private schedulePositions(): void {
    if (this.positionsDue) return;
    this.positionsDue = true;
    setImmediate(() => {
      this.positionsDue = false;
      this.publishPositions();
    });
  }

  /**
   * Simulates the round-robin once to tell every waiting job how many images will be dispatched before its first:
   * O(waiting images) per change, not per job. Jobs already running are told of their own images only (start and
   * finish): telling each of them on every other job's change made a burst of n jobs cost n² progress updates.
   */
  private publishPositions(): void {
    const users = this.ring;
    if (users.length === 0) return;
    let queued = false;
    for (const entry of this.byId.values()) if (entry.dispatched === 0) queued = true;
    if (!queued) return;
    const pending = users.map((user) => {
      const tasks: Entry[] = [];
      for (const e of this.queues.get(user)!) for (let i = 0; i < waitingTasks(e); i++) tasks.push(e);
      return tasks;
    });
    const start = this.cursor;
    const firstSlot = new Map<Entry, number>();
    let slot = 0;
    let remaining = pending.reduce((n, t) => n + t.length, 0);
    const cursor = pending.map(() => 0);
    while (remaining > 0) {
      for (let i = 0; i < users.length; i++) {
        const u = (start + i) % users.length;
        const tasks = pending[u]!;
        if (cursor[u]! < tasks.length) {
          const entry = tasks[cursor[u]!++]!;
          if (!firstSlot.has(entry)) firstSlot.set(entry, slot);
          slot++;
          remaining--;
        }
      }
    }
    for (const entry of this.byId.values())
      if (entry.dispatched === 0) entry.job.onProgress?.({ phase: 'queued', imagesAhead: firstSlot.get(entry) ?? 0 });
  }
}

/** Images of this job still to be dispatched (none once it is cut short). */
function waitingTasks(entry: Entry): number {
  return entry.cutShort ? 0 : entry.job.tasks - entry.dispatched;
}
