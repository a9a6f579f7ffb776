import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Keyv from 'keyv';
import Database from 'libsql';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalQuotaStore } from '../../src/services/storage/quota/local-quota-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import { LibsqlStore } from '../../src/services/storage/libsql-store.js';
import { listRecords } from '../../src/services/storage/local-storage.js';
import { KeyedMutex } from '../../src/services/storage/keyed-mutex.js';
import { T0, granted, quotaLimits, reserveInput } from './quota-store.contract.js';

/**
 * The local quota store decides in memory and waits for SQLite outside its lock. These tests make SQLite refuse
 * writes for real (another connection holds the write lock) and check that nothing is granted or refunded that was
 * not stored.
 */
describe('LocalQuotaStore on SQLite when writes fail', () => {
  let dir: string;
  let store: LibsqlStore;
  let blocker: Database.Database;
  let quota: LocalQuotaStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quota-failures-'));
    const file = join(dir, 'bot.sqlite');
    store = new LibsqlStore({ file, busyTimeoutMs: 30 });
    const kv = new Keyv({ store, namespace: 'bot', throwOnErrors: true });
    kv.on('error', () => undefined);
    quota = new LocalQuotaStore({
      kv,
      mutex: new KeyedMutex(),
      logger: pino({ level: 'silent' }),
      listRecords: listRecords(kv, store, 'bot'),
    });
    blocker = openBlocker(file);
  });
  afterEach(async () => {
    if (blocker.inTransaction) blocker.exec('ROLLBACK');
    blocker.close();
    await store.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const blockWrites = () => blocker.exec('BEGIN EXCLUSIVE');
  const allowWrites = () => blocker.exec('COMMIT');

  it('grants none of the reservations whose writes failed, and charges nothing for them', async () => {
    granted(await quota.reserve(reserveInput({ reservationId: 'ok', credits: 2 })));
    blockWrites();
    const attempts = await Promise.allSettled(
      [1, 2, 3].map((i) => quota.reserve(reserveInput({ reservationId: `failed${i}`, credits: 1, now: T0 + i }))),
    );
    allowWrites();
    expect(attempts.map((a) => a.status)).toEqual(['rejected', 'rejected', 'rejected']);
    expect(await quota.usage('g1', 'u1', T0 + 10)).toMatchObject({ usedToday: 2, lastAcceptedAt: T0 });
    expect(await quota.guildUsage('g1', T0 + 10)).toBe(2);
    expect(await quota.settle('g1', 'failed1', 0, T0 + 10)).toEqual({ settled: false, committed: 0, refunded: 0 });
    granted(await quota.reserve(reserveInput({ reservationId: 'after', credits: 1, now: T0 + 20 })));
    expect(await quota.usage('g1', 'u1', T0 + 30)).toMatchObject({ usedToday: 3 });
  });

  it('starts the cooldown from the last stored request, not from one that failed', async () => {
    blockWrites();
    const failing = quota.reserve(reserveInput({ reservationId: 'failed', credits: 1, now: T0 + 5 }));
    await expect(failing).rejects.toThrow();
    allowWrites();
    granted(await quota.reserve(reserveInput({ reservationId: 'stored', credits: 1, now: T0 + 10 })));
    blockWrites();
    await expect(quota.reserve(reserveInput({ reservationId: 'failed-again', credits: 1, now: T0 + 20 }))).rejects.toThrow();
    allowWrites();
    expect(await quota.usage('g1', 'u1', T0 + 30)).toMatchObject({ usedToday: 1, lastAcceptedAt: T0 + 10 });
  });

  it('keeps a reservation whose refund could not be stored, and refunds it exactly once later', async () => {
    granted(await quota.reserve(reserveInput({ reservationId: 'r', credits: 3 })));
    blockWrites();
    await expect(quota.settle('g1', 'r', 0, T0 + 1)).rejects.toThrow();
    allowWrites();
    expect(await quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 3 });
    expect(await quota.settle('g1', 'r', 0, T0 + 3)).toEqual({ settled: true, committed: 0, refunded: 3 });
    expect(await quota.settle('g1', 'r', 0, T0 + 4)).toEqual({ settled: false, committed: 0, refunded: 0 });
    expect(await quota.usage('g1', 'u1', T0 + 5)).toMatchObject({ usedToday: 0 });
    expect(await quota.guildUsage('g1', T0 + 5)).toBe(0);
  });

  it('leaves a reservation whose settle could not be stored to the refund sweep', async () => {
    await quota.adjustBonus('g1', 'u1', 4);
    const limits = quotaLimits({ dailyAllowance: 0 });
    granted(await quota.reserve(reserveInput({ reservationId: 'r', credits: 4, limits, expiresAt: T0 + 1000 })));
    blockWrites();
    await expect(quota.settle('g1', 'r', 0, T0 + 1)).rejects.toThrow();
    allowWrites();
    expect(await quota.expiredReservations(T0 + 2000, 10)).toEqual([{ guildId: 'g1', id: 'r' }]);
    expect(await quota.settle('g1', 'r', 0, T0 + 2000)).toEqual({ settled: true, committed: 0, refunded: 4 });
    expect(await quota.usage('g1', 'u1', T0 + 2000)).toMatchObject({ bonus: 4 });
    expect(await quota.expiredReservations(T0 + 2000, 10)).toEqual([]);
  });

  it('leaves bonus credits as they were when a moderator grant could not be stored', async () => {
    await quota.adjustBonus('g1', 'u1', 5);
    blockWrites();
    await expect(quota.adjustBonus('g1', 'u1', 10)).rejects.toThrow();
    allowWrites();
    expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ bonus: 5 });
  });
});

