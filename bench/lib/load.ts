/**
 * The load generator: fake Discord + fake Segmind (the ones the tests use) in this process, the bot under test in a
 * child process, interactions sent on a schedule, and every request the bot makes timed as it reaches the fake.
 */
import { mkdirSync } from 'node:fs';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FakeDiscord, snowflake, type RecordedRequest } from '../../test/fakes/fake-discord.js';
import { FakeSegmind } from '../../test/fakes/fake-segmind.js';
import { messageOf, sendImagine } from '../../test/support/imagine.js';
import type { Ledger } from './audit.js';
import { BenchChild, type KernelMemory } from './child.js';
import { distribution, round, type Distribution } from './stats.js';
import type { ProcessStats } from './telemetry.js';

export const BENCH_DISCORD_TOKEN = 'MTA5ODc2NTQzMjEwOTg3NjU0.GtEsT0.fake-discord-token-for-the-benchmark-0123';
export const BENCH_SEGMIND_KEY = 'SG_bench_0123456789abcdef';
/**
 * Segmind concurrency for both bots: above the burst's 300 requests at once, so neither waits for a slot or a
 * connection and the figures compare the bots, not a limit.
 */
export const DEFAULT_CONCURRENCY = 512;

/** `ours-nocheck`: our bot with the image check off (`DEFAULT_IMAGE_CHECK=off`), against `baseline` for the ratios. */
export type BotKind = 'ours' | 'ours-nocheck' | 'baseline' | 'baseline-unlimited';

/** Our bot, with or without the image check (the baselines have neither store nor check). */
export const isOurs = (kind: BotKind): boolean => kind === 'ours' || kind === 'ours-nocheck';

export interface ImageSpec {
  /** Long side in pixels of the fake Segmind's images (1:1 here, so both sides). */
  longSide: number;
  /** Incompressible pixels, so the file really is as large as asked. */
  noise: boolean;
  format: 'png' | 'webp' | 'jpg';
}

export interface FakeSetup {
  segmindDelayMs: number;
  image: ImageSpec;
}

export interface Fakes {
  discord: FakeDiscord;
  segmind: FakeSegmind;
  setup: FakeSetup;
  /** Size in bytes of the images the fake Segmind serves (seed 1; every seed gives the same size). */
  imageBytes: number;
  stop(): Promise<void>;
}

export async function startFakes(setup: FakeSetup): Promise<Fakes> {
  // File bytes are not kept: hundreds of MiB of uploads would otherwise pile up in the driver.
  const discord = await FakeDiscord.start({ recordFileBytes: false });
  const segmind = await FakeSegmind.start({ apiKey: BENCH_SEGMIND_KEY, maxRecords: 200 });
  segmind.setDefault({ kind: 'image', delayMs: setup.segmindDelayMs, longSide: setup.image.longSide, noise: setup.image.noise });
  const { renderImage } = await import('../../test/fakes/images.js');
  const sample = await renderImage({ format: setup.image.format, width: setup.image.longSide, height: setup.image.longSide, seed: 1, noise: setup.image.noise });
  return {
    discord,
    segmind,
    setup,
    imageBytes: sample.length,
    async stop() {
      await discord.stop();
      await segmind.stop();
    },
  };
}

export interface BotOptions {
  kind: BotKind;
  /** Environment for our bot on top of what the fakes need (limits, store). */
  env?: Record<string, string>;
  logDir: string;
  name: string;
}

/**
 * BENCH_BOT_ENV=NAME=value,NAME=value: extra environment for every bot process (ours and the baselines alike), for
 * operator settings such as MALLOC_ARENA_MAX.
 */
export function extraBotEnv(spec = process.env.BENCH_BOT_ENV ?? ''): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of spec.split(',')) {
    const trimmed = pair.trim();
    if (trimmed === '') continue;
    const eq = trimmed.indexOf('=');
    if (eq <= 0) throw new Error(`BENCH_BOT_ENV: expected NAME=value, got ${trimmed}`);
    env[trimmed.slice(0, eq)] = trimmed.slice(eq + 1);
  }
  return env;
}

