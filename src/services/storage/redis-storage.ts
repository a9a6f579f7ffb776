import KeyvRedis, { createClient } from '@keyv/redis';
import Keyv from 'keyv';
import type { Logger } from '../../logger.js';
import { RedisQuotaStore } from '../quota/redis-quota-store.js';
import { assembleStorage, logKeyvErrors, reasonOf } from './assemble-storage.js';
import { KeyedMutex } from './keyed-mutex.js';
import { StorageConfigError } from './storage-config-error.js';
import type { Storage } from './storage.js';
import { describeRedisTarget, type RedisTarget } from './store-url.js';

/** Every command gives up after this (the quota path must answer inside Discord's 3 s; fail closed, not hang). */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;
/** At start-up, retry a refused connection this long (Redis starting next to the bot), then report it. */
const STARTUP_RETRY_BUDGET_MS = 1_500;
const MAX_BACKOFF_MS = 2_000;
/** The same connection error is logged at most this often while Redis stays away. */
const ERROR_LOG_INTERVAL_MS = 30_000;

/** Server replies that retrying cannot fix (bad credentials, no such database). */
const PERMANENT_REPLY = /^(WRONGPASS|NOAUTH|NOPERM|ERR )/;

/** keyv's Redis adapter would silently reconnect a client we closed: once closed, it refuses instead. */
class ClosableKeyvRedis extends KeyvRedis<string> {
  #closed = false;

  markClosed(): void {
    this.#closed = true;
  }

  override async getClient(): ReturnType<KeyvRedis<string>['getClient']> {
    if (this.#closed) throw new Error('The Redis store is closed');
    return super.getClient();
  }
}

/**
 * One node-redis connection shared by the keyv (records) and the quota Lua scripts.
 *
 * Failure behaviour, which the quota path depends on:
 * - start-up: a few quick retries, then a StorageConfigError (no endless retrying before the bot is even up);
 * - after start-up: reconnects forever with capped exponential backoff and jitter;
 * - while disconnected, commands are rejected at once (`disableOfflineQueue`) rather than queued;
 * - a command that gets no answer is rejected after REDIS_COMMAND_TIMEOUT_MS (a hung server or network).
 *
 * Keys: the keyv's records are `<namespace>::<key>` (keyv's own prefix is off, so it is not doubled); quota keys are
 * `<namespace>:{g:<guildId>}:…` and `<namespace>:quota:open` (see redis-quota-store.ts).
 */
export async function openRedisStorage(
  target: RedisTarget,
  opts: { logger: Logger; namespace: string },
): Promise<Storage> {
  const { logger, namespace } = opts;
  const where = describeRedisTarget(target);
  const startedAt = Date.now();
  let everReady = false;
  let connectionLost = false;

  const socketOptions = {
    host: target.host,
    port: target.port,
    connectTimeout: CONNECT_TIMEOUT_MS,
    reconnectStrategy: (retries: number, cause: Error): number | false => {
      const delay = Math.min(100 * 2 ** retries, MAX_BACKOFF_MS) + Math.floor(Math.random() * 100);
      if (everReady) return delay;
      if (PERMANENT_REPLY.test(cause.message)) return false;
      return Date.now() - startedAt + delay <= STARTUP_RETRY_BUDGET_MS ? delay : false;
    },
  };
  const client = createClient({
    socket: target.tls ? { ...socketOptions, tls: true as const, servername: target.host } : socketOptions,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.database === undefined ? {} : { database: target.database }),
    disableOfflineQueue: true,
    commandOptions: { timeout: REDIS_COMMAND_TIMEOUT_MS },
  });

  const logged = new WeakSet<object>();
  const lastLogged = new Map<string, number>();
  client.on('error', (error: unknown) => {
    if (typeof error === 'object' && error !== null) logged.add(error);
    if (!everReady) return; // start-up failures are reported once, as a StorageConfigError
    const reason = reasonOf(error);
    const now = Date.now();
    if (!connectionLost) {
      connectionLost = true;
      logger.error({ err: error, redis: where }, 'lost the Redis connection: quota operations fail until it is back');
    } else if (now - (lastLogged.get(reason) ?? 0) >= ERROR_LOG_INTERVAL_MS) {
      logger.warn({ err: error, redis: where }, 'Redis still unreachable');
    } else {
      return;
    }
    lastLogged.set(reason, now);
  });
  client.on('ready', () => {
    if (everReady && connectionLost) logger.info({ redis: where }, 'Redis connection restored');
    everReady = true;
    connectionLost = false;
    lastLogged.clear();
  });
  client.on('reconnecting', () => logger.debug({ redis: where }, 'reconnecting to Redis'));

  try {
    await client.connect();
  } catch (error) {
    if (client.isOpen) client.destroy();
    throw new StorageConfigError(startupMessage(where, error, target.database), { cause: error });
  }

  const store = new ClosableKeyvRedis(client, { throwOnErrors: true, throwOnConnectError: true });
  // keyv hands its namespace to the adapter; with useKeyPrefix off the key is prefixed once: `<namespace>::<key>`.
  const kv = new Keyv({ store, namespace, useKeyPrefix: false, throwOnErrors: true });
  logKeyvErrors(kv, logger, logged);

  const mutex = new KeyedMutex();
  return assembleStorage({
    kind: 'redis',
    kv,
    mutex,
    quota: new RedisQuotaStore({
      client: { sendCommand: (args) => client.sendCommand(args) },
      prefix: namespace,
      logger,
    }),
    ping: async () => {
      await client.sendCommand(['PING']);
    },
    close: async () => {
      store.markClosed();
      if (!client.isOpen) return;
      if (client.isReady) {
        // Lets commands already sent finish, but does not wait on a hung server.
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          client.close().catch(() => undefined),
          new Promise<void>((resolve) => (timer = setTimeout(resolve, REDIS_COMMAND_TIMEOUT_MS))),
        ]);
        clearTimeout(timer);
      }
      if (client.isOpen) client.destroy();
    },
  });
}

function startupMessage(where: string, error: unknown, database: number | undefined): string {
  const reason = reasonOf(error);
  if (/^(WRONGPASS|NOAUTH|NOPERM)/.test(reason) || /\bAUTH\b/.test(reason)) {
    return `STORE_URL: Redis at ${where} refused the credentials (${reason})`;
  }
  if (database !== undefined && /DB index/i.test(reason)) {
    return `STORE_URL: Redis at ${where} has no database ${database} (${reason})`;
  }
  const code = (error as { code?: unknown } | null)?.code;
  return `STORE_URL: cannot connect to Redis at ${where} (${typeof code === 'string' ? code : reason})`;
}
