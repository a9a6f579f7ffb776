/** The benchmark's results: targets checked, JSON for machines, a Markdown table for people. */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus, loadavg, release, totalmem, type } from 'node:os';
import { join } from 'node:path';
import type { CreditsResult } from '../scenarios/credits.js';
import type { BurstResult } from '../scenarios/burst.js';
import type { CheckAloneResult } from '../scenarios/check.js';
import type { SustainedResult } from '../scenarios/sustained.js';
import { checkSummary, peakRssOf, type SessionResult, type SessionRun } from './session.js';
import { MiB, ratio, round } from './stats.js';
import { ROOT } from './child.js';

export interface Environment {
  machine: { cpu: string; cores: number; memoryGiB: number; os: string };
  /** 1-, 5- and 15-minute load averages when the run started and ended: other work on the machine skews the figures. */
  loadAverage: { start: number[]; end?: number[] };
  versions: Record<string, string>;
  git?: { commit: string; srcDirty: boolean };
}

export interface Target {
  id: string;
  scenario: 'burst' | 'sustained' | 'credits' | 'all';
  what: string;
  target: string;
  value: string;
  /** The same figure for the baseline bot, where there is one (what discord.js + the harness cost on their own). */
  baseline?: string;
  met: boolean;
  /** A figure reported beside the targets, with no target of its own (`met` is then true). */
  informational?: boolean;
}

export interface BenchResults {
  generatedAt: string;
  /** True when every scenario ran at full length (only such results are committed). */
  full: boolean;
  durationSeconds: number;
  environment: Environment;
  parameters: Record<string, unknown>;
  check?: CheckAloneResult;
  burst?: BurstResult;
  sustained?: SustainedResult;
  credits?: CreditsResult;
  targets: Target[];
}

const PACKAGES = ['discord.js', '@discordjs/rest', '@discordjs/ws', 'undici', 'keyv', 'libsql', '@keyv/redis', 'pino', 'zod', 'tsx', 'typescript'];

export function describeEnvironment(redisVersion: string | undefined): Environment {
  const versions: Record<string, string> = { node: process.version };
  for (const name of PACKAGES) {
    try {
      versions[name] = (JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      versions[name] = 'not installed';
    }
  }
  if (redisVersion) versions.redis = redisVersion;
  let git: Environment['git'];
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).trim();
    const srcDirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !== '';
    git = { commit, srcDirty };
  } catch {
    git = undefined;
  }
  const cpu = cpus();
  return {
    machine: { cpu: cpu[0]?.model.trim() ?? 'unknown', cores: cpu.length, memoryGiB: round(totalmem() / 1024 ** 3, 1), os: `${type()} ${release()}` },
    loadAverage: { start: loadAverageNow() },
    versions,
    ...(git ? { git } : {}),
  };
}

export const loadAverageNow = (): number[] => loadavg().map((v) => round(v));

const ms = (v: number) => (Number.isFinite(v) ? `${v} ms` : 'n/a');
const mib = (bytes: number) => `${round(bytes / MiB, 1)} MiB`;
const session = (sessions: SessionResult[] | undefined, kind: string) => sessions?.find((s) => s.kind === kind);

