import { once } from 'node:events';
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http';
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startHealthServer, type HealthServer } from '../../src/http/health-server.js';
import { createLogger } from '../../src/logger.js';
import { Metrics } from '../../src/services/metrics.js';

const HOST = '127.0.0.1';

let logText = '';
const logger = createLogger({
  level: 'info',
  secrets: [],
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      logText += chunk.toString();
      done();
    },
  }),
});

let metrics: Metrics;
let server: HealthServer;

beforeEach(async () => {
  logText = '';
  metrics = new Metrics();
  metrics.setGatewayUp(true);
  metrics.setStorageUp(true);
  server = await startHealthServer({ port: 0, host: HOST, metrics, logger });
});

afterEach(async () => {
  await server.close();
});

function url(path: string): string {
  return `http://${HOST}:${server.port}${path}`;
}

async function healthz(): Promise<{ status: number; body: unknown }> {
  const res = await fetch(url('/healthz'));
  return { status: res.status, body: await res.json() };
}

describe('health server: /healthz', () => {
  it('answers 200 ok when the gateway and storage are up', async () => {
    const res = await fetch(url('/healthz'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^application\/json/);
    expect(res.headers.get('cache-control')).toBe('no-store');
    expect(await res.json()).toEqual({
      status: 'ok',
      gateway: true,
      storage: true,
      breaker: 'closed',
      paused: false,
      shardCount: 1,
      shards: [{ id: 0, up: true }],
    });
  });

  it('answers 200 degraded while the Segmind breaker is open', async () => {
    metrics.setBreakerState('open');
    expect(await healthz()).toEqual({
      status: 200,
      body: { status: 'degraded', gateway: true, storage: true, breaker: 'open', paused: false, shardCount: 1, shards: [{ id: 0, up: true }] },
    });
  });

  it('answers 200 degraded while generation is paused bot-wide', async () => {
    metrics.setGenerationPaused(true);
    expect(await healthz()).toEqual({
      status: 200,
      body: { status: 'degraded', gateway: true, storage: true, breaker: 'closed', paused: true, shardCount: 1, shards: [{ id: 0, up: true }] },
    });
  });

  it('answers 503 down when storage is down', async () => {
    metrics.setStorageUp(false);
    metrics.setBreakerState('half_open');
    expect(await healthz()).toEqual({
      status: 503,
      body: { status: 'down', gateway: true, storage: false, breaker: 'half_open', paused: false, shardCount: 1, shards: [{ id: 0, up: true }] },
    });
  });

  it('answers 503 down when the gateway has not been ready yet', async () => {
    const starting = new Metrics();
    starting.setStorageUp(true);
    const other = await startHealthServer({ port: 0, host: HOST, metrics: starting, logger });
    try {
      const res = await fetch(`http://${HOST}:${other.port}/healthz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ status: 'down', gateway: false, shards: [{ id: 0, up: false }] });
    } finally {
      await other.close();
    }
  });

  it("names this process's shards and answers 503 once one has been down past the grace period", async () => {
    let now = 0;
    const sharded = new Metrics({ clock: { now: () => now, sleep: () => Promise.resolve() }, gatewayGraceMs: 30_000 });
    sharded.setStorageUp(true);
    sharded.setShards({ count: 4, shards: [2, 3] });
    sharded.setGatewayUp(true);
    const other = await startHealthServer({ port: 0, host: HOST, metrics: sharded, logger });
    const ask = async () => {
      const res = await fetch(`http://${HOST}:${other.port}/healthz`);
      return { status: res.status, body: await res.json() };
    };
    try {
      expect(await ask()).toMatchObject({ status: 200, body: { status: 'ok', shardCount: 4, shards: [{ id: 2, up: true }, { id: 3, up: true }] } });
      sharded.setShardUp(3, false);
      now += 10_000;
      expect(await ask()).toMatchObject({ status: 200, body: { status: 'ok', shards: [{ id: 2, up: true }, { id: 3, up: false, downSeconds: 10 }] } });
      now += 20_000;
      expect(await ask()).toMatchObject({ status: 503, body: { status: 'down', gateway: false } });
      sharded.setShardUp(3, true);
      expect((await ask()).status).toBe(200);
    } finally {
      await other.close();
    }
  });

  it('ignores the query string', async () => {
    const res = await fetch(url('/healthz?verbose=1'));
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'ok' });
  });
});

