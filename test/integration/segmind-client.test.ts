import { getEventListeners } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/logger.js';
import type { FluxDevRequestBody } from '../../src/services/segmind/flux-params.js';
import { SegmindClient, type SegmindClientOptions } from '../../src/services/segmind/segmind-client.js';
import { SegmindError } from '../../src/services/segmind/segmind-errors.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { describeImage, renderImage } from '../fakes/images.js';

const KEY = 'SG_client_test_key_123456';
const body: FluxDevRequestBody = {
  prompt: 'a lighthouse at dusk',
  aspect_ratio: '16:9',
  guidance: 3.5,
  steps: 25,
  samples: 1,
  seed: 46588,
  output_format: 'webp',
  output_quality: 80,
  prompt_strength: 0.8,
};

let segmind: FakeSegmind;
let logText = '';
const logger = createLogger({
  level: 'debug',
  secrets: [KEY],
  destination: new Writable({
    write(chunk: Buffer, _e, done) {
      logText += chunk.toString();
      done();
    },
  }),
});
const clients: SegmindClient[] = [];

function client(overrides: Partial<SegmindClientOptions> = {}): SegmindClient {
  const c = new SegmindClient({
    baseUrl: segmind.url,
    apiKey: KEY,
    clock: systemClock,
    logger,
    timeoutMs: 5_000,
    maxRetries: 2,
    retryBaseMs: 10,
    maxResponseBytes: 5 * 1024 * 1024,
    connections: 4,
    random: () => 0.5,
    ...overrides,
  });
  clients.push(c);
  return c;
}

/**
 * What a long-lived signal holds on to: its abort listeners, and the signals `AbortSignal.any` derived from it, which
 * Node keeps in an internal set (weak references that are never removed while the source lives).
 */
function attachedTo(signal: AbortSignal): number {
  const dependants = Object.getOwnPropertySymbols(signal).find((s) => s.description === 'kDependantSignals');
  // a Set of Node's own realm: `instanceof Set` is false here
  const set = dependants === undefined ? undefined : (signal as unknown as Record<symbol, { size?: unknown }>)[dependants];
  return getEventListeners(signal, 'abort').length + (typeof set?.size === 'number' ? set.size : 0);
}

it('attachedTo sees what AbortSignal.any and listeners attach to a signal', () => {
  const source = new AbortController();
  const derived = AbortSignal.any([source.signal]);
  // Node 24 links a derived signal to its sources only once something listens to it (as fetch does); Node 20 at once
  derived.addEventListener('abort', () => undefined);
  const listener = () => undefined;
  source.signal.addEventListener('abort', listener);
  expect(attachedTo(source.signal)).toBe(2);
  source.signal.removeEventListener('abort', listener);
  expect(derived.aborted).toBe(false);
});

async function failure(promise: Promise<unknown>): Promise<SegmindError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(SegmindError);
    return error as SegmindError;
  }
  throw new Error('expected the call to fail');
}

beforeAll(async () => {
  segmind = await FakeSegmind.start({ apiKey: KEY });
});
beforeEach(() => segmind.reset());
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await segmind.stop();
});