/** Every target of the issue, against what was measured. */
export function evaluateTargets(r: Pick<BenchResults, 'burst' | 'sustained' | 'credits'>): Target[] {
  const targets: Target[] = [];
  const ours = session(r.burst?.sessions, 'ours')?.runs[0];
  const base = session(r.burst?.sessions, 'baseline')?.runs[0];
  if (ours) {
    targets.push({
      id: 'burst-ack-p99',
      scenario: 'burst',
      what: 'acknowledgement p99',
      target: '< 50 ms',
      value: ms(ours.ackMs.p99),
      ...(base ? { baseline: ms(base.ackMs.p99) } : {}),
      met: ours.ackMs.p99 < 50,
    });
  }
  targets.push(...issueRatios(r));
  const sustainedBase = session(r.sustained?.sessions, 'baseline')?.runs[0];
  const overheadRuns: Array<[string, SessionRun | undefined, SessionRun | undefined]> = [
    ['burst', ours, base],
    ...(session(r.sustained?.sessions, 'ours')?.runs.map((run): [string, SessionRun, SessionRun | undefined] => [`sustained ${run.label}`, run, sustainedBase]) ?? []),
  ];
  for (const [label, run, baseline] of overheadRuns) {
    if (!run) continue;
    const scenario = label.startsWith('burst') ? 'burst' : 'sustained';
    const withBase = (get: (r: SessionRun) => number) => (baseline ? { baseline: ms(get(baseline)) } : {});
    targets.push({ id: `${label}-overhead-p50`, scenario, what: `overhead per job p50 (${label})`, target: '< 15 ms', value: ms(run.overheadMs.p50), ...withBase((b) => b.overheadMs.p50), met: run.overheadMs.p50 < 15 });
    targets.push({ id: `${label}-overhead-p99`, scenario, what: `overhead per job p99 (${label})`, target: '< 60 ms', value: ms(run.overheadMs.p99), ...withBase((b) => b.overheadMs.p99), met: run.overheadMs.p99 < 60 });
  }
  // The check runs off the main thread: acknowledgements must not move (issue #11).
  for (const c of checkComparisons(r)) {
    if (!c.off) continue;
    const v = ratio(c.on.ackMs.p99, c.off.ackMs.p99);
    targets.push({
      id: `${c.label}-check-ack-p99`,
      scenario: c.scenario,
      what: `acknowledgement p99, check on ÷ off (${c.label})`,
      target: '≤ 1.1',
      value: `${v ?? 'n/a'}× (${ms(c.on.ackMs.p99)} vs ${ms(c.off.ackMs.p99)})`,
      met: v !== undefined && v <= 1.1,
    });
  }
  const sustained = session(r.sustained?.sessions, 'ours');
  if (sustained) {
    const peak = Math.max(...sustained.runs.map(peakRssOf));
    const basePeak = sustainedBase ? peakRssOf(sustainedBase) : undefined;
    targets.push({
      id: 'sustained-peak-rss',
      scenario: 'sustained',
      what: 'peak RSS',
      target: '< 250 MB',
      value: `${round(peak / 1e6, 1)} MB (${mib(peak)})`,
      ...(basePeak ? { baseline: `${round(basePeak / 1e6, 1)} MB` } : {}),
      met: peak < 250e6,
    });
    const [first, second] = sustained.runs;
    if (first?.afterGc && second?.afterGc) {
      const heapGrowth = second.afterGc.heapUsedBytes - first.afterGc.heapUsedBytes;
      const peakGrowth = second.bot.peakRssBytes / first.bot.peakRssBytes - 1;
      targets.push({
        id: 'sustained-no-leak',
        scenario: 'sustained',
        what: 'no growth across two back-to-back runs',
        target: 'heap after GC +< 5 MiB, peak RSS +< 10 %',
        value: `heap ${heapGrowth >= 0 ? '+' : ''}${mib(heapGrowth)}, peak RSS ${peakGrowth >= 0 ? '+' : ''}${round(peakGrowth * 100, 1)} %`,
        met: heapGrowth < 5 * MiB && peakGrowth < 0.1,
      });
    }
  }
  const floors: Record<string, number> = { memory: 5000, sqlite: 1000, redis: 2000 };
  for (const store of r.credits?.stores ?? []) {
    const floor = floors[store.kind] ?? 0;
    targets.push({
      id: `credits-${store.kind}`,
      scenario: 'credits',
      what: `credit reservations/s, ${store.kind} (reserve + settle, ${r.credits!.users} members)`,
      target: `> ${floor}/s`,
      value: `${store.store.reservationsPerSecond}/s (through the policy: ${store.policy.reservationsPerSecond}/s)`,
      met: store.store.reservationsPerSecond > floor,
    });
  }
  // Zero lost, zero double-charged, zero errors: every scenario.
  const problems: string[] = [];
  for (const [scenario, result] of [
    ['burst', r.burst],
    ['sustained', r.sustained],
  ] as const) {
    for (const s of result?.sessions.filter((one) => one.kind === 'ours' || one.kind === 'ours-nocheck') ?? []) {
      const name = s.kind === 'ours' ? scenario : `${scenario} (check off)`;
      const lost = s.runs.reduce((n, run) => n + run.lost + run.duplicated, 0);
      const errors = s.runs.reduce((n, run) => n + run.errors.count, 0) + s.log.errors;
      if (lost > 0) problems.push(`${name}: ${lost} lost or duplicated`);
      if (errors > 0) problems.push(`${name}: ${errors} error(s)`);
      if (s.audit && !s.audit.ok)
        problems.push(`${name}: credits ${s.audit.chargedCredits} charged for ${s.audit.deliveredImages} delivered (double-charged members ${s.audit.doubleCharged}, open ${s.audit.openReservations})`);
    }
  }
  for (const store of r.credits?.stores ?? []) {
    for (const level of [store.store, store.policy]) {
      if (level.doubleCharged + level.underCharged > 0 || !level.serverTotalMatches || level.openReservationsLeft > 0 || level.errors > 0)
        problems.push(`credits ${store.kind}: ${level.doubleCharged} double-, ${level.underCharged} under-charged, ${level.errors} errors, ${level.openReservationsLeft} left open`);
    }
  }
  targets.push({
    id: 'no-loss',
    scenario: 'all',
    what: 'lost, duplicated or double-charged jobs; errors',
    target: '0',
    value: problems.length === 0 ? '0' : problems.join('; '),
    met: problems.length === 0,
  });
  return targets;
}

