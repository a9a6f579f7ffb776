/**
 * One bot process on its own pair of fakes: warm up, run the measured loads back to back, audit the credits (our
 * bot only), stop, and read its log for errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditCharges, Ledger, type ChargeAudit } from './audit.js';
import { isOurs, runJobs, startBot, startFakes, userIds, type BotKind, type FakeSetup, type JobSpec, type RunMeasurement } from './load.js';
import { distribution, type Distribution } from './stats.js';
import type { ProcessStats } from './telemetry.js';

export interface PlannedRun {
  label: string;
  jobs: JobSpec[];
  /** Collect garbage after the run and record the heap (leak check across runs). */
  gcAfter?: boolean;
}

export interface SessionPlan {
  kind: BotKind;
  name: string;
  fakes: FakeSetup;
  /** Our bot's environment (limits, store); ignored by the baselines. */
  env: Record<string, string>;
  runs: PlannedRun[];
  logDir: string;
  cpuProfDir?: string;
  /** Write a heap snapshot after each run into this directory. */
  heapSnapshotDir?: string;
  settleMs: number;
}

export interface SessionRun extends RunMeasurement {
  label: string;
  afterGc?: ProcessStats;
  /** Our bot only: its image checks in this run, from its job log lines. */
  imageCheck?: ImageCheckFigures;
}

/**
 * Every image's check as the bot logged it on the job's "imagine job finished" line (`segmind[].check.ms`: request to
 * verdict, the classifier's queue included, in whole ms). The log line rather than the metrics histogram: its buckets
 * (25 ms, 50 ms, 100 ms, …) are too coarse for percentiles.
 */
export interface ImageCheckFigures {
  /** Every image; one answered `queue_full` counts with the ~0 ms it took to be refused. */
  checkMs: Distribution;
  /** The images that got a verdict from the classifier (what a check takes when it happens). */
  verdictMs: Distribution;
  flagged: number;
  /** Checks that gave no verdict, by failure (queue_full, timeout, worker_died, error): the image counted as flagged. */
  failed: Record<string, number>;
}

export interface SessionResult {
  kind: BotKind;
  name: string;
  imageBytes: number;
  segmindDelayMs: number;
  runs: SessionRun[];
  audit?: ChargeAudit;
  /** `refusals`: requests the bot refused (logged at info as "request refused"), by code, e.g. refused_unavailable. */
  log: { errors: number; warnings: number; samples: string[]; refusals: Record<string, number> };
}

/**
 * The bot process's peak RSS for a run: the kernel's high-water mark (VmHWM, the process's whole life up to the end
 * of the run) where /proc has it, else the same figure from getrusage.
 */
export const peakRssOf = (run: Pick<RunMeasurement, 'kernel' | 'bot'>): number => run.kernel?.peakRssBytes ?? run.bot.maxRssBytes;

export function warmupJobs(): JobSpec[] {
  const users = userIds(4);
  return Array.from({ length: 12 }, (_, i) => ({ at: i * 40, userId: users[i % users.length]!, samples: (i % 4) + 1, seed: 1 }));
}

export async function runSession(plan: SessionPlan): Promise<SessionResult> {
  const fakes = await startFakes(plan.fakes);
  const ledger = new Ledger();
  const runs: SessionRun[] = [];
  let audit: ChargeAudit | undefined;
  const bot = await startBot(fakes, {
    kind: plan.kind,
    env: plan.env,
    logDir: plan.logDir,
    name: plan.name,
  }).catch(async (error: unknown) => {
    await fakes.stop();
    throw error;
  });
  try {
    // Warm-up: JIT, connection pools, SQLite pages; not reported.
    const warm = await runJobs(fakes, bot, warmupJobs(), { settleMs: 15_000, label: `${plan.name} warm-up`, ledger });
    if (warm.lost > 0) console.log(`  ${plan.name}: warm-up lost ${warm.lost} job(s): ${warm.errors.samples.join('; ')}`);
    for (const run of plan.runs) {
      if (plan.cpuProfDir) await bot.call('profileStart');
      const measured = await runJobs(fakes, bot, run.jobs, { settleMs: plan.settleMs, label: `${plan.name} ${run.label}`, ledger });
      if (plan.cpuProfDir) {
        const path = join(plan.cpuProfDir, `${plan.name}-${run.label.replaceAll(' ', '-')}.cpuprofile`);
        await bot.call('profileStop', { path }, 120_000);
        console.log(`  ${plan.name} ${run.label}: CPU profile ${path}`);
      }
      const result: SessionRun = { label: run.label, ...measured };
      if (run.gcAfter) {
        // Let queued work drain (final settles, journal removals) before weighing the heap.
        if (isOurs(plan.kind)) await auditCharges(bot, fakes.discord.guildId, ledger);
        result.afterGc = await bot.gc();
        if (plan.heapSnapshotDir) {
          await bot.call('heapSnapshot', { path: join(plan.heapSnapshotDir, `${plan.name}-${run.label}.heapsnapshot`) }, 120_000);
        }
      }
      runs.push(result);
      console.log(`  ${plan.name} ${run.label}: ${summary(result)}`);
    }
    if (isOurs(plan.kind)) audit = await auditCharges(bot, fakes.discord.guildId, ledger);
  } finally {
    await bot.stop();
    await fakes.stop();
  }
  if (isOurs(plan.kind)) {
    const checks = readImageChecks(bot.logFile);
    for (const run of runs) {
      const figures = checks.get(`${plan.name} ${run.label}`);
      if (!figures) continue;
      run.imageCheck = figures;
      if (plan.kind === 'ours') console.log(`  ${plan.name} ${run.label}: ${checkSummary(figures)}`);
    }
  }
  return {
    kind: plan.kind,
    name: plan.name,
    imageBytes: fakes.imageBytes,
    segmindDelayMs: plan.fakes.segmindDelayMs,
    runs,
    ...(audit ? { audit } : {}),
    log: readLog(bot.logFile),
  };
}

