import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { ResultReports } from '../../src/services/results/result-reports.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace, withRedisClient } from '../support/redis.js';

/** The Report button's marks: one report per member per result, even when the member presses twice at once. */
const silent = pino({ level: 'silent' });
const RETENTION_DAYS = 30;
const DAY_MS = 86_400_000;

/** Claims `times` at once for one (result, member) and returns how many won. */
async function winnersOf(claims: Array<Promise<boolean>>): Promise<number> {
  return (await Promise.all(claims)).filter(Boolean).length;
}

function sharedBehaviour(open: () => Promise<Storage>) {
  let storage: Storage;
  let reports: ResultReports;
  beforeAll(async () => {
    storage = await open();
    reports = new ResultReports(storage, systemClock, RETENTION_DAYS);
  });
  afterAll(async () => {
    await storage.close();
  });

  it('lets one of twenty simultaneous presses by the same member win, and none after it', async () => {
    expect(await winnersOf(Array.from({ length: 20 }, () => reports.claim('100', 'alice')))).toBe(1);
    expect(await reports.claim('100', 'alice')).toBe(false);
  });

  it('counts each member and each result on its own', async () => {
    expect(await reports.claim('200', 'alice')).toBe(true);
    expect(await reports.claim('200', 'bob')).toBe(true);
    expect(await reports.claim('201', 'alice')).toBe(true);
    expect(await reports.claim('200', 'alice')).toBe(false);
  });

  it('takes a mark back when its report could not be delivered, so the member can report again', async () => {
    expect(await reports.claim('300', 'alice')).toBe(true);
    await reports.release('300', 'alice');
    expect(await reports.claim('300', 'alice')).toBe(true);
    expect(await reports.claim('300', 'alice')).toBe(false);
  });

  return { storage: () => storage, reports: () => reports };
}

describe('ResultReports in memory', () => {
  const { reports } = sharedBehaviour(() => openStorage('memory://', { logger: silent }));

  it('forgets a mark after RESULT_RETENTION_DAYS, as the result itself', async () => {
    expect(await reports().claim('400', 'alice')).toBe(true);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + (RETENTION_DAYS - 1) * DAY_MS);
      expect(await reports().claim('400', 'alice')).toBe(false);
      vi.setSystemTime(Date.now() + 2 * DAY_MS);
      expect(await reports().claim('400', 'alice')).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});

describe('ResultReports on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'result-reports-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const { storage, reports } = sharedBehaviour(() => openStorage(`sqlite://${join(dir, 'bot.sqlite')}`, { logger: silent }));

  it('keeps a mark for RESULT_RETENTION_DAYS and the hourly purge removes it after', async () => {
    expect(await reports().claim('500', 'alice')).toBe(true);
    expect(await storage().purgeExpired(Date.now() + (RETENTION_DAYS - 1) * DAY_MS)).toBe(0);
    expect(await reports().claim('500', 'alice')).toBe(false);
    expect(await storage().purgeExpired(Date.now() + (RETENTION_DAYS + 1) * DAY_MS)).toBeGreaterThanOrEqual(1);
    expect(await reports().claim('500', 'alice')).toBe(true);
  });
});

describeWithRedis('ResultReports on Redis', () => {
  const namespace = redisTestNamespace();
  afterAll(async () => {
    await deleteRedisKeys(namespace);
  });
  const { storage, reports } = sharedBehaviour(() => openStorage(REDIS_URL, { logger: silent, namespace }));

  let second: Storage | undefined;
  afterEach(async () => {
    await second?.close();
    second = undefined;
  });

  it('lets one press win when two processes sharing the Redis receive presses at once', async () => {
    second = await openStorage(REDIS_URL, { logger: silent, namespace });
    const other = new ResultReports(second, systemClock, RETENTION_DAYS);
    const claims = Array.from({ length: 10 }, (_, i) => (i % 2 === 0 ? reports() : other).claim('600', 'alice'));
    expect(await winnersOf(claims)).toBe(1);
  });

  it('expires a mark with the results, after RESULT_RETENTION_DAYS', async () => {
    expect(await reports().claim('700', 'alice')).toBe(true);
    const ttl = await withRedisClient((client) => client.pTTL(`${storage().namespace}:report:700:alice`));
    expect(ttl).toBeGreaterThan((RETENTION_DAYS - 1) * DAY_MS);
    expect(ttl).toBeLessThanOrEqual(RETENTION_DAYS * DAY_MS);
  });
});
