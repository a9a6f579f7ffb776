/**
 * A fake Segmind v1 API (POST /v1/flux-dev) on a real HTTP server at 127.0.0.1:<ephemeral port>.
 *
 * It answers like Segmind does (see docs/segmind.md: raw image bytes with an image/* content type, x-api-key auth,
 * JSON or HTML error bodies), records every request, and plays scenarios (errors, slow, truncated, reset, hang...).
 * Built for end-to-end tests and a load benchmark: images are rendered once and cached (images.ts), base64 JSON
 * bodies are cached per image, and the per-request work is a JSON parse and a buffer write.
 *
 * Order of checks for each request (all requests are recorded first):
 *   unknown path → 404 JSON; wrong method on /v1/flux-dev → 405 HTML (nginx); missing/wrong x-api-key (when an
 *   apiKey is configured) → 401; body not JSON → 400; invalid flux-dev parameters (when `validate`) → 400;
 *   then the scenario: respondWith(fn) if set, else the next queued one, else the default.
 * Requests rejected before the scenario step do not consume a queued scenario.
 *
 * GET /v1/get-user-credits answers `{"credits": n, "free-credits": n}` (setBalance), after the same x-api-key check;
 * failBalance() makes it answer an error, reset or hang instead, without touching the image scenarios. Balance
 * requests are recorded apart (balanceRequests()): the bot reads the balance on its own schedule, and they must not
 * shift the image requests' records, counts or in-flight numbers that tests wait on.
 */
import { randomUUID } from 'node:crypto';
import { createServer, STATUS_CODES } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { ASPECT_RATIOS, dimensionsFor, mimeFor, renderImage } from './images.js';
import type { ImageFormat } from './images.js';

export type { ImageFormat } from './images.js';

export const MODEL_PATH = '/v1/flux-dev';
export const CREDITS_PATH = '/v1/get-user-credits';

export type SegmindScenario =
  | {
      kind: 'image';
      /** default: the request's output_format, else webp */
      format?: ImageFormat;
      delayMs?: number;
      /** header x-remaining-credits; default '9.87'; null = omit */
      remainingCredits?: string | null;
      /** answer JSON {image: base64} or {images: [base64]} with application/json instead of raw bytes */
      json?: 'image' | 'images';
      /** override the content-type header */
      contentType?: string;
      /** long side in pixels (default 64) */
      longSide?: number;
      /** incompressible random pixels (large files) */
      noise?: boolean;
      extraHeaders?: Record<string, string>;
    }
  | {
      kind: 'error';
      status: number;
      /** default: a realistic body for that status (JSON {"error": "..."}; nginx HTML for 405) */
      body?: string;
      /** default application/json (text/html for the default 405 body) */
      contentType?: string;
      retryAfter?: string;
      /** header x-rate-limit-reset-at-utc (what Segmind sends on a 429 instead of Retry-After), verbatim */
      rateLimitResetAt?: string;
      delayMs?: number;
      /** header x-remaining-credits; default: omitted */
      remainingCredits?: string | null;
      extraHeaders?: Record<string, string>;
    }
  /** headers with a content-length larger than the body, part of a real image, then the socket is destroyed */
  | { kind: 'truncated'; format?: ImageFormat; longSide?: number; noise?: boolean; delayMs?: number }
  /** destroys the socket without any response (connection error) */
  | { kind: 'reset'; delayMs?: number }
  /** never answers (until the client aborts or the server stops) */
  | { kind: 'hang' }
  /** 200 with an image/* content type (default image/png) but bytes that are not an image (default: an HTML page) */
  | { kind: 'notAnImage'; contentType?: string; body?: string | Buffer }
  /** 200 with image bytes of another format than requested, content-type claiming the requested one */
  | { kind: 'wrongFormat' }
  /**
   * 406 "Invalid content type", Segmind's answer to a request without a JSON content type (the same status as an
   * empty account): as JSON with the text in `message` (default), `error` or `detail`, or as plain text.
   */
  | { kind: 'invalidContentType'; shape?: 'message' | 'error' | 'detail' | 'text' };

/** What the balance route can play instead of answering the balance. */
export type BalanceFailure = Extract<SegmindScenario, { kind: 'error' | 'reset' | 'hang' }>;

