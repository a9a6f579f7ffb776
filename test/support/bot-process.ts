/**
 * The real entry point run as its own OS process, for crash and restart tests: the `dist/index.js` that `npm start`
 * runs, with plain node, when dist/ is up to date with src/ (in CI, `npm ci` has just built it), else `src/index.ts`
 * through tsx (as `npm run dev` runs it), so a test never runs older code and a developer never waits for a build.
 * `compiled: true` insists on dist/ (call `buildDist()` first). Its JSON log lines are parsed as they arrive so a test
 * can wait for events instead of sleeping.
 *
 * tsx runs the script in a child node process and relays SIGTERM/SIGINT to it, but a SIGKILL cannot be relayed.
 * So each bot gets its own process group (`detached`), and `crash()` kills the whole group: tsx and the bot die at
 * once, as in a power cut or an OOM kill.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { LogLine } from './harness.js';

const ROOT = resolve(import.meta.dirname, '../..');
const TSX = join(ROOT, 'node_modules/.bin/tsx');
const ENTRY = join(ROOT, 'src/index.ts');
/** What `npm start` runs (package.json), from the build `prepare` made. */
export const COMPILED_START = ['--enable-source-maps', join(ROOT, 'dist/index.js')] as const;
const BUILD_INFO = join(ROOT, 'dist/.tsbuildinfo');

function newestSourceChange(dir: string): number {
  return Math.max(
    0,
    ...readdirSync(dir, { withFileTypes: true }).map((entry) => {
      const path = join(dir, entry.name);
      return entry.isDirectory() ? newestSourceChange(path) : statSync(path).mtimeMs;
    }),
  );
}

/** dist/ was built (its build info written last) after every change to src/ and the build settings. */
export function distIsFresh(): boolean {
  let built: number;
  try {
    built = statSync(BUILD_INFO).mtimeMs;
  } catch {
    return false;
  }
  const settings = ['tsconfig.json', 'tsconfig.build.json'].map((file) => statSync(join(ROOT, file)).mtimeMs);
  return built > Math.max(newestSourceChange(join(ROOT, 'src')), ...settings);
}

/**
 * Runs `npm run build`'s compiler unless dist/ is fresh: a test of the compiled start must not run a dist/ older than
 * the code it tests.
 */
