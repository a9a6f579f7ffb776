import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Keyv from 'keyv';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LibsqlStore, type LibsqlStoreOptions } from '../../src/services/storage/libsql-store.js';

/** A real SQLite file, and a second connection to it to see what was really committed. */
describe('LibsqlStore (the SQLite keyv store of a single bot process)', () => {
  let dir: string;
  let file: string;
  const closers: Array<() => unknown> = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'libsql-store-'));
    file = join(dir, 'bot.sqlite');
  });
  afterEach(async () => {
    for (const close of closers.splice(0).reverse()) await Promise.resolve(close()).catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  function open(options: Partial<LibsqlStoreOptions> = {}): LibsqlStore {
    const store = new LibsqlStore({ file, busyTimeoutMs: 5000, ...options });
    closers.push(() => store.disconnect());
    return store;
  }
  /** Another connection: what it reads is what was committed. */
  function peek(): { get(key: string): string | undefined; db: Database.Database } {
    const db = new Database(file);
    db.exec('PRAGMA busy_timeout = 5000');
    closers.push(() => db.close());
    const select = db.prepare('SELECT value FROM keyv WHERE key = ?');
    return { db, get: (key) => (select.get(key) as { value: string } | undefined)?.value };
  }
  function keyvOn(store: LibsqlStore, namespace: string): Keyv {
    const kv = new Keyv({ store, namespace, throwOnErrors: true });
    return kv;
  }

  it('opens with the write-ahead log and synchronous=NORMAL unless told FULL', () => {
    const store = open();
    expect(store.query('PRAGMA journal_mode')).toMatchObject([{ journal_mode: 'wal' }]);
    expect(store.query('PRAGMA synchronous')).toMatchObject([{ synchronous: 1 }]);
    const full = new LibsqlStore({ file: join(dir, 'full.sqlite'), synchronous: 'FULL' });
    closers.push(() => full.disconnect());
    expect(full.query('PRAGMA synchronous')).toMatchObject([{ synchronous: 2 }]);
    expect(store.query('PRAGMA busy_timeout')).toMatchObject([{ timeout: 5000 }]);
  });

  it('has every awaited write in the file, including many written in the same turn', async () => {
    const store = open();
    await Promise.all(Array.from({ length: 1200 }, (_, i) => store.set(`k${i}`, `v${i}`)));
    expect(await store.delete('k7')).toBe(true);
    expect(await store.delete('never-written')).toBe(false);
    const other = peek();
    expect(other.get('k0')).toBe('v0');
    expect(other.get('k1199')).toBe('v1199');
    expect(other.get('k7')).toBeUndefined();
  });

  it('answers reads with writes not committed yet, and commits them at the next turn', async () => {
    const store = open();
    const other = peek();
    const written = store.set('k', 'v');
    expect(await store.get('k')).toBe('v');
    expect(other.get('k')).toBeUndefined();
    await written;
    expect(other.get('k')).toBe('v');
  });

  it('keeps the order of writes to one key made without waiting', async () => {
    const store = open();
    void store.set('a', '1');
    const deleted = store.delete('a');
    void store.set('b', '1');
    void store.delete('b');
    const last = store.set('b', '2');
    expect(await deleted).toBe(true);
    await last;
    const other = peek();
    expect(other.get('a')).toBeUndefined();
    expect(other.get('b')).toBe('2');
    expect(await store.get('a')).toBeUndefined();
    expect(await store.get('b')).toBe('2');
  });

  it('rejects a write whose commit failed (SQLITE_BUSY), and then answers from the file, not from memory', async () => {
    const store = open({ busyTimeoutMs: 50 });
    await store.set('credits', 'before');
    const other = peek();
    other.db.exec('BEGIN EXCLUSIVE');
    await expect(store.set('credits', 'after')).rejects.toThrow(/SQLITE_BUSY|locked/);
    other.db.exec('COMMIT');
    expect(await store.get('credits')).toBe('before');
  });

  it('commits the writes of one turn all or nothing: a failing upsert rolls back the deletes committed with it', async () => {
    const store = open();
    await Promise.all([store.set('reservation', 'open'), store.set('member', 'charged')]);
    store.query(
      `CREATE TRIGGER refuse_poison BEFORE INSERT ON keyv WHEN NEW.key = 'poison'
       BEGIN SELECT RAISE(ABORT, 'poison refused'); END`,
    );
    const commit = Promise.allSettled([store.delete('reservation'), store.set('member', 'refunded'), store.set('poison', 'x')]);
    expect((await commit).map((r) => r.status)).toEqual(['rejected', 'rejected', 'rejected']);
    const other = peek();
    expect(other.get('reservation')).toBe('open');
    expect(other.get('member')).toBe('charged');
    expect(await store.get('reservation')).toBe('open');
    // No transaction was left open on the store's connection: its next commit is visible to others.
    await store.set('member', 'next');
    expect(other.get('member')).toBe('next');
  });

  it('keeps no more committed values in memory than allowed, and reads the others from the file', async () => {
    const store = open({ maxCachedKeys: 10 });
    await Promise.all(Array.from({ length: 100 }, (_, i) => store.set(`k${i}`, `v${i}`)));
    for (let i = 0; i < 100; i += 1) expect(await store.get(`k${i}`)).toBe(`v${i}`);
    // The file edited behind its back shows through for a key it no longer keeps (k0), not for one it keeps (k99).
    const other = peek();
    other.db.prepare("UPDATE keyv SET value = 'edited' WHERE key IN ('k0', 'k99')").run();
    expect(await store.get('k0')).toBe('edited');
    expect(await store.get('k99')).toBe('v99');
  });

  it('fails every call once closed instead of answering from memory', async () => {
    const store = open();
    await store.set('k', 'v');
    await store.disconnect();
    await expect(store.get('k')).rejects.toThrow(/closed/);
    await expect(store.set('k', 'w')).rejects.toThrow(/closed/);
    await expect(store.clear()).rejects.toThrow(/closed/);
  });

  it('commits what was written before closing', async () => {
    const store = open();
    const written = store.set('k', 'v');
    await store.disconnect();
    await written;
    expect(peek().get('k')).toBe('v');
  });

  it('works under keyv: namespaces, TTL, getMany, setMany, deleteMany, has, and clear of one namespace', async () => {
    const a = keyvOn(open(), 'a');
    const b = keyvOn(open(), 'b');
    await a.set('x', { n: 1 });
    await b.set('x', { n: 2 });
    await a.set('brief', 'soon gone', 60_000);
    await a.setMany([
      { key: 'm1', value: 1 },
      { key: 'm2', value: 2, ttl: 600_000 },
    ]);
    expect(await a.get('x')).toEqual({ n: 1 });
    expect(await b.get('x')).toEqual({ n: 2 });
    expect(await a.getMany(['m1', 'm2', 'missing'])).toEqual([1, 2, undefined]);
    expect(await a.has('brief')).toBe(true);
    expect(await a.hasMany(['m1', 'missing'])).toEqual([true, false]);
    // Two minutes later, by keyv's clock: 'brief' has expired, 'm2' has not.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 120_000 });
    try {
      expect(await a.has('brief')).toBe(false);
      expect(await a.get('brief')).toBeUndefined();
      expect(await a.get('m2')).toBe(2);
    } finally {
      vi.useRealTimers();
    }
    expect(await a.deleteMany(['m1', 'missing'])).toBe(true);
    expect(await a.get('m1')).toBeUndefined();
    await a.clear();
    expect(await a.get('x')).toBeUndefined();
    expect(await a.get('m2')).toBeUndefined();
    expect(await b.get('x')).toEqual({ n: 2 });
  });

  it('iterates one namespace in pages, leaving out other namespaces and expired records', async () => {
    const store = open();
    const kv = keyvOn(store, 'ns');
    await Promise.all(Array.from({ length: 250 }, (_, i) => kv.set(`k${String(i).padStart(3, '0')}`, i)));
    await kv.set('gone', 'x', 1);
    await store.set('nt:other', JSON.stringify({ value: 'other namespace' }));
    await store.set('ns;after', JSON.stringify({ value: 'next key range' }));
    await new Promise((resolve) => setTimeout(resolve, 5));
    const seen: Array<[string, unknown]> = [];
    if (!kv.iterator) throw new Error('keyv did not use the store iterator');
    for await (const [key, value] of kv.iterator(undefined)) seen.push([key as string, value]);
    expect(seen).toHaveLength(250);
    expect(seen[0]).toEqual(['k000', 0]);
    expect(seen[249]).toEqual(['k249', 249]);
  });

  it('purges the expired records only, a slice at a time', async () => {
    const store = open();
    const now = Date.now();
    const rows = Array.from({ length: 12_000 }, (_, i) => ({
      key: `r${i}`,
      value: JSON.stringify({ value: i, expires: i % 3 === 0 ? now - 1 : now + 60_000 }),
    }));
    await store.setMany(rows);
    await store.set('plain', JSON.stringify({ value: 'no ttl' }));
    await store.set('not-json', 'raw text');
    expect(await store.deleteExpired(now)).toBe(4_000);
    expect(await store.get('r0')).toBeUndefined();
    expect(await store.get('r1')).toBeDefined();
    expect(await store.get('plain')).toBeDefined();
    expect(await store.get('not-json')).toBe('raw text');
  });

  it('reports a directory as SQLITE_CANTOPEN', () => {
    expect(() => new LibsqlStore({ file: dir })).toThrow(expect.objectContaining({ code: 'SQLITE_CANTOPEN' }));
  });
});
