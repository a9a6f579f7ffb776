import KeyvSqlite from '@keyv/sqlite';
import type { StoredData } from 'keyv';

/** Keyv store options, as @keyv/sqlite takes them. */
type SqliteOptions = ConstructorParameters<typeof KeyvSqlite>[0];

/** Rows per statement: SQLite 3.32+ accepts 32,766 parameters; two per row. */
const ROWS_PER_STATEMENT = 500;
/** Rows the purge looks at per statement: commits wait for one statement at a time, not for the whole table. */
const ROWS_PER_PURGE = 5_000;

interface Read {
  readonly promise: Promise<string | undefined>;
  /** A write to the key came after this read was sent: its answer must not be cached. */
  stale: boolean;
}

/**
 * The @keyv/sqlite store for the ONE process that owns the file (as the local quota store already requires): reads
 * are answered from memory after the first, and the writes of one event-loop turn are committed together.
 *
 * Why: every credit reservation, journal entry and result is a few keyv reads and writes, and node-sqlite3 runs each
 * statement as its own trip through the thread pool on one connection. Under a burst those trips queued up past the
 * storage timeout and members were refused; cached reads and group commit take most of them away.
 *
 * A write resolves once it is committed, and rejects if the commit failed: its key is then forgotten by the cache, so
 * the next read asks the file again and nobody is told something was saved that was not. The cache keeps at most
 * `maxCachedKeys` keys (least recently used go first; keys waiting to be written are never dropped), so results
 * and history kept for months stay on disk, not in memory.
 */
export class CachedSqliteStore extends KeyvSqlite {
  readonly #maxCachedKeys: number;
  /** Key → serialized value, or undefined when the file is known not to have it. Map order = recency. */
  readonly #cache = new Map<string, string | undefined>();
  readonly #reads = new Map<string, Read>();
  /** The next commit: key → value, or null to delete. */
  #pending = new Map<string, string | null>();
  #waiters: Array<{ resolve: () => void; reject: (error: unknown) => void }> = [];
  /** Keys of the commit under way: not evicted until it ends. */
  #committing: ReadonlySet<string> = new Set();
  #commit: Promise<void> | undefined;
  /**
   * Commits and other statements that must not run inside a commit's transaction (reads and writes share the one
   * connection), one after the other.
   */
  #serial: Promise<unknown> = Promise.resolve();
  #scheduled = false;
  /** Once closed, every call fails like the connection would: never answers from memory. */
  #closed = false;

  constructor(options: SqliteOptions & { maxCachedKeys?: number }) {
    super(options);
    this.#maxCachedKeys = options.maxCachedKeys ?? 2_000;
  }