/**
 * Issue #15's ratios: our bot with the image check off against the baseline of the same run, in the burst and the
 * sustained run; and what the check adds to our bot's peak RSS (reported, no target).
 */
function issueRatios(r: Pick<BenchResults, 'burst' | 'sustained'>): Target[] {
  const targets: Target[] = [];
  const mb = (bytes: number) => `${round(bytes / MiB, 1)} MiB`;
  for (const [scenario, result] of [
    ['burst', r.burst],
    ['sustained', r.sustained],
  ] as const) {
    const off = session(result?.sessions, 'ours-nocheck')?.runs[0];
    const base = session(result?.sessions, 'baseline')?.runs[0];
    const on = session(result?.sessions, 'ours')?.runs.at(-1);
    if (off && base) {
      const vsBaseline = (id: string, what: string, limit: number, get: (run: SessionRun) => number, show: (v: number) => string) => {
        const v = ratio(get(off), get(base));
        targets.push({
          id: `${scenario}-${id}-vs-baseline`,
          scenario,
          what: `${what}, check off ÷ baseline`,
          target: `≤ ${limit.toFixed(1)}×`,
          value: `${v ?? 'n/a'}× (${show(get(off))})`,
          baseline: show(get(base)),
          met: v !== undefined && v <= limit,
        });
      };
      vsBaseline('peak-rss', 'peak RSS (VmHWM)', 1.1, peakRssOf, mb);
      vsBaseline('ack-p99', 'acknowledgement p99', 1.0, (run) => run.ackMs.p99, ms);
      if (scenario === 'sustained') vsBaseline('overhead-p99', 'overhead per job p99', 1.1, (run) => run.overheadMs.p99, ms);
    }
    if (on && off) {
      const extra = peakRssOf(on) - peakRssOf(off);
      targets.push({
        id: `${scenario}-image-check-memory`,
        scenario,
        what: 'memory of the image check: peak RSS (VmHWM) check on − check off',
        target: 'reported',
        value: `${extra >= 0 ? '+' : ''}${mb(extra)} (${mb(peakRssOf(on))} − ${mb(peakRssOf(off))})`,
        met: true,
        informational: true,
      });
    }
  }
  return targets;
}

// ---------------------------------------------------------------------------------------------------------------------
// The image check: on versus off