export interface RecordedSegmindRequest {
  /** 1-based arrival order since start/reset */
  seq: number;
  /** Date.now() when the body had been read */
  at: number;
  method: string;
  /** the request target as sent, query string included */
  path: string;
  /** lower-case names; repeated headers joined with ', ' */
  headers: Record<string, string>;
  /** parsed JSON, or the raw string if not JSON ('' for no body) */
  body: unknown;
  /** the client's TCP port: the same port on consecutive requests shows a kept-alive connection */
  remotePort: number | undefined;
}

export interface FakeSegmindOptions {
  /** when set, requests without a matching x-api-key get 401 {"error":"Invalid API key"} */
  apiKey?: string;
  /** reject invalid flux-dev parameters with 400 {"error":"Invalid parameter: ..."} (default true) */
  validate?: boolean;
  /** keep at most this many records (oldest dropped; seq and waitForRequests still count all). Default: all */
  maxRecords?: number;
}

const DEFAULT_SCENARIO: SegmindScenario = { kind: 'image' };
const DEFAULT_CREDITS = '9.87';
const MAX_BODY_BYTES = 1024 * 1024;

/** The nginx error page Segmind's front end serves (405 always; useful for 502/504 bodies too). */
export function nginxErrorPage(status: number): string {
  const title = `${status} ${status === 405 ? 'Not Allowed' : (STATUS_CODES[status] ?? 'Error')}`;
  return `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n`;
}

/** Realistic default error body (and its content type) for a status. */
export function defaultErrorBody(status: number): { body: string; contentType: string } {
  const json = (o: Record<string, string>) => ({ body: JSON.stringify(o), contentType: 'application/json' });
  switch (status) {
    case 400:
      return json({ error: 'Invalid parameter: aspect_ratio must be one of ' + ASPECT_RATIOS.join(', ') });
    case 401:
      return json({ error: 'Invalid API key', error_description: 'The API key is missing, invalid or has been revoked.' });
    case 403:
      return json({ error: 'Forbidden', error_description: 'This API key is not allowed to use this model.' });
    case 404:
      return json({ error: 'Model not found' });
    case 405:
      return { body: nginxErrorPage(405), contentType: 'text/html' };
    case 406:
      return json({ error: 'Not enough credits' });
    case 422:
      return json({ error: 'Invalid parameter: steps must be less than or equal to 50' });
    case 429:
      return json({ error: 'Rate limit exceeded' });
    case 500:
      return json({ error: 'Internal server error' });
    case 502:
      return json({ error: 'Bad gateway' });
    case 503:
      return json({ error: 'Service temporarily unavailable, please try again later' });
    case 504:
      return json({ error: 'Gateway timeout' });
    default:
      return json({ error: STATUS_CODES[status] ?? `HTTP ${status}` });
  }
}

const INVALID_CONTENT_TYPE = 'Invalid content type';

const NOT_AN_IMAGE_BODY =
  '<!DOCTYPE html><html><head><title>Just a moment...</title></head><body><h1>Please wait while we check your browser</h1></body></html>';

/** Validates a flux-dev request body as Segmind would; returns the error message or undefined. */
export function validateFluxDevBody(body: unknown): string | undefined {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'Invalid parameter: request body must be a JSON object';
  const b = body as Record<string, unknown>;
  if (typeof b.prompt !== 'string' || b.prompt.trim() === '') return 'Invalid parameter: prompt is required';
  const num = (name: string, min: number, max: number, integer: boolean): string | undefined => {
    const v = b[name];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || (integer && !Number.isInteger(v)) || v < min || v > max)
      return `Invalid parameter: ${name} must be ${integer ? 'an integer' : 'a number'} between ${min} and ${max}`;
    return undefined;
  };
  if (b.aspect_ratio !== undefined && !(ASPECT_RATIOS as readonly unknown[]).includes(b.aspect_ratio))
    return `Invalid parameter: aspect_ratio must be one of ${ASPECT_RATIOS.join(', ')}`;
  if (b.output_format !== undefined && !['webp', 'jpg', 'png'].includes(b.output_format as string))
    return 'Invalid parameter: output_format must be one of webp, jpg, png';
  return (
    num('guidance', 0, 10, false) ??
    num('steps', 1, 50, true) ??
    num('samples', 1, 4, true) ??
    num('seed', Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER, true) ??
    num('output_quality', 0, 100, true) ??
    num('prompt_strength', 0, 1, false)
  );
}

