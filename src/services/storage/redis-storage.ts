import KeyvRedis from '@keyv/redis';
import Keyv, { type KeyvEntry } from 'keyv';
import type { Logger } from '../../logger.js';
import { RedisQuotaStore } from './quota/redis-quota-store.js';
import { assembleStorage, logKeyvErrors } from './assemble-storage.js';
import { KeyedMutex } from './keyed-mutex.js';
import { RedisConnection } from './redis-connection.js';
import type { Storage } from './storage.js';
import type { RedisTarget } from './store-url.js';

/**
 * keyv's Redis adapter, held to the connection's rules: every operation has the same deadline as the quota scripts,
 * and once the storage is closed it refuses (the stock adapter would quietly reconnect a closed client).
 */
class GuardedKeyvRedis extends KeyvRedis<string> {
  readonly #connection: RedisConnection;
  #closed = false;

  constructor(connection: RedisConnection) {
    super(connection.client, { throwOnErrors: true, throwOnConnectError: true });
    this.#connection = connection;
    connection.onReplace((client) => {
      this.client = client;
    });
  }

  markClosed(): void {
    this.#closed = true;
  }

  override async getClient(): ReturnType<KeyvRedis<string>['getClient']> {
    if (this.#closed) throw new Error('The Redis store is closed');
    return super.getClient();
  }

  override get<U = string>(key: string): Promise<U | undefined> {
    return this.#connection.guard(super.get<U>(key));
  }

  override getMany<U = string>(keys: string[]): Promise<Array<U | undefined>> {
    return this.#connection.guard(super.getMany<U>(keys));
  }

  override set(key: string, value: string, ttl?: number): Promise<void> {
    return this.#connection.guard(super.set(key, value, ttl));
  }

  override setMany(entries: KeyvEntry[]): Promise<void> {
    return this.#connection.guard(super.setMany(entries));
  }

  override has(key: string): Promise<boolean> {
    return this.#connection.guard(super.has(key));
  }

  override hasMany(keys: string[]): Promise<boolean[]> {
    return this.#connection.guard(super.hasMany(keys));
  }

  override delete(key: string): Promise<boolean> {
    return this.#connection.guard(super.delete(key));
  }

  override deleteMany(keys: string[]): Promise<boolean> {
    return this.#connection.guard(super.deleteMany(keys));
  }
}

/**
 * Redis for any number of bot processes: records in a keyv, quota counters in Lua scripts, both on one connection.
 *
 * Keys: the keyv's records are `<namespace>::<key>` (keyv's own key prefix is off, or it would be doubled);
 * quota keys are `<namespace>:{g:<guildId>}:…` and `<namespace>:quota:open` (see redis-quota-store.ts). The keyv is
 * always namespaced, so its clear() only ever deletes `<namespace>::*`.
 */
export async function openRedisStorage(
  target: RedisTarget,
  opts: { logger: Logger; namespace: string },
): Promise<Storage> {
  const { logger, namespace } = opts;
  const connection = await RedisConnection.open(target, logger);
  const store = new GuardedKeyvRedis(connection);
  const kv = new Keyv({ store, namespace, useKeyPrefix: false, throwOnErrors: true });
  logKeyvErrors(kv, logger, { alreadyLogged: connection.logged, degraded: () => !connection.healthy });
  const mutex = new KeyedMutex();
  const redis = { sendCommand: (args: Parameters<typeof connection.send>[0]) => connection.send(args) };
  return assembleStorage({
    kind: 'redis',
    namespace,
    redis,
    kv,
    mutex,
    quota: new RedisQuotaStore({ client: redis, prefix: namespace, logger }),
    ping: async () => {
      await connection.send(['PING']);
    },
    close: async () => {
      store.markClosed();
      await connection.close();
    },
  });
}
