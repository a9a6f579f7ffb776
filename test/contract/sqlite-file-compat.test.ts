import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import Database from 'libsql';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { Journal } from '../../src/services/generation/journal.js';
import { ResultStore } from '../../src/services/results/result-store.js';
import { LibsqlStore } from '../../src/services/storage/libsql-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';

/**
 * test/fixtures/keyv-sqlite-v4.sqlite was written by the store of earlier versions (@keyv/sqlite 4.0.8 over sqlite3
 * 5.1.7) with openStorage: quota records, an open and a settled reservation, statistics, a journal entry and its index,
 * a result, settings, an expired record, and a second namespace. The .expected.json beside it holds its rows as that
 * store read them back. An operator's data/bot.sqlite must open with the libsql store and keep every record.
 */
const FIXTURES = resolve(import.meta.dirname, '../fixtures');
const expected = JSON.parse(readFileSync(join(FIXTURES, 'keyv-sqlite-v4.expected.json'), 'utf8')) as {
  schema: string;
  rows: Array<{ key: string; value: string }>;
};
const silent = pino({ level: 'silent' });
const rawOf = (key: string) => {
  const row = expected.rows.find((r) => r.key === key);
  if (row === undefined) throw new Error(`fixture has no ${key}`);
  return JSON.parse(row.value) as { value: Record<string, unknown>; expires?: number };
};
/** When the fixture was written: the quota records' day and lastAcceptedAt. */
const writtenAt = rawOf('flux:quota:member:111:201').value.lastAcceptedAt as number;
const openExpiresAt = rawOf('flux:quota:reservation:111:open-1').value.expiresAt as number;

describe('a SQLite file written by the @keyv/sqlite store of earlier versions', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'sqlite-compat-'));
    file = join(dir, 'bot.sqlite');
    copyFileSync(join(FIXTURES, 'keyv-sqlite-v4.sqlite'), file);
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function rowsInFile(): Array<{ key: string; value: string }> {
    const db = new Database(file);
    try {
      return (db.prepare('SELECT key, value FROM keyv ORDER BY key').all() as Array<{ key: string; value: string }>).map(
        ({ key, value }) => ({ key, value }),
      );
    } finally {
      db.close();
    }
  }

  it('opens with the libsql store, which reads every record byte for byte and keeps the table as it was', async () => {
    expect(expected.rows.length).toBeGreaterThanOrEqual(12);
    const store = new LibsqlStore({ file });
    try {
      for (const { key, value } of expected.rows) expect(await store.get(key)).toBe(value);
      expect(store.query("SELECT sql FROM sqlite_master WHERE name = 'keyv'")).toMatchObject([{ sql: expected.schema }]);
    } finally {
      await store.disconnect();
    }
    expect(rowsInFile()).toEqual(expected.rows);
  });

  it("serves the bot's records from it: settings, results, the journal, credits and open reservations", async () => {
    const storage = await openStorage(`sqlite://${file}`, { logger: silent });
    try {
      expect(await storage.kv.get('settings:111')).toEqual({ v: 1, paused: false, note: 'ünïcode ✓', list: [1, 2, 3] });
      expect(await new ResultStore(storage, systemClock, 30).get('res-1')).toMatchObject({ id: 'res-1', ownerId: '201' });
      const jobs = await new Journal(storage, 'fixture').list();
      expect(jobs.map((j) => [j.id, j.params.prompt])).toEqual([['job-1', 'a lighthouse at dusk, «quoted» ☀']]);
      expect(await storage.kv.get('expired:1')).toBeUndefined();

      expect(await storage.quota.usage('111', '201', writtenAt)).toMatchObject({ usedToday: 2, bonus: 3 });
      expect(await storage.quota.usage('111', '202', writtenAt)).toMatchObject({ usedToday: 1, bonus: 0 });
      expect(await storage.quota.guildUsage('111', writtenAt)).toBe(3);
      expect(await storage.quota.expiredReservations(openExpiresAt + 1, 10)).toEqual([{ guildId: '111', id: 'open-1' }]);
      expect(await storage.quota.settle('111', 'open-1', 0, writtenAt + 1)).toEqual({
        settled: true,
        committed: 0,
        refunded: 2,
      });
    } finally {
      await storage.close();
    }
    const reopened = await openStorage(`sqlite://${file}`, { logger: silent });
    try {
      expect(await reopened.quota.usage('111', '201', writtenAt)).toMatchObject({ usedToday: 0, bonus: 3 });
      expect(await reopened.quota.expiredReservations(openExpiresAt + 1, 10)).toEqual([]);
    } finally {
      await reopened.close();
    }
  });

  it('keeps namespaces apart: another namespace reads its own records, and clearing it leaves the others', async () => {
    const other = await openStorage(`sqlite://${file}`, { logger: silent, namespace: 'other' });
    try {
      expect(await other.kv.get('settings:111')).toEqual({ v: 1, paused: true });
      expect(await other.kv.get('with spaces & quotes \'"')).toBe('still a key');
      await other.kv.clear();
      expect(await other.kv.get('settings:111')).toBeUndefined();
    } finally {
      await other.close();
    }
    expect(rowsInFile()).toEqual(expected.rows.filter((row) => !row.key.startsWith('other:')));
  });
});