interface ImageParams {
  format: ImageFormat;
  width: number;
  height: number;
  seed: number;
  quality: number | undefined;
  noise: boolean;
}

/** What the request asks for (lenient: invalid values fall back to defaults when validation is off). */
function imageParamsFor(body: unknown, o: { format?: ImageFormat; longSide?: number; noise?: boolean }): ImageParams {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  const requested = requestedFormat(body);
  const format = o.format ?? requested;
  let dims: { width: number; height: number };
  try {
    dims = dimensionsFor(typeof b.aspect_ratio === 'string' ? b.aspect_ratio : '1:1', o.longSide ?? 64);
  } catch {
    dims = dimensionsFor('1:1', o.longSide ?? 64);
  }
  const seed = typeof b.seed === 'number' && Number.isFinite(b.seed) ? b.seed : 0;
  const q = b.output_quality;
  const quality = format !== 'png' && typeof q === 'number' && Number.isFinite(q) ? Math.min(100, Math.max(1, Math.round(q))) : undefined;
  return { format, ...dims, seed, quality, noise: o.noise ?? false };
}

function requestedFormat(body: unknown): ImageFormat {
  const f = typeof body === 'object' && body !== null ? (body as Record<string, unknown>).output_format : undefined;
  if (f === 'jpg' || f === 'jpeg') return 'jpg';
  if (f === 'png') return 'png';
  return 'webp';
}

/** base64 JSON bodies, cached per (shared, immutable) image buffer. */
const jsonBodies = new WeakMap<Buffer, { image?: Buffer; images?: Buffer }>();
function jsonBodyFor(bytes: Buffer, shape: 'image' | 'images'): Buffer {
  let entry = jsonBodies.get(bytes);
  if (!entry) jsonBodies.set(bytes, (entry = {}));
  let out = entry[shape];
  if (!out) {
    const b64 = bytes.toString('base64');
    out = entry[shape] = Buffer.from(JSON.stringify(shape === 'image' ? { image: b64 } : { images: [b64] }));
  }
  return out;
}

function flattenHeaders(h: IncomingMessage['headers']): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(h)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

class Deadline extends Error {}

export class FakeSegmind {
  readonly url: string;
  readonly requests: RecordedSegmindRequest[] = [];

  private readonly server: Server;
  private readonly opts: FakeSegmindOptions;
  private readonly sockets = new Set<Socket>();
  private readonly listeners = new Set<() => void>();
  private defaultScenario: SegmindScenario = DEFAULT_SCENARIO;
  private queue: SegmindScenario[] = [];
  private responder: ((req: RecordedSegmindRequest) => SegmindScenario) | null = null;
  private balance = { credits: Number(DEFAULT_CREDITS), freeCredits: 0 };
  private balanceFailure: BalanceFailure | null = null;
  private readonly balanceRecords: RecordedSegmindRequest[] = [];
  private seq = 0;
  private current = 0;
  private max = 0;
  private gate: { promise: Promise<void>; open: () => void } | null = null;
  private stopping: Promise<void> | null = null;

  private constructor(server: Server, url: string, opts: FakeSegmindOptions) {
    this.server = server;
    this.url = url;
    this.opts = opts;
  }

  static async start(opts: FakeSegmindOptions = {}): Promise<FakeSegmind> {
    const server = createServer({ keepAliveTimeout: 5_000 });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const { port } = server.address() as AddressInfo;
    const fake = new FakeSegmind(server, `http://127.0.0.1:${port}`, opts);
    fake.attach();
    return fake;
  }

  /** Full URL of the model endpoint. */
  get modelUrl(): string {
    return this.url + MODEL_PATH;
  }

  setDefault(s: SegmindScenario): void {
    this.defaultScenario = s;
  }

  enqueue(...s: SegmindScenario[]): void {
    this.queue.push(...s);
  }

  /** What GET /v1/get-user-credits answers from now on, in dollars. */
  setBalance(credits: number, freeCredits = 0): void {
    this.balance = { credits, freeCredits };
  }

  /** GET /v1/get-user-credits plays this instead (e.g. `{kind: 'error', status: 401}`); null answers the balance again. */
  failBalance(failure: BalanceFailure | null): void {
    this.balanceFailure = failure;
  }

  /** Balance requests (GET /v1/get-user-credits) recorded since start/reset, apart from `requests`. */
  balanceRequests(): RecordedSegmindRequest[] {
    return [...this.balanceRecords];
  }

