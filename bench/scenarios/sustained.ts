/**
 * Sustained: 20 /imagine per second for 60 s, samples 1–4 mixed (2.5 images per request on average), 1 MiB images.
 * Our bot runs it twice back to back in the same process (memory must not grow from one run to the next); our bot
 * with the image check off and the baseline once (compared with our first run).
 */
import { userIds, type BotKind, type ImageSpec, type JobSpec } from '../lib/load.js';
import { runSession, type SessionResult } from '../lib/session.js';

export interface SustainedOptions {
  ratePerSecond: number;
  durationSeconds: number;
  users: number;
  segmindDelayMs: number;
  image: ImageSpec;
  ourEnv: Record<string, string>;
  logDir: string;
  cpuProfDir?: string;
  heapSnapshotDir?: string;
  kinds: BotKind[];
}

export interface SustainedResult {
  ratePerSecond: number;
  durationSeconds: number;
  users: number;
  sessions: SessionResult[];
}

export function sustainedJobs(rate: number, seconds: number, users: number): JobSpec[] {
  const ids = userIds(users);
  const n = Math.round(rate * seconds);
  return Array.from({ length: n }, (_, i) => ({ at: (i * 1000) / rate, userId: ids[i % users]!, samples: (i % 4) + 1, seed: 1 }));
}

export async function runSustained(opts: SustainedOptions): Promise<SustainedResult> {
  const sessions: SessionResult[] = [];
  for (const kind of opts.kinds) {
    const jobs = () => sustainedJobs(opts.ratePerSecond, opts.durationSeconds, opts.users);
    sessions.push(
      await runSession({
        kind,
        name: `sustained-${kind}`,
        fakes: { segmindDelayMs: opts.segmindDelayMs, image: opts.image },
        env: opts.ourEnv,
        runs:
          kind === 'ours'
            ? [
                { label: 'run 1', jobs: jobs(), gcAfter: true },
                { label: 'run 2', jobs: jobs(), gcAfter: true },
              ]
            : [{ label: 'run 1', jobs: jobs(), gcAfter: true }],
        logDir: opts.logDir,
        ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
        ...(opts.heapSnapshotDir ? { heapSnapshotDir: opts.heapSnapshotDir } : {}),
        settleMs: 30_000,
      }),
    );
  }
  return { ratePerSecond: opts.ratePerSecond, durationSeconds: opts.durationSeconds, users: opts.users, sessions };
}
