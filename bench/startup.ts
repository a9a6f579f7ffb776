/**
 * Start-up time and memory of the bot's two ways to start: `tsx src/index.ts` (what `npm start` ran before, and what
 * `npm run dev` runs) against `node --enable-source-maps dist/index.js` (what `npm start` runs now).
 *
 * Each run spawns the real entry point in a fresh working directory (default SQLite store, the real image classifier)
 * against the fake Discord and fake Segmind, and times spawn → "storage ready" and spawn → "connected to Discord";
 * the process tree's RSS (the bot, and for tsx its launcher and esbuild service) is sampled every 20 ms until 3 s after
 * connecting, and the peak of the sum is kept. Runs alternate between the two, so load on the machine hits both.
 *
 *   npx tsx bench/startup.ts            (BENCH_STARTUP_RUNS=5 by default; builds dist/ first if it is stale)
 */
import { readFileSync } from 'node:fs';
import { FakeDiscord } from '../test/fakes/fake-discord.js';
import { FakeSegmind } from '../test/fakes/fake-segmind.js';
import { buildDist, crashAllBotProcesses, startBotProcess } from '../test/support/bot-process.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY } from '../test/support/harness.js';

const RUNS = Number(process.env.BENCH_STARTUP_RUNS ?? 5);
const SAMPLE_MS = 20;
const AFTER_READY_MS = 3_000;

type Mode = 'tsx' | 'compiled';

interface Run {
  mode: Mode;
  storageReadyMs: number;
  connectedMs: number;
  peakRssMiB: number;
  processes: number;
}

function treeRss(pid: number): { kib: number; processes: number } {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
    return children.map(treeRss).reduce((a, b) => ({ kib: a.kib + b.kib, processes: a.processes + b.processes }), { kib, processes: 1 });
  } catch {
    return { kib: 0, processes: 0 }; // exited between two reads
  }
}

async function once(mode: Mode, discord: FakeDiscord, segmind: FakeSegmind): Promise<Run> {
  const started = performance.now();
  const bot = startBotProcess(
    {
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      DISCORD_GUILD_ID: discord.guildId,
      LOG_LEVEL: 'info',
    },
    { compiled: mode === 'compiled' },
  );
  let peakKib = 0;
  let processes = 0;
  const sampler = setInterval(() => {
    const { kib, processes: count } = treeRss(bot.pid);
    peakKib = Math.max(peakKib, kib);
    processes = Math.max(processes, count);
  }, SAMPLE_MS);
  try {
    await bot.waitForLog('storage ready', 60_000);
    const storageReadyMs = performance.now() - started;
    await bot.waitForLog('connected to Discord', 60_000);
    const connectedMs = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, AFTER_READY_MS));
    return { mode, storageReadyMs, connectedMs, peakRssMiB: peakKib / 1024, processes };
  } finally {
    clearInterval(sampler);
    bot.terminate();
    await bot.exited;
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

await buildDist();
const discord = await FakeDiscord.start();
const segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
const runs: Run[] = [];
try {
  // one unmeasured start of each warms the file cache
  for (const mode of ['tsx', 'compiled'] as const) await once(mode, discord, segmind);
  for (let i = 0; i < RUNS; i++) {
    for (const mode of i % 2 ? (['compiled', 'tsx'] as const) : (['tsx', 'compiled'] as const)) {
      const run = await once(mode, discord, segmind);
      runs.push(run);
      console.log(JSON.stringify(run));
    }
  }
} finally {
  await crashAllBotProcesses();
  await discord.stop();
  await segmind.stop();
}

const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`\n${RUNS} runs each, ${process.version}, load average at the end ${load}\n`);
console.log('| start | spawn → storage ready, median (min–max) | spawn → connected to Discord, median (min–max) | peak RSS of the process tree, median (min–max) | processes |');
console.log('| --- | --- | --- | --- | --- |');
for (const mode of ['tsx', 'compiled'] as const) {
  const mine = runs.filter((r) => r.mode === mode);
  const cell = (pick: (r: Run) => number, unit: string, digits = 0) => {
    const values = mine.map(pick);
    return `${median(values).toFixed(digits)} ${unit} (${Math.min(...values).toFixed(digits)}–${Math.max(...values).toFixed(digits)})`;
  };
  console.log(
    `| ${mode === 'tsx' ? '`tsx src/index.ts`' : '`node --enable-source-maps dist/index.js`'} | ${cell((r) => r.storageReadyMs, 'ms')} | ${cell((r) => r.connectedMs, 'ms')} | ${cell((r) => r.peakRssMiB, 'MiB', 1)} | ${Math.max(...mine.map((r) => r.processes))} |`,
  );
}