describe('health server: /metrics', () => {
  it('serves Prometheus text with the bot metrics and the default process metrics', async () => {
    metrics.jobFinished('delivered');
    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const body = await res.text();
    expect(body).toContain('flux_bot_jobs_total{outcome="delivered"} 1');
    expect(body).toContain('flux_bot_gateway_up{shard="0"} 1');
    expect(body).toMatch(/^process_cpu_user_seconds_total \S+$/m);
    expect(body).toMatch(/^nodejs_heap_size_used_bytes \S+$/m);
  });

  it('answers 500 and logs the cause when rendering fails, then keeps serving', async () => {
    vi.spyOn(metrics, 'render').mockRejectedValueOnce(new Error('registry exploded'));
    const failed = await fetch(url('/metrics'));
    expect(failed.status).toBe(500);
    expect(await failed.text()).not.toContain('exploded');
    expect(logText).toContain('registry exploded');
    expect((await fetch(url('/metrics'))).status).toBe(200);
  });
});

describe('health server: methods and paths', () => {
  it.each(['/healthz', '/metrics'])('answers HEAD %s with the GET headers and no body', async (path) => {
    const get = await fetch(url(path));
    const getBody = await get.text();
    const head = await fetch(url(path), { method: 'HEAD' });
    expect(head.status).toBe(get.status);
    expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'));
    expect(Number(head.headers.get('content-length'))).toBeGreaterThan(0);
    if (path === '/healthz') expect(Number(head.headers.get('content-length'))).toBe(Buffer.byteLength(getBody));
    expect(await head.text()).toBe('');
  });

  it('answers 503 to HEAD /healthz when down, so probes using HEAD see the outage', async () => {
    metrics.setStorageUp(false);
    expect((await fetch(url('/healthz'), { method: 'HEAD' })).status).toBe(503);
  });

  it.each(['/', '/health', '/metrics/extra', '/healthz/', '/../etc/passwd'])('answers 404 for %s', async (path) => {
    const res = await fetch(url(path));
    expect(res.status).toBe(404);
    await res.text();
  });

  it.each(['POST', 'PUT', 'DELETE', 'PATCH'])('answers 405 with an Allow header to %s', async (method) => {
    const res = await fetch(url('/metrics'), { method, body: method === 'DELETE' ? null : 'x' });
    expect(res.status).toBe(405);
    expect(res.headers.get('allow')).toBe('GET, HEAD');
    await res.text();
  });

  it('answers a malformed request with 400 and keeps serving', async () => {
    const socket = connect(server.port, HOST);
    await once(socket, 'connect');
    socket.end('NOT HTTP AT ALL\r\n\r\n');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    await once(socket, 'close');
    expect(Buffer.concat(chunks).toString()).toMatch(/^HTTP\/1\.1 400/);
    expect((await healthz()).status).toBe(200);
  });
});

describe('health server: lifecycle', () => {
  it('closes promptly while a client holds an idle keep-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, keepAliveMsecs: 60_000 });
    try {
      const { response, socket } = await new Promise<{ response: IncomingMessage; socket: Socket }>((resolve, reject) => {
        const req = httpRequest(url('/healthz'), { agent }, (response) => resolve({ response, socket: req.socket! }));
        req.on('error', reject);
        req.end();
      });
      response.resume();
      await once(response, 'end');
      expect(response.headers.connection).toBe('keep-alive');
      expect(socket.destroyed).toBe(false);

      const socketClosed = once(socket, 'close');
      const started = performance.now();
      await server.close();
      expect(performance.now() - started).toBeLessThan(500);
      await socketClosed;
    } finally {
      agent.destroy();
    }
  });

  it('can be closed more than once', async () => {
    await server.close();
    await expect(server.close()).resolves.toBeUndefined();
  });

  it('refuses to start on a port that is taken', async () => {
    await expect(startHealthServer({ port: server.port, host: HOST, metrics, logger })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
  });
});