describe('SegmindClient', () => {
  it('POSTs exactly the flux-dev parameters with the x-api-key header and returns the image', async () => {
    const image = await client().generate(body);
    expect(segmind.requests).toHaveLength(1);
    const [request] = segmind.requests;
    expect(request!.path).toBe('/v1/flux-dev');
    expect(request!.headers['x-api-key']).toBe(KEY);
    expect(request!.headers['content-type']).toBe('application/json');
    expect(request!.body).toEqual(body);
    expect(image).toMatchObject({ format: 'webp', seed: 46588, status: 200, attempts: 1, remainingCredits: 9.87 });
    expect(await describeImage(image.bytes)).toMatchObject({ format: 'webp', width: 64, height: 36 });
  });

  it.each(['png', 'jpg', 'webp'] as const)('accepts %s bytes and checks their magic bytes', async (format) => {
    const image = await client().generate({ ...body, output_format: format });
    expect(image.format).toBe(format);
    expect((await describeImage(image.bytes)).format).toBe(format);
  });

  it.each(['image', 'images'] as const)('accepts a JSON body carrying base64 in `%s`', async (field) => {
    segmind.enqueue({ kind: 'image', json: field });
    const image = await client().generate(body);
    expect((await describeImage(image.bytes)).format).toBe('webp');
  });

  it('reuses one keep-alive connection for consecutive calls', async () => {
    const c = client({ connections: 1 });
    await c.generate(body);
    await c.generate(body);
    await c.generate(body);
    const ports = new Set(segmind.requests.map((r) => r.remotePort));
    expect(ports.size).toBe(1);
  });

  it.each([
    [400, 'invalid_parameters'],
    [401, 'bad_api_key'],
    [403, 'forbidden'],
    [404, 'model_not_found'],
    [405, 'bad_response'],
    [406, 'out_of_credits'],
    [422, 'invalid_parameters'],
  ] as const)('does not retry HTTP %i (%s)', async (status, kind) => {
    segmind.setDefault({ kind: 'error', status });
    const error = await failure(client().generate(body));
    expect(error.kind).toBe(kind);
    expect(error.status).toBe(status);
    expect(segmind.requests).toHaveLength(1);
  });

  it.each([
    [429, 'rate_limited'],
    [500, 'server_error'],
    [502, 'server_error'],
    [503, 'server_error'],
    [504, 'timeout'],
  ] as const)('retries HTTP %i (%s) with backoff, then gives up', async (status, kind) => {
    segmind.setDefault({ kind: 'error', status });
    const error = await failure(client({ maxRetries: 2 }).generate(body));
    expect(error.kind).toBe(kind);
    expect(segmind.requests).toHaveLength(3);
    // backoff with jitter 0.5 and base 10 ms: ~7.5 ms, then ~15 ms
    const gaps = segmind.requests.slice(1).map((r, i) => r.at - segmind.requests[i]!.at);
    expect(gaps[0]).toBeGreaterThanOrEqual(7);
    expect(gaps[1]).toBeGreaterThanOrEqual(14);
  });

  it('succeeds when a retry succeeds', async () => {
    segmind.enqueue({ kind: 'error', status: 503 }, { kind: 'reset' });
    const image = await client().generate(body);
    expect(image.attempts).toBe(3);
    expect(segmind.requests).toHaveLength(3);
  });

  it('honours Retry-After on 429', async () => {
    segmind.enqueue({ kind: 'error', status: 429, retryAfter: '0.3' });
    const image = await client({ retryBaseMs: 1 }).generate(body);
    expect(image.attempts).toBe(2);
    const gap = segmind.requests[1]!.at - segmind.requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(290);
  });

  it('does not wait for a Retry-After that would pass the deadline', async () => {
    segmind.enqueue({ kind: 'error', status: 429, retryAfter: '60' });
    const started = Date.now();
    const error = await failure(client().generate(body, { deadline: Date.now() + 30_000 }));
    expect(error.kind).toBe('rate_limited');
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(segmind.requests).toHaveLength(1);
  });

  it('times out a hanging request and retries it', async () => {
    segmind.setDefault({ kind: 'hang' });
    const error = await failure(client({ timeoutMs: 150, maxRetries: 1 }).generate(body));
    expect(error.kind).toBe('timeout');
    expect(segmind.requests).toHaveLength(2);
  });

  it('never runs past the overall deadline', async () => {
    segmind.setDefault({ kind: 'hang' });
    const started = Date.now();
    const error = await failure(client({ timeoutMs: 60_000 }).generate(body, { deadline: Date.now() + 300 }));
    expect(error.kind).toBe('timeout');
    expect(Date.now() - started).toBeLessThan(1_500);
  });

  it('leaves nothing attached to the long-lived shutdown signal after many calls', async () => {
    const shutdown = new AbortController();
    const c = client();
    for (let i = 0; i < 50; i++) await c.generate({ ...body, seed: i }, { signal: shutdown.signal });
    // retried attempts and failed calls too
    segmind.enqueue({ kind: 'error', status: 503 }, { kind: 'reset' });
    await c.generate(body, { signal: shutdown.signal });
    segmind.enqueue({ kind: 'error', status: 400 });
    await failure(c.generate(body, { signal: shutdown.signal }));
    expect(segmind.requests).toHaveLength(54);
    expect(attachedTo(shutdown.signal)).toBe(0);
  });

  it('cancels the attempt under way when the shutdown signal aborts', async () => {
    segmind.setDefault({ kind: 'hang' });
    const shutdown = new AbortController();
    const call = failure(client().generate(body, { signal: shutdown.signal }));
    await segmind.waitForInFlight(1);
    shutdown.abort(new Error('the shutdown grace period is over'));
    expect((await call).kind).toBe('cancelled');
    await segmind.waitForInFlight(0);
    expect(attachedTo(shutdown.signal)).toBe(0);
  });

  it('reports a connection error when Segmind is unreachable', async () => {
    const c = client({ baseUrl: 'http://127.0.0.1:1', maxRetries: 1 });
    const error = await failure(c.generate(body));
    expect(error.kind).toBe('connection');
    expect(error.retryable).toBe(true);
  });

  it('treats a truncated body as a connection error and retries', async () => {
    segmind.enqueue({ kind: 'truncated' });
    const image = await client().generate(body);
    expect(image.attempts).toBe(2);
  });

  it('rejects bytes that are not an image despite an image content type', async () => {
    segmind.setDefault({ kind: 'notAnImage' });
    const error = await failure(client().generate(body));
    expect(error.kind).toBe('bad_response');
    expect(error.detail.reason).toContain('not a PNG, JPEG or WebP');
    expect(segmind.requests).toHaveLength(1);
  });

  it('rejects an image of another format than requested', async () => {
    segmind.setDefault({ kind: 'wrongFormat' });
    const error = await failure(client().generate({ ...body, output_format: 'jpg' }));
    expect(error.kind).toBe('bad_response');
    expect(error.detail.reason).toMatch(/asked for jpg, got (png|webp)/);
  });

  it('rejects an unexpected content type', async () => {
    segmind.setDefault({ kind: 'image', contentType: 'text/plain' });
    const error = await failure(client().generate(body));
    expect(error.detail.reason).toBe('unexpected content type text/plain');
  });

  it('caps the response size', async () => {
    segmind.setDefault({ kind: 'image', format: 'png', longSide: 512, noise: true });
    const error = await failure(client({ maxResponseBytes: 10_000 }).generate({ ...body, output_format: 'png' }));
    expect(error.kind).toBe('bad_response');
    expect(error.detail.reason).toMatch(/over the cap/);
  });

  it('keeps an HTML error body readable in the log without crashing', async () => {
    segmind.setDefault({ kind: 'error', status: 502, body: '<html><body><h1>502 Bad Gateway</h1></body></html>', contentType: 'text/html' });
    const error = await failure(client({ maxRetries: 0 }).generate(body));
    expect(error.detail.reason).toBe('502 Bad Gateway');
  });

  it('never writes the API key to its logs or errors', async () => {
    segmind.setDefault({ kind: 'error', status: 401 });
    const error = await failure(client().generate(body));
    expect(JSON.stringify({ message: error.message, detail: error.detail })).not.toContain(KEY);
    expect(logText.length).toBeGreaterThan(0);
    expect(logText).not.toContain(KEY);
  });
});