  // keyv hands this store serialized strings only; the generic signatures are the base class's.
  override async get<Value>(key: string): Promise<Value | undefined> {
    return (await this.#get(key)) as Value | undefined;
  }

  async #get(key: string): Promise<string | undefined> {
    this.#checkOpen();
    if (this.#cache.has(key)) {
      const value = this.#cache.get(key);
      this.#touch(key, value);
      return value;
    }
    let read = this.#reads.get(key);
    if (read === undefined) {
      const pending: Read = { promise: super.get<string>(key), stale: false };
      this.#reads.set(key, pending);
      const done = () => {
        if (this.#reads.get(key) === pending) this.#reads.delete(key);
      };
      pending.promise.then((value) => {
        done();
        if (!pending.stale && !this.#cache.has(key)) this.#remember(key, value);
      }, done);
      read = pending;
    }
    return read.promise;
  }

  override async getMany<Value>(keys: string[]): Promise<Array<StoredData<Value | undefined>>> {
    return (await Promise.all(keys.map((key) => this.#get(key)))) as Array<StoredData<Value | undefined>>;
  }

  override async has(key: string): Promise<boolean> {
    return (await this.#get(key)) !== undefined;
  }

  override async set(key: string, value: string): Promise<void> {
    this.#write(key, value);
    return this.#nextCommit();
  }

  override async delete(key: string): Promise<boolean> {
    this.#checkOpen();
    // Whether it existed is read before the delete is queued behind it, so order with other writes is kept.
    const known = this.#cache.has(key);
    const before = known ? this.#cache.get(key) : undefined;
    const existed = known ? Promise.resolve(before !== undefined) : this.#get(key).then((v) => v !== undefined);
    this.#write(key, null);
    await this.#nextCommit();
    return existed;
  }

  override async deleteMany(keys: string[]): Promise<boolean> {
    const results = await Promise.all(keys.map((key) => this.delete(key)));
    return results.some(Boolean);
  }

  override async clear(): Promise<void> {
    await this.flush();
    await this.#serially(() => super.clear());
    this.#cache.clear();
  }

  override async *iterator(namespace?: string): AsyncGenerator<[string, string]> {
    await this.flush();
    yield* super.iterator(namespace) as AsyncGenerator<[string, string]>;
  }

  override async disconnect(): Promise<void> {
    await this.flush().catch(() => undefined);
    await this.#serial;
    this.#closed = true;
    this.#cache.clear();
    await super.disconnect();
  }

  /**
   * Every row whose key starts with `prefix`, as committed once the writes made so far are: one range query on the
   * primary key, so a start-up scan of a few records never reads the results and history next to them.
   */
  async entriesWithPrefix(prefix: string): Promise<Array<[key: string, value: string]>> {
    this.#checkOpen();
    if (prefix === '') throw new Error('entriesWithPrefix needs a prefix');
    await this.flush();
    // Keys compare as bytes: the prefix with its last character incremented is the first key after the range.
    const end = prefix.slice(0, -1) + String.fromCharCode(prefix.charCodeAt(prefix.length - 1) + 1);
    const rows = (await this.#serially(() =>
      this.query(`SELECT key, value FROM ${this.opts.table as string} WHERE key >= ? AND key < ?`, prefix, end),
    )) as Array<{ key: string; value: string }>;
    return rows.map((row) => [row.key, row.value]);
  }

  /**
   * Deletes the rows whose keyv expiry (`{"value":…,"expires":…}`, set by a TTL) is before `now`, and returns how many:
   * keyv deletes an expired key only when it is read, and results or statistics nobody reads would stay for ever. Runs
   * a slice of the table at a time between commits, so it never runs inside a commit's transaction nor holds it up.
   */
  async deleteExpired(now: number): Promise<number> {
    this.#checkOpen();
    const table = this.opts.table as string;
    let after = 0;
    let deleted = 0;
    while (!this.#closed) {
      const slice = await this.#serially(async () => {
        if (this.#closed) return undefined;
        const [bounds] = (await this.query(
          `SELECT max(rowid) AS last FROM (SELECT rowid FROM ${table} WHERE rowid > ? ORDER BY rowid LIMIT ?)`,
          after,
          ROWS_PER_PURGE,
        )) as Array<{ last: number | null }>;
        const last = bounds?.last ?? null;
        if (last === null) return undefined;
        // CASE, not AND: json_extract fails on a value that is not JSON, and SQLite may evaluate AND either way round.
        const rows = (await this.query(
          `DELETE FROM ${table} WHERE rowid > ? AND rowid <= ?
             AND (CASE WHEN json_valid(value) THEN json_extract(value, '$.expires') END) < ?
           RETURNING key`,
          after,
          last,
          now,
        )) as Array<{ key: string }>;
        return { last, keys: rows.map((row) => row.key) };
      });
      if (slice === undefined) break;
      after = slice.last;
      deleted += slice.keys.length;
      // Keys a later write is about to store keep what memory holds; the others are read from the file again.
      for (const key of slice.keys) if (!this.#pending.has(key) && !this.#committing.has(key)) this.#cache.delete(key);
    }
    return deleted;
  }

  /** Resolves once everything written so far is committed (or has failed). */
  async flush(): Promise<void> {
    while (this.#commit !== undefined || this.#pending.size > 0) {
      if (this.#commit === undefined) this.#startCommit();
      await this.#commit?.catch(() => undefined);
    }
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('The SQLite store is closed');
  }

  #write(key: string, value: string | null): void {
    this.#checkOpen();
    const read = this.#reads.get(key);
    if (read !== undefined) read.stale = true;
    this.#pending.set(key, value);
    this.#remember(key, value ?? undefined);
  }

  #nextCommit(): Promise<void> {
    const promise = new Promise<void>((resolve, reject) => this.#waiters.push({ resolve, reject }));
    if (!this.#scheduled && this.#commit === undefined) {
      this.#scheduled = true;
      // One turn of the event loop gathers the writes of every request handled in it.
      setImmediate(() => {
        this.#scheduled = false;
        if (this.#commit === undefined) this.#startCommit();
      });
    }
    return promise;
  }

  #startCommit(): void {
    const batch = this.#pending;
    const waiters = this.#waiters;
    this.#pending = new Map();
    this.#waiters = [];
    this.#committing = new Set(batch.keys());
    this.#commit = this.#serially(() => this.#run(batch)).then(
      () => {
        for (const waiter of waiters) waiter.resolve();
      },
      (error: unknown) => {
        // What the file holds for these keys is unknown now: read it again next time.
        for (const key of batch.keys()) if (!this.#pending.has(key)) this.#cache.delete(key);
        for (const waiter of waiters) waiter.reject(error);
      },
    ).finally(() => {
      this.#commit = undefined;
      this.#committing = new Set();
      // Writes that arrived during this commit form the next one.
      if (this.#pending.size > 0) this.#startCommit();
      this.#evict();
    });
  }

  #serially<T>(job: () => Promise<T>): Promise<T> {
    const run = this.#serial.then(job);
    this.#serial = run.catch(() => undefined);
    return run;
  }

  /**
   * One commit is one transaction: a reservation and what it charged, or a settle's delete and its refund, are stored
   * together or not at all. A single statement is atomic already and skips the two extra round trips.
   */
  async #run(batch: ReadonlyMap<string, string | null>): Promise<void> {
    const table = this.opts.table as string;
    const deletes: string[] = [];
    const upserts: Array<[string, string]> = [];
    for (const [key, value] of batch) {
      if (value === null) deletes.push(key);
      else upserts.push([key, value]);
    }
    const statements: Array<() => Promise<unknown>> = [];
    for (let i = 0; i < deletes.length; i += ROWS_PER_STATEMENT) {
      const keys = deletes.slice(i, i + ROWS_PER_STATEMENT);
      statements.push(() =>
        this.query(`DELETE FROM ${table} WHERE key IN (SELECT value FROM json_each(?))`, JSON.stringify(keys)),
      );
    }
    for (let i = 0; i < upserts.length; i += ROWS_PER_STATEMENT) {
      const rows = upserts.slice(i, i + ROWS_PER_STATEMENT);
      statements.push(() =>
        this.query(
          `INSERT INTO ${table} (key, value) VALUES ${rows.map(() => '(?, ?)').join(', ')}
           ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
          ...rows.flat(),
        ),
      );
    }
    if (statements.length <= 1) {
      await statements[0]?.();
      return;
    }
    // IMMEDIATE takes the write lock first, so a busy file fails the BEGIN rather than a statement half-way.
    await this.query('BEGIN IMMEDIATE');
    try {
      for (const statement of statements) await statement();
      await this.query('COMMIT');
    } catch (error) {
      // Reads share this connection, but none caches a rolled-back row: this batch's keys are answered from memory
      // while it runs, and forgotten once it has failed.
      await this.query('ROLLBACK').catch(() => undefined);
      throw error;
    }
  }

  #touch(key: string, value: string | undefined): void {
    this.#cache.delete(key);
    this.#cache.set(key, value);
  }

  #remember(key: string, value: string | undefined): void {
    this.#touch(key, value);
    if (this.#cache.size > this.#maxCachedKeys) this.#evict();
  }

  #evict(): void {
    for (const key of this.#cache.keys()) {
      if (this.#cache.size <= this.#maxCachedKeys) return;
      if (this.#pending.has(key) || this.#committing.has(key)) continue;
      this.#cache.delete(key);
    }
  }
}
