import type { Logger } from '../../logger.js';
import type { LimiterPermit, SegmindLimiter } from './segmind-limiter.js';

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

export type JobEnd = 'finished' | 'cancelled' | 'stopped';

export interface JobHandle {
  /** Settles when every task has finished, the job was cancelled before it started, or the scheduler stopped first. */
  readonly done: Promise<JobEnd>;
}

interface Entry {
  job: SchedulerJob;
  dispatched: number;
  finished: number;
  resolve(end: JobEnd): void;
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

  constructor(
    private readonly limiter: SegmindLimiter,
    private readonly log: Logger,
  ) {}

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
    for (const entries of this.queues.values()) for (const e of entries) tasks += e.job.tasks - e.dispatched;
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
    this.publishPositions();
    void this.pump();
    return { done };
  }

  /** Cancels a job that has not started. False once its first image is being generated. */
  cancel(jobId: string): boolean {
    const entry = this.byId.get(jobId);
    if (!entry || entry.dispatched > 0) return false;
    this.remove(entry);
    entry.resolve('cancelled');
    this.publishPositions();
    return true;
  }

  /** Stops dispatching: queued jobs end as 'stopped' (they stay journaled), running images may finish. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopController.abort(new Error('scheduler stopped'));
    for (const entry of [...this.byId.values()]) {
      if (entry.dispatched === 0) {
        this.remove(entry);
        entry.resolve('stopped');
      }
    }
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
          permit = await this.limiter.acquire(this.stopController.signal);
        } catch (error) {
          if (!this.stopped) this.log.error({ err: error }, 'could not get a Segmind slot');
          if (!this.stopped) continue;
          return;
        }
        // Chosen after the permit: whoever is next in the ring *now* gets it (cancellations may have happened).
        const next = this.pickNext();
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
    this.publishPositions();
    void entry.job
      .runTask(index)
      .catch((error: unknown) => this.log.error({ err: error, jobId: entry.job.id }, 'image task crashed'))
      .finally(() => {
        void permit.release();
        this.running--;
        entry.finished++;
        if (entry.finished === entry.job.tasks) {
          this.remove(entry);
          entry.resolve('finished');
        } else {
          this.report(entry);
        }
        if (this.running === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        void this.pump();
      });
  }

  private hasWaitingTask(): boolean {
    for (const entries of this.queues.values()) if (entries.some((e) => e.dispatched < e.job.tasks)) return true;
    return false;
  }

  /** The next user in the ring who has an image waiting, and that image. */
  private pickNext(): { entry: Entry; index: number } | undefined {
    for (let i = 0; i < this.ring.length; i++) {
      const at = (this.cursor + i) % this.ring.length;
      const entry = this.queues.get(this.ring[at]!)!.find((e) => e.dispatched < e.job.tasks);
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

  /**
   * Simulates the round-robin once to tell every waiting job how many images will be dispatched before its first:
   * O(waiting images) per change, not per job.
   */
  private publishPositions(): void {
    const users = this.ring;
    if (users.length === 0) return;
    const pending = users.map((user) => {
      const tasks: Entry[] = [];
      for (const e of this.queues.get(user)!) for (let i = e.dispatched; i < e.job.tasks; i++) tasks.push(e);
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
    for (const entry of this.byId.values()) {
      if (entry.dispatched === 0) entry.job.onProgress?.({ phase: 'queued', imagesAhead: firstSlot.get(entry) ?? 0 });
      else this.report(entry);
    }
  }
}
