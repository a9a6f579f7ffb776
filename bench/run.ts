/**
 * `npm run bench`: the performance benchmark of the bot (see bench/README.md).
 *
 * Drives the real bot (src/app.ts createBot, real discord.js client, its own process) through the fake Discord and
 * fake Segmind of the tests over loopback, next to a minimal discord.js baseline bot, then measures the credit
 * stores. Writes bench/results/<name>.json and .md.
 *
 * The bots run compiled (src/ and bench/ built into .cache/bench-build at the start, bench/lib/build.ts).
 *
 * Environment (all optional):
 *   BENCH_ONLY=check,burst,sustained,credits   scenarios to run (default all four; `check` is the image classifier
 *                                        alone, one image at a time). `soak` runs alone and only when asked:
 *   BENCH_SOAK_MINUTES=30                the soak's length: 10 /imagine/s, 1–4 images of 1 MiB, Segmind 1 s; bots
 *                                        `ours-nocheck,baseline` by default (BENCH_BOTS), run at the same time
 *   BENCH_SOAK_SEQUENTIAL=1              the soak's bots one after the other instead (twice the wall time)
 *   BENCH_SUSTAINED_SECONDS=60           length of each sustained run (shorter for a quick look)
 *   BENCH_STORE=sqlite|memory|redis      our bot's STORE_URL kind in burst and sustained (default sqlite, the
 *                                        production default)
 *   BENCH_SEGMIND_DELAY_MS=2000          fake Segmind latency
 *   BENCH_BURST_IMAGE_SIDE=148           burst image side in pixels (noise PNG: 148 px ≈ 64 KiB)
 *   BENCH_SUSTAINED_IMAGE_SIDE=591       sustained image side (noise PNG: 591 px ≈ 1 MiB)
 *   BENCH_CREDITS_SECONDS=3              measured time per credit store and level
 *   BENCH_CHECKS=40                      measured images per image kind in the `check` scenario
 *   BENCH_REDIS_URL=redis://127.0.0.1:6379
 *   BENCH_CPU_PROF=1                     CPU profile of every measured run (bench/results/profiles/, git-ignored)
 *   BENCH_HEAP_SNAPSHOT=1                heap snapshot after each sustained run (same place)
 *   BENCH_BOTS=ours-nocheck,baseline,baseline-unlimited,ours   which bots burst and sustained run (default all;
 *                                        `ours-nocheck` is our bot with the image check off, for check on ÷ off)
 *   BENCH_RESULTS=name                   results file name (default `latest` for a full run, else `partial`; for
 *                                        the soak `soak` at full length with the default bots, else `partial-soak`)
 *   BENCH_BOT_ENV=NAME=value,...         extra environment for every bot process, ours and baselines alike (e.g.
 *                                        MALLOC_ARENA_MAX=2); a full run with it is not written to `latest`
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@keyv/redis';
import { ROOT } from './lib/child.js';
import { buildForBench } from './lib/build.js';
import { DEFAULT_CONCURRENCY, extraBotEnv, type BotKind } from './lib/load.js';
import { describeEnvironment, evaluateTargets, imageCheckSummary, loadAverageNow, renderMarkdown, type BenchResults } from './lib/report.js';
import { renderSoakMarkdown, soakSummaryLines, type SoakResults } from './lib/soak-report.js';
import { runBurst } from './scenarios/burst.js';
import { runCheckAlone } from './scenarios/check.js';
import { runCredits } from './scenarios/credits.js';
import { runSoak } from './scenarios/soak.js';
import { runSustained } from './scenarios/sustained.js';

const env = process.env;
const num = (name: string, fallback: number) => {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};

const ALL = ['check', 'burst', 'sustained', 'credits'] as const;
const only = (env.BENCH_ONLY ?? ALL.join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s) => s !== '');
for (const s of only) if (![...ALL, 'soak'].includes(s)) throw new Error(`BENCH_ONLY: unknown scenario ${s}`);
const soak = only.includes('soak');
if (soak && only.length > 1) throw new Error('BENCH_ONLY: soak runs alone');
const soakMinutes = num('BENCH_SOAK_MINUTES', 30);
if (!Number.isInteger(soakMinutes)) throw new Error('BENCH_SOAK_MINUTES must be a whole number');
const sustainedSeconds = num('BENCH_SUSTAINED_SECONDS', 60);
const segmindDelayMs = num('BENCH_SEGMIND_DELAY_MS', 2000);
const burstSide = num('BENCH_BURST_IMAGE_SIDE', 148);
const sustainedSide = num('BENCH_SUSTAINED_IMAGE_SIDE', 591);
const creditsSeconds = num('BENCH_CREDITS_SECONDS', 3);
const checks = num('BENCH_CHECKS', 40);
const redisUrl = env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
const storeKind = env.BENCH_STORE ?? 'sqlite';
if (!['sqlite', 'memory', 'redis'].includes(storeKind)) throw new Error('BENCH_STORE must be sqlite, memory or redis');
// `ours` (the image check on) last: under the sustained load it falls behind the classifier and drains slowly, and
// what it leaves on the machine must not weigh on the others' figures.
const BOTS = ['ours-nocheck', 'baseline', 'baseline-unlimited', 'ours'] as const;
const SOAK_BOTS: BotKind[] = ['ours-nocheck', 'baseline'];
const bots = (env.BENCH_BOTS ?? (soak ? SOAK_BOTS : BOTS).join(','))
  .split(',')
  .map((s) => s.trim())
  .filter((s): s is BotKind => (BOTS as readonly string[]).includes(s));
const botEnv = extraBotEnv();
const full = Object.keys(botEnv).length === 0 && bots.length === BOTS.length && only.length === ALL.length && sustainedSeconds === 60 && creditsSeconds === 3 && checks === 40 && segmindDelayMs === 2000 && storeKind === 'sqlite';
const fullSoak = Object.keys(botEnv).length === 0 && soakMinutes === 30 && bots.join(',') === SOAK_BOTS.join(',') && storeKind === 'sqlite';
const name = env.BENCH_RESULTS ?? (soak ? (fullSoak ? 'soak' : 'partial-soak') : full ? 'latest' : 'partial');

const resultsDir = join(ROOT, 'bench', 'results');
const profileDir = join(resultsDir, 'profiles');
const workDir = mkdtempSync(join(tmpdir(), 'flux-bench-'));
const logDir = join(workDir, 'logs');
mkdirSync(logDir, { recursive: true });
const cpuProfDir = env.BENCH_CPU_PROF === '1' ? profileDir : undefined;
const heapSnapshotDir = env.BENCH_HEAP_SNAPSHOT === '1' ? profileDir : undefined;
if (cpuProfDir || heapSnapshotDir) mkdirSync(profileDir, { recursive: true });

/** A fresh store for each bot process, as on a first start. */
let storeCount = 0;
function storeUrl(): string {
  if (storeKind === 'memory') return 'memory://';
  if (storeKind === 'redis') return redisUrl;
  return `sqlite://${join(workDir, `bot-${++storeCount}.sqlite`)}`;
}

