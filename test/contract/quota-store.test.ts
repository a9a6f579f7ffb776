import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino, type Logger } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { localQuotaKeys } from '../../src/services/storage/quota/local-quota-store.js';
import { dayOf } from '../../src/services/storage/quota/quota-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import {
  REDIS_URL,
  TcpProxy,
  deleteRedisKeys,
  describeWithRedis,
  listRedisKeys,
  redisTestNamespace,
  withRedisClient,
} from '../support/redis.js';
import { T0, granted, quotaLimits, reserveInput, runQuotaStoreContract } from './quota-store.contract.js';

const silent = pino({ level: 'silent' });
const ROOT = resolve(import.meta.dirname, '../..');
const dir = await mkdtemp(join(tmpdir(), 'flux-quota-contract-'));
let files = 0;
const sqliteUrl = () => `sqlite://${join(dir, `quota-${++files}.sqlite`)}`;

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function captureLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: pino({ level: 'debug' }, { write: (line: string) => void lines.push(line) }), lines };
}

/** Polls until `fn` succeeds or the deadline passes (then its last error is thrown). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

runQuotaStoreContract('memory', { open: () => openStorage('memory://', { logger: silent }) });
runQuotaStoreContract('sqlite', { open: () => openStorage(sqliteUrl(), { logger: silent }) });

describeWithRedis('redis', () => {
  afterAll(async () => {
    await deleteRedisKeys();
  });

  runQuotaStoreContract('redis', {
    open: () => openStorage(REDIS_URL, { logger: silent, namespace: redisTestNamespace() }),
  });
});

for (const [name, url] of [
  ['memory', () => 'memory://'],
  ['sqlite', sqliteUrl],
] as const) {
  describe(`local quota store on ${name}`, () => {
    it('resets a corrupted or older-version record instead of crashing, and logs a warning', async () => {
      const { logger, lines } = captureLogger();
      const storage = await openStorage(url(), { logger });
      try {
        const { kv, quota } = storage;
        await kv.set(localQuotaKeys.member('g1', 'u1'), 'garbage');
        await kv.set(localQuotaKeys.guild('g1'), { version: 0, total: '7' });
        await kv.set(localQuotaKeys.reservation('g1', 'old'), { v: 0, credits: 'two' });
        await kv.set(localQuotaKeys.stats('g1', dayOf(T0)), ['not', 'stats']);

        expect(await quota.usage('g1', 'u1', T0)).toEqual({
          day: dayOf(T0),
          usedToday: 0,
          bonus: 0,
          lastAcceptedAt: undefined,
        });
        expect(await quota.guildUsage('g1', T0)).toBe(0);
        expect(await quota.expiredReservations(T0, 10)).toEqual([]);
        expect(await quota.settle('g1', 'old', 0, T0)).toEqual({ settled: false, committed: 0, refunded: 0 });
        expect(await quota.stats('g1', dayOf(T0))).toEqual({});

        const reservation = granted(await quota.reserve(reserveInput({ credits: 2, expiresAt: T0 + 1000 })));
        await quota.incrementStats('g1', dayOf(T0), { images: 1 });
        expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2 });
        expect(await quota.guildUsage('g1', T0)).toBe(2);
        expect(await quota.expiredReservations(T0 + 2000, 10)).toEqual([{ guildId: 'g1', id: reservation.id }]);
        expect(await quota.stats('g1', dayOf(T0))).toEqual({ images: 1 });

        const warnings = lines.map((l) => JSON.parse(l) as { level: number; msg: string }).filter((l) => l.level === 40);
        expect(warnings.map((w) => w.msg)).toContain('reset an unreadable quota record');
        expect(warnings.map((w) => w.msg)).toContain('dropped an unreadable quota reservation record');
      } finally {
        await storage.close();
      }
    });
  });
}

describe('sqlite storage file', () => {
  it('keeps credits, reservations and records when the same file is closed and reopened', async () => {
    const url = sqliteUrl();
    const first = await openStorage(url, { logger: silent });
    await first.quota.adjustBonus('g1', 'u1', 3);
    const reservation = granted(await first.quota.reserve(reserveInput({ credits: 2, expiresAt: T0 + 1000 })));
    await first.quota.incrementStats('g1', dayOf(T0), { images: 2 });
    await first.kv.set('settings:g1', { paused: true });
    await first.close();

    const second = await openStorage(url, { logger: silent });
    try {
      expect(await second.quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2, bonus: 3, lastAcceptedAt: T0 });
      expect(await second.quota.guildUsage('g1', T0)).toBe(2);
      expect(await second.kv.get('settings:g1')).toEqual({ paused: true });
      expect(await second.quota.stats('g1', dayOf(T0))).toEqual({ images: 2 });
      expect(await second.quota.expiredReservations(T0 + 2000, 10)).toEqual([{ guildId: 'g1', id: reservation.id }]);
      expect(await second.quota.settle('g1', reservation.id, 0, T0 + 2000)).toMatchObject({ settled: true, refunded: 2 });
      expect(await second.quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 0, bonus: 3 });
    } finally {
      await second.close();
    }
  });
});

interface HammerSummary {
  granted: number;
  refused: Record<string, number>;
  errors: string[];
}

/** Another bot process (tsx), hammering the quota store; see redis-hammer.ts. */
function startHammer(args: string[]) {
  const child = spawn(join(ROOT, 'node_modules/.bin/tsx'), [join(ROOT, 'test/contract/redis-hammer.ts'), ...args], {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<number | null>((resolveExit, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => resolveExit(code));
  });
  const ready = new Promise<void>((resolveReady, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith('ready\n')) resolveReady();
    });
    void exited.then((code) => reject(new Error(`hammer exited (${code}) before it was ready: ${stderr}`)));
  });
  const done = exited.then((code) => {
    if (code !== 0) throw new Error(`hammer exited with ${code}: ${stderr}`);
    const last = stdout.trim().split('\n').at(-1) ?? '';
    return JSON.parse(last) as HammerSummary;
  });
  return {
    ready,
    done,
    go: () => child.stdin.write('go\n'),
    kill: () => child.kill(),
  };
}