  /** Scenarios still queued. */
  queued(): number {
    return this.queue.length;
  }

  respondWith(fn: ((req: RecordedSegmindRequest) => SegmindScenario) | null): void {
    this.responder = fn;
  }

  /** Requests received whose response has not finished (or been aborted) yet. */
  inFlight(): number {
    return this.current;
  }

  maxInFlight(): number {
    return this.max;
  }

  /** Requests recorded since start/reset (counts records dropped by maxRecords too). */
  requestCount(): number {
    return this.seq;
  }

  /** Resolves with a snapshot of the records once at least `n` requests have been recorded. */
  async waitForRequests(n: number, timeoutMs = 5_000): Promise<RecordedSegmindRequest[]> {
    await this.waitUntil(() => this.seq >= n, timeoutMs, () => `waitForRequests(${n}): only ${this.seq} request(s) after ${timeoutMs} ms`);
    return [...this.requests];
  }

  /** Resolves once exactly `n` requests are in flight (e.g. 0 after aborting, k while paused). */
  async waitForInFlight(n: number, timeoutMs = 5_000): Promise<void> {
    await this.waitUntil(() => this.current === n, timeoutMs, () => `waitForInFlight(${n}): ${this.current} in flight after ${timeoutMs} ms`);
  }

  /**
   * Hold every response (after its scenario's delay) until resume(): lets tests observe queues and concurrency
   * deterministically. Requests that arrive while paused are recorded and counted in flight.
   */
  pause(): void {
    if (this.gate) return;
    let open!: () => void;
    const promise = new Promise<void>((r) => (open = r));
    this.gate = { promise, open };
  }

  resume(): void {
    const g = this.gate;
    this.gate = null;
    g?.open();
  }

  /** Clear records, queue, respondWith and maxInFlight; also restores the default scenario and balance, and resumes. */
  reset(): void {
    this.requests.length = 0;
    this.queue = [];
    this.responder = null;
    this.defaultScenario = DEFAULT_SCENARIO;
    this.balance = { credits: Number(DEFAULT_CREDITS), freeCredits: 0 };
    this.balanceFailure = null;
    this.balanceRecords.length = 0;
    this.seq = 0;
    this.max = this.current;
    this.resume();
  }

