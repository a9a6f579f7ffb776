import { isIP } from 'node:net';
import { createClient } from '@keyv/redis';
import type { Logger } from '../../logger.js';
import { reasonOf } from './assemble-storage.js';
import { StorageConfigError } from './storage-config-error.js';
import { describeRedisTarget, type RedisTarget } from './store-url.js';

/** Every operation gives up after this: the quota path must answer inside Discord's 3 s (fail closed, not hang). */
export const REDIS_COMMAND_TIMEOUT_MS = 2_000;
const CONNECT_TIMEOUT_MS = 2_000;
/** At start-up, retry a refused connection this long (Redis starting next to the bot), then report it. */
const STARTUP_RETRY_BUDGET_MS = 1_500;
const MAX_BACKOFF_MS = 2_000;
/** A replacement connection not ready after this is replaced again (its handshake hangs too). */
const REPLACEMENT_READY_DEADLINE_MS = CONNECT_TIMEOUT_MS + REDIS_COMMAND_TIMEOUT_MS;
/** The same connection error is logged at most this often while Redis stays away. */
const ERROR_LOG_INTERVAL_MS = 30_000;
/** Server replies that retrying cannot fix (bad credentials, no such database). */
const PERMANENT_REPLY = /^(WRONGPASS|NOAUTH|NOPERM|ERR )/;

function newClient(target: RedisTarget, reconnectStrategy: (retries: number, cause: Error) => number | false) {
  const socket = { host: target.host, port: target.port, connectTimeout: CONNECT_TIMEOUT_MS, reconnectStrategy };
  return createClient({
    socket: target.tls
      ? { ...socket, tls: true as const, ...(isIP(target.host) === 0 ? { servername: target.host } : {}) }
      : socket,
    ...(target.username === undefined ? {} : { username: target.username }),
    ...(target.password === undefined ? {} : { password: target.password }),
    ...(target.database === undefined ? {} : { database: target.database }),
    // While disconnected, commands fail at once instead of queueing until Redis is back.
    disableOfflineQueue: true,
  });
}

export type RedisClient = ReturnType<typeof newClient>;

export class RedisTimeoutError extends Error {
  constructor(where: string, ms: number) {
    super(`Redis at ${where} did not answer within ${ms} ms`);
    this.name = 'RedisTimeoutError';
  }
}

/**
 * The node-redis connection behind a Redis Storage, and how it fails:
 * - start-up: a few quick retries, then a StorageConfigError (no endless retrying before the bot is even up);
 * - connection lost (Redis stopped, restarted, network reset): node-redis reconnects forever with capped
 *   exponential backoff and jitter; meanwhile commands are rejected at once (`disableOfflineQueue`);
 * - no answer (a hung server or a silently dropped connection): every operation goes through `guard`, which rejects
 *   after REDIS_COMMAND_TIMEOUT_MS and replaces the connection (node-redis's own command timeout stops counting once
 *   a command is written, so it cannot catch this). The keyv adapter is handed the new client via `onReplace`.
 */
export class RedisConnection {
  readonly where: string;
  readonly #target: RedisTarget;
  readonly #logger: Logger;
  readonly #onReplace: Array<(client: RedisClient) => void> = [];
  /** Errors the connection listener logged, so the keyv listener does not log them again. */
  readonly logged = new WeakSet<object>();
  #client: RedisClient;
  readonly #startedAt = Date.now();
  #everReady = false;
  #lost = false;
  #closed = false;
  #replacementWatch: NodeJS.Timeout | undefined;
  readonly #lastLogged = new Map<string, number>();

  private constructor(target: RedisTarget, logger: Logger) {
    this.#target = target;
    this.#logger = logger;
    this.where = describeRedisTarget(target);
    this.#client = this.#create();
  }

  /** Connects, or throws a StorageConfigError within a few seconds. */
  static async open(target: RedisTarget, logger: Logger): Promise<RedisConnection> {
    const connection = new RedisConnection(target, logger);
    const client = connection.#client;
    try {
      await client.connect();
    } catch (error) {
      if (client.isOpen) client.destroy();
      throw new StorageConfigError(startupMessage(connection.where, error, target.database), { cause: error });
    }
    return connection;
  }

