/**
 * Soak (`BENCH_ONLY=soak`, not part of the default run): a steady load for a long time (30 minutes by default), with
 * figures per minute, to show whether anything grows with time — memory kept per job, queues that never drain, a
 * slowing that only a long run reveals.
 *
 * The bots run at the same time by default, each against its own fake Discord and fake Segmind in this process: the
 * wall time stays the soak's length and every bot sees the same machine noise minute by minute. At each minute's end
 * the bot process reports its highest RSS sampled in that minute, then collects garbage and reports the heap left.
 */
import { auditCharges, Ledger, type ChargeAudit } from '../lib/audit.js';
import type { BenchChild } from '../lib/child.js';
import { isCompleted, isOurs, runJobs, startBot, startFakes, type BotKind, type ImageSpec, type JobResult, type RunMeasurement } from '../lib/load.js';
import { peakRssOf, readLog, warmupJobs, type SessionResult } from '../lib/session.js';
import { distribution, percentile, round } from '../lib/stats.js';
import type { LapStats } from '../lib/telemetry.js';
import { sustainedJobs } from './sustained.js';

export interface SoakOptions {
  minutes: number;
  ratePerSecond: number;
  users: number;
  segmindDelayMs: number;
  image: ImageSpec;
  /** Our bot's environment; called once per bot (each gets a fresh store). */
  ourEnv: () => Record<string, string>;
  logDir: string;
  kinds: BotKind[];
  /** One bot after the other instead of all at once. */
  sequential: boolean;
}

export interface SoakMinute {
  /** 1-based; a job belongs to the minute it was sent in. */
  minute: number;
  jobs: number;
  completed: number;
  overheadP50Ms: number;
  overheadP99Ms: number;
  ackP99Ms: number;
  /** Highest RSS sampled in the bot process during the minute. */
  rssMaxBytes: number;
  /** V8 heap used at the minute's end, after a forced GC. */
  heapUsedBytes: number;
  /** How long that GC held the bot's event loop. */
  gcMs: number;
}

export type SoakFigure = 'overhead p50' | 'overhead p99' | 'RSS' | 'heap';

export interface SoakGrowth {
  figure: SoakFigure;
  first: number;
  last: number;
  /** last ÷ first − 1 */
  change: number;
  growth: boolean;
}

export interface SoakBot {
  kind: BotKind;
  name: string;
  minutes: SoakMinute[];
  /** Minutes compared at each end (10, or half the soak when shorter than 20 minutes); undefined when too short. */
  growthWindowMinutes?: number;
  growth: SoakGrowth[];
  /**
   * The whole soak as one run (the per-second timeline left out); `run.kernel` is the bot's peak RSS over its life
   * (start-up and warm-up included) and its RSS at the end.
   */
  run: Omit<RunMeasurement, 'timeline'>;
  audit?: ChargeAudit;
  log: SessionResult['log'];
}

export interface SoakResult {
  minutes: number;
  ratePerSecond: number;
  users: number;
  segmindDelayMs: number;
  imageBytes: number;
  concurrent: boolean;
  bots: SoakBot[];
}

/** More than this over the first window counts as growth. */
export const GROWTH_LIMIT = 0.1;

export async function runSoak(opts: SoakOptions): Promise<SoakResult> {
  let imageBytes = 0;
  const one = async (kind: BotKind): Promise<SoakBot> => {
    const result = await soakOneBot(kind, opts);
    imageBytes = result.imageBytes;
    return result.bot;
  };
  const bots: SoakBot[] = [];
  if (opts.sequential) for (const kind of opts.kinds) bots.push(await one(kind));
  else {
    // Every bot to its end even when one fails: none is left running behind the error.
    const settled = await Promise.allSettled(opts.kinds.map(one));
    for (const result of settled) {
      if (result.status === 'rejected') throw result.reason;
      bots.push(result.value);
    }
  }
  return {
    minutes: opts.minutes,
    ratePerSecond: opts.ratePerSecond,
    users: opts.users,
    segmindDelayMs: opts.segmindDelayMs,
    imageBytes,
    concurrent: !opts.sequential && opts.kinds.length > 1,
    bots,
  };
}

