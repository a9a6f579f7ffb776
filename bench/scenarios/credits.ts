/** Credits scenario, driver side: one worker process per store (memory, SQLite file, Redis), one after the other. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BenchChild } from '../lib/child.js';
import type { CreditsRunArgs, CreditsStoreResult } from './credits-worker.js';

export interface CreditsOptions {
  users: number;
  durationMs: number;
  warmupMs: number;
  redisUrl: string;
  logDir: string;
  cpuProfDir?: string;
}

export interface CreditsResult {
  users: number;
  durationMs: number;
  stores: CreditsStoreResult[];
  skipped: Array<{ store: string; reason: string }>;
}

export async function runCredits(opts: CreditsOptions): Promise<CreditsResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flux-bench-credits-'));
  const stores: Array<{ name: string; url: string }> = [
    { name: 'memory', url: 'memory://' },
    { name: 'sqlite', url: `sqlite://${join(dir, 'credits.sqlite')}` },
    { name: 'redis', url: opts.redisUrl },
  ];
  const results: CreditsStoreResult[] = [];
  const skipped: CreditsResult['skipped'] = [];
  try {
    for (const store of stores) {
      const child = BenchChild.start({
        script: 'bench/scenarios/credits-worker.ts',
        env: {},
        logDir: opts.logDir,
        name: `credits-${store.name}`,
        ...(opts.cpuProfDir ? { cpuProfDir: opts.cpuProfDir } : {}),
      });
      try {
        await child.ready;
        const args: CreditsRunArgs = {
          storeUrl: store.url,
          namespace: `fluxbench-${process.pid}-${Date.now()}`,
          users: opts.users,
          durationMs: opts.durationMs,
          warmupMs: opts.warmupMs,
          logFile: join(opts.logDir, `credits-${store.name}.bot.log`),
        };
        const result = await child.call<CreditsStoreResult>('run', args, 4 * (opts.durationMs + opts.warmupMs) + 30_000);
        results.push(result);
        const line = (l: CreditsStoreResult['store']) =>
          `${l.reservationsPerSecond}/s (reserve p50 ${l.reserveMs.p50} ms, p99 ${l.reserveMs.p99} ms; double-charged ${l.doubleCharged})`;
        console.log(`  credits ${store.name}: store ${line(result.store)}; policy ${line(result.policy)}`);
      } catch (error) {
        const reason = error instanceof Error ? error.message.split('\n')[0]! : String(error);
        if (store.name !== 'redis') throw error;
        // Redis is optional on a developer machine: say so instead of failing the whole run.
        skipped.push({ store: store.name, reason });
        console.log(`  credits ${store.name}: skipped (${reason})`);
      } finally {
        await child.stop();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return { users: opts.users, durationMs: opts.durationMs, stores: results, skipped };
}