describe('SegmindClient reading the body', () => {
  let server: Server;
  let url = '';
  let respond: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();

  beforeAll(async () => {
    server = createServer((req, res) => {
      req.resume();
      req.on('end', () => respond(req, res));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  /** Sends `bytes` in `pieces` writes, with a content-length or chunked. */
  function serve(bytes: Buffer, opts: { contentLength?: number | 'none'; contentType?: string; status?: number; pieces?: number }) {
    respond = (_req, res) => {
      res.statusCode = opts.status ?? 200;
      res.setHeader('content-type', opts.contentType ?? 'image/png');
      if (opts.contentLength !== 'none') res.setHeader('content-length', String(opts.contentLength ?? bytes.length));
      const pieces = opts.pieces ?? 4;
      const size = Math.ceil(bytes.length / pieces);
      for (let i = 0; i < bytes.length; i += size) res.write(bytes.subarray(i, i + size));
      res.end();
    };
  }

  const png = () => renderImage({ format: 'png', width: 200, height: 200, seed: 3, noise: true });

  it('returns exactly the bytes sent, read into one buffer of the declared length or from chunks', async () => {
    const bytes = await png();
    expect(bytes.length).toBeGreaterThan(100_000);
    for (const contentLength of [undefined, 'none'] as const) {
      serve(bytes, { pieces: 7, ...(contentLength ? { contentLength } : {}) });
      const image = await client({ baseUrl: url }).generate({ ...body, output_format: 'png' });
      expect(image.bytes.equals(bytes)).toBe(true);
      expect(image.bytes.length).toBe(bytes.length);
      expect(image.format).toBe('png');
    }
  });

  it('caps a body sent without a content-length while it streams', async () => {
    serve(await png(), { contentLength: 'none', pieces: 10 });
    const error = await failure(client({ baseUrl: url, maxResponseBytes: 50_000, maxRetries: 0 }).generate({ ...body, output_format: 'png' }));
    expect(error.kind).toBe('bad_response');
    expect(error.detail.reason).toBe('response is over the 50000-byte cap');
  });

  it('accepts a body of exactly the cap and refuses one byte more', async () => {
    const bytes = await png();
    serve(bytes, { contentLength: 'none' });
    const exact = await client({ baseUrl: url, maxResponseBytes: bytes.length, maxRetries: 0 }).generate({ ...body, output_format: 'png' });
    expect(exact.bytes.equals(bytes)).toBe(true);
    const error = await failure(client({ baseUrl: url, maxResponseBytes: bytes.length - 1, maxRetries: 0 }).generate({ ...body, output_format: 'png' }));
    expect(error.detail.reason).toMatch(/over the/);
  });

  it('keeps the start of a long error body and still classifies it', async () => {
    const text = `Service Unavailable ${'x'.repeat(200_000)}`;
    serve(Buffer.from(text), { status: 503, contentType: 'text/plain' });
    const error = await failure(client({ baseUrl: url, maxRetries: 0 }).generate(body));
    expect(error.status).toBe(503);
    expect(error.retryable).toBe(true);
  });
});

describe('SegmindClient.balance', () => {
  it('GETs /v1/get-user-credits with the x-api-key header and returns paid, free and total dollars', async () => {
    segmind.setBalance(4.25, 0.5);
    const balance = await client().balance();
    expect(balance).toEqual({ credits: 4.25, freeCredits: 0.5, total: 4.75 });
    const [request] = segmind.balanceRequests();
    expect(request).toMatchObject({ method: 'GET', path: '/v1/get-user-credits' });
    expect(request!.headers['x-api-key']).toBe(KEY);
  });

  it('reports a rejected key as bad_api_key, with Segmind\'s reason and without the key', async () => {
    const error = await failure(client({ apiKey: 'SG_wrong_key_0000000' }).balance());
    expect(error.kind).toBe('bad_api_key');
    expect(error.status).toBe(401);
    expect(error.detail.reason).toContain('Invalid API key');
    expect(JSON.stringify({ message: error.message, detail: error.detail })).not.toContain('SG_wrong_key_0000000');
  });

  it('tells an unreachable Segmind (connection) from a bad answer (bad_response), and never retries', async () => {
    segmind.failBalance({ kind: 'reset' });
    expect((await failure(client().balance())).kind).toBe('connection');
    expect(segmind.balanceRequests()).toHaveLength(1);
    segmind.failBalance({ kind: 'error', status: 200, body: '{"balance": "lots"}' });
    expect((await failure(client().balance())).kind).toBe('bad_response');
    segmind.failBalance({ kind: 'error', status: 200, body: '<html>maintenance</html>', contentType: 'text/html' });
    expect((await failure(client().balance())).kind).toBe('bad_response');
    segmind.failBalance(null);
    segmind.setBalance(0);
    expect((await client().balance()).total).toBe(0);
  });
});
