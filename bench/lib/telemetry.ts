/**
 * Runs inside a benchmarked bot process (ours or the baseline): measures the process itself and answers the
 * benchmark driver over the IPC channel, so RSS and event-loop figures are the bot's own, not the load generator's.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { writeHeapSnapshot } from 'node:v8';
import { round } from './stats.js';

export interface ProcessStats {
  rssBytes: number;
  /** Highest RSS sampled (every 100 ms) since the last `mark`. */
  peakRssBytes: number;
  /** Highest RSS since the process started (kernel's high-water mark). */
  maxRssBytes: number;
  /**
   * Highest V8 heap (used, total) and off-heap Buffer memory (external, of which array buffers) sampled with the RSS
   * since the last `mark`: what of the peak RSS JavaScript accounts for; the rest is native (allocator, libraries).
   */
  peak: { heapUsedBytes: number; heapTotalBytes: number; externalBytes: number; arrayBuffersBytes: number };
  heapUsedBytes: number;
  heapTotalBytes: number;
  externalBytes: number;
  arrayBuffersBytes: number;
  /** Event-loop delay since the last `mark` (perf_hooks.monitorEventLoopDelay, 10 ms resolution), in ms. */
  eventLoopDelayMs: { p50: number; p99: number; max: number; mean: number };
  /** CPU time since the last `mark`, in ms. */
  cpuMs: { user: number; system: number };
  /** Wall time since the last `mark`, in ms. */
  sinceMarkMs: number;
}

/** One lap of a long run (the soak's minutes): what happened since the previous lap. */
export interface LapStats {
  /** Highest RSS sampled since the previous lap. */
  peakRssBytes: number;
  /** RSS and V8 heap used now, after the forced GC when one was asked for. */
  rssBytes: number;
  heapUsedBytes: number;
  /** How long the forced GC held the event loop (0 without one). */
  gcMs: number;
}

export type Request = { id: number; cmd: string; args?: unknown };
export type Reply = { id: number; ok: true; result: unknown } | { id: number; ok: false; error: string };
export type Announcement = { event: 'ready'; info: Record<string, unknown> } | { event: 'fatal'; error: string };

export type CommandHandler = (args: unknown) => Promise<unknown>;

export function isRequest(message: unknown): message is Request {
  return typeof message === 'object' && message !== null && typeof (message as Request).id === 'number' && typeof (message as Request).cmd === 'string';
}

function send(message: Reply | Announcement): void {
  if (process.send) process.send(message);
}

function exposedGc(): () => void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('start the process with --expose-gc');
  return gc;
}

/**
 * Starts measuring and serves the driver's commands: `mark`, `stats`, `gc`, `lap` and `heapSnapshot` are built in;
 * the process adds its own (`audit`, `stop`).
 */