/** Starts the bot in its own process and waits until its gateway session is ready on the fake. */
export async function startBot(fakes: Fakes, opts: BotOptions): Promise<BenchChild> {
  mkdirSync(opts.logDir, { recursive: true });
  const common = {
    DISCORD_TOKEN: BENCH_DISCORD_TOKEN,
    SEGMIND_API_KEY: BENCH_SEGMIND_KEY,
    DISCORD_API_URL: fakes.discord.apiUrl,
    SEGMIND_API_URL: fakes.segmind.url,
  };
  const child = BenchChild.start({
    script: isOurs(opts.kind) ? 'bench/bot-process.ts' : 'bench/baseline-bot.ts',
    env: {
      ...common,
      ...(opts.kind === 'baseline-unlimited' ? { BASELINE_REST_GLOBAL_RPS: '1000000' } : {}),
      // The baseline's connection pool follows our bot's Segmind concurrency, as our bot's pool does.
      ...(isOurs(opts.kind) ? opts.env : { SEGMIND_CONCURRENCY: opts.env?.SEGMIND_CONCURRENCY ?? String(DEFAULT_CONCURRENCY) }),
      // As an operator switches it off for every server that has not chosen otherwise.
      ...(opts.kind === 'ours-nocheck' ? { DEFAULT_IMAGE_CHECK: 'off' } : {}),
      ...extraBotEnv(),
    },
    logDir: opts.logDir,
    name: opts.name,
  });
  try {
    await withTimeout(child.ready, 60_000, `${opts.name} did not become ready`);
    await fakes.discord.waitForReadyConnections(1, 10_000);
  } catch (error) {
    child.kill();
    throw error;
  }
  return child;
}

export interface JobSpec {
  /** Offset from the start of the run, ms. */
  at: number;
  userId: string;
  samples: number;
  seed: number;
}

export interface JobResult {
  spec: JobSpec;
  interactionId: string;
  sentAt: number;
  ackAt?: number;
  ackStatus?: number;
  /** Callback type the bot answered with (5 = deferred). */
  ackType?: number;
  finalAt?: number;
  finalFiles?: number;
  finalStatus?: number;
  /** When the fake Segmind received the first and the last of this job's image requests. */
  segmindFirstAt?: number;
  segmindLastAt?: number;
  segmindCalls: number;
  /** Edits before the final one (queue/progress messages). */
  progressEdits: number;
  /** The bot answered with an error message instead of images. */
  failedWith?: string;
}

export interface RunMeasurement {
  jobs: number;
  images: number;
  completed: number;
  lost: number;
  /** Jobs whose images arrived more than once (a second final edit). */
  duplicated: number;
  errors: { count: number; samples: string[] };
  ackMs: Distribution;
  overheadMs: Distribution;
  /** Part of the overhead before Segmind: interaction sent → the job's first Segmind request received. */
  beforeSegmindMs: Distribution;
  /** Part of the overhead after Segmind: last Segmind answer due (request + latency) → final edit received. */
  afterSegmindMs: Distribution;
  endToEndMs: Distribution;
  throughput: { jobsPerSecond: number; imagesPerSecond: number; mibPerSecond: number; windowSeconds: number };
  segmindRequests: number;
  discordRequests: { callbacks: number; edits: number; progressEdits: number; other: number };
  /** Per second of sending: jobs sent, worst acknowledgement and worst overhead of the jobs sent in that second. */
  timeline: Array<{ second: number; sent: number; ackMaxMs: number; overheadMaxMs: number }>;
  /** The load generator's own event-loop delay p99 (if high, the harness, not the bot, was the bottleneck). */
  driverEventLoopDelayP99Ms: number;
  bot: ProcessStats;
  /** The bot process's peak RSS over its life so far and its RSS, from /proc at the end of the run. */
  kernel?: KernelMemory;
}

/** Every image delivered in one final edit that Discord accepted. */
export const isCompleted = (r: JobResult): boolean => r.finalAt !== undefined && r.finalFiles === r.spec.samples && (r.finalStatus ?? 0) < 400;

const isCallback = (r: RecordedRequest) => r.method === 'POST' && r.path.endsWith('/callback');
const isOriginalEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
/** A follow-up message (POST /webhooks/:app/:token): how a refusal after the deferral reaches the member, privately. */
const isFollowUp = (r: RecordedRequest) => r.method === 'POST' && /^\/webhooks\/\d+\/[^/]+$/.test(r.path);

/**
 * Sends `jobs` on schedule (each `/imagine` with its samples and seed), waits for every job to end, and measures.
 * `settleMs` is how long after the last send a job may still complete before it counts as lost.
 */