/**
 * The image checks of each run, keyed by the run's label: the load generator's prompts are `benchmark <label> job <n>`
 * (see runJobs), and the job log line carries the prompt.
 */
export function readImageChecks(file: string): Map<string, ImageCheckFigures> {
  const byLabel = new Map<string, { ms: number[]; verdictMs: number[]; flagged: number; failed: Record<string, number> }>();
  for (const entry of logEntries(file)) {
    if (entry.msg !== 'imagine job finished') continue;
    const prompt = entry.params?.prompt;
    const label = typeof prompt === 'string' ? /^benchmark (.+) job \d+$/.exec(prompt)?.[1] : undefined;
    if (label === undefined || !Array.isArray(entry.segmind)) continue;
    const run = byLabel.get(label) ?? { ms: [], verdictMs: [], flagged: 0, failed: {} };
    byLabel.set(label, run);
    for (const image of entry.segmind as Array<{ check?: { flagged?: unknown; failure?: unknown; ms?: unknown } }>) {
      const check = image.check;
      if (check === undefined || typeof check.ms !== 'number') continue;
      run.ms.push(check.ms);
      if (typeof check.failure === 'string') {
        run.failed[check.failure] = (run.failed[check.failure] ?? 0) + 1;
        continue;
      }
      run.verdictMs.push(check.ms);
      if (check.flagged === true) run.flagged++;
    }
  }
  return new Map(
    [...byLabel].map(([label, run]) => [label, { checkMs: distribution(run.ms), verdictMs: distribution(run.verdictMs), flagged: run.flagged, failed: run.failed }]),
  );
}

interface LogEntry {
  level?: unknown;
  msg?: unknown;
  code?: unknown;
  err?: { message?: unknown };
  params?: { prompt?: unknown };
  segmind?: unknown;
}

/** The bot's pino JSON lines (anything else in the file is skipped). */
function logEntries(file: string): LogEntry[] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return [];
  }
  const entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      entries.push(JSON.parse(line) as LogEntry);
    } catch {
      continue;
    }
  }
  return entries;
}

/** One line on a run's image checks (also the console's final summary). */
export function checkSummary(c: ImageCheckFigures): string {
  const failed = Object.entries(c.failed).map(([failure, n]) => `${failure} ${n}`);
  return (
    `image check per image p50/p99 ${c.checkMs.p50}/${c.checkMs.p99} ms, queue included (${c.checkMs.n} images); ` +
    `with a verdict ${c.verdictMs.p50}/${c.verdictMs.p99} ms (${c.verdictMs.n}); no verdict (counted as flagged): ${failed.length === 0 ? '0' : failed.join(', ')}`
  );
}

function summary(r: SessionRun): string {
  return [
    `ack p50/p99 ${r.ackMs.p50}/${r.ackMs.p99} ms`,
    `overhead p50/p99 ${r.overheadMs.p50}/${r.overheadMs.p99} ms`,
    `${r.throughput.jobsPerSecond} jobs/s`,
    `peak RSS (VmHWM) ${(peakRssOf(r) / 1048576).toFixed(0)} MiB, in the run ${(r.bot.peakRssBytes / 1048576).toFixed(0)} MiB (peak heap ${(r.bot.peak.heapTotalBytes / 1048576).toFixed(0)}, external ${(r.bot.peak.externalBytes / 1048576).toFixed(0)} MiB)`,
    `ELD p99 ${r.bot.eventLoopDelayMs.p99} ms`,
    `lost ${r.lost}, errors ${r.errors.count}`,
  ].join(', ');
}

/** pino JSON lines: level 50+ is error, 40 warn. */
export function readLog(file: string): SessionResult['log'] {
  let errors = 0;
  let warnings = 0;
  const samples: string[] = [];
  const refusals: Record<string, number> = {};
  for (const entry of logEntries(file)) {
    if (entry.msg === 'request refused') {
      const code = typeof entry.code === 'string' ? entry.code : 'unknown';
      refusals[code] = (refusals[code] ?? 0) + 1;
    }
    if (typeof entry.level !== 'number' || entry.level < 40) continue;
    if (entry.level >= 50) errors++;
    else warnings++;
    const reason = typeof entry.err?.message === 'string' ? ` (${entry.err.message})` : '';
    if (samples.length < 8) samples.push(`${entry.level >= 50 ? 'error' : 'warn'}: ${String(entry.msg)}${reason}`);
  }
  return { errors, warnings, samples, refusals };
}