/**
 * Our bot's settings: production defaults plus the Segmind concurrency (above what the burst sends at once, the
 * baseline's connections too) and what would refuse the benchmark's own requests (cooldown, daily credits, requests
 * per member). Nothing else: a default that hurts under load must show.
 */
function ourEnv(): Record<string, string> {
  return {
    STORE_URL: storeUrl(),
    DEFAULT_DAILY_CREDITS: '100000',
    DEFAULT_COOLDOWN_SECONDS: '0',
    MAX_QUEUED_PER_USER: '20',
    SEGMIND_CONCURRENCY: String(DEFAULT_CONCURRENCY),
  };
}

async function redisServerVersion(): Promise<string | undefined> {
  const client = createClient({ url: redisUrl, socket: { connectTimeout: 1_000, reconnectStrategy: false } });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const info = await client.info('server');
    return /redis_version:(\S+)/.exec(info)?.[1];
  } catch {
    return undefined;
  } finally {
    await client.close().catch(() => undefined);
  }
}

const started = performance.now();
buildForBench(ROOT);
if (soak) await runSoakBenchmark();
else await runBenchmark();

async function runBenchmark(): Promise<void> {
  console.log(`flux-discord-bot benchmark: ${only.join(', ')}${full ? '' : ' (partial)'}; logs in ${logDir}`);
  const results: BenchResults = {
    generatedAt: new Date().toISOString(),
    full,
    durationSeconds: 0,
    environment: describeEnvironment(await redisServerVersion()),
    parameters: {
      store: storeKind,
      segmindLatencyMs: segmindDelayMs,
      burstImageSidePx: burstSide,
      sustainedImageSidePx: sustainedSide,
      sustainedSeconds,
      creditsSecondsPerStore: creditsSeconds,
      ourBotEnv: { ...ourEnv(), STORE_URL: storeKind },
      imageCheck: 'ours: the real classifier (IMAGE_CHECK_THREADS and IMAGE_CHECK_THRESHOLD at their defaults); ours-nocheck: DEFAULT_IMAGE_CHECK=off',
      bots: 'compiled (.cache/bench-build), node --expose-gc',
      checksPerImageKind: checks,
      ...(Object.keys(botEnv).length > 0 ? { botEnv } : {}),
    },
    targets: [],
  };

  const burstImage = { longSide: burstSide, noise: true, format: 'png' } as const;
  const sustainedImage = { longSide: sustainedSide, noise: true, format: 'png' } as const;
  try {
    if (only.includes('check')) {
      console.log('check…');
      results.check = await runCheckAlone({
        images: [
          { label: 'burst image', image: burstImage },
          { label: 'sustained image', image: sustainedImage },
        ],
        checks,
      });
      for (const i of results.check.images)
        console.log(`  ${i.label} (${Math.round(i.bytes / 1024)} KiB): check p50/p99 ${i.checkMs.p50}/${i.checkMs.p99} ms, ${i.imagesPerSecondPerThread} images/s per thread`);
    }
    if (only.includes('burst')) {
      console.log('burst…');
      results.burst = await runBurst({
        interactions: 300,
        users: 100,
        windowMs: 1000,
        segmindDelayMs,
        image: burstImage,
        ourEnv: ourEnv(),
        logDir,
        ...(cpuProfDir ? { cpuProfDir } : {}),
        kinds: bots,
      });
    }
    if (only.includes('sustained')) {
      console.log('sustained…');
      results.sustained = await runSustained({
        ratePerSecond: 20,
        durationSeconds: sustainedSeconds,
        users: 100,
        segmindDelayMs,
        image: sustainedImage,
        ourEnv: ourEnv(),
        logDir,
        ...(cpuProfDir ? { cpuProfDir } : {}),
        ...(heapSnapshotDir ? { heapSnapshotDir } : {}),
        kinds: bots.filter((b) => b !== 'baseline-unlimited'),
      });
    }
    if (only.includes('credits')) {
      console.log('credits…');
      results.credits = await runCredits({
        users: 50,
        durationMs: creditsSeconds * 1000,
        warmupMs: 500,
        redisUrl,
        logDir,
        ...(cpuProfDir ? { cpuProfDir } : {}),
      });
    }
  } finally {
    results.durationSeconds = (performance.now() - started) / 1000;
    results.environment.loadAverage.end = loadAverageNow();
    results.targets = evaluateTargets(results);
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(resultsDir, `${name}.md`), `${renderMarkdown(results)}\n`);
    // Keep the logs only when something went wrong.
    const ok = results.targets.find((t) => t.id === 'no-loss')?.met ?? false;
    if (ok && process.env.BENCH_KEEP_LOGS !== "1") rmSync(workDir, { recursive: true, force: true });
    else console.log(`bot logs kept in ${logDir}`);
  }

  console.log('');
  for (const line of imageCheckSummary(results)) console.log(line);
  console.log('');
  for (const t of results.targets)
    console.log(`${t.informational ? 'info  ' : t.met ? 'met   ' : 'MISSED'} ${t.scenario.padEnd(9)} ${t.what}: ${t.value}${t.informational ? '' : ` (target ${t.target})`}${t.baseline ? `; baseline ${t.baseline}` : ''}`);
  console.log(`load average (1, 5, 15 min): at the start ${results.environment.loadAverage.start.join(', ')}, at the end ${results.environment.loadAverage.end?.join(', ') ?? 'n/a'}`);
  console.log(`\nwrote bench/results/${name}.json and bench/results/${name}.md (${Math.round(results.durationSeconds)} s)`);
}