interface CheckComparison {
  label: string;
  scenario: 'burst' | 'sustained';
  /** Our bot with the real classifier. */
  on: SessionRun;
  /** Our bot with the check answering at once, same scenario, same run of the benchmark. */
  off: SessionRun | undefined;
}

/** Burst against burst; each sustained run of ours against the one run with the check off. */
function checkComparisons(r: Pick<BenchResults, 'burst' | 'sustained'>): CheckComparison[] {
  const out: CheckComparison[] = [];
  const burstOn = session(r.burst?.sessions, 'ours')?.runs[0];
  if (burstOn) out.push({ label: 'burst', scenario: 'burst', on: burstOn, off: session(r.burst?.sessions, 'ours-nocheck')?.runs[0] });
  const sustainedOff = session(r.sustained?.sessions, 'ours-nocheck')?.runs[0];
  for (const run of session(r.sustained?.sessions, 'ours')?.runs ?? [])
    out.push({ label: `sustained ${run.label}`, scenario: 'sustained', on: run, off: sustainedOff });
  return out;
}

const failedText = (failed: Record<string, number>) => {
  const parts = Object.entries(failed).map(([failure, n]) => `${failure} ${n}`);
  return parts.length === 0 ? '0' : parts.join(', ');
};

/** The console's lines: per-image check time, then acknowledgement and overhead with the check on ÷ off. */
export function imageCheckSummary(r: Pick<BenchResults, 'check' | 'burst' | 'sustained'>): string[] {
  const lines: string[] = [];
  for (const i of r.check?.images ?? [])
    lines.push(`image check alone, ${i.label}: p50/p99 ${i.checkMs.p50}/${i.checkMs.p99} ms (${i.imagesPerSecondPerThread} images/s per thread)`);
  for (const c of checkComparisons(r)) {
    const check = c.on.imageCheck;
    if (check) lines.push(`${c.label}: ${checkSummary(check)}`);
    if (!c.off) continue;
    const cmp = (get: (run: SessionRun) => number) => `${get(c.on)}/${get(c.off!)} ms = ${ratio(get(c.on), get(c.off!)) ?? 'n/a'}×`;
    lines.push(
      `check on ÷ off, ${c.label}: ack p99 ${cmp((run) => run.ackMs.p99)}; overhead p50 ${cmp((run) => run.overheadMs.p50)}; overhead p99 ${cmp((run) => run.overheadMs.p99)}`,
    );
  }
  return lines;
}