describeWithRedis('redis quota store across connections and processes', () => {
  const opened: Storage[] = [];
  const open = async (namespace: string, url = REDIS_URL, logger: Logger = silent) => {
    const storage = await openStorage(url, { logger, namespace });
    opened.push(storage);
    return storage;
  };

  afterAll(async () => {
    await Promise.all(opened.map((s) => s.close()));
    await deleteRedisKeys();
  });

  it('never overspends across two Storage instances sharing one Redis', async () => {
    const namespace = redisTestNamespace();
    const [a, b] = [await open(namespace), await open(namespace)];
    const limits = quotaLimits({ dailyAllowance: 7 });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? a : b).quota.reserve(reserveInput({ limits, now: T0 + i }))),
    );
    expect(results.filter((r) => r.ok)).toHaveLength(7);
    expect(results.filter((r) => !r.ok && r.reason === 'allowance')).toHaveLength(23);
    expect(await b.quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 7 });

    const first = results.find((r) => r.ok);
    if (!first?.ok) throw new Error('no reservation granted');
    const settles = await Promise.all([
      a.quota.settle('g1', first.reservation.id, 0, T0),
      b.quota.settle('g1', first.reservation.id, 0, T0),
      a.quota.settle('g1', first.reservation.id, 0, T0),
      b.quota.settle('g1', first.reservation.id, 0, T0),
    ]);
    expect(settles.filter((s) => s.settled)).toHaveLength(1);
    expect(await a.quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 6 });
  });

  it('never overspends when two bot processes hammer the same member at once', async () => {
    const namespace = redisTestNamespace();
    const args = [REDIS_URL, namespace, 'g1', 'u1', '40', '25', String(T0)];
    const hammers = [startHammer(args), startHammer(args)];
    try {
      await Promise.all(hammers.map((h) => h.ready));
      for (const h of hammers) h.go();
      const summaries = await Promise.all(hammers.map((h) => h.done));
      expect(summaries.flatMap((s) => s.errors)).toEqual([]);
      expect(summaries.reduce((sum, s) => sum + s.granted, 0)).toBe(25);
      expect(summaries.reduce((sum, s) => sum + (s.refused.allowance ?? 0), 0)).toBe(55);
    } finally {
      for (const h of hammers) h.kill();
    }
    const storage = await open(namespace);
    expect(await storage.quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 25 });
    expect(await storage.quota.guildUsage('g1', T0)).toBe(25);
  }, 30_000);

  it('keeps every key under the namespace, quota keys hash-tagged per guild, and kv.clear() away from them', async () => {
    const namespace = redisTestNamespace();
    const storage = await open(namespace);
    const reservation = granted(await storage.quota.reserve(reserveInput({ reservationId: 'k1' })));
    granted(await storage.quota.reserve(reserveInput({ reservationId: 'k2', guildId: 'g2', userId: 'u2' })));
    await storage.quota.settle('g1', reservation.id, 1, T0);
    await storage.quota.incrementStats('g1', dayOf(T0), { images: 1 });
    await storage.kv.set('settings:g1', { paused: false });

    const n = namespace;
    expect(await listRedisKeys(n)).toEqual(
      [
        `${n}::settings:g1`,
        `${n}:quota:open`,
        `${n}:{g:g1}:m:u1`,
        `${n}:{g:g1}:stats:${dayOf(T0)}`,
        `${n}:{g:g1}:total`,
        `${n}:{g:g2}:m:u2`,
        `${n}:{g:g2}:r:k2`,
        `${n}:{g:g2}:total`,
      ].sort(),
    );
    const statsTtl = await withRedisClient((c) => c.pTTL(`${n}:{g:g1}:stats:${dayOf(T0)}`));
    expect(statsTtl).toBeGreaterThan(9 * 86_400_000);
    expect(statsTtl).toBeLessThanOrEqual(10 * 86_400_000);

    await storage.kv.clear();
    const after = await listRedisKeys(n);
    expect(after).not.toContain(`${n}::settings:g1`);
    expect(after).toContain(`${n}:{g:g1}:m:u1`);
  });

  it('fails closed at once while Redis is unreachable, and recovers when it is back', async () => {
    const proxy = await TcpProxy.start();
    const { logger, lines } = captureLogger();
    const storage = await open(redisTestNamespace(), proxy.url, logger);
    try {
      granted(await storage.quota.reserve(reserveInput()));
      await proxy.stop();

      const started = performance.now();
      await expect(storage.quota.reserve(reserveInput({ now: T0 + 1 }))).rejects.toThrow();
      await expect(storage.quota.settle('g1', 'anything', 0, T0)).rejects.toThrow();
      await expect(storage.kv.get('settings:g1')).rejects.toThrow();
      await expect(storage.ping()).rejects.toThrow();
      expect(performance.now() - started).toBeLessThan(2000);

      await proxy.start();
      await eventually(() => storage.ping());
      granted(await storage.quota.reserve(reserveInput({ now: T0 + 2 })));
      expect(await storage.quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 2 });
      await eventually(() => {
        expect(lines.join('')).toContain('Redis connection restored');
        return Promise.resolve();
      });
      expect(lines.join('')).toContain('lost the Redis connection');
    } finally {
      await proxy.stop();
    }
  });

  it('fails closed within the command timeout when Redis stops answering, then recovers', async () => {
    const proxy = await TcpProxy.start();
    const storage = await open(redisTestNamespace(), proxy.url);
    try {
      granted(await storage.quota.reserve(reserveInput()));
      proxy.freeze();

      const started = performance.now();
      const [reserve, read] = await Promise.allSettled([
        storage.quota.reserve(reserveInput({ now: T0 + 1 })),
        storage.kv.get('settings:g1'),
      ]);
      const elapsed = performance.now() - started;
      expect(reserve).toMatchObject({ status: 'rejected', reason: { name: 'RedisTimeoutError' } });
      expect(read.status).toBe('rejected');
      expect(elapsed).toBeGreaterThan(1900);
      expect(elapsed).toBeLessThan(3000);
      // The hung connection was dropped; until a new one is ready, requests fail at once rather than waiting.
      const quick = performance.now();
      await expect(storage.quota.usage('g1', 'u1', T0)).rejects.toThrow();
      expect(performance.now() - quick).toBeLessThan(500);

      proxy.thaw();
      await eventually(() => storage.ping());
      granted(await storage.quota.reserve(reserveInput({ now: T0 + 2 })));
      expect(await storage.quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 2 });
    } finally {
      await proxy.stop();
    }
  });
});