export async function buildDist(): Promise<void> {
  if (distIsFresh()) return;
  const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
  await promisify(execFile)(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json')], { cwd: ROOT });
}

export interface BotExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface BotProcessOptions {
  /**
   * true: `dist/index.js` with plain node, as `npm start` runs it (build it first with `buildDist()`); false: tsx.
   * Default: compiled when dist/ is fresh.
   */
  compiled?: boolean;
  /** Any other command line (e.g. a container's ENTRYPOINT + CMD), run in `cwd`. */
  command?: readonly [string, ...string[]];
  /** Default: a new empty directory. */
  cwd?: string;
  /** Run as this user (the test must run as root), e.g. nobody, as a container's `USER` does. */
  user?: { uid: number; gid: number };
  /** Environment variables besides `env` (default: PATH and HOME from the test's environment). */
  baseEnv?: Record<string, string>;
}

export interface BotProcess {
  /** The process started (tsx, or node for a compiled start); also the id of the process group holding the bot. */
  readonly pid: number;
  /** Every JSON log line written so far, parsed. */
  readonly logs: readonly LogLine[];
  /** Everything written to stdout and stderr (JSON or not), to look for leaked secrets or print on failure. */
  output(): string;
  /** Log lines with this `msg`. */
  logsWith(msg: string): LogLine[];
  /** Resolves with the first log line matching (one already written too); rejects if the process exits first. */
  waitForLog(match: string | ((line: LogLine) => boolean), timeoutMs?: number): Promise<LogLine>;
  /** Graceful stop, as `docker stop` or systemd does it: SIGTERM to the process (tsx relays it to the bot). */
  terminate(): void;
  /** kill -9 the bot and tsx; resolves once both are gone (their stdout pipe closed). */
  crash(): Promise<BotExit>;
  /** Settles once the process has exited and its output is closed. */
  readonly exited: Promise<BotExit>;
}

const running = new Set<BotProcess>();

/** Starts the bot in an empty working directory (no developer .env) with exactly `env` (plus PATH and HOME). */
export function startBotProcess(env: Record<string, string>, options: BotProcessOptions = {}): BotProcess {
  const cwd = options.cwd ?? mkdtempSync(join(tmpdir(), 'flux-bot-process-'));
  const [command, ...args] = options.command ?? ((options.compiled ?? distIsFresh()) ? [process.execPath, ...COMPILED_START] : [TSX, ENTRY]);
  const child: ChildProcess = spawn(command, args, {
    cwd,
    env: { ...(options.baseEnv ?? { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' }), ...env },
    ...options.user,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('could not start the bot process');

  const logs: LogLine[] = [];
  const chunks: string[] = [];
  const waiters = new Set<{ test: (line: LogLine) => boolean; resolve: (line: LogLine) => void }>();
  let partial = '';
  child.stdout!.on('data', (data: Buffer) => {
    const text = data.toString();
    chunks.push(text);
    const lines = (partial + text).split('\n');
    partial = lines.pop() ?? '';
    for (const raw of lines) {
      if (!raw.startsWith('{')) continue;
      let line: LogLine;
      try {
        line = JSON.parse(raw) as LogLine;
      } catch {
        continue;
      }
      logs.push(line);
      for (const w of [...waiters]) {
        if (w.test(line)) {
          waiters.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  child.stderr!.on('data', (data: Buffer) => chunks.push(data.toString()));

  let done = false;
  const exited = new Promise<BotExit>((resolveExit) => {
    child.once('close', (code, signal) => {
      done = true;
      running.delete(bot);
      resolveExit({ code, signal });
    });
  });

  const output = () => chunks.join('');
  const tail = () => output().split('\n').slice(-15).join('\n');
  const killGroup = (signal: NodeJS.Signals) => {
    try {
      process.kill(-pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
    }
  };

  const bot: BotProcess = {
    pid,
    logs,
    output,
    logsWith: (msg) => logs.filter((l) => l.msg === msg),
    // Generous by default: "connected to Discord" comes after the classifier's model has loaded, which takes several
    // seconds on a busy 2-core machine running test files side by side.
    waitForLog(match, timeoutMs = 30_000) {
      const test = typeof match === 'string' ? (l: LogLine) => l.msg === match : match;
      const what = typeof match === 'string' ? `log "${match}"` : 'a matching log line';
      const found = logs.find(test);
      if (found) return Promise.resolve(found);
      return new Promise<LogLine>((resolveLine, reject) => {
        const fail = (why: string) => {
          waiters.delete(waiter);
          clearTimeout(timer);
          reject(new Error(`bot process ${pid}: ${what} ${why}. Last output:\n${tail()}`));
        };
        const timer = setTimeout(() => fail(`not written within ${timeoutMs} ms`), timeoutMs);
        const waiter = {
          test,
          resolve: (line: LogLine) => {
            clearTimeout(timer);
            resolveLine(line);
          },
        };
        waiters.add(waiter);
        void exited.then((exit) => {
          if (waiters.has(waiter)) fail(`never written: the process exited (${exit.code ?? exit.signal})`);
        });
      });
    },
    terminate() {
      if (!done) child.kill('SIGTERM');
    },
    crash() {
      if (!done) killGroup('SIGKILL');
      return exited;
    },
    exited,
  };
  running.add(bot);
  return bot;
}

/** For afterEach: kill -9 every bot a test left running (e.g. after a failed assertion), and wait for them. */
export async function crashAllBotProcesses(): Promise<void> {
  await Promise.all([...running].map((bot) => bot.crash()));
}
