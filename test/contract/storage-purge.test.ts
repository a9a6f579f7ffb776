import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'libsql';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { DEFAULTS } from '../../src/services/segmind/flux-params.js';
import { ResultStore } from '../../src/services/results/result-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';

/**
 * keyv removes an expired record only when something reads it, and nothing reads an old result again: the purge is
 * what keeps RESULT_RETENTION_DAYS true on disk (SQLite) and in memory (memory://).
 */
const silent = pino({ level: 'silent' });
const RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;

function result(id: string) {
  return {
    id,
    guildId: 'g1',
    channelId: 'c1',
    ownerId: 'u1',
    params: { ...DEFAULTS, prompt: 'a lighthouse at dusk', seed: 1 },
    images: [{ index: 0, seed: 1 }],
  };
}

/** Saves results as if it were `daysAgo` days ago (keyv stamps expiry with Date.now()). */
async function saveResultsAt(storage: Storage, daysAgo: number, ids: string[]): Promise<void> {
  vi.useFakeTimers({ toFake: ['Date'] });
  try {
    vi.setSystemTime(Date.now() - daysAgo * DAY_MS);
    const results = new ResultStore(storage, systemClock, RETENTION_DAYS);
    for (const id of ids) await results.save(result(id));
  } finally {
    vi.useRealTimers();
  }
}

describe('purging expired records', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'storage-purge-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('removes results older than the retention from the SQLite file, and keeps fresh ones and untimed records', async () => {
    const file = join(dir, 'bot.sqlite');
    const storage = await openStorage(`sqlite://${file}`, { logger: silent });
    const other = new Database(file);
    const keysInFile = () =>
      (other.prepare('SELECT key FROM keyv ORDER BY key').all() as Array<{ key: string }>).map((row) => row.key);
    try {
      await saveResultsAt(storage, RETENTION_DAYS + 1, ['old1', 'old2']);
      await saveResultsAt(storage, 1, ['fresh']);
      await storage.kv.set('settings:g1', { paused: false });
      expect(keysInFile()).toEqual(['flux:result:fresh', 'flux:result:old1', 'flux:result:old2', 'flux:settings:g1']);

      expect(await storage.purgeExpired(Date.now())).toBe(2);

      expect(keysInFile()).toEqual(['flux:result:fresh', 'flux:settings:g1']);
      const results = new ResultStore(storage, systemClock, RETENTION_DAYS);
      expect(await results.get('fresh')).toMatchObject({ id: 'fresh' });
      expect(await results.get('old1')).toBeUndefined();
    } finally {
      other.close();
      await storage.close();
    }
  });

  it('keeps the credit writes committed while it runs', async () => {
    const file = join(dir, 'bot.sqlite');
    const storage = await openStorage(`sqlite://${file}`, { logger: silent });
    const now = Date.now();
    const reserve = (reservationId: string) =>
      storage.quota.reserve({
        reservationId,
        guildId: 'g1',
        userId: 'u1',
        credits: 2,
        now,
        limits: { dailyAllowance: 5, cooldownMs: 0, guildDailyCap: 0 },
        expiresAt: now + 60_000,
      });
    try {
      await saveResultsAt(storage, RETENTION_DAYS + 1, ['old']);
      expect(await reserve('r1')).toMatchObject({ ok: true });
      const [purged, settled, reserved] = await Promise.all([
        storage.purgeExpired(now),
        storage.quota.settle('g1', 'r1', 1, now),
        reserve('r2'),
      ]);
      expect(purged).toBe(1);
      expect(settled).toMatchObject({ settled: true, refunded: 1 });
      expect(reserved).toMatchObject({ ok: true });
    } finally {
      await storage.close();
    }
    const reopened = await openStorage(`sqlite://${file}`, { logger: silent });
    try {
      expect(await reopened.quota.usage('g1', 'u1', now)).toMatchObject({ usedToday: 3 });
      expect(await reopened.quota.expiredReservations(now + 120_000, 10)).toEqual([{ guildId: 'g1', id: 'r2' }]);
    } finally {
      await reopened.close();
    }
  });

  it('removes results older than the retention from a memory store, and keeps fresh ones and untimed records', async () => {
    const storage = await openStorage('memory://', { logger: silent });
    const keysInMemory = () => [...(storage.kv.store as Map<string, unknown>).keys()].sort();
    try {
      await saveResultsAt(storage, RETENTION_DAYS + 1, ['old1', 'old2']);
      await saveResultsAt(storage, 1, ['fresh']);
      await storage.kv.set('settings:g1', { paused: false });
      expect(keysInMemory()).toEqual(['flux:result:fresh', 'flux:result:old1', 'flux:result:old2', 'flux:settings:g1']);

      expect(await storage.purgeExpired(Date.now())).toBe(2);

      expect(keysInMemory()).toEqual(['flux:result:fresh', 'flux:settings:g1']);
    } finally {
      await storage.close();
    }
  });
});
