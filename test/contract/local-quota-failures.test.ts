import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import Keyv from 'keyv';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalQuotaStore, localQuotaKeys } from '../../src/services/quota/local-quota-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import { CachedSqliteStore } from '../../src/services/storage/cached-sqlite-store.js';
import { KeyedMutex } from '../../src/services/storage/keyed-mutex.js';
import { T0, granted, reserveInput } from './quota-store.contract.js';

/**
 * The local quota store decides in memory and waits for SQLite outside its lock. These tests make SQLite refuse
 * writes for real (another connection holds the write lock) and check that nothing is granted or refunded that was
 * not stored.
 */
describe('LocalQuotaStore on SQLite when writes fail', () => {
  let dir: string;
  let store: CachedSqliteStore;
  let blocker: KeyvSqlite;
  let quota: LocalQuotaStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quota-failures-'));
    const uri = `sqlite://${join(dir, 'bot.sqlite')}`;
    store = new CachedSqliteStore({ uri, busyTimeout: 30 });
    await store.query('PRAGMA journal_mode=WAL');
    const kv = new Keyv({ store, namespace: 'bot', throwOnErrors: true });
    kv.on('error', () => undefined);
    quota = new LocalQuotaStore({ kv, mutex: new KeyedMutex(), logger: pino({ level: 'silent' }) });
    blocker = new KeyvSqlite({ uri, busyTimeout: 5000 });
  });
  afterEach(async () => {
    await blocker.query('ROLLBACK').catch(() => undefined);
    await Promise.all([store.disconnect(), blocker.disconnect()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const blockWrites = () => blocker.query('BEGIN EXCLUSIVE');
  const allowWrites = () => blocker.query('COMMIT');

  it('grants none of the reservations whose writes failed, and charges nothing for them', async () => {
    granted(await quota.reserve(reserveInput({ reservationId: 'ok', credits: 2 })));
    await blockWrites();
    const attempts = await Promise.allSettled(
      [1, 2, 3].map((i) => quota.reserve(reserveInput({ reservationId: `failed${i}`, credits: 1, now: T0 + i }))),
    );
    await allowWrites();
    expect(attempts.map((a) => a.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await quota.usage('g1', 'u1', T0 + 10)).toMatchObject({ usedToday: 2, lastAcceptedAt: T0 });
    expect(await quota.guildUsage('g1', T0 + 10)).toBe(2);
    expect(await quota.settle('g1', 'failed1', 0, T0 + 10)).toEqual({ settled: false, committed: 0, refunded: 0 });
    granted(await quota.reserve(reserveInput({ reservationId: 'after', credits: 1, now: T0 + 20 })));
    expect(await quota.usage('g1', 'u1', T0 + 30)).toMatchObject({ usedToday: 3 });
  });

  it('starts the cooldown from the last stored request, not from one that failed', async () => {
    await blockWrites();
    const failing = quota.reserve(reserveInput({ reservationId: 'failed', credits: 1, now: T0 + 5 }));
    await expect(failing).rejects.toThrow();
    await allowWrites();
    granted(await quota.reserve(reserveInput({ reservationId: 'stored', credits: 1, now: T0 + 10 })));
    await blockWrites();
    await expect(quota.reserve(reserveInput({ reservationId: 'failed-again', credits: 1, now: T0 + 20 }))).rejects.toThrow();
    await allowWrites();
    expect(await quota.usage('g1', 'u1', T0 + 30)).toMatchObject({ usedToday: 1, lastAcceptedAt: T0 + 10 });
  });

  it('keeps a reservation whose refund could not be stored, and refunds it exactly once later', async () => {
    granted(await quota.reserve(reserveInput({ reservationId: 'r', credits: 3 })));
    await blockWrites();
    await expect(quota.settle('g1', 'r', 0, T0 + 1)).rejects.toThrow();
    await allowWrites();
    expect(await quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 3 });
    expect(await quota.settle('g1', 'r', 0, T0 + 3)).toEqual({ settled: true, committed: 0, refunded: 3 });
    expect(await quota.settle('g1', 'r', 0, T0 + 4)).toEqual({ settled: false, committed: 0, refunded: 0 });
    expect(await quota.usage('g1', 'u1', T0 + 5)).toMatchObject({ usedToday: 0 });
    expect(await quota.guildUsage('g1', T0 + 5)).toBe(0);
  });

  it('leaves bonus credits as they were when a moderator grant could not be stored', async () => {
    await quota.adjustBonus('g1', 'u1', 5);
    await blockWrites();
    await expect(quota.adjustBonus('g1', 'u1', 10)).rejects.toThrow();
    await allowWrites();
    expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ bonus: 5 });
  });
});

