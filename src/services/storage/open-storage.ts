import type { Logger } from '../../logger.js';
import { StorageConfigError } from './storage-config-error.js';
import type { Storage } from './storage.js';
import { parseStoreUrl } from './store-url.js';

export { StorageConfigError } from './storage-config-error.js';

export interface OpenStorageOptions {
  logger: Logger;
  /** Prefix of every key this bot writes (keyv namespace, Redis key prefix). Default `flux`. */
  namespace?: string;
}

const NAMESPACE = /^[A-Za-z0-9_.-]{1,64}$/;

/**
 * Opens the backend STORE_URL names and proves it works (a real round trip, a write for SQLite) before returning.
 * Anything wrong with the URL or the backend is a StorageConfigError with an operator-facing message, within a few
 * seconds.
 *
 * - `memory://`: a Map; gone on restart.
 * - `sqlite://<path>`: one file, ONE process (quota atomicity is an in-process mutex).
 * - `redis://…` / `rediss://…`: any number of processes (quota operations are Lua scripts).
 */
export async function openStorage(url: string, opts: OpenStorageOptions): Promise<Storage> {
  const namespace = opts.namespace ?? 'flux';
  if (!NAMESPACE.test(namespace)) {
    throw new StorageConfigError(`storage namespace "${namespace}" must be 1-64 letters, digits, "_", "-" or "."`);
  }
  const target = parseStoreUrl(url);
  const logger = opts.logger;
  switch (target.kind) {
    // Each driver is loaded only when it is the one in use: the other's client costs ~5 MB of memory for nothing.
    case 'memory':
      return (await import('./local-storage.js')).openMemoryStorage({ logger, namespace });
    case 'sqlite':
      return (await import('./local-storage.js')).openSqliteStorage(target.path, { logger, namespace });
    case 'redis':
      return (await import('./redis-storage.js')).openRedisStorage(target, { logger, namespace });
  }
}
