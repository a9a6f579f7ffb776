/**
 * The local image classifier behind the `ImageChecker` seam: `IMAGE_CHECK_THREADS` worker threads, each with its own
 * model (`classifier-worker.ts`), fed from one bounded queue.
 *
 * Every way a check can go wrong answers `{ flagged: true, failure }` and is logged at warn — the queue is full, an
 * image takes longer than the timeout, it cannot be decoded, its worker dies — because an image nobody could judge is
 * not shown as is. A worker that dies (or hangs past the timeout) is replaced; the images waiting for it are not lost.
 */
import { Worker } from 'node:worker_threads';
import { systemClock, type Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { workerMessageSchema, type ClassifyRequest, type WorkerMessage } from './classifier-protocol.js';
import { decideVerdict } from './decide-verdict.js';
import type { ImageChecker, ImageVerdict } from './image-checker.js';

export interface ImageCheckerOptions {
  /** Worker threads, each classifying one image at a time (`IMAGE_CHECK_THREADS`). */
  threads: number;
  /** Flagged when Porn + Hentai reaches this (`IMAGE_CHECK_THRESHOLD`). */
  threshold: number;
  logger: Logger;
  /**
   * Longest a worker may take on one image (default 15 s): the image answers `timeout` and the worker is replaced.
   * Time spent waiting for a worker does not count: under load images wait their turn rather than being flagged.
   */
  timeoutMs?: number;
  /** Longest wait for one verdict, queue included (default 2 min): bounds the wait when no worker can take images. */
  maxWaitMs?: number;
  /**
   * Images that may wait for a worker; one more is answered `queue_full` at once (default 256). The bot checks an
   * image inside its Segmind slot, so it passes at least SEGMIND_CONCURRENCY: a full queue then means a fault.
   */
  maxQueued?: number;
  /** Longest a worker may take to load the model at start-up (default 60 s). */
  loadTimeoutMs?: number;
  clock?: Clock;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 15_000;
export const DEFAULT_MAX_WAIT_MS = 120_000;
export const DEFAULT_MAX_QUEUED = 256;
const DEFAULT_LOAD_TIMEOUT_MS = 60_000;
/** A replacement whose model does not load is retried after 1 s, 2 s, 4 s… up to a minute. */
const RESPAWN_MAX_DELAY_MS = 60_000;

/**
 * The worker's entry sits next to this file: `classifier-worker.js` in dist/ (`npm start`), `classifier-worker.ts`
 * under tsx (`npm run dev`, tests). A worker thread starts without its parent's loader hooks, so under tsx this tiny
 * CommonJS bootstrap registers tsx inside the thread before importing the entry; the paths come resolved from here, so
 * the bot's working directory does not matter.
 */
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(workerData.tsxApi ? import(workerData.tsxApi).then((tsx) => tsx.register()) : Promise.resolve()).then(() => import(workerData.entry));
`;

function workerEntry(): { entry: string; tsxApi: string | null } {
  const typescript = import.meta.url.endsWith('.ts');
  return {
    entry: new URL(`./classifier-worker.${typescript ? 'ts' : 'js'}`, import.meta.url).href,
    // tsx's ESM API (its CommonJS twin mislocates its loader when required from an eval'd worker).
    tsxApi: typescript ? import.meta.resolve('tsx/esm/api') : null,
  };
}

interface PendingCheck {
  id: number;
  image: Uint8Array;
  startedAt: number;
  settled: boolean;
  resolve: (verdict: ImageVerdict) => void;
  /** Ends the request's timeout timer. */
  timer: AbortController;
}

interface Slot {
  index: number;
  worker: Worker;
  ready: boolean;
  /** The image this worker is classifying. */
  busy: PendingCheck | undefined;
  /** Ends the watchdog of the image in flight. */
  watchdog: AbortController | undefined;
  /** Model loads that failed in a row in this slot (for the respawn back-off). */
  failedLoads: number;
  onReady: (() => void) | undefined;
  onLoadFailed: ((reason: string) => void) | undefined;
}

export interface ClassifierPoolStats {
  /** Workers with their model loaded. */
  ready: number;
  queued: number;
  inFlight: number;
  /** Workers replaced since start (died, hung or killed). */
  replaced: number;
}

export class ClassifierPool implements ImageChecker {
  private readonly slots: Slot[] = [];
  private readonly queue: PendingCheck[] = [];
  private readonly logger: Logger;
  private readonly clock: Clock;
  private readonly threshold: number;
  private readonly timeoutMs: number;
  private readonly maxWaitMs: number;
  private readonly maxQueued: number;
  private readonly entry = workerEntry();
  private nextId = 1;
  private replaced = 0;
  private closed = false;

  constructor(options: ImageCheckerOptions) {
    this.logger = options.logger;
    this.clock = options.clock ?? systemClock;
    this.threshold = options.threshold;
    this.timeoutMs = options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
    this.maxWaitMs = Math.max(options.maxWaitMs ?? DEFAULT_MAX_WAIT_MS, this.timeoutMs);
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    for (let index = 0; index < options.threads; index++) this.slots.push(this.spawn(index, 0));
  }

  /** Resolves when every worker has loaded its model; rejects (and closes the pool) if one cannot. */
  async ready(loadTimeoutMs = DEFAULT_LOAD_TIMEOUT_MS): Promise<void> {
    const deadline = new AbortController();
    try {
      await Promise.race([
        Promise.all(this.slots.map((slot) => this.slotReady(slot))),
        this.clock.sleep(loadTimeoutMs, deadline.signal).then(() => {
          throw new Error(`the image classifier did not load its model within ${loadTimeoutMs} ms`);
        }),
      ]);
    } catch (error) {
      await this.close();
      throw error;
    } finally {
      deadline.abort();
    }
  }

  check(image: Uint8Array): Promise<ImageVerdict> {
    const startedAt = this.clock.now();
    if (this.closed) return Promise.resolve(this.fail(startedAt, 'error', 'the image checker is closed'));
    if (this.queue.length >= this.maxQueued) {
      return Promise.resolve(this.fail(startedAt, 'queue_full', `${this.queue.length} images already waiting`));
    }
    return new Promise<ImageVerdict>((resolve) => {
      const check: PendingCheck = { id: this.nextId++, image, startedAt, settled: false, resolve, timer: new AbortController() };
      this.clock.sleep(this.maxWaitMs, check.timer.signal).then(
        () => this.onCheckTimeout(check),
        () => {},
      );
      this.queue.push(check);
      this.pump();
    });
  }

  stats(): ClassifierPoolStats {
    return {
      ready: this.slots.filter((s) => s.ready).length,
      queued: this.queue.length,
      inFlight: this.slots.filter((s) => s.busy).length,
      replaced: this.replaced,
    };
  }

  /** Ends one worker as a crash would: its image answers `worker_died` and a replacement starts. For tests. */
  async crashWorker(index: number): Promise<void> {
    const slot = this.slots[index];
    if (!slot) throw new RangeError(`no classifier worker ${index}`);
    const { worker } = slot;
    // From here on, an answer this worker may still post is not taken: the outcome does not depend on a race.
    worker.removeAllListeners('message');
    await worker.terminate();
  }

  /** Answers every waiting and running check (`error`, flagged) and terminates the workers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const check of this.queue.splice(0)) this.settle(check, undefined, 'error', 'the image checker closed');
    const workers = this.slots.map((slot) => {
      if (slot.busy) this.settle(slot.busy, undefined, 'error', 'the image checker closed');
      slot.watchdog?.abort();
      slot.onLoadFailed?.('the image checker closed');
      return slot.worker.terminate();
    });
    await Promise.all(workers);
  }

  private spawn(index: number, failedLoads: number): Slot {
    const worker = new Worker(BOOTSTRAP, {
      eval: true,
      workerData: this.entry,
      // Not the parent's flags (tsx's own hooks among them): the bootstrap sets up what the thread needs.
      execArgv: [],
      stdout: true,
      stderr: true,
    });
    const slot: Slot = { index, worker, ready: false, busy: undefined, watchdog: undefined, failedLoads, onReady: undefined, onLoadFailed: undefined };
    const log = this.logger.child({ classifierWorker: index, threadId: worker.threadId });
    // nsfwjs and tfjs print notices (e.g. "You're using the model…"): kept out of the bot's stdout, in the log.
    worker.stdout.on('data', (chunk: Buffer) => log.debug({ output: chunk.toString().trim() }, 'classifier worker output'));
    worker.stderr.on('data', (chunk: Buffer) => log.warn({ output: chunk.toString().trim() }, 'classifier worker error output'));
    worker.on('message', (raw: unknown) => this.onMessage(slot, worker, raw));
    worker.on('error', (err) => log.warn({ err }, 'classifier worker failed'));
    worker.on('exit', (code) => this.onExit(slot, worker, code));
    return slot;
  }

  private slotReady(slot: Slot): Promise<void> {
    if (slot.ready) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      slot.onReady = resolve;
      slot.onLoadFailed = (reason) => reject(new Error(`the image classifier could not load its model: ${reason}`));
    });
  }

  private onMessage(slot: Slot, worker: Worker, raw: unknown): void {
    if (slot.worker !== worker) return;
    const parsed = workerMessageSchema.safeParse(raw);
    if (!parsed.success) {
      this.logger.warn({ classifierWorker: slot.index, issues: parsed.error.issues }, 'classifier worker sent a malformed message');
      if (slot.busy) this.finishInFlight(slot, undefined, 'error', 'malformed answer from the classifier worker');
      return;
    }
    const message: WorkerMessage = parsed.data;
    switch (message.type) {
      case 'ready':
        slot.ready = true;
        slot.failedLoads = 0;
        this.logger.info({ classifierWorker: slot.index, loadMs: Math.round(message.loadMs) }, 'image classifier loaded');
        slot.onReady?.();
        this.pump();
        return;
      case 'load_failed':
        this.logger.error({ classifierWorker: slot.index, reason: message.message }, 'image classifier could not load its model');
        slot.onLoadFailed?.(message.message);
        void worker.terminate(); // its exit replaces it, after a back-off
        return;
      case 'scores':
      case 'error':
        if (slot.busy?.id !== message.id) return; // the answer to a check that was given up on: its worker was replaced
        if (message.type === 'scores') this.finishInFlight(slot, message.scores);
        else this.finishInFlight(slot, undefined, 'error', message.message);
        return;
    }
  }

  private onExit(slot: Slot, worker: Worker, code: number): void {
    if (slot.worker !== worker || this.closed) return;
    const inFlight = slot.busy;
    const wasReady = slot.ready;
    // Not ready from now on, so nothing is dispatched to the dead worker while its replacement starts.
    slot.ready = false;
    this.logger.warn(
      { classifierWorker: slot.index, exitCode: code, hadImage: inFlight !== undefined, wasReady },
      'classifier worker exited; starting a replacement',
    );
    if (inFlight) this.finishInFlight(slot, undefined, 'worker_died', `classifier worker exited with code ${code}`);
    slot.onLoadFailed?.(`the worker exited with code ${code} before it was ready`);
    this.replaced += 1;
    // A worker that had loaded its model died of something else: replace it at once; one that never loaded, back off.
    const failedLoads = wasReady ? 0 : slot.failedLoads + 1;
    const delay = failedLoads === 0 ? 0 : Math.min(RESPAWN_MAX_DELAY_MS, 1000 * 2 ** (failedLoads - 1));
    const respawn = () => {
      if (this.closed) return;
      this.slots[slot.index] = this.spawn(slot.index, failedLoads);
    };
    if (delay === 0) respawn();
    else void this.clock.sleep(delay).then(respawn);
  }

  private onCheckTimeout(check: PendingCheck): void {
    if (check.settled) return;
    const at = this.queue.indexOf(check);
    if (at >= 0) this.queue.splice(at, 1);
    // A check still in flight keeps its worker for now: the watchdog replaces the worker if it stays stuck on it.
    this.settle(check, undefined, 'timeout', `no verdict within ${this.maxWaitMs} ms, waiting included`);
  }

  /** Gives every idle, ready worker the next waiting image. */
  private pump(): void {
    for (const slot of this.slots) {
      if (!slot.ready || slot.busy) continue;
      const check = this.queue.shift();
      if (!check) return;
      slot.busy = check;
      slot.watchdog = new AbortController();
      const worker = slot.worker;
      this.clock.sleep(this.timeoutMs, slot.watchdog.signal).then(
        () => this.onStuck(slot, worker, check),
        () => {},
      );
      const request: ClassifyRequest = { type: 'classify', id: check.id, image: check.image };
      worker.postMessage(request);
    }
  }

  /** A worker on one image for the whole timeout is hung or far too slow: replace it rather than queue behind it. */
  private onStuck(slot: Slot, worker: Worker, check: PendingCheck): void {
    if (slot.worker !== worker || slot.busy !== check) return;
    this.logger.warn({ classifierWorker: slot.index, timeoutMs: this.timeoutMs }, 'classifier worker stuck on one image; replacing it');
    this.settle(check, undefined, 'timeout', `no verdict within ${this.timeoutMs} ms of work`);
    void worker.terminate(); // onExit answers the image (if its own timeout has not) and starts a replacement
  }

  private finishInFlight(
    slot: Slot,
    scores: ImageVerdict['scores'],
    failure?: NonNullable<ImageVerdict['failure']>,
    reason?: string,
  ): void {
    const check = slot.busy;
    if (!check) return;
    slot.busy = undefined;
    slot.watchdog?.abort();
    slot.watchdog = undefined;
    this.settle(check, scores, failure, reason);
    this.pump();
  }

  private settle(
    check: PendingCheck,
    scores: ImageVerdict['scores'],
    failure?: NonNullable<ImageVerdict['failure']>,
    reason?: string,
  ): void {
    if (check.settled) return;
    check.settled = true;
    check.timer.abort();
    if (failure || !scores) {
      check.resolve(this.fail(check.startedAt, failure ?? 'error', reason ?? 'no scores'));
      return;
    }
    const durationMs = this.clock.now() - check.startedAt;
    check.resolve({ flagged: decideVerdict(scores, this.threshold), scores, durationMs });
  }

  private fail(startedAt: number, failure: NonNullable<ImageVerdict['failure']>, reason: string): ImageVerdict {
    const durationMs = this.clock.now() - startedAt;
    this.logger.warn({ failure, reason, durationMs }, 'image check failed; the image counts as flagged');
    return { flagged: true, failure, durationMs };
  }
}

/**
 * What the composition root calls: starts `threads` classifier workers and resolves once every one has loaded its
 * model, so a bot whose classifier cannot load fails at start-up, loudly, rather than flagging every image later.
 */
export async function createImageChecker(options: ImageCheckerOptions): Promise<ClassifierPool> {
  if (!Number.isInteger(options.threads) || options.threads < 1) throw new RangeError(`threads must be a positive integer, got ${options.threads}`);
  const startedAt = performance.now();
  const pool = new ClassifierPool(options);
  await pool.ready(options.loadTimeoutMs);
  options.logger.info(
    { threads: options.threads, threshold: options.threshold, startMs: Math.round(performance.now() - startedAt) },
    'image checker ready',
  );
  return pool;
}
