import { EventEmitter } from 'node:events';
import Database from 'libsql';

/** The table and layout @keyv/sqlite created: files written by earlier versions open as they are. */
const TABLE = 'keyv';
const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS ${TABLE}(key VARCHAR(255) PRIMARY KEY, value TEXT )`;
/** Rows per page of the keyv iterator, and per slice of the purge: other work runs between pages. */
const ROWS_PER_PAGE = 100;
const ROWS_PER_PURGE = 5_000;

/**
 * `synchronous` levels with the write-ahead log. NORMAL: a commit is in the WAL file (the OS holds it) when the call
 * returns, so a killed process (SIGKILL, OOM) loses nothing; a power cut or kernel crash can lose the last commits,
 * never corrupt the file. FULL adds an fsync to every commit: measured here 0.15–3 ms a commit against 0.04–0.11 ms
 * (bench/results/issue-13-sqlite-micro.md), and with a synchronous driver that time blocks the event loop.
 */
export type SqliteSynchronous = 'NORMAL' | 'FULL';

export interface LibsqlStoreOptions {
  /** Path of the database file; created if missing (its directory must exist). */
  file: string;
  /**
   * How long a statement waits for a lock another connection holds before failing with SQLITE_BUSY. The driver is
   * synchronous, so the wait blocks this process: only another process (a backup, a sqlite3 shell) can hold the lock,
   * as this connection is the bot's only one.
   */
  busyTimeoutMs?: number;
  /** Write-ahead log: readers never wait for the writer. Default true; tests turn it off to make reads fail. */
  wal?: boolean;
  synchronous?: SqliteSynchronous;
  /** Committed values kept in memory at most (least recently used dropped first). Default 2,000. */
  maxCachedKeys?: number;
}

interface Waiter {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The keyv 5 store on one SQLite file through libsql (better-sqlite3's synchronous API; prebuilt binaries in npm
 * packages, nothing compiled on install), for the ONE process that owns the file.
 *
 * Writes are group-committed: those made in one turn of the event loop are stored in one transaction at the next
 * turn, so a credit reservation and what it charged, or a settle's delete and its refund, are stored together or not
 * at all even if the process is killed between them. A write resolves once committed and rejects if the commit
 * failed. Reads see the writes not committed yet, then the committed values kept in memory (the most recently used
 * `maxCachedKeys`: a statement read costs 10–40 µs, and the credit path reads settings, totals and reservations for
 * every request), then the file.
 */
export class LibsqlStore extends EventEmitter {
  /** What keyv looks at: the dialect makes keyv use `iterator`. */
  readonly opts: { dialect: 'sqlite'; url: string; table: string };
  /** Set by keyv: the prefix `clear()` and the iterator keep to. */
  namespace?: string;

  readonly #db: Database.Database;
  readonly #select: Database.Statement;
  readonly #upsert: Database.Statement;
  readonly #delete: Database.Statement;
  /** The next commit: key → serialized value, or null to delete. */
  #pending = new Map<string, string | null>();
  #waiters: Waiter[] = [];
  #scheduled: NodeJS.Immediate | undefined;
  readonly #maxCachedKeys: number;
  /** Committed values (undefined: the file has no such key), least recently used first. */
  readonly #cache = new Map<string, string | undefined>();
  #closed = false;

  constructor(options: LibsqlStoreOptions) {
    super();
    this.opts = { dialect: 'sqlite', url: `sqlite://${options.file}`, table: TABLE };
    this.#maxCachedKeys = options.maxCachedKeys ?? 2_000;
    this.#db = openDatabase(options.file);
    try {
      this.#db.exec(`PRAGMA busy_timeout = ${Math.max(0, Math.trunc(options.busyTimeoutMs ?? 5_000))}`);
      if (options.wal ?? true) this.#db.exec('PRAGMA journal_mode = WAL');
      this.#db.exec(`PRAGMA synchronous = ${options.synchronous ?? 'NORMAL'}`);
      this.#db.exec(CREATE_TABLE);
      this.#select = this.#db.prepare(`SELECT value FROM ${TABLE} WHERE key = ?`);
      this.#upsert = this.#db.prepare(
        `INSERT INTO ${TABLE} (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
      );
      this.#delete = this.#db.prepare(`DELETE FROM ${TABLE} WHERE key = ?`);
    } catch (error) {
      this.#db.close();
      throw error;
    }
  }

  /**
   * Runs one statement on the store's connection (pragmas, tests). Writes made so far are committed first, and the
   * memory of committed values is emptied, as the statement may change rows.
   */
  query(sql: string, ...params: unknown[]): unknown[] {
    this.#checkOpen();
    this.#commitNow();
    this.#cache.clear();
    const statement = this.#db.prepare(sql);
    if (statement.reader) return statement.all(...params);
    statement.run(...params);
    return [];
  }

  // keyv hands this store serialized strings and reads them back as such.
  get<Value>(key: string): Promise<Value | undefined> {
    return this.#async(() => this.#read(key) as Value | undefined);
  }

  getMany<Value>(keys: string[]): Promise<Array<Value | undefined>> {
    return this.#async(() => keys.map((key) => this.#read(key) as Value | undefined));
  }

  /** Whether the key holds a value that has not expired (keyv does not check expiry itself when a store has `has`). */
  has(key: string): Promise<boolean> {
    return this.#async(() => isLive(this.#read(key)));
  }

  hasMany(keys: string[]): Promise<boolean[]> {
    return this.#async(() => keys.map((key) => isLive(this.#read(key))));
  }

  set(key: string, value: string): Promise<void> {
    return this.#async(() => {
      this.#write(key, value);
      return this.#nextCommit();
    });
  }

  /** keyv's setMany returns what the store returns: one true per entry once committed. */
  setMany(entries: Array<{ key: string; value: string }>): Promise<boolean[]> {
    return this.#async(() => {
      for (const { key, value } of entries) this.#write(key, value);
      return this.#nextCommit().then(() => entries.map(() => true));
    });
  }

  delete(key: string): Promise<boolean> {
    return this.#async(() => {
      const existed = this.#read(key) !== undefined;
      this.#write(key, null);
      return this.#nextCommit().then(() => existed);
    });
  }

  async deleteMany(keys: string[]): Promise<boolean> {
    const results = await Promise.all(keys.map((key) => this.delete(key)));
    return results.some(Boolean);
  }

  /** Deletes this namespace's keys (every key when there is none), as @keyv/sqlite did. */
  clear(): Promise<void> {
    return this.#async(() => {
      this.#commitNow();
      this.#cache.clear();
      const range = rangeOf(this.namespace === undefined ? '' : `${this.namespace}:`);
      if (range.end === undefined) this.#db.prepare(`DELETE FROM ${TABLE}`).run();
      else this.#db.prepare(`DELETE FROM ${TABLE} WHERE key >= ? AND key < ?`).run(range.start, range.end);
    });
  }

  /** The namespace's rows in key order, a page at a time, as committed once the writes made so far are. */
  async *iterator(namespace?: string): AsyncGenerator<[string, string]> {
    const range = rangeOf(namespace === undefined ? '' : `${namespace}:`);
    const bound = range.end === undefined ? '' : 'AND key < ?';
    const first = this.#db.prepare(`SELECT key, value FROM ${TABLE} WHERE key >= ? ${bound} ORDER BY key LIMIT ?`);
    const next = this.#db.prepare(`SELECT key, value FROM ${TABLE} WHERE key > ? ${bound} ORDER BY key LIMIT ?`);
    const end = range.end === undefined ? [] : [range.end];
    let after: string | undefined;
    for (;;) {
      const rows = await this.#async(() => {
        this.#commitNow();
        const page =
          after === undefined
            ? first.all(range.start, ...end, ROWS_PER_PAGE)
            : next.all(after, ...end, ROWS_PER_PAGE);
        return page as Array<{ key: string; value: string }>;
      });
      for (const row of rows) yield [row.key, row.value];
      const last = rows.at(-1);
      if (last === undefined || rows.length < ROWS_PER_PAGE) return;
      after = last.key;
    }
  }

  /**
   * Every row whose key starts with `prefix`, as committed once the writes made so far are: one range query on the
   * primary key, so a start-up scan of a few records never reads the results and history next to them.
   */
  entriesWithPrefix(prefix: string): Promise<Array<[key: string, value: string]>> {
    return this.#async(() => {
      if (prefix === '') throw new Error('entriesWithPrefix needs a prefix');
      this.#commitNow();
      const { start, end } = rangeOf(prefix);
      const rows = this.#db
        .prepare(`SELECT key, value FROM ${TABLE} WHERE key >= ? AND key < ?`)
        .all(start, end) as Array<{ key: string; value: string }>;
      return rows.map((row): [string, string] => [row.key, row.value]);
    });
  }

  /**
   * Deletes the rows whose keyv expiry (`{"value":…,"expires":…}`, set by a TTL) is before `now`, and returns how many:
   * keyv deletes an expired key only when it is read, and results or statistics nobody reads would stay for ever.
   * A slice of the table at a time, each in one synchronous step, letting other work run between slices.
   */
  async deleteExpired(now: number): Promise<number> {
    this.#checkOpen();
    const bounds = this.#db.prepare(
      `SELECT max(rowid) AS last FROM (SELECT rowid FROM ${TABLE} WHERE rowid > ? ORDER BY rowid LIMIT ?)`,
    );
    // CASE, not AND: json_extract fails on a value that is not JSON, and SQLite may evaluate AND either way round.
    const purge = this.#db.prepare(
      `DELETE FROM ${TABLE} WHERE rowid > ? AND rowid <= ?
         AND (CASE WHEN json_valid(value) THEN json_extract(value, '$.expires') END) < ?
       RETURNING key`,
    );
    let after = 0;
    let deleted = 0;
    while (!this.#closed) {
      const last = (bounds.get(after, ROWS_PER_PURGE) as { last: number | null } | undefined)?.last ?? null;
      if (last === null) break;
      // A write waiting for the next commit to a key deleted here still lands after it: it is the newer value.
      const keys = purge.all(after, last, now) as Array<{ key: string }>;
      for (const { key } of keys) this.#cache.delete(key);
      deleted += keys.length;
      after = last;
      await new Promise((resolve) => setImmediate(resolve));
    }
    return deleted;
  }

  /** Commits the writes made so far now, instead of at the next turn. */
  flush(): Promise<void> {
    return this.#async(() => this.#commitNow());
  }

  /** Commits what was written, then closes the file; every later call fails. Idempotent. */
  disconnect(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    try {
      this.#commitNow();
    } finally {
      this.#closed = true;
      this.#db.close();
    }
    return Promise.resolve();
  }

  /** Runs synchronous work as a promise, so failures (a closed store, SQLITE_BUSY) are rejections, not throws. */
  #async<T>(work: () => T | Promise<T>): Promise<T> {
    try {
      this.#checkOpen();
      return Promise.resolve(work());
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('The SQLite store is closed');
  }

  #read(key: string): string | undefined {
    if (this.#pending.has(key)) return this.#pending.get(key) ?? undefined;
    const value = this.#cache.has(key)
      ? this.#cache.get(key)
      : (this.#select.get(key) as { value: string } | undefined)?.value;
    this.#remember(key, value);
    return value;
  }

  #remember(key: string, value: string | undefined): void {
    this.#cache.delete(key);
    this.#cache.set(key, value);
    for (const oldest of this.#cache.keys()) {
      if (this.#cache.size <= this.#maxCachedKeys) break;
      this.#cache.delete(oldest);
    }
  }

  #write(key: string, value: string | null): void {
    // Re-inserted so the batch keeps the order of the latest writes (only the last one per key is stored).
    this.#pending.delete(key);
    this.#pending.set(key, value);
  }

  #nextCommit(): Promise<void> {
    const done = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    // One turn of the event loop gathers the writes of every request handled in it.
    this.#scheduled ??= setImmediate(() => {
      this.#scheduled = undefined;
      if (!this.#closed) this.#commitNow();
    });
    return done;
  }

  /**
   * Stores the pending writes in one transaction and settles their waiters. On failure nothing of the batch is
   * stored, and reads answer from the file again.
   */
  #commitNow(): void {
    if (this.#scheduled !== undefined) {
      clearImmediate(this.#scheduled);
      this.#scheduled = undefined;
    }
    const batch = this.#pending;
    const waiters = this.#waiters;
    if (batch.size === 0 && waiters.length === 0) return;
    this.#pending = new Map();
    this.#waiters = [];
    try {
      this.#store(batch);
    } catch (error) {
      // Rolled back: memory holds what the file holds, unless the rollback failed too; read these keys again.
      for (const key of batch.keys()) this.#cache.delete(key);
      for (const waiter of waiters) waiter.reject(error);
      return;
    }
    for (const [key, value] of batch) this.#remember(key, value ?? undefined);
    for (const waiter of waiters) waiter.resolve();
  }

  #store(batch: ReadonlyMap<string, string | null>): void {
    const apply = (key: string, value: string | null) => {
      if (value === null) this.#delete.run(key);
      else this.#upsert.run(key, value);
    };
    if (batch.size <= 1) {
      // A single statement is atomic already.
      for (const [key, value] of batch) apply(key, value);
      return;
    }
    // IMMEDIATE takes the write lock first, so a busy file fails the BEGIN rather than a statement half-way.
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      for (const [key, value] of batch) apply(key, value);
      this.#db.exec('COMMIT');
    } catch (error) {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
      throw error;
    }
  }
}

/** Opens the file, giving a failure to open the code and text SQLite uses (libsql reports only the number). */
function openDatabase(file: string): Database.Database {
  try {
    return new Database(file);
  } catch (error) {
    const code = error instanceof Error ? /ConnectionFailed\(.*: (\d+)"?\)/.exec(error.message)?.[1] : undefined;
    if (code === '14') {
      throw Object.assign(new Error('unable to open database file', { cause: error }), { code: 'SQLITE_CANTOPEN' });
    }
    throw error;
  }
}

/**
 * The key range of a prefix: keys compare as bytes, so the prefix with its last character incremented is the first
 * key after it. An empty prefix is every key (no end).
 */
function rangeOf(prefix: string): { start: string; end: string | undefined } {
  if (prefix === '') return { start: '', end: undefined };
  return { start: prefix, end: prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1) };
}

/** A keyv-serialized value that exists and whose `expires`, if any, is still ahead. */
function isLive(raw: string | undefined): boolean {
  if (raw === undefined) return false;
  try {
    const { expires } = JSON.parse(raw) as { expires?: unknown };
    return typeof expires !== 'number' || expires > Date.now();
  } catch {
    return true;
  }
}