  /** Close the server, destroying every connection (hanging ones included). Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= new Promise<void>((resolve) => {
      this.resume();
      this.server.close(() => resolve());
      this.server.closeAllConnections();
      for (const s of this.sockets) s.destroy();
    });
    return this.stopping;
  }

  // ---------------------------------------------------------------------------------------------------------------

  private attach(): void {
    this.server.on('connection', (socket) => {
      this.sockets.add(socket);
      socket.on('error', () => {});
      socket.once('close', () => this.sockets.delete(socket));
    });
    this.server.on('clientError', (_err, socket) => socket.destroy());
    this.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((err: unknown) => {
        // A bug in the fake (or a throwing respondWith): answer 500 so the test sees it, never crash.
        const message = err instanceof Error ? err.message : String(err);
        this.send(res, 500, { 'content-type': 'application/json' }, JSON.stringify({ error: `fake-segmind: ${message}` }));
      });
    });
  }

  private changed(): void {
    for (const l of [...this.listeners]) l();
  }

  private waitUntil(cond: () => boolean, timeoutMs: number, describe: () => string): Promise<void> {
    if (cond()) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const check = () => {
        if (!cond()) return;
        cleanup();
        resolve();
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Deadline(describe()));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    req.on('error', () => {});
    res.on('error', () => {});
    if ((req.url ?? '').split('?', 1)[0] === CREDITS_PATH && req.method === 'GET') return this.handleBalance(req, res);
    this.current++;
    if (this.current > this.max) this.max = this.current;
    let counted = true;
    res.once('close', () => {
      if (!counted) return;
      counted = false;
      this.current--;
      this.changed();
    });
    this.changed();

    const raw = await this.readBody(req, res);
    if (raw === undefined) return; // aborted or too large (already answered)
    const text = raw.toString('utf8');
    let body: unknown = text;
    let parsed = false;
    try {
      body = JSON.parse(text);
      parsed = true;
    } catch {
      /* keep the raw text */
    }
    const record: RecordedSegmindRequest = {
      seq: ++this.seq,
      at: Date.now(),
      method: req.method ?? '',
      path: req.url ?? '',
      headers: flattenHeaders(req.headers),
      body,
      remotePort: req.socket.remotePort,
    };
    this.requests.push(record);
    this.trimRecords();
    this.changed();

    const requestId = randomUUID();
    const pathname = (req.url ?? '').split('?', 1)[0];

    if (pathname !== MODEL_PATH) return this.sendError(res, 404, requestId);
    if (req.method !== 'POST') return this.sendError(res, 405, requestId);
    if (!this.authorised(req)) return this.sendError(res, 401, requestId);
    if (!parsed) return this.sendError(res, 400, requestId, JSON.stringify({ error: 'Invalid parameter: request body is not valid JSON' }));
    if (this.opts.validate !== false) {
      const problem = validateFluxDevBody(body);
      if (problem) return this.sendError(res, 400, requestId, JSON.stringify({ error: problem }));
    }

    const scenario = this.responder ? this.responder(record) : (this.queue.shift() ?? this.defaultScenario);
    await this.play(scenario, record, req, res, requestId);
  }

  private async handleBalance(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await this.readBody(req, res);
    if (raw === undefined) return;
    const record: RecordedSegmindRequest = {
      seq: this.balanceRecords.length + 1,
      at: Date.now(),
      method: req.method ?? '',
      path: req.url ?? '',
      headers: flattenHeaders(req.headers),
      body: raw.toString('utf8'),
      remotePort: req.socket.remotePort,
    };
    this.balanceRecords.push(record);
    const requestId = randomUUID();
    if (!this.authorised(req)) return this.sendError(res, 401, requestId);
    if (this.balanceFailure) return this.play(this.balanceFailure, record, req, res, requestId);
    const answer = { credits: this.balance.credits, 'free-credits': this.balance.freeCredits };
    return this.send(res, 200, { 'content-type': 'application/json', 'x-request-id': requestId }, JSON.stringify(answer));
  }

  private authorised(req: IncomingMessage): boolean {
    return this.opts.apiKey === undefined || req.headers['x-api-key'] === this.opts.apiKey;
  }

  private trimRecords(): void {
    const max = this.opts.maxRecords;
    if (max === undefined || this.requests.length <= max) return;
    // Trim in batches so a capped benchmark run does not pay an O(n) splice per request.
    if (this.requests.length > max + Math.max(16, max >> 2) || max === 0) this.requests.splice(0, this.requests.length - max);
  }

  private readBody(req: IncomingMessage, res: ServerResponse): Promise<Buffer | undefined> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      let size = 0;
      let done = false;
      const finish = (v: Buffer | undefined) => {
        if (done) return;
        done = true;
        resolve(v);
      };
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_BODY_BYTES) {
          // Answer, stop buffering, and let node close the connection after the response.
          this.send(res, 413, { 'content-type': 'application/json', connection: 'close' }, JSON.stringify({ error: 'Request body too large' }));
          req.removeAllListeners('data');
          req.resume();
          finish(undefined);
          return;
        }
        chunks.push(c);
      });
      req.once('end', () => finish(Buffer.concat(chunks, size)));
      req.once('error', () => finish(undefined));
      res.once('close', () => finish(undefined));
    });
  }

  /** Wait `ms` (and for the pause gate); false if the response was closed meanwhile. */
  private async hold(ms: number | undefined, res: ServerResponse): Promise<boolean> {
    if (res.destroyed) return false;
    const waits: Promise<unknown>[] = [];
    if (ms !== undefined && ms > 0) waits.push(new Promise((r) => setTimeout(r, ms).unref()));
    if (waits.length > 0 || this.gate) {
      let onClose!: () => void;
      const closed = new Promise<void>((r) => {
        onClose = r;
        res.once('close', onClose);
      });
      try {
        await Promise.race([Promise.all(waits), closed]);
        while (this.gate && !res.destroyed) await Promise.race([this.gate.promise, closed]);
      } finally {
        res.off('close', onClose);
      }
    }
    return !res.destroyed && !this.stopping;
  }

  private async play(s: SegmindScenario, record: RecordedSegmindRequest, req: IncomingMessage, res: ServerResponse, requestId: string): Promise<void> {
    const started = performance.now();
    switch (s.kind) {
      case 'image': {
        const p = imageParamsFor(record.body, s);
        const [bytes, ok] = await Promise.all([renderImage(p), this.hold(s.delayMs, res)]);
        if (!ok) return;
        const headers: Record<string, string> = { 'content-type': mimeFor(p.format), 'x-request-id': requestId };
        let out = bytes;
        if (s.json) {
          out = jsonBodyFor(bytes, s.json);
          headers['content-type'] = 'application/json';
        }
        if (s.contentType !== undefined) headers['content-type'] = s.contentType;
        const credits = s.remainingCredits === undefined ? DEFAULT_CREDITS : s.remainingCredits;
        if (credits !== null) headers['x-remaining-credits'] = credits;
        headers['x-generation-time'] = ((performance.now() - started) / 1000).toFixed(3);
        Object.assign(headers, s.extraHeaders);
        return this.send(res, 200, headers, out);
      }
      case 'error': {
        if (!(await this.hold(s.delayMs, res))) return;
        const extra: Record<string, string> = { ...s.extraHeaders };
        if (s.retryAfter !== undefined) extra['retry-after'] = s.retryAfter;
        if (s.rateLimitResetAt !== undefined) extra['x-rate-limit-reset-at-utc'] = s.rateLimitResetAt;
        if (s.remainingCredits != null) extra['x-remaining-credits'] = s.remainingCredits;
        return this.sendError(res, s.status, requestId, s.body, s.contentType, extra);
      }
      case 'truncated': {
        const p = imageParamsFor(record.body, s);
        const [bytes, ok] = await Promise.all([renderImage(p), this.hold(s.delayMs, res)]);
        if (!ok) return;
        res.writeHead(200, {
          'content-type': mimeFor(p.format),
          'content-length': String(bytes.length),
          'x-request-id': requestId,
          'x-remaining-credits': DEFAULT_CREDITS,
        });
        res.write(bytes.subarray(0, Math.max(1, Math.floor(bytes.length / 2))), () => req.socket.destroy());
        return;
      }
      case 'reset': {
        if (!(await this.hold(s.delayMs, res))) return;
        req.socket.destroy();
        return;
      }
      case 'hang':
        return; // the response stays open until the client aborts or stop() destroys the socket
      case 'notAnImage': {
        if (!(await this.hold(0, res))) return;
        const headers = { 'content-type': s.contentType ?? 'image/png', 'x-request-id': requestId, 'x-remaining-credits': DEFAULT_CREDITS };
        return this.send(res, 200, headers, s.body ?? NOT_AN_IMAGE_BODY);
      }
      case 'wrongFormat': {
        const requested = requestedFormat(record.body);
        const actual: ImageFormat = requested === 'png' ? 'jpg' : 'png';
        const p = imageParamsFor(record.body, { format: actual });
        const [bytes, ok] = await Promise.all([renderImage(p), this.hold(0, res)]);
        if (!ok) return;
        const headers = { 'content-type': mimeFor(requested), 'x-request-id': requestId, 'x-remaining-credits': DEFAULT_CREDITS };
        return this.send(res, 200, headers, bytes);
      }
      case 'invalidContentType': {
        if (!(await this.hold(0, res))) return;
        const shape = s.shape ?? 'message';
        if (shape === 'text') return this.sendError(res, 406, requestId, INVALID_CONTENT_TYPE, 'text/plain; charset=utf-8');
        return this.sendError(res, 406, requestId, JSON.stringify({ [shape]: INVALID_CONTENT_TYPE }), 'application/json');
      }
      default: {
        const never: never = s;
        throw new Error(`unknown scenario ${JSON.stringify(never)}`);
      }
    }
  }

  private sendError(
    res: ServerResponse,
    status: number,
    requestId: string,
    body?: string,
    contentType?: string,
    extra: Record<string, string> = {},
  ): void {
    const def = body === undefined ? defaultErrorBody(status) : undefined;
    const headers: Record<string, string> = {
      'content-type': contentType ?? def?.contentType ?? 'application/json',
      'x-request-id': requestId,
      ...extra,
    };
    this.send(res, status, headers, body ?? def?.body ?? '');
  }

  private send(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
    if (res.destroyed || res.headersSent || res.writableEnded) return;
    const buf = typeof body === 'string' ? Buffer.from(body) : body;
    headers['content-length'] = String(buf.length);
    res.writeHead(status, headers);
    res.end(buf);
  }
}