describe('LocalQuotaStore on SQLite when the first reads fail', () => {
  let dir: string;
  let store: CachedSqliteStore;
  let blocker: KeyvSqlite;
  let quota: LocalQuotaStore;

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'quota-first-read-'));
    const uri = `sqlite://${join(dir, 'bot.sqlite')}`;
    // A rollback journal (not WAL): a connection holding the exclusive lock makes every read fail with SQLITE_BUSY.
    store = new CachedSqliteStore({ uri, busyTimeout: 30 });
    await store.query('SELECT 1');
    const kv = new Keyv({ store, namespace: 'bot', throwOnErrors: true });
    kv.on('error', () => undefined);
    quota = new LocalQuotaStore({ kv, mutex: new KeyedMutex(), logger: pino({ level: 'silent' }) });
    blocker = new KeyvSqlite({ uri, busyTimeout: 5000 });
  });
  afterEach(async () => {
    await blocker.query('ROLLBACK').catch(() => undefined);
    await Promise.all([store.disconnect(), blocker.disconnect()]);
    rmSync(dir, { recursive: true, force: true });
  });

  const blockReads = async () => {
    await blocker.query('BEGIN EXCLUSIVE');
    await blocker.set('held', 'by another connection');
  };
  const allowReads = () => blocker.query('COMMIT');

  it('serves the next reserve once a failed first read is over (SQLITE_BUSY at start-up)', async () => {
    await blockReads();
    await expect(quota.reserve(reserveInput({ reservationId: 'refused' }))).rejects.toThrow(/SQLITE_BUSY|locked/);
    await allowReads();
    granted(await quota.reserve(reserveInput({ reservationId: 'next', credits: 2 })));
    expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2 });
  });

  it('lets the refund sweep list expired reservations again after its first read failed', async () => {
    await blockReads();
    await expect(quota.expiredReservations(T0, 10)).rejects.toThrow(/SQLITE_BUSY|locked/);
    await allowReads();
    granted(await quota.reserve(reserveInput({ reservationId: 'open', expiresAt: T0 + 1000 })));
    expect(await quota.expiredReservations(T0 + 2000, 10)).toEqual([{ guildId: 'g1', id: 'open' }]);
  });
});

describe('the open-reservation index of a SQLite store across restarts', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quota-index-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  const FAR = T0 + 10 * 24 * 3_600_000;

  it('is saved when the store closes, even right after the last change', async () => {
    const url = `sqlite://${join(dir, 'bot.sqlite')}`;
    const first = await openStorage(url, { logger: silent });
    granted(await first.quota.reserve(reserveInput({ reservationId: 'settled' })));
    granted(await first.quota.reserve(reserveInput({ reservationId: 'open', userId: 'u2' })));
    await first.quota.settle('g1', 'settled', 1, T0 + 1);
    await first.close();
    const second = await openStorage(url, { logger: silent });
    try {
      expect(await second.quota.expiredReservations(FAR, 10)).toEqual([{ guildId: 'g1', id: 'open' }]);
    } finally {
      await second.close();
    }
  });

  it('stores the statistics counted in memory when the store closes', async () => {
    const url = `sqlite://${join(dir, 'bot.sqlite')}`;
    const first = await openStorage(url, { logger: silent });
    await Promise.all(Array.from({ length: 30 }, () => first.quota.incrementStats('g1', 5, { images: 1, 'user:u1': 1 })));
    await first.quota.incrementStats('g1', 5, { 'refused:cooldown': 1 });
    await first.close();
    const second = await openStorage(url, { logger: silent });
    try {
      expect(await second.quota.stats('g1', 5)).toEqual({ images: 30, 'user:u1': 30, 'refused:cooldown': 1 });
    } finally {
      await second.close();
    }
  });

  it('drops entries whose reservation was settled after the index was last saved (a killed process)', async () => {
    const url = `sqlite://${join(dir, 'bot.sqlite')}`;
    const first = await openStorage(url, { logger: silent });
    granted(await first.quota.reserve(reserveInput({ reservationId: 'a' })));
    await first.close();
    const saved: unknown = await readIndex(url);
    const second = await openStorage(url, { logger: silent });
    await second.quota.settle('g1', 'a', 0, T0 + 1);
    await second.close();
    await writeIndex(url, saved); // as if the process had died before saving the index after the settle
    expect(await readIndex(url)).toEqual(saved);
    const third = await openStorage(url, { logger: silent });
    try {
      expect(await third.quota.expiredReservations(FAR, 10)).toEqual([]);
      expect(await third.quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 0 });
    } finally {
      await third.close();
    }
  });
});

const silent = pino({ level: 'silent' });

async function readIndex(url: string): Promise<unknown> {
  const storage = await openStorage(url, { logger: silent });
  try {
    return await storage.kv.get(localQuotaKeys.openIndex);
  } finally {
    await storage.close();
  }
}

async function writeIndex(url: string, value: unknown): Promise<void> {
  const storage = await openStorage(url, { logger: silent });
  try {
    await storage.kv.set(localQuotaKeys.openIndex, value);
  } finally {
    await storage.close();
  }
}