async function runSoakBenchmark(): Promise<void> {
  console.log(`flux-discord-bot benchmark: soak, ${soakMinutes} min, ${bots.join(', ')}${fullSoak ? '' : ' (partial)'}; logs in ${logDir}`);
  const segmindLatencyMs = 1000;
  const results: SoakResults = {
    generatedAt: new Date().toISOString(),
    full: fullSoak,
    durationSeconds: 0,
    environment: describeEnvironment(undefined),
    parameters: {
      store: storeKind,
      segmindLatencyMs,
      imageSidePx: sustainedSide,
      minutes: soakMinutes,
      ratePerSecond: 10,
      ourBotEnv: { ...ourEnv(), STORE_URL: storeKind },
      imageCheck: 'ours-nocheck: DEFAULT_IMAGE_CHECK=off',
      bots: 'compiled (.cache/bench-build), node --expose-gc',
      ...(Object.keys(botEnv).length > 0 ? { botEnv } : {}),
    },
  };
  let ok = false;
  try {
    results.soak = await runSoak({
      minutes: soakMinutes,
      ratePerSecond: 10,
      users: 100,
      segmindDelayMs: segmindLatencyMs,
      image: { longSide: sustainedSide, noise: true, format: 'png' },
      ourEnv,
      logDir,
      kinds: bots,
      sequential: env.BENCH_SOAK_SEQUENTIAL === '1',
    });
    ok = results.soak.bots.every((b) => b.run.lost + b.run.duplicated + b.run.errors.count + b.log.errors === 0 && (b.audit?.ok ?? true));
  } finally {
    results.durationSeconds = (performance.now() - started) / 1000;
    results.environment.loadAverage.end = loadAverageNow();
    mkdirSync(resultsDir, { recursive: true });
    writeFileSync(join(resultsDir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(join(resultsDir, `${name}.md`), `${renderSoakMarkdown(results)}\n`);
    if (ok && process.env.BENCH_KEEP_LOGS !== '1') rmSync(workDir, { recursive: true, force: true });
    else console.log(`bot logs kept in ${logDir}`);
  }
  console.log('');
  for (const line of soakSummaryLines(results.soak)) console.log(line);
  console.log(`load average (1, 5, 15 min): at the start ${results.environment.loadAverage.start.join(', ')}, at the end ${results.environment.loadAverage.end?.join(', ') ?? 'n/a'}`);
  console.log(`\nwrote bench/results/${name}.json and bench/results/${name}.md (${Math.round(results.durationSeconds)} s)`);
}