function imageCheckMarkdown(r: BenchResults): string[] {
  const comparisons = checkComparisons(r);
  if (!r.check && comparisons.length === 0) return [];
  const out: string[] = ['## Image check: on versus off', ''];
  if (r.check) {
    const c = r.check;
    out.push(
      `The classifier alone (${c.threads} thread${c.threads === 1 ? '' : 's'}, threshold ${c.threshold}; model loaded in ${Math.round(c.loadMs)} ms), one image at a time, nothing else running:`,
      '',
      row(['image', 'size', 'check p50', 'check p99', 'images/s per thread', 'flagged by the model', 'no verdict']),
      row(['---', '---', '---', '---', '---', '---', '---']),
    );
    for (const i of c.images)
      out.push(
        row([
          `${i.label}: ${i.image.longSide}² ${i.image.format}${i.image.noise ? ' (noise)' : ''}`,
          `${round(i.bytes / 1024, 1)} KiB`,
          ms(i.checkMs.p50),
          ms(i.checkMs.p99),
          i.imagesPerSecondPerThread,
          i.flagged,
          i.failed,
        ]),
      );
    out.push('');
  }
  if (comparisons.length > 0) {
    out.push(
      'Under load, our bot with the real classifier (check on) against our bot whose checker answers at once (check off), in this run. ' +
        'Check time is each image\'s request to verdict from the job log line, the classifier\'s queue included: for every image ' +
        '(an image refused by a full queue counts its ~0 ms) and for the images that got a verdict. An image with no verdict ' +
        '(queue full, timeout) counts as flagged and is spoilered.',
      '',
      row([
        'scenario',
        'images checked',
        'check p50 / p99',
        'with a verdict: p50 / p99',
        'flagged by the model',
        'no verdict',
        'ack p99 on / off',
        'on ÷ off',
        'overhead p50 on / off',
        'on ÷ off',
        'overhead p99 on / off',
        'on ÷ off',
      ]),
      row(Array.from({ length: 12 }, () => '---')),
    );
    for (const c of comparisons) {
      const check = c.on.imageCheck;
      const pair = (get: (run: SessionRun) => number): [string, string] => [
        `${ms(get(c.on))} / ${c.off ? ms(get(c.off)) : 'n/a'}`,
        c.off ? x(get(c.on), get(c.off)) : '',
      ];
      out.push(
        row([
          c.label,
          check?.checkMs.n,
          check ? `${ms(check.checkMs.p50)} / ${ms(check.checkMs.p99)}` : '',
          check ? `${ms(check.verdictMs.p50)} / ${ms(check.verdictMs.p99)} (${check.verdictMs.n})` : '',
          check?.flagged,
          check ? failedText(check.failed) : '',
          ...pair((run) => run.ackMs.p99),
          ...pair((run) => run.overheadMs.p50),
          ...pair((run) => run.overheadMs.p99),
        ]),
      );
    }
    out.push('');
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------------
// Markdown

export function row(cells: Array<string | number | undefined>): string {
  return `| ${cells.map((c) => (c === undefined ? '' : String(c))).join(' | ')} |`;
}

const x = (a: number | undefined, b: number | undefined) => {
  const v = ratio(a, b);
  return v === undefined ? '' : `${v}×`;
};

function runTable(columns: Array<{ title: string; run: SessionRun | undefined; log?: SessionResult['log'] }>, baselineIndex: number): string[] {
  const base = columns[baselineIndex]?.run;
  const header = [
    'metric',
    ...columns.flatMap((c, i) => (i === baselineIndex || !base ? [c.title] : [c.title, `÷ ${columns[baselineIndex]!.title}`])),
  ];
  const lines = [row(header), row(header.map(() => '---'))];
  const metric = (name: string, get: (r: SessionRun) => number, unit = '') => {
    const cells: string[] = [name];
    columns.forEach((c, i) => {
      const v = c.run ? get(c.run) : undefined;
      cells.push(v === undefined ? '' : `${v}${unit}`);
      if (i !== baselineIndex && base) cells.push(x(v, get(base)));
    });
    lines.push(row(cells));
  };
  metric('ack p50', (r) => r.ackMs.p50, ' ms');
  metric('ack p95', (r) => r.ackMs.p95, ' ms');
  metric('ack p99', (r) => r.ackMs.p99, ' ms');
  metric('ack max', (r) => r.ackMs.max, ' ms');
  metric('overhead p50', (r) => r.overheadMs.p50, ' ms');
  metric('overhead p99', (r) => r.overheadMs.p99, ' ms');
  metric('… before Segmind p50', (r) => r.beforeSegmindMs.p50, ' ms');
  metric('… before Segmind p99', (r) => r.beforeSegmindMs.p99, ' ms');
  metric('… after Segmind p50', (r) => r.afterSegmindMs.p50, ' ms');
  metric('… after Segmind p99', (r) => r.afterSegmindMs.p99, ' ms');
  metric('throughput, jobs/s', (r) => r.throughput.jobsPerSecond);
  metric('throughput, images/s', (r) => r.throughput.imagesPerSecond);
  metric('throughput, MiB/s', (r) => r.throughput.mibPerSecond);
  metric('peak RSS (VmHWM: process life)', (r) => round(peakRssOf(r) / MiB, 1), ' MiB');
  metric('… RSS at the end of the run (VmRSS)', (r) => round((r.kernel?.rssBytes ?? r.bot.rssBytes) / MiB, 1), ' MiB');
  metric('… peak RSS sampled during the run', (r) => round(r.bot.peakRssBytes / MiB, 1), ' MiB');
  metric('… peak V8 heap (total)', (r) => round(r.bot.peak.heapTotalBytes / MiB, 1), ' MiB');
  metric('… peak external (Buffers)', (r) => round(r.bot.peak.externalBytes / MiB, 1), ' MiB');
  metric('event-loop delay p99', (r) => r.bot.eventLoopDelayMs.p99, ' ms');
  metric('event-loop delay max', (r) => r.bot.eventLoopDelayMs.max, ' ms');
  metric('bot CPU (user+system)', (r) => round((r.bot.cpuMs.user + r.bot.cpuMs.system) / 1000, 2), ' s');
  metric('Discord requests (callbacks+edits)', (r) => r.discordRequests.callbacks + r.discordRequests.edits);
  metric('lost jobs', (r) => r.lost + r.duplicated);
  metric('errors', (r) => r.errors.count);
  metric('load generator event-loop p99', (r) => r.driverEventLoopDelayP99Ms, ' ms');
  return lines;
}

/** When, how long, on what machine and code, with which parameters: the head of every results file. */
export function headerLines(r: Pick<BenchResults, 'generatedAt' | 'durationSeconds' | 'full' | 'environment' | 'parameters'>): string[] {
  const env = r.environment;
  return [
    `Generated ${r.generatedAt} by \`npm run bench\` in ${Math.round(r.durationSeconds)} s${r.full ? '' : ' — **partial run (shortened or incomplete): not the committed figures**'}.`,
    '',
    `Machine: ${env.machine.cpu}, ${env.machine.cores} cores, ${env.machine.memoryGiB} GiB, ${env.machine.os}. ` +
      `Versions: ${Object.entries(env.versions).map(([k, v]) => `${k} ${v}`).join(', ')}.` +
      (env.git ? ` Code: commit ${env.git.commit}${env.git.srcDirty ? ' with uncommitted changes in src/' : ''}.` : '') +
      ` Load average (1, 5, 15 min) at the start ${env.loadAverage.start.join(', ')}${env.loadAverage.end ? `, at the end ${env.loadAverage.end.join(', ')}` : ''}.`,
    '',
    `Parameters: ${Object.entries(r.parameters).map(([k, v]) => `${k} = ${JSON.stringify(v)}`).join(', ')}.`,
    '',
  ];
}

export function renderMarkdown(r: BenchResults): string {
  const out: string[] = [];
  out.push('# Benchmark results', '');
  out.push(...headerLines(r));
  out.push('## Targets', '', row(['', 'scenario', 'what', 'target', 'measured', 'baseline bot']), row(['---', '---', '---', '---', '---', '---']));
  for (const t of r.targets) out.push(row([t.informational ? 'ℹ️' : t.met ? '✅' : '❌', t.scenario, t.what, t.target, t.value, t.baseline ?? '']));
  out.push('');
  out.push(...imageCheckMarkdown(r));

  if (r.burst) {
    const b = r.burst;
    out.push(`## Burst: ${b.interactions} /imagine from ${b.users} members within ${b.windowMs} ms`, '');
    const s = b.sessions[0];
    if (s) out.push(`Segmind latency ${s.segmindDelayMs} ms, images ${round(s.imageBytes / 1024, 1)} KiB, 1 image per request.`, '');
    const cols = [
      { title: 'ours', run: session(b.sessions, 'ours')?.runs[0] },
      { title: 'ours, check off', run: session(b.sessions, 'ours-nocheck')?.runs[0] },
      { title: 'baseline', run: session(b.sessions, 'baseline')?.runs[0] },
      { title: 'baseline, REST limit lifted', run: session(b.sessions, 'baseline-unlimited')?.runs[0] },
    ].filter((c) => c.run !== undefined);
    out.push(...runTable(cols, cols.findIndex((c) => c.title === 'baseline')), '');
    out.push(...auditLines(session(b.sessions, 'ours')));
    out.push(...auditLines(session(b.sessions, 'ours-nocheck'), 'check off'));
  }
  if (r.sustained) {
    const sus = r.sustained;
    out.push(`## Sustained: ${sus.ratePerSecond} /imagine per second for ${sus.durationSeconds} s, samples 1–4 mixed`, '');
    const s = sus.sessions[0];
    if (s) out.push(`Segmind latency ${s.segmindDelayMs} ms, images ${round(s.imageBytes / MiB, 2)} MiB each. Our bot runs twice back to back in one process.`, '');
    const ours = session(sus.sessions, 'ours');
    const cols = [
      ...(ours?.runs.map((run) => ({ title: `ours, ${run.label}`, run })) ?? []),
      { title: 'ours, check off, run 1', run: session(sus.sessions, 'ours-nocheck')?.runs[0] },
      { title: 'baseline', run: session(sus.sessions, 'baseline')?.runs[0] },
    ].filter((c) => c.run !== undefined);
    out.push(...runTable(cols, cols.findIndex((c) => c.title === 'baseline')), '');
    if (ours) {
      out.push(row(['after each run, GC’d', 'heap used', 'RSS', 'external + array buffers']), row(['---', '---', '---', '---']));
      for (const run of ours.runs)
        if (run.afterGc) out.push(row([`ours, ${run.label}`, mib(run.afterGc.heapUsedBytes), mib(run.afterGc.rssBytes), mib(run.afterGc.externalBytes + run.afterGc.arrayBuffersBytes)]));
      out.push('');
    }
    out.push(...auditLines(ours));
    out.push(...auditLines(session(sus.sessions, 'ours-nocheck'), 'check off'));
  }
  if (r.credits) {
    const c = r.credits;
    out.push(`## Credits: ${c.users} members of one server reserving and settling, ${c.durationMs / 1000} s per store`, '');
    out.push(
      row(['store', 'reservations/s (store)', 'reserve p50 / p99', 'reservations/s (policy: settings + rules + reserve)', 'admit p50 / p99', 'double-charged', 'errors']),
      row(['---', '---', '---', '---', '---', '---', '---']),
    );
    for (const s of c.stores)
      out.push(
        row([
          s.kind,
          s.store.reservationsPerSecond,
          `${s.store.reserveMs.p50} / ${s.store.reserveMs.p99} ms`,
          s.policy.reservationsPerSecond,
          `${s.policy.reserveMs.p50} / ${s.policy.reserveMs.p99} ms`,
          s.store.doubleCharged + s.policy.doubleCharged,
          s.store.errors + s.policy.errors,
        ]),
      );
    for (const s of c.skipped) out.push(row([s.store, `skipped: ${s.reason}`, '', '', '', '', '']));
    out.push('');
  }
  return out.join('\n');
}

export function auditLines(s: Pick<SessionResult, 'audit' | 'log'> | undefined, which?: string): string[] {
  if (!s) return [];
  const lines: string[] = [];
  if (s.audit) {
    const a = s.audit;
    lines.push(
      `Credits (our bot's own store${which ? `, ${which}` : ''}, read back after the runs, warm-up included): ${a.deliveredImages} images delivered, ${a.chargedCredits} credits charged, ` +
        `server total ${a.serverTotal}, stats ${a.statsImages}, double-charged members ${a.doubleCharged}, under-charged ${a.underCharged}, ` +
        `open reservations ${a.openReservations}, journaled jobs ${a.journaled}: ${a.ok ? 'consistent' : '**inconsistent**'}.`,
    );
  }
  const refusals = Object.entries(s.log.refusals ?? {});
  lines.push(
    `Bot log${which ? ` (${which})` : ''}: ${s.log.errors} error and ${s.log.warnings} warning line(s)${s.log.samples.length > 0 ? `, e.g. ${s.log.samples.slice(0, 3).map((l) => `“${l}”`).join(', ')}` : ''}` +
      `${refusals.length > 0 ? `; requests refused (logged at info): ${refusals.map(([code, n]) => `${code} ×${n}`).join(', ')}` : ''}.`,
    '',
  );
  return lines;
}
