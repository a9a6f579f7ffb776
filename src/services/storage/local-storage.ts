import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import Keyv from 'keyv';
import type { Logger } from '../../logger.js';
import { LocalQuotaStore, type ListRecords } from './quota/local-quota-store.js';
import { assembleStorage, logKeyvErrors, reasonOf } from './assemble-storage.js';
import { KeyedMutex } from './keyed-mutex.js';
import { LibsqlStore } from './libsql-store.js';
import { StorageConfigError } from './storage-config-error.js';
import type { Storage } from './storage.js';

const PROBE_KEY = '__storage_probe__';
/**
 * The driver is synchronous: waiting for a lock blocks the whole process. Only another process (a backup, a sqlite3
 * shell) can hold it, since the bot has one connection; a second is long enough for such a statement, and short
 * enough that Discord's heartbeats and 3-second interaction deadline are not missed while waiting.
 */
const SQLITE_BUSY_TIMEOUT_MS = 1_000;

/**
 * A Map that refuses every operation once closed, so a closed memory store fails closed like the others instead of
 * quietly answering from stale data.
 */
class ClosableMap extends Map<string, unknown> {
  #closed = false;

  #check(): void {
    if (this.#closed) throw new Error('The memory store is closed');
  }

  override get(key: string): unknown {
    this.#check();
    return super.get(key);
  }

  override set(key: string, value: unknown): this {
    this.#check();
    return super.set(key, value);
  }

  override has(key: string): boolean {
    this.#check();
    return super.has(key);
  }

  override delete(key: string): boolean {
    this.#check();
    return super.delete(key);
  }

  override clear(): void {
    this.#check();
    super.clear();
  }

  entriesWithPrefix(prefix: string): Promise<Array<[key: string, value: unknown]>> {
    this.#check();
    return Promise.resolve([...this].filter(([key]) => key.startsWith(prefix)));
  }

  /** Deletes the values keyv stored with an expiry before `now` (it deletes them only when read); returns how many. */
  deleteExpired(now: number): number {
    this.#check();
    let deleted = 0;
    for (const [key, value] of this) {
      if (typeof value !== 'string' || !value.includes('"expires"')) continue;
      let expires: unknown;
      try {
        ({ expires } = JSON.parse(value) as { expires?: unknown });
      } catch {
        continue;
      }
      if (typeof expires === 'number' && expires < now && super.delete(key)) deleted += 1;
    }
    return deleted;
  }

  /** Called by keyv.disconnect(). */
  disconnect(): Promise<void> {
    this.#closed = true;
    super.clear();
    return Promise.resolve();
  }
}

/**
 * The records under a key prefix, read from the store directly (a SQLite key range, or the Map) and decoded as keyv
 * decodes them; expired ones are left out, as keyv's own reads leave them out.
 */
export function listRecords(
  kv: Keyv,
  store: { entriesWithPrefix(prefix: string): Promise<Array<[key: string, value: unknown]>> },
  namespace: string,
): ListRecords {
  return async (prefix) => {
    const values: unknown[] = [];
    const now = Date.now();
    for (const [, raw] of await store.entriesWithPrefix(`${namespace}:${prefix}`)) {
      const data = await kv.deserializeData<unknown>(raw as string);
      if (data === undefined || (typeof data.expires === 'number' && data.expires < now)) continue;
      values.push(data.value);
    }
    return values;
  };
}

export function openMemoryStorage(opts: { logger: Logger; namespace: string }): Storage {
  const map = new ClosableMap();
  const kv = new Keyv({ store: map, namespace: opts.namespace, throwOnErrors: true });
  logKeyvErrors(kv, opts.logger);
  const mutex = new KeyedMutex();
  const quota = new LocalQuotaStore({
    kv,
    mutex,
    logger: opts.logger,
    listRecords: listRecords(kv, map, opts.namespace),
  });
  return assembleStorage({
    kind: 'memory',
    namespace: opts.namespace,
    kv,
    mutex,
    quota,
    ping: async () => {
      await kv.get(PROBE_KEY);
    },
    purgeExpired: (now) => Promise.resolve(map.deleteExpired(now)),
    close: async () => {
      await quota.flush();
      await kv.disconnect();
    },
  });
}

/**
 * One SQLite file, written by this process only (the quota store's atomicity is an in-process mutex). Relative paths
 * resolve against the working directory; the parent directory is created.
 */
export async function openSqliteStorage(path: string, opts: { logger: Logger; namespace: string }): Promise<Storage> {
  const file = resolve(process.cwd(), path);
  try {
    await mkdir(dirname(file), { recursive: true });
  } catch (error) {
    throw new StorageConfigError(
      `STORE_URL: cannot create the directory for the SQLite database ${file} (${reasonOf(error)})`,
      { cause: error },
    );
  }
  let store: LibsqlStore;
  try {
    store = new LibsqlStore({ file, busyTimeoutMs: SQLITE_BUSY_TIMEOUT_MS, synchronous: 'NORMAL' });
  } catch (error) {
    throw new StorageConfigError(`STORE_URL: cannot open the SQLite database ${file} (${reasonOf(error)})`, {
      cause: error,
    });
  }
  // `new Keyv('sqlite://…')` would silently be an in-memory Map: the store is built explicitly.
  const kv = new Keyv({ store, namespace: opts.namespace, throwOnErrors: true });
  let opened = false;
  kv.on('error', (error: unknown) => {
    // Before the probe succeeded, failures are reported once, as a StorageConfigError.
    if (opened) opts.logger.error({ err: error }, 'storage operation failed');
  });
  try {
    // A write, so a read-only file or directory is found now rather than on the first request.
    await kv.set(PROBE_KEY, Date.now());
    await kv.delete(PROBE_KEY);
  } catch (error) {
    await kv.disconnect().catch(() => undefined);
    throw new StorageConfigError(`STORE_URL: cannot open the SQLite database ${file} (${reasonOf(error)})`, {
      cause: error,
    });
  }
  opened = true;
  const mutex = new KeyedMutex();
  const quota = new LocalQuotaStore({
    kv,
    mutex,
    logger: opts.logger,
    listRecords: listRecords(kv, store, opts.namespace),
  });
  return assembleStorage({
    kind: 'sqlite',
    namespace: opts.namespace,
    kv,
    mutex,
    quota,
    ping: async () => {
      await kv.get(PROBE_KEY);
    },
    purgeExpired: (now) => store.deleteExpired(now),
    close: async () => {
      await quota.flush();
      await kv.disconnect();
    },
  });
}
