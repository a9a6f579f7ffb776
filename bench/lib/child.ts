/**
 * Starts a benchmark process (the bot under test, the baseline, a credits worker) compiled, with plain `node` (see
 * build.ts), its output in files, and talks to it over IPC (see telemetry.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { builtScript } from './build.js';
import type { Announcement, ProcessStats, Reply } from './telemetry.js';

export const ROOT = resolve(import.meta.dirname, '../..');

export interface KernelMemory {
  /** VmHWM: the highest RSS since the process started. */
  peakRssBytes: number;
  /** VmRSS when read. */
  rssBytes: number;
}

export interface ChildOptions {
  /** Path of the script relative to the repository root, e.g. `bench/bot-process.ts`; its compiled `.js` runs. */
  script: string;
  /** The whole environment of the child (PATH and HOME are added). */
  env: Record<string, string>;
  /** Where stdout (`<name>.log`) and stderr (`<name>.err`) go. */
  logDir: string;
  name: string;
  /** Write a V8 CPU profile of the whole run into this directory (node --cpu-prof). */
  cpuProfDir?: string;
  /** Extra node flags (e.g. --max-old-space-size). */
  nodeFlags?: string[];
}

export class BenchChild {
  readonly logFile: string;
  readonly errFile: string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly ready: Promise<Record<string, unknown>>;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>();
  private done = false;

  private constructor(
    private readonly child: ChildProcess,
    readonly name: string,
    logFile: string,
    errFile: string,
  ) {
    this.logFile = logFile;
    this.errFile = errFile;
    this.exited = new Promise((resolveExit) => {
      child.once('exit', (code, signal) => {
        this.done = true;
        for (const waiter of this.pending.values()) waiter.reject(new Error(`${name} exited (${code ?? signal}) before answering`));
        this.pending.clear();
        resolveExit({ code, signal });
      });
    });
    this.ready = new Promise((resolveReady, rejectReady) => {
      const onMessage = (message: unknown) => {
        const m = message as Announcement;
        if (m.event === 'ready') resolveReady(m.info);
        if (m.event === 'fatal') rejectReady(new Error(`${name} could not start: ${m.error}`));
      };
      child.on('message', onMessage);
      void this.exited.then(({ code, signal }) =>
        rejectReady(new Error(`${name} exited (${code ?? signal}) before it was ready:\n${this.tail()}`)),
      );
    });
    child.on('message', (message: unknown) => {
      const reply = message as Reply;
      if (typeof reply.id !== 'number') return;
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiter.resolve(reply.result);
      else waiter.reject(new Error(`${name}: ${reply.error}`));
    });
  }

  static start(opts: ChildOptions): BenchChild {
    const logFile = join(opts.logDir, `${opts.name}.log`);
    const errFile = join(opts.logDir, `${opts.name}.err`);
    const out = openSync(logFile, 'w');
    const err = openSync(errFile, 'w');
    const flags = [
      '--expose-gc',
      // One directory per process: worker threads (the classifier's) write profiles of their own next to the main thread's.
      ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${join(opts.cpuProfDir, opts.name)}`] : []),
      ...(opts.nodeFlags ?? []),
    ];
    const child = spawn(process.execPath, [...flags, builtScript(ROOT, opts.script)], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...opts.env },
      stdio: ['ignore', out, err, 'ipc'],
    });
    closeSync(out);
    closeSync(err);
    return new BenchChild(child, opts.name, logFile, errFile);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /**
   * The process's peak RSS (`VmHWM`, over its whole life: start-up and warm-up included, as the issue measures) and
   * current RSS (`VmRSS`) from the kernel: exact, where the in-process samples can miss a short peak. Undefined
   * where there is no /proc (not Linux) or the process has gone.
   */
  kernelMemory(): KernelMemory | undefined {
    if (this.done || this.child.pid === undefined) return undefined;
    let status: string;
    try {
      status = readFileSync(`/proc/${this.child.pid}/status`, 'utf8');
    } catch {
      return undefined;
    }
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
    const peak = kib('VmHWM');
    const rss = kib('VmRSS');
    return Number.isFinite(peak) && Number.isFinite(rss) ? { peakRssBytes: peak * 1024, rssBytes: rss * 1024 } : undefined;
  }

  call<T>(cmd: string, args?: unknown, timeoutMs = 60_000): Promise<T> {
    if (this.done) return Promise.reject(new Error(`${this.name} has exited`));
    const id = this.nextId++;
    return new Promise<T>((resolveCall, rejectCall) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        rejectCall(new Error(`${this.name}: no answer to ${cmd} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolveCall(value as T);
        },
        reject: (error) => {
          clearTimeout(timer);
          rejectCall(error);
        },
      });
      this.child.send({ id, cmd, args });
    });
  }

  mark(): Promise<ProcessStats> {
    return this.call('mark');
  }

  stats(): Promise<ProcessStats> {
    return this.call('stats');
  }

  gc(): Promise<ProcessStats> {
    return this.call('gc');
  }

  /** Graceful stop (the process flushes its CPU profile on exit); kill -9 if it does not go within the grace. */
  async stop(graceMs = 20_000): Promise<void> {
    if (this.done) return;
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    try {
      await this.call('stop', undefined, graceMs).catch(() => undefined);
      await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  kill(): void {
    if (!this.done) this.child.kill('SIGKILL');
  }

  /** The last lines of stderr, for error messages. */
  tail(lines = 20): string {
    try {
      return readFileSync(this.errFile, 'utf8').split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  }
}
