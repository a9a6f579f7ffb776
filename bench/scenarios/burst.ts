/**
 * Burst: 300 /imagine from 100 members within one second, Segmind answering in 2 s, no limit in the way (Segmind
 * concurrency high, no cooldown, enough credits). Our bot, then the baseline with discord.js's defaults, then the
 * baseline with discord.js's global REST limit lifted (what Discord itself allows for interaction routes).
 */
import { userIds, type BotKind, type ImageSpec, type JobSpec } from '../lib/load.js';
import { runSession, type SessionResult } from '../lib/session.js';

export interface BurstOptions {
  interactions: number;
  users: number;
  windowMs: number;
  segmindDelayMs: number;
  image: ImageSpec;
  ourEnv: Record<string, string>;
  logDir: string;
  cpuProfDir?: string;
  kinds: BotKind[];
}

export interface BurstResult {
  interactions: number;
  users: number;
  windowMs: number;
  sessions: SessionResult[];
}

export function burstJobs(n: number, users: number, windowMs: number): JobSpec[] {
  const ids = userIds(users);
  return Array.from({ length: n }, (_, i) => ({ at: (i * windowMs) / n, userId: ids[i % users]!, samples: 1, seed: 1 }));
}

export async function runBurst(opts: BurstOptions): Promise<BurstResult> {
  const sessions: SessionResult[] = [];
  for (const kind of opts.kinds) {
    sessions.push(
      await runSession({
        kind,
        name: `burst-${kind}`,
        fakes: { segmindDelayMs: opts.segmindDelayMs, image: opts.image },
        env: opts.ourEnv,
        runs: [{ label: 'burst', jobs: burstJobs(opts.interactions, opts.users, opts.windowMs) }],
        logDir: opts.logDir,
        ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
        settleMs: 30_000,
      }),
    );
  }
  return { interactions: opts.interactions, users: opts.users, windowMs: opts.windowMs, sessions };
}