describe('LocalQuotaStore on SQLite when the first reads fail', () => {
  let dir: string;
  let store: LibsqlStore;
  let blocker: Database.Database;
  let quota: LocalQuotaStore;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'quota-first-read-'));
    const file = join(dir, 'bot.sqlite');
    // A rollback journal (not WAL): a connection holding the exclusive lock makes every read fail with SQLITE_BUSY.
    store = new LibsqlStore({ file, busyTimeoutMs: 30, wal: false });
    const kv = new Keyv({ store, namespace: 'bot', throwOnErrors: true });
    kv.on('error', () => undefined);
    quota = new LocalQuotaStore({
      kv,
      mutex: new KeyedMutex(),
      logger: pino({ level: 'silent' }),
      listRecords: listRecords(kv, store, 'bot'),
    });
    blocker = openBlocker(file);
  });
  afterEach(async () => {
    if (blocker.inTransaction) blocker.exec('ROLLBACK');
    blocker.close();
    await store.disconnect();
    rmSync(dir, { recursive: true, force: true });
  });

  const blockReads = () => {
    blocker.exec('BEGIN EXCLUSIVE');
    blocker.prepare("INSERT INTO keyv (key, value) VALUES ('held', 'by another connection')").run();
  };
  const allowReads = () => blocker.exec('COMMIT');

  it('serves the next reserve once a failed first read is over (SQLITE_BUSY at start-up)', async () => {
    blockReads();
    await expect(quota.reserve(reserveInput({ reservationId: 'refused' }))).rejects.toThrow(/SQLITE_BUSY|locked/);
    allowReads();
    granted(await quota.reserve(reserveInput({ reservationId: 'next', credits: 2 })));
    expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2 });
  });

  it('lets the refund sweep list expired reservations again after its first read failed', async () => {
    blockReads();
    await expect(quota.expiredReservations(T0, 10)).rejects.toThrow(/SQLITE_BUSY|locked/);
    allowReads();
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

  it('refunds, after a restart, reservations granted just before the process was killed', async () => {
    const url = `sqlite://${join(dir, 'bot.sqlite')}`;
    const expiresAt = T0 + 1000;
    // Granted one right after the other, as in a busy bot; the last one just before the kill.
    const worker = await startKillWorker([url, String(T0), String(expiresAt), 'first', 'second', 'last']);
    await worker.kill();
    const next = await openStorage(url, { logger: silent });
    try {
      const expired = await next.quota.expiredReservations(expiresAt + 1, 10);
      expect(expired.map((e) => e.id).sort()).toEqual(['first', 'last', 'second']);
      for (const { guildId, id } of expired) {
        expect(await next.quota.settle(guildId, id, 0, expiresAt + 1)).toMatchObject({ settled: true, refunded: 2 });
      }
      expect(await next.quota.guildUsage('g1', expiresAt + 1)).toBe(0);
    } finally {
      await next.close();
    }
  }, 30_000);

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

  it('ignores, and deletes, the list of open reservations that older versions saved', async () => {
    const url = `sqlite://${join(dir, 'bot.sqlite')}`;
    const first = await openStorage(url, { logger: silent });
    granted(await first.quota.reserve(reserveInput({ reservationId: 'settled' })));
    await first.quota.settle('g1', 'settled', 0, T0 + 1);
    // As an older version could leave it when killed: still listing a reservation settled since.
    await first.kv.set('quota:open', { v: 1, open: [{ guildId: 'g1', id: 'settled', expiresAt: T0 + 1000 }] });
    await first.close();
    const second = await openStorage(url, { logger: silent });
    try {
      expect(await second.quota.expiredReservations(FAR, 10)).toEqual([]);
      expect(await second.quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 0 });
    } finally {
      await second.close();
    }
    const third = await openStorage(url, { logger: silent });
    try {
      expect(await third.kv.get('quota:open')).toBeUndefined();
    } finally {
      await third.close();
    }
  });
});

const silent = pino({ level: 'silent' });

/** A second connection to the file, as another process would hold it. */
function openBlocker(file: string): Database.Database {
  const db = new Database(file);
  db.exec('PRAGMA busy_timeout = 5000');
  return db;
}
const ROOT = resolve(import.meta.dirname, '../..');

/** quota-kill-worker.ts in a process of its own (node --import tsx: one process, so SIGKILL reaches the bot itself). */
async function startKillWorker(args: string[]): Promise<{ kill(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'test/contract/quota-kill-worker.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<void>((resolveExit) => child.once('exit', () => resolveExit()));
  await new Promise<void>((resolveReady, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (stdout.startsWith('reserved\n')) resolveReady();
    });
    void exited.then(() => reject(new Error(`quota worker exited before reserving: ${stderr}`)));
  });
  return {
    kill: async () => {
      child.kill('SIGKILL');
      await exited;
    },
  };
}
