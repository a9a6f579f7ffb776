import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../logger.js';
import type { HealthSnapshot, Metrics } from '../services/metrics.js';

export interface HealthServerOptions {
  /** 0 picks a free port (tests). */
  port: number;
  /** Defaults to all interfaces, so a container's probe and a Prometheus scraper can reach it. */
  host?: string;
  metrics: Metrics;
  logger: Logger;
}

export interface HealthServer {
  /** The port actually bound (useful with `port: 0`). */
  readonly port: number;
  close(): Promise<void>;
}

export type HealthStatus = 'ok' | 'degraded' | 'down';

/** In-flight requests get this long to finish on close() before their sockets are cut. */
const CLOSE_GRACE_MS = 1_000;
const ALLOWED_METHODS = 'GET, HEAD';

/**
 * 'down' (503) when the bot cannot serve at all: no storage, or a gateway shard of this process not ready yet or down
 * past the grace period (see `HealthSnapshot.gateway`; the body names each shard). 'degraded' is still 200: the
 * process is alive and answers every interaction, if only with a refusal (breaker open, generation paused).
 */
export function healthStatus(health: HealthSnapshot): HealthStatus {
  if (!health.gateway || !health.storage) return 'down';
  if (health.breaker !== 'closed' || health.paused) return 'degraded';
  return 'ok';
}

/** `/healthz` and `/metrics` on plain node:http; nothing else is served. */
export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const { metrics, logger } = opts;
  // Loopback unless told otherwise: /metrics carries the Segmind balance.
  const host = opts.host ?? '127.0.0.1';

  const routes = new Map<string, () => Promise<Reply>>([
    ['/healthz', () => Promise.resolve(healthReply(metrics.health()))],
    [
      '/metrics',
      async () => {
        const { contentType, body } = await metrics.render();
        return { status: 200, contentType, body };
      },
    ],
  ]);

  const server = createServer({ requestTimeout: 10_000, headersTimeout: 5_000 }, (req, res) => {
    handle(req, res).catch((error: unknown) => {
      logger.error({ err: error, path: req.url }, 'health server request failed');
      if (!res.headersSent) send(req, res, { status: 500, contentType: TEXT, body: 'internal error\n' });
      else res.destroy();
    });
  });

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const route = routes.get(pathOf(req.url));
    let reply: Reply;
    if (!route) reply = { status: 404, contentType: TEXT, body: 'not found\n' };
    else if (req.method !== 'GET' && req.method !== 'HEAD')
      reply = { status: 405, contentType: TEXT, body: 'method not allowed\n', headers: { allow: ALLOWED_METHODS } };
    else reply = await route();
    send(req, res, reply);
  }

  server.listen(opts.port, host);
  try {
    await once(server, 'listening');
  } catch (error) {
    // `once` rejects on 'error' (port in use, bad host).
    server.close();
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  server.on('error', (error) => logger.error({ err: error }, 'health server error'));
  logger.info({ host, port }, 'health server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        const cutoff = setTimeout(() => server.closeAllConnections(), CLOSE_GRACE_MS);
        cutoff.unref();
        server.close(() => {
          clearTimeout(cutoff);
          resolve();
        });
        // Idle keep-alive sockets (a scraper's pooled connection) would otherwise hold close() for keepAliveTimeout.
        server.closeIdleConnections();
      });
      return closing;
    },
  };
}

interface Reply {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

const TEXT = 'text/plain; charset=utf-8';

function healthReply(health: HealthSnapshot): Reply {
  const status = healthStatus(health);
  return {
    status: status === 'down' ? 503 : 200,
    contentType: 'application/json; charset=utf-8',
    body: JSON.stringify({ status, ...health }),
  };
}

function send(req: IncomingMessage, res: ServerResponse, reply: Reply): void {
  res.writeHead(reply.status, {
    ...reply.headers,
    'content-type': reply.contentType,
    'content-length': Buffer.byteLength(reply.body),
    'cache-control': 'no-store',
  });
  // HEAD gets the same headers (including the GET body's length) and no body.
  res.end(req.method === 'HEAD' ? undefined : reply.body);
}

/** The path without query string; `req.url` is whatever the client sent, so nothing here may throw. */
function pathOf(url: string | undefined): string {
  return (url ?? '/').split('?', 1)[0] ?? '/';
}