  get client(): RedisClient {
    return this.#client;
  }

  /** Connected and answering, as far as we know (false during an outage that has already been logged). */
  get healthy(): boolean {
    return this.#everReady && !this.#lost && !this.#closed && this.#client.isReady;
  }

  onReplace(listener: (client: RedisClient) => void): void {
    this.#onReplace.push(listener);
  }

  send(args: string[]): Promise<unknown> {
    return this.guard(this.#client.sendCommand(args));
  }

  /** Rejects when `operation` has not settled within the timeout, and then replaces the (hung) connection. */
  guard<T>(operation: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new RedisTimeoutError(this.where, REDIS_COMMAND_TIMEOUT_MS));
        this.#replaceIfHung();
      }, REDIS_COMMAND_TIMEOUT_MS);
    });
    // The operation may still settle after the deadline: that late outcome is nobody's business.
    operation.catch(() => undefined);
    return Promise.race([operation, deadline]).finally(() => clearTimeout(timer));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#replacementWatch);
    const client = this.#client;
    if (!client.isOpen) return;
    if (client.isReady) {
      // Lets commands already sent finish, without waiting on a hung server.
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        client.close().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, REDIS_COMMAND_TIMEOUT_MS))),
      ]);
      clearTimeout(timer);
    }
    if (client.isOpen) client.destroy();
  }

  #create(): RedisClient {
    const client = newClient(this.#target, (retries, cause) => {
      if (this.#closed) return false;
      const delay = Math.min(100 * 2 ** retries, MAX_BACKOFF_MS) + Math.floor(Math.random() * 100);
      if (this.#everReady) return delay;
      if (PERMANENT_REPLY.test(cause.message)) return false;
      return Date.now() - this.#startedAt + delay <= STARTUP_RETRY_BUDGET_MS ? delay : false;
    });
    client.on('error', (error: unknown) => this.#onError(client, error));
    client.on('ready', () => {
      if (client !== this.#client) return;
      if (this.#everReady && this.#lost) this.#logger.info({ redis: this.where }, 'Redis connection restored');
      this.#everReady = true;
      this.#lost = false;
      this.#lastLogged.clear();
    });
    client.on('reconnecting', () => this.#logger.debug({ redis: this.where }, 'reconnecting to Redis'));
    return client;
  }

  #onError(client: RedisClient, error: unknown): void {
    if (typeof error === 'object' && error !== null) this.logged.add(error);
    // Start-up failures are reported once, as a StorageConfigError; a replaced client's last words do not matter.
    if (!this.#everReady || this.#closed || client !== this.#client) return;
    this.#logLost(error, 'lost the Redis connection: storage operations fail until it is back');
  }

  #logLost(error: unknown, message: string): void {
    const reason = reasonOf(error);
    const now = Date.now();
    if (!this.#lost) {
      this.#lost = true;
      this.#logger.error({ err: error, redis: this.where }, message);
    } else if (now - (this.#lastLogged.get(reason) ?? 0) >= ERROR_LOG_INTERVAL_MS) {
      this.#logger.warn({ err: error, redis: this.where }, 'Redis still unreachable');
    } else {
      return;
    }
    this.#lastLogged.set(reason, now);
  }

  /**
   * A command went unanswered on a connection node-redis believes is fine: drop that connection (its waiting
   * commands fail at once) and start a new one. Not while a replacement is already under way.
   */
  #replaceIfHung(): void {
    if (this.#closed || !this.#client.isReady) return;
    this.#replace(new RedisTimeoutError(this.where, REDIS_COMMAND_TIMEOUT_MS));
  }

  #replace(reason: Error): void {
    this.#logLost(reason, 'Redis stopped answering: opening a new connection');
    const old = this.#client;
    const next = this.#create();
    this.#client = next;
    for (const listener of this.#onReplace) listener(next);
    old.destroy();
    next.connect().catch(() => undefined);
    clearTimeout(this.#replacementWatch);
    this.#replacementWatch = setTimeout(() => {
      if (!this.#closed && this.#client === next && !next.isReady) this.#replace(reason);
    }, REPLACEMENT_READY_DEADLINE_MS);
    this.#replacementWatch.unref();
  }
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
