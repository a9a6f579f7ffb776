/**
 * One bot process on its own pair of fakes: warm up, run the measured loads back to back, audit the credits (our
 * bot only), stop, and read its log for errors.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { auditCharges, Ledger, type ChargeAudit } from './audit.js';
import { runJobs, startBot, startFakes, userIds, type BotKind, type FakeSetup, type JobSpec, type RunMeasurement } from './load.js';
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
        if (plan.kind === 'ours') await auditCharges(bot, fakes.discord.guildId, ledger);
        result.afterGc = await bot.gc();
        if (plan.heapSnapshotDir) {
          await bot.call('heapSnapshot', { path: join(plan.heapSnapshotDir, `${plan.name}-${run.label}.heapsnapshot`) }, 120_000);
        }
      }
      runs.push(result);
      console.log(`  ${plan.name} ${run.label}: ${summary(result)}`);
    }
    if (plan.kind === 'ours') audit = await auditCharges(bot, fakes.discord.guildId, ledger);
  } finally {
    await bot.stop();
    await fakes.stop();
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

function summary(r: SessionRun): string {
  return [
    `ack p50/p99 ${r.ackMs.p50}/${r.ackMs.p99} ms`,
    `overhead p50/p99 ${r.overheadMs.p50}/${r.overheadMs.p99} ms`,
    `${r.throughput.jobsPerSecond} jobs/s`,
    `peak RSS ${(r.bot.peakRssBytes / 1048576).toFixed(0)} MiB (peak heap ${(r.bot.peak.heapTotalBytes / 1048576).toFixed(0)}, external ${(r.bot.peak.externalBytes / 1048576).toFixed(0)} MiB)`,
    `ELD p99 ${r.bot.eventLoopDelayMs.p99} ms`,
    `lost ${r.lost}, errors ${r.errors.count}`,
  ].join(', ');
}

/** pino JSON lines: level 50+ is error, 40 warn. */
function readLog(file: string): SessionResult['log'] {
  let text = '';
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    return { errors: 0, warnings: 0, samples: [], refusals: {} };
  }
  let errors = 0;
  let warnings = 0;
  const samples: string[] = [];
  const refusals: Record<string, number> = {};
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue;
    let entry: { level?: unknown; msg?: unknown; code?: unknown; err?: { message?: unknown } };
    try {
      entry = JSON.parse(line) as typeof entry;
    } catch {
      continue;
    }
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
