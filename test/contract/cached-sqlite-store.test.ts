import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import KeyvSqlite from '@keyv/sqlite';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CachedSqliteStore } from '../../src/services/storage/cached-sqlite-store.js';

/** A real SQLite file, and a second connection to it to see what was really committed. */
describe('CachedSqliteStore (the SQLite store of a single bot process)', () => {
  let dir: string;
  let file: string;
  const opened: Array<{ disconnect(): Promise<void> }> = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'cached-sqlite-'));
    file = join(dir, 'bot.sqlite');
  });
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((s) => s.disconnect().catch(() => undefined)));
    rmSync(dir, { recursive: true, force: true });
  });

  function open(options: { maxCachedKeys?: number; busyTimeout?: number } = {}): CachedSqliteStore {
    const store = new CachedSqliteStore({ uri: `sqlite://${file}`, busyTimeout: options.busyTimeout ?? 5000, ...options });
    opened.push(store);
    return store;
  }
  function peek(): KeyvSqlite {
    const store = new KeyvSqlite({ uri: `sqlite://${file}`, busyTimeout: 5000 });
    opened.push(store);
    return store;
  }

  it('has every awaited write in the file, including many written in the same turn', async () => {
    const store = open();
    await store.query('PRAGMA journal_mode=WAL');
    await Promise.all(Array.from({ length: 1200 }, (_, i) => store.set(`k${i}`, `v${i}`)));
    await store.delete('k7');
    const other = peek();
    expect(await other.get('k0')).toBe('v0');
    expect(await other.get('k1199')).toBe('v1199');
    expect(await other.get('k7')).toBeUndefined();
  });

  it('commits the writes of one turn in far fewer statements than writes', async () => {
    const store = open();
    const statements: string[] = [];
    const query = store.query.bind(store) as (sql: string, ...params: unknown[]) => Promise<unknown>;
    store.query = async (sql: string, ...params: unknown[]) => {
      statements.push(sql);
      return (await query(sql, ...params)) as never;
    };
    await Promise.all(Array.from({ length: 300 }, (_, i) => store.set(`k${i}`, String(i))));
    const writes = statements.filter((sql) => /INSERT|DELETE/.test(sql));
    expect(writes.length).toBeGreaterThanOrEqual(1);
    expect(writes.length).toBeLessThanOrEqual(3);
  });

  it('keeps the order of writes to one key made without waiting', async () => {
    const store = open();
    void store.set('a', '1');
    const deleted = store.delete('a');
    void store.set('b', '1');
    void store.delete('b');
    const last = store.set('b', '2');
    await Promise.all([deleted, last]);
    const other = peek();
    expect(await other.get('a')).toBeUndefined();
    expect(await other.get('b')).toBe('2');
    expect(await store.get('a')).toBeUndefined();
    expect(await store.get('b')).toBe('2');
  });

  it('answers a read with the newest write even when an older read of the key was still on its way', async () => {
    const store = open();
    await store.set('k', 'old');
    const fresh = open();
    const slowRead = fresh.get('k');
    await fresh.set('k', 'new');
    // The older read may run before or after the commit (node-sqlite3 does not order statements): either answer is
    // right for it, but it must never leave 'old' in the cache.
    expect(['old', 'new']).toContain(await slowRead);
    expect(await fresh.get('k')).toBe('new');
    expect(await fresh.get('k')).toBe('new');
  });

  it('rejects a write whose commit failed, and then answers from the file, not from memory', async () => {
    const store = open({ busyTimeout: 50 });
    await store.set('credits', 'before');
    const other = peek();
    await other.query('BEGIN EXCLUSIVE');
    await expect(store.set('credits', 'after')).rejects.toThrow(/SQLITE_BUSY|locked/);
    await other.query('COMMIT');
    expect(await store.get('credits')).toBe('before');
  });

  it('commits the writes of one turn all or nothing: a failing upsert rolls back the deletes committed with it', async () => {
    const store = open();
    await store.query('PRAGMA journal_mode=WAL');
    await Promise.all([store.set('reservation', 'open'), store.set('member', 'charged')]);
    await store.query(
      `CREATE TRIGGER refuse_poison BEFORE INSERT ON keyv WHEN NEW.key = 'poison'
       BEGIN SELECT RAISE(ABORT, 'poison refused'); END`,
    );
    const commit = Promise.allSettled([store.delete('reservation'), store.set('member', 'refunded'), store.set('poison', 'x')]);
    expect((await commit).map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const other = peek();
    expect(await other.get('reservation')).toBe('open');
    expect(await other.get('member')).toBe('charged');
    expect(await store.get('reservation')).toBe('open');
    // No transaction was left open on the store's connection: its next commit is visible to others.
    await store.set('member', 'next');
    expect(await other.get('member')).toBe('next');
  });

  it('keeps no more keys in memory than allowed, and still reads the others from the file', async () => {
    const store = open({ maxCachedKeys: 10 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`k${i}`, `v${i}`)));
    for (let i = 0; i < 100; i += 1) expect(await store.get(`k${i}`)).toBe(`v${i}`);
    // Files edited behind its back show through for keys it no longer caches: proof they were dropped.
    await peek().set('k0', 'edited');
    expect(await store.get('k0')).toBe('edited');
  });

  it('fails every call once closed instead of answering from memory', async () => {
    const store = open();
    await store.set('k', 'v');
    await store.disconnect();
    await expect(store.get('k')).rejects.toThrow(/closed/);
    await expect(store.set('k', 'w')).rejects.toThrow(/closed/);
  });

  it('commits what was written before closing', async () => {
    const store = open();
    void store.set('k', 'v');
    await store.disconnect();
    expect(await peek().get('k')).toBe('v');
  });
});