async function soakOneBot(kind: BotKind, opts: SoakOptions): Promise<{ bot: SoakBot; imageBytes: number }> {
  const name = `soak-${kind}`;
  const fakes = await startFakes({ segmindDelayMs: opts.segmindDelayMs, image: opts.image });
  const ledger = new Ledger();
  let bot: BenchChild;
  try {
    bot = await startBot(fakes, { kind, env: opts.ourEnv(), logDir: opts.logDir, name });
  } catch (error) {
    await fakes.stop();
    throw error;
  }
  const laps: Array<Promise<LapStats | undefined>> = [];
  const timers: NodeJS.Timeout[] = [];
  const lap = (gc: boolean) =>
    bot.call<LapStats>('lap', { gc }).catch((error: unknown) => {
      console.log(`  ${name}: no figures for a minute (${error instanceof Error ? error.message.split('\n')[0] : String(error)})`);
      return undefined;
    });
  let jobResults: readonly JobResult[] = [];
  let runStart = 0;
  let run: RunMeasurement;
  let audit: ChargeAudit | undefined;
  try {
    const warm = await runJobs(fakes, bot, warmupJobs(), { settleMs: 15_000, label: `${name} warm-up`, ledger });
    if (warm.lost > 0) console.log(`  ${name}: warm-up lost ${warm.lost} job(s): ${warm.errors.samples.join('; ')}`);
    const minuteDone = (minute: number) => {
      laps[minute - 1] = lap(true);
      // The fake keeps every request it answered; the hook that times them does not need the old ones.
      fakes.discord.clearRecords();
      if (minute % 5 === 0 || minute === opts.minutes) console.log(`  ${name}: minute ${minute} of ${opts.minutes}`);
    };
    run = await runJobs(fakes, bot, sustainedJobs(opts.ratePerSecond, opts.minutes * 60, opts.users), {
      settleMs: 30_000,
      label: name,
      ledger,
      onStart: (start) => {
        runStart = start;
        void lap(false); // starts the first minute's RSS peak here, not in the warm-up
        for (let minute = 1; minute <= opts.minutes; minute++)
          timers.push(setTimeout(() => minuteDone(minute), start + minute * 60_000 - performance.now()));
      },
      onJobs: (jobs) => {
        jobResults = jobs;
      },
    });
    // A minute whose end had not come yet (the run ended early): its figures now.
    timers.forEach(clearTimeout);
    for (let minute = 1; minute <= opts.minutes; minute++) if (laps[minute - 1] === undefined) minuteDone(minute);
    if (isOurs(kind)) audit = await auditCharges(bot, fakes.discord.guildId, ledger);
  } finally {
    timers.forEach(clearTimeout);
    await bot.stop();
    await fakes.stop();
  }
  const lapStats = await Promise.all(laps);
  const minutes = perMinute(jobResults, runStart, opts, lapStats);
  const window = opts.minutes >= 20 ? 10 : Math.floor(opts.minutes / 2);
  const { timeline: _timeline, ...whole } = run;
  const soakBot: SoakBot = {
    kind,
    name,
    minutes,
    ...(window > 0 ? { growthWindowMinutes: window } : {}),
    growth: window > 0 ? growthOf(jobResults, runStart, minutes, window, opts) : [],
    run: whole,
    ...(audit ? { audit } : {}),
    log: readLog(bot.logFile),
  };
  console.log(
    `  ${name}: overhead p50/p99 ${run.overheadMs.p50}/${run.overheadMs.p99} ms, ack p99 ${run.ackMs.p99} ms, peak RSS (VmHWM) ${round(peakRssOf(run) / 1048576)} MiB, ` +
      `lost ${run.lost}, duplicated ${run.duplicated}, errors ${run.errors.count}; growth: ${soakBot.growth.filter((g) => g.growth).map((g) => g.figure).join(', ') || 'none'}`,
  );
  return { bot: soakBot, imageBytes: fakes.imageBytes };
}

const minuteOf = (job: JobResult, start: number, minutes: number) => Math.min(minutes, Math.floor((job.sentAt - start) / 60_000) + 1);
const overheadOf = (job: JobResult, segmindDelayMs: number) => job.finalAt! - job.sentAt - segmindDelayMs;

function perMinute(jobs: readonly JobResult[], start: number, opts: SoakOptions, laps: Array<LapStats | undefined>): SoakMinute[] {
  return Array.from({ length: opts.minutes }, (_, i) => {
    const minute = i + 1;
    const sent = jobs.filter((job) => minuteOf(job, start, opts.minutes) === minute);
    const completed = sent.filter(isCompleted);
    const overhead = distribution(completed.map((job) => overheadOf(job, opts.segmindDelayMs)));
    const ack = distribution(sent.filter((job) => job.ackAt !== undefined).map((job) => job.ackAt! - job.sentAt));
    const lap = laps[i];
    return {
      minute,
      jobs: sent.length,
      completed: completed.length,
      overheadP50Ms: overhead.p50,
      overheadP99Ms: overhead.p99,
      ackP99Ms: ack.p99,
      rssMaxBytes: lap?.peakRssBytes ?? Number.NaN,
      heapUsedBytes: lap?.heapUsedBytes ?? Number.NaN,
      gcMs: lap?.gcMs ?? Number.NaN,
    };
  });
}

/**
 * The first `window` minutes against the last `window`: overhead percentiles over all the jobs sent in each window,
 * RSS and heap as the median of their per-minute figures (one noisy minute does not decide).
 */
function growthOf(jobs: readonly JobResult[], start: number, minutes: SoakMinute[], window: number, opts: SoakOptions): SoakGrowth[] {
  const n = opts.minutes;
  const inFirst = (minute: number) => minute <= window;
  const inLast = (minute: number) => minute > n - window;
  const overheads = (inWindow: (minute: number) => boolean) =>
    jobs
      .filter((job) => isCompleted(job) && inWindow(minuteOf(job, start, n)))
      .map((job) => overheadOf(job, opts.segmindDelayMs))
      .sort((a, b) => a - b);
  const median = (inWindow: (minute: number) => boolean, get: (m: SoakMinute) => number) =>
    percentile(
      minutes
        .filter((m) => inWindow(m.minute))
        .map(get)
        .filter(Number.isFinite)
        .sort((a, b) => a - b),
      50,
    );
  const [first, last] = [overheads(inFirst), overheads(inLast)];
  const figure = (name: SoakFigure, a: number, b: number): SoakGrowth => {
    const change = Number.isFinite(a) && Number.isFinite(b) && a > 0 ? b / a - 1 : Number.NaN;
    return { figure: name, first: round(a), last: round(b), change: round(change, 3), growth: change > GROWTH_LIMIT };
  };
  return [
    figure('overhead p50', percentile(first, 50), percentile(last, 50)),
    figure('overhead p99', percentile(first, 99), percentile(last, 99)),
    figure('RSS', median(inFirst, (m) => m.rssMaxBytes), median(inLast, (m) => m.rssMaxBytes)),
    figure('heap', median(inFirst, (m) => m.heapUsedBytes), median(inLast, (m) => m.heapUsedBytes)),
  ];
}