export interface RunOptions {
  settleMs: number;
  label: string;
  ledger?: Ledger;
  /** Called when the first job is due, with the run's time origin (performance.now()); `at` counts from it. */
  onStart?: (start: number) => void;
  /** Called at the end with every job's timings, for figures per part of the run (the soak's minutes). */
  onJobs?: (jobs: readonly JobResult[], start: number) => void;
}

export async function runJobs(fakes: Fakes, bot: BenchChild, jobs: JobSpec[], opts: RunOptions): Promise<RunMeasurement> {
  const { discord, segmind, setup } = fakes;
  const byInteraction = new Map<string, JobResult>();
  const results: JobResult[] = [];
  const errors: string[] = [];
  const counts = { callbacks: 0, edits: 0, progressEdits: 0, other: 0 };
  let duplicated = 0;
  let stopped = false;

  // A predicate that never matches: called for every request right after the fake has answered it.
  const hook = (rec: RecordedRequest): boolean => {
    if (stopped) return false;
    const now = performance.now();
    const job = rec.interactionId === undefined ? undefined : byInteraction.get(rec.interactionId);
    if (rec.status >= 400) errors.push(`${rec.method} ${rec.path.replace(/[\w-]{60,}/, ':token')} -> ${rec.status} ${JSON.stringify(rec.response)}`);
    if (!job) {
      counts.other++;
      return false;
    }
    if (isCallback(rec)) {
      counts.callbacks++;
      job.ackAt ??= now;
      job.ackStatus ??= rec.status;
      const type = (rec.json as { type?: unknown } | undefined)?.type;
      if (typeof type === 'number') job.ackType ??= type;
      if (type !== 5) {
        const content = messageOf(rec.json).content ?? '';
        job.failedWith ??= `callback type ${String(type)}: ${content.slice(0, 160)}`;
        errors.push(`job ${job.interactionId}: ${job.failedWith}`);
      }
    } else if (isOriginalEdit(rec)) {
      counts.edits++;
      if (rec.files.length > 0) {
        if (job.finalAt !== undefined) duplicated++;
        job.finalAt ??= now;
        job.finalFiles ??= rec.files.length;
        job.finalStatus ??= rec.status;
      } else {
        const content = messageOf(rec.json).content ?? '';
        if (content.startsWith('❌')) {
          job.failedWith ??= content.slice(0, 160);
          errors.push(`job ${job.interactionId}: ${content.slice(0, 160)}`);
        } else {
          counts.progressEdits++;
          job.progressEdits++;
        }
      }
    } else if (isFollowUp(rec)) {
      // A refusal found after the deferral: the public reply is deleted and the reason sent as a private follow-up.
      counts.other++;
      const content = messageOf(rec.json).content ?? '';
      if (content.startsWith('❌')) {
        job.failedWith ??= `follow-up: ${content.slice(0, 160)}`;
        errors.push(`job ${job.interactionId}: ${job.failedWith}`);
      }
    } else {
      counts.other++;
    }
    return false;
  };
  discord.clearRecords();
  discord.waitForRequest(hook, 24 * 3_600_000).catch(() => undefined);
  const byPrompt = new Map<string, JobResult>();
  const image = { kind: 'image' as const, delayMs: setup.segmindDelayMs, longSide: setup.image.longSide, noise: setup.image.noise };
  segmind.respondWith((rec) => {
    const now = performance.now();
    const prompt = (rec.body as { prompt?: unknown } | undefined)?.prompt;
    const job = typeof prompt === 'string' ? byPrompt.get(prompt) : undefined;
    if (job) {
      job.segmindFirstAt ??= now;
      job.segmindLastAt = now;
      job.segmindCalls++;
    }
    return image;
  });

  const segmindBefore = segmind.requestCount();
  const eld = monitorEventLoopDelay({ resolution: 10 });
  eld.enable();
  await bot.mark();

  const start = performance.now();
  opts.onStart?.(start);
  let next = 0;
  const send = (spec: JobSpec) => {
    const prompt = `benchmark ${opts.label} job ${next}`;
    const sentAt = performance.now();
    const sent = sendImagine(
      discord,
      { prompt, samples: spec.samples, seed: spec.seed, output_format: setup.image.format },
      { userId: spec.userId },
    );
    const result: JobResult = { spec, interactionId: sent.id, sentAt, progressEdits: 0, segmindCalls: 0 };
    byInteraction.set(sent.id, result);
    byPrompt.set(prompt, result);
    results.push(result);
  };
  await new Promise<void>((done) => {
    const tick = () => {
      const elapsed = performance.now() - start;
      while (next < jobs.length && jobs[next]!.at <= elapsed) send(jobs[next++]!);
      if (next >= jobs.length) return done();
      setTimeout(tick, Math.max(0, jobs[next]!.at - (performance.now() - start)));
    };
    tick();
  });
  const lastSent = performance.now();

  const ended = (r: JobResult) =>
    (r.finalAt !== undefined && (r.finalFiles ?? 0) >= r.spec.samples) ||
    r.failedWith !== undefined ||
    (r.ackStatus !== undefined && r.ackStatus >= 400);
  const deadline = lastSent + setup.segmindDelayMs + opts.settleMs;
  while (performance.now() < deadline && !results.every(ended)) await sleep(25);
  // Late duplicates or stray edits would show up right after the last one.
  await sleep(200);
  const bot_ = await bot.stats();
  const kernel = bot.kernelMemory();
  eld.disable();
  stopped = true;
  segmind.respondWith(null);

  opts.onJobs?.(results, start);
  const completed = results.filter(isCompleted);
  for (const r of completed) opts.ledger?.add(r.spec.userId, r.spec.samples);
  const images = jobs.reduce((n, j) => n + j.samples, 0);
  const deliveredImages = completed.reduce((n, r) => n + r.spec.samples, 0);
  const firstSent = results[0]?.sentAt ?? start;
  const lastFinal = Math.max(...completed.map((r) => r.finalAt!), firstSent + 1);
  const windowSeconds = (lastFinal - firstSent) / 1000;
  for (const r of results) {
    if (r.ackAt === undefined) errors.push(`job ${r.interactionId}: no acknowledgement`);
    else if (r.finalAt === undefined && r.failedWith === undefined) errors.push(`job ${r.interactionId}: acknowledged, never delivered`);
  }
  return {
    jobs: jobs.length,
    images,
    completed: completed.length,
    lost: jobs.length - completed.length,
    duplicated,
    errors: { count: errors.length, samples: errors.slice(0, 12) },
    ackMs: distribution(results.filter((r) => r.ackAt !== undefined).map((r) => r.ackAt! - r.sentAt)),
    overheadMs: distribution(completed.map((r) => r.finalAt! - r.sentAt - setup.segmindDelayMs)),
    beforeSegmindMs: distribution(completed.filter((r) => r.segmindFirstAt !== undefined).map((r) => r.segmindFirstAt! - r.sentAt)),
    afterSegmindMs: distribution(
      completed.filter((r) => r.segmindLastAt !== undefined).map((r) => r.finalAt! - r.segmindLastAt! - setup.segmindDelayMs),
    ),
    endToEndMs: distribution(completed.map((r) => r.finalAt! - r.sentAt)),
    throughput: {
      jobsPerSecond: round(completed.length / windowSeconds),
      imagesPerSecond: round(deliveredImages / windowSeconds),
      mibPerSecond: round((deliveredImages * fakes.imageBytes) / 1048576 / windowSeconds),
      windowSeconds: round(windowSeconds),
    },
    segmindRequests: segmind.requestCount() - segmindBefore,
    discordRequests: counts,
    timeline: timelineOf(results, start, setup.segmindDelayMs),
    driverEventLoopDelayP99Ms: round(eld.percentile(99) / 1e6),
    bot: bot_,
    ...(kernel ? { kernel } : {}),
  };
}

function timelineOf(results: JobResult[], start: number, segmindDelayMs: number): RunMeasurement['timeline'] {
  const seconds = new Map<number, { sent: number; ackMaxMs: number; overheadMaxMs: number }>();
  for (const r of results) {
    const second = Math.floor((r.sentAt - start) / 1000);
    const entry = seconds.get(second) ?? { sent: 0, ackMaxMs: 0, overheadMaxMs: 0 };
    entry.sent++;
    if (r.ackAt !== undefined) entry.ackMaxMs = Math.max(entry.ackMaxMs, round(r.ackAt - r.sentAt, 1));
    if (r.finalAt !== undefined) entry.overheadMaxMs = Math.max(entry.overheadMaxMs, round(r.finalAt - r.sentAt - segmindDelayMs, 1));
    seconds.set(second, entry);
  }
  return [...seconds].sort((a, b) => a[0] - b[0]).map(([second, e]) => ({ second, ...e }));
}

/** n distinct user ids (snowflakes), stable within a run. */
export function userIds(n: number): string[] {
  return Array.from({ length: n }, () => snowflake());
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
