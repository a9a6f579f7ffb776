/** The soak's results (`BENCH_ONLY=soak`): per-minute tables, growth verdicts and the audit, as Markdown and lines. */
import { GROWTH_LIMIT, type SoakBot, type SoakResult } from '../scenarios/soak.js';
import { auditLines, headerLines, row, type Environment } from './report.js';
import { peakRssOf } from './session.js';
import { MiB, ratio, round } from './stats.js';

export interface SoakResults {
  generatedAt: string;
  /** True for the full length with the default bots (only such results are committed). */
  full: boolean;
  durationSeconds: number;
  environment: Environment;
  parameters: Record<string, unknown>;
  soak?: SoakResult;
}

const ms = (v: number) => (Number.isFinite(v) ? `${v} ms` : 'n/a');
const mib = (bytes: number) => (Number.isFinite(bytes) ? `${round(bytes / MiB, 1)} MiB` : 'n/a');
const title = (kind: string) => (kind === 'ours-nocheck' ? 'ours, check off' : kind);

function growthValue(figure: string, v: number): string {
  return figure === 'RSS' || figure === 'heap' ? mib(v) : ms(v);
}

function botSection(s: SoakResult, bot: SoakBot): string[] {
  const out = [
    `### ${title(bot.kind)}`,
    '',
    row(['minute', 'jobs sent', 'completed', 'overhead p50', 'overhead p99', 'ack p99', 'RSS (max in the minute)', 'heap used after GC', 'forced GC']),
    row(Array.from({ length: 9 }, () => '---')),
  ];
  for (const m of bot.minutes)
    out.push(row([m.minute, m.jobs, m.completed, ms(m.overheadP50Ms), ms(m.overheadP99Ms), ms(m.ackP99Ms), mib(m.rssMaxBytes), mib(m.heapUsedBytes), ms(m.gcMs)]));
  out.push('');
  if (bot.growthWindowMinutes !== undefined) {
    const w = bot.growthWindowMinutes;
    out.push(
      `Growth: the last ${w} minute${w === 1 ? '' : 's'} against the first ${w} (overhead: all jobs sent in those minutes; RSS and heap: median of the minutes), ` +
        `“growth” above +${GROWTH_LIMIT * 100} %.`,
      '',
      row(['figure', `first ${w} min`, `last ${w} min`, 'change', 'verdict']),
      row(['---', '---', '---', '---', '---']),
    );
    for (const g of bot.growth)
      out.push(
        row([
          g.figure,
          growthValue(g.figure, g.first),
          growthValue(g.figure, g.last),
          Number.isFinite(g.change) ? `${g.change >= 0 ? '+' : ''}${round(g.change * 100, 1)} %` : 'n/a',
          g.growth ? '**growth**' : 'flat',
        ]),
      );
    out.push('');
  } else out.push(`No growth verdict: ${s.minutes} minute${s.minutes === 1 ? '' : 's'} is too short to compare two ends.`, '');
  const r = bot.run;
  out.push(
    `Whole soak: ${r.completed} of ${r.jobs} jobs completed, lost ${r.lost}, duplicated ${r.duplicated}, errors ${r.errors.count}` +
      `${r.errors.samples.length > 0 ? ` (e.g. ${r.errors.samples.slice(0, 3).join('; ')})` : ''}; ` +
      `peak RSS (VmHWM, start-up included) ${mib(peakRssOf(r))}, RSS at the end ${mib(r.kernel?.rssBytes ?? r.bot.rssBytes)}; ` +
      `load generator event-loop p99 ${ms(r.driverEventLoopDelayP99Ms)}.`,
    '',
    ...auditLines(bot),
  );
  return out;
}

/** The whole soak of each bot side by side, with ours ÷ the baseline where both ran (the issue's soak row). */
function summaryTable(s: SoakResult): string[] {
  const base = s.bots.find((b) => b.kind === 'baseline');
  const header = ['figure', ...s.bots.flatMap((b) => (b === base || !base ? [title(b.kind)] : [title(b.kind), '÷ baseline']))];
  const out = [row(header), row(header.map(() => '---'))];
  const metric = (name: string, get: (b: SoakBot) => number, show: (v: number) => string) => {
    const cells: string[] = [name];
    for (const b of s.bots) {
      cells.push(show(get(b)));
      if (base && b !== base) cells.push(`${ratio(get(b), get(base)) ?? 'n/a'}×`);
    }
    out.push(row(cells));
  };
  metric('overhead p50', (b) => b.run.overheadMs.p50, ms);
  metric('overhead p99', (b) => b.run.overheadMs.p99, ms);
  metric('ack p99', (b) => b.run.ackMs.p99, ms);
  metric('peak RSS (VmHWM)', (b) => peakRssOf(b.run), mib);
  metric('bot CPU (user+system) per job', (b) => round((b.run.bot.cpuMs.user + b.run.bot.cpuMs.system) / Math.max(1, b.run.completed), 2), ms);
  out.push('');
  return out;
}

export function renderSoakMarkdown(r: SoakResults): string {
  const out = ['# Soak results', '', ...headerLines(r)];
  const s = r.soak;
  if (!s) return out.join('\n');
  out.push(
    `## Soak: ${s.ratePerSecond} /imagine per second for ${s.minutes} minutes from ${s.users} members, samples 1–4 mixed`,
    '',
    `Segmind latency ${s.segmindDelayMs} ms, images ${round(s.imageBytes / MiB, 2)} MiB each. ` +
      (s.concurrent
        ? 'The bots ran at the same time, each against its own fake Discord and fake Segmind (same wall time, same machine noise).'
        : 'The bots ran one after the other.'),
    '',
    ...summaryTable(s),
  );
  for (const bot of s.bots) out.push(...botSection(s, bot));
  return out.join('\n');
}

/** The console's closing lines: the growth verdicts and the audit per bot. */
export function soakSummaryLines(s: SoakResult | undefined): string[] {
  const lines: string[] = [];
  for (const bot of s?.bots ?? []) {
    const growth = bot.growth.map((g) => `${g.figure} ${Number.isFinite(g.change) ? `${g.change >= 0 ? '+' : ''}${round(g.change * 100, 1)} %` : 'n/a'}${g.growth ? ' GROWTH' : ''}`);
    lines.push(
      `${title(bot.kind)}: ${growth.length > 0 ? `last ${bot.growthWindowMinutes} min vs first: ${growth.join(', ')}` : 'too short for a growth verdict'}; ` +
        `lost ${bot.run.lost}, duplicated ${bot.run.duplicated}, errors ${bot.run.errors.count + bot.log.errors}` +
        (bot.audit ? `; credits ${bot.audit.ok ? 'consistent' : 'INCONSISTENT'} (${bot.audit.chargedCredits} charged for ${bot.audit.deliveredImages} delivered)` : ''),
    );
  }
  return lines;
}