export function serveTelemetry(commands: Record<string, CommandHandler>): { announceReady(info: Record<string, unknown>): void; fatal(error: unknown): void } {
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  let peakRss = process.memoryUsage.rss();
  const zeroPeak = (): ProcessStats['peak'] => ({ heapUsedBytes: 0, heapTotalBytes: 0, externalBytes: 0, arrayBuffersBytes: 0 });
  let peak = zeroPeak();
  // Separate from the mark's peak: laps are taken during a run that is measured as a whole too.
  let lapPeakRss = peakRss;
  let markedAt = performance.now();
  let cpuAtMark = process.cpuUsage();
  const sample = () => {
    const memory = process.memoryUsage();
    if (memory.rss > peakRss) peakRss = memory.rss;
    if (memory.rss > lapPeakRss) lapPeakRss = memory.rss;
    peak = {
      heapUsedBytes: Math.max(peak.heapUsedBytes, memory.heapUsed),
      heapTotalBytes: Math.max(peak.heapTotalBytes, memory.heapTotal),
      externalBytes: Math.max(peak.externalBytes, memory.external),
      arrayBuffersBytes: Math.max(peak.arrayBuffersBytes, memory.arrayBuffers),
    };
    return memory;
  };
  const sampler = setInterval(sample, 100);
  sampler.unref();

  const stats = (): ProcessStats => {
    const memory = sample();
    const cpu = process.cpuUsage(cpuAtMark);
    const ms = (ns: number) => round(ns / 1e6);
    return {
      rssBytes: memory.rss,
      peakRssBytes: peakRss,
      maxRssBytes: process.resourceUsage().maxRSS * 1024,
      peak,
      heapUsedBytes: memory.heapUsed,
      heapTotalBytes: memory.heapTotal,
      externalBytes: memory.external,
      arrayBuffersBytes: memory.arrayBuffers,
      eventLoopDelayMs: {
        p50: ms(eld.percentile(50)),
        p99: ms(eld.percentile(99)),
        max: ms(eld.max),
        mean: ms(eld.mean),
      },
      cpuMs: { user: round(cpu.user / 1000), system: round(cpu.system / 1000) },
      sinceMarkMs: round(performance.now() - markedAt),
    };
  };

  // CPU profile of a window of the run (the measured load only, not start-up), through the inspector protocol.
  let profiler: Session | undefined;
  const builtIn: Record<string, CommandHandler> = {
    profileStart: async () => {
      profiler ??= new Session();
      profiler.connect();
      await profiler.post('Profiler.enable');
      await profiler.post('Profiler.setSamplingInterval', { interval: 200 });
      await profiler.post('Profiler.start');
      return undefined;
    },
    profileStop: async (args) => {
      const path = (args as { path?: unknown } | undefined)?.path;
      if (!profiler || typeof path !== 'string') throw new Error('profileStop needs a started profile and { path }');
      const { profile } = await profiler.post('Profiler.stop');
      profiler.disconnect();
      profiler = undefined;
      writeFileSync(path, JSON.stringify(profile));
      return { path };
    },
    mark: () => {
      eld.reset();
      peakRss = process.memoryUsage.rss();
      peak = zeroPeak();
      markedAt = performance.now();
      cpuAtMark = process.cpuUsage();
      return Promise.resolve(stats());
    },
    stats: () => Promise.resolve(stats()),
    gc: async () => {
      const gc = exposedGc();
      // Twice, with a turn of the event loop between, so finalisers and weak references settle.
      gc();
      await new Promise((resolve) => setImmediate(resolve));
      gc();
      return stats();
    },
    lap: (args) => {
      const peakRssBytes = Math.max(lapPeakRss, sample().rss);
      let gcMs = 0;
      if ((args as { gc?: unknown } | undefined)?.gc === true) {
        // Once, not twice as `gc` does: it stops a loaded bot every minute, and a trend needs no settled finalisers.
        const gc = exposedGc();
        const started = performance.now();
        gc();
        gcMs = round(performance.now() - started);
      }
      const memory = process.memoryUsage();
      lapPeakRss = memory.rss;
      const lap: LapStats = { peakRssBytes, rssBytes: memory.rss, heapUsedBytes: memory.heapUsed, gcMs };
      return Promise.resolve(lap);
    },
    heapSnapshot: (args) => {
      const path = (args as { path?: unknown } | undefined)?.path;
      if (typeof path !== 'string') throw new Error('heapSnapshot needs { path }');
      return Promise.resolve({ path: writeHeapSnapshot(path) });
    },
  };
  const all = { ...builtIn, ...commands };

  process.on('message', (message: unknown) => {
    if (!isRequest(message)) return;
    const handler = all[message.cmd];
    if (!handler) {
      send({ id: message.id, ok: false, error: `unknown command ${message.cmd}` });
      return;
    }
    handler(message.args).then(
      (result) => send({ id: message.id, ok: true, result }),
      (error: unknown) => send({ id: message.id, ok: false, error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
    );
  });
  // The driver going away must not leave a bot running.
  process.on('disconnect', () => process.exit(0));

  return {
    announceReady: (info) => send({ event: 'ready', info }),
    fatal: (error) => send({ event: 'fatal', error: error instanceof Error ? (error.stack ?? error.message) : String(error) }),
  };
}
