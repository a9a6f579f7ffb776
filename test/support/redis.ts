import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { createClient } from '@keyv/redis';
import { describe, it } from 'vitest';

/**
 * Redis for tests: the real server on 127.0.0.1:6379. Locally, without it, Redis suites are skipped with a message;
 * in CI (CI=true) its absence is a failure. Each run writes under its own random key prefix and deletes only those
 * keys afterwards (never FLUSHALL: the server may be shared).
 */

export const REDIS_HOST = '127.0.0.1';
export const REDIS_PORT = 6379;
export const REDIS_URL = `redis://${REDIS_HOST}:${REDIS_PORT}`;

/** A raw PING over TCP: no client library, no retries, one second at most. */
function pingRedis(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

export const redisReachable = await pingRedis(REDIS_HOST, REDIS_PORT);
const inCi = process.env.CI === 'true';
const unreachableMessage = `Redis not reachable on ${REDIS_HOST}:${REDIS_PORT}`;
let warned = false;

/**
 * `describe` for suites that need Redis: runs them when it is reachable; otherwise skips them with a warning, or in
 * CI replaces them with one failing test that says why.
 */
export function describeWithRedis(name: string, body: () => void): void {
  if (redisReachable) {
    describe(name, body);
  } else if (inCi) {
    describe(name, () => {
      it('needs a Redis server', () => {
        throw new Error(`${unreachableMessage}, and CI=true: Redis tests must run in CI. Start a Redis 7 service.`);
      });
    });
  } else {
    if (!warned) {
      warned = true;
      console.warn(`${unreachableMessage}: skipping Redis tests (they run in CI)`);
    }
    describe.skip(name, body);
  }
}

/** Unique per test run, so concurrent runs (and other users of the server) never see each other's keys. */
export const redisRunPrefix = `fluxtest-${randomBytes(6).toString('hex')}-`;
let namespaces = 0;

/** A fresh storage namespace inside this run's prefix. */
export function redisTestNamespace(): string {
  namespaces += 1;
  return `${redisRunPrefix}${namespaces}`;
}

/** Deletes this run's keys only: SCAN by prefix, then DEL. Returns how many were deleted. */
export async function deleteRedisKeys(prefix = redisRunPrefix): Promise<number> {
  if (!prefix.startsWith(redisRunPrefix)) throw new Error(`refusing to delete keys outside this test run: ${prefix}`);
  return withRedisClient(async (client) => {
    let deleted = 0;
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) {
      if (keys.length > 0) deleted += await client.del(keys);
    }
    return deleted;
  });
}

/**
 * A TCP forwarder in front of Redis, to break the connection the way a network or a server would:
 * `stop()` closes every connection and stops listening (connection refused), `start()` listens again on the same
 * port, `freeze()` keeps the connections open but forwards nothing (a hung server), `thaw()` resumes.
 */
export class TcpProxy {
  readonly #targetPort: number;
  #server: net.Server | undefined;
  #port = 0;
  #frozen = false;
  readonly #pairs = new Set<{ client: net.Socket; upstream: net.Socket }>();
  readonly #held: Array<[net.Socket, Buffer]> = [];

  private constructor(targetPort: number) {
    this.#targetPort = targetPort;
  }

  static async start(targetPort = REDIS_PORT): Promise<TcpProxy> {
    const proxy = new TcpProxy(targetPort);
    await proxy.start();
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.#port}`;
  }

  async start(): Promise<void> {
    if (this.#server) return;
    const server = net.createServer((client) => this.#accept(client));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, '127.0.0.1', () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === 'string') throw new Error('proxy has no TCP address');
    this.#port = address.port;
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    for (const { client, upstream } of this.#pairs) {
      client.destroy();
      upstream.destroy();
    }
    this.#pairs.clear();
    this.#held.length = 0;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  freeze(): void {
    this.#frozen = true;
  }

  thaw(): void {
    this.#frozen = false;
    const held = this.#held.splice(0);
    for (const [to, chunk] of held) if (!to.destroyed) to.write(chunk);
  }

  #accept(client: net.Socket): void {
    const upstream = net.connect({ host: REDIS_HOST, port: this.#targetPort });
    const pair = { client, upstream };
    this.#pairs.add(pair);
    const close = () => {
      client.destroy();
      upstream.destroy();
      this.#pairs.delete(pair);
    };
    // Forwarded by hand rather than piped, so a frozen proxy holds bytes back deterministically.
    const forward = (from: net.Socket, to: net.Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (this.#frozen) this.#held.push([to, chunk]);
        else to.write(chunk);
      });
    };
    client.on('error', close).on('close', close);
    upstream.on('error', close).on('close', close);
    forward(client, upstream);
    forward(upstream, client);
  }
}

function newTestClient() {
  return createClient({ url: REDIS_URL });
}
export type TestRedisClient = ReturnType<typeof newTestClient>;

/** A short-lived raw client for looking at what the code under test wrote. */
export async function withRedisClient<T>(fn: (client: TestRedisClient) => Promise<T>): Promise<T> {
  const client = newTestClient();
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    client.destroy();
  }
}

/** Every key starting with `prefix` (which must be one of this run's namespaces). */
export async function listRedisKeys(prefix: string): Promise<string[]> {
  if (!prefix.startsWith(redisRunPrefix)) throw new Error(`not a key prefix of this test run: ${prefix}`);
  return withRedisClient(async (client) => {
    const found: string[] = [];
    for await (const keys of client.scanIterator({ MATCH: `${prefix}*`, COUNT: 500 })) found.push(...keys);
    return found.sort();
  });
}
