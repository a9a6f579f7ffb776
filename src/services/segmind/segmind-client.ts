import { Pool, errors as undiciErrors, type Dispatcher } from 'undici';
import { z } from 'zod';
import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import type { FluxDevRequestBody, OutputFormat } from './flux-params.js';
import { detectImageFormat } from './image-format.js';
import { SegmindError, classifySegmindResponse, type SegmindErrorHeaders, type SegmindErrorKind } from './segmind-errors.js';

export interface SegmindClientOptions {
  /** e.g. https://api.segmind.com — the client POSTs to `${baseUrl}/v1/flux-dev`. */
  baseUrl: string;
  apiKey: string;
  clock: Clock;
  logger: Logger;
  /** Per-attempt limit: flux-dev takes ~20 s warm, minutes on a cold start. */
  timeoutMs: number;
  maxRetries: number;
  retryBaseMs: number;
  retryMaxMs?: number;
  maxResponseBytes: number;
  connections: number;
  random?: () => number;
  /** Tests and the benchmark may hand in their own dispatcher; by default a keep-alive pool to Segmind. */
  dispatcher?: Dispatcher;
}

export interface GenerateOptions {
  signal?: AbortSignal;
  /** Epoch ms after which no answer is useful (the interaction token would be dead): no attempt or wait past it. */
  deadline?: number;
  log?: Logger;
}

export interface GeneratedImage {
  bytes: Buffer;
  format: OutputFormat;
  seed: number;
  status: number;
  attempts: number;
  durationMs: number;
  /** Segmind account balance in dollars, from `x-remaining-credits`. */
  remainingCredits?: number;
  requestId?: string;
}

const jsonImageSchema = z.union([
  z.object({ image: z.string().min(1) }),
  z.object({ images: z.array(z.string().min(1)).min(1) }),
]);

/** `GET /v1/get-user-credits`: dollars; Segmind has been seen to send numbers as strings, so both are accepted. */
const balanceSchema = z.object({
  credits: z.coerce.number(),
  'free-credits': z.coerce.number().optional(),
});

export interface SegmindBalance {
  /** Paid balance, in dollars. */
  credits: number;
  freeCredits: number;
  /** What can still be spent: paid plus free credits. */
  total: number;
}

const MAX_ERROR_BODY_BYTES = 64 * 1024;
/** A balance answer is a few bytes; anything longer is not one. */
const MAX_BALANCE_BODY_BYTES = 16 * 1024;
/** The balance call is one small GET: it must not hold up start-up or a probe for the image timeout's minutes. */
const BALANCE_TIMEOUT_MS = 10_000;
/** Below this much time left before the deadline, another attempt cannot finish: give up instead. */
const MIN_USEFUL_ATTEMPT_MS = 5_000;
/** The one line a 406 "Invalid content type" gets: generation carries on, since the account is not at fault. */
const MALFORMED_REQUEST_LOG =
  "Segmind rejected the bot's request itself (HTTP 406 Invalid content type): a bug in how the bot builds the request, not an empty account; generation is not paused";

/** The only place the bot talks to Segmind. */
export class SegmindClient {
  private readonly dispatcher: Dispatcher;
  private readonly ownsDispatcher: boolean;
  private readonly path: string;
  private readonly balancePath: string;
  private readonly random: () => number;
  /** Last balance Segmind reported, for logs and (later) metrics. */
  lastRemainingCredits: number | undefined;

  constructor(private readonly options: SegmindClientOptions) {
    const url = new URL(`${options.baseUrl.replace(/\/+$/, '')}/v1/flux-dev`);
    this.path = url.pathname;
    this.balancePath = new URL(`${options.baseUrl.replace(/\/+$/, '')}/v1/get-user-credits`).pathname;
    this.random = options.random ?? Math.random;
    this.ownsDispatcher = options.dispatcher === undefined;
    this.dispatcher =
      options.dispatcher ??
      new Pool(url.origin, {
        connections: options.connections,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 120_000,
        // the per-attempt AbortSignal enforces the timeout; undici's own timers would fire first otherwise
        headersTimeout: 0,
        bodyTimeout: 0,
      });
  }

  async generate(body: FluxDevRequestBody, opts: GenerateOptions = {}): Promise<GeneratedImage> {
    const { clock, maxRetries } = this.options;
    const log = (opts.log ?? this.options.logger).child({ seed: body.seed });
    const started = clock.now();
    for (let attempt = 1; ; attempt++) {
      try {
        const image = await this.attempt(body, attempt, opts);
        return { ...image, attempts: attempt, durationMs: clock.now() - started };
      } catch (caught) {
        const error = this.toSegmindError(caught, opts.signal);
        const waitMs = error.detail.retryAfterMs ?? this.backoffMs(attempt);
        const tooLate = opts.deadline !== undefined && clock.now() + waitMs + MIN_USEFUL_ATTEMPT_MS > opts.deadline;
        const { reason, requestId } = error.detail;
        if (!error.retryable || attempt > maxRetries || tooLate) {
          const fields = { attempt, kind: error.kind, status: error.status, reason, requestId };
          if (error.kind === 'malformed_request') log.error(fields, MALFORMED_REQUEST_LOG);
          else log.warn(fields, 'segmind request failed');
          throw error;
        }
        log.info(
          { attempt, kind: error.kind, status: error.status, retryInMs: waitMs, requestId },
          'segmind request failed, retrying',
        );
        try {
          await clock.sleep(waitMs, opts.signal);
        } catch {
          throw new SegmindError('cancelled');
        }
      }
    }
  }

  /**
   * The account balance (`GET /v1/get-user-credits`), one attempt, never retried: callers ask again on their own
   * schedule. Errors are the same `SegmindError`s as `generate()` (401 → `bad_api_key`, a network failure →
   * `connection`), so callers can tell a rejected key from an unreachable Segmind.
   */
  async balance(opts: { log?: Logger } = {}): Promise<SegmindBalance> {
    const { clock, apiKey } = this.options;
    const log = opts.log ?? this.options.logger;
    const signal = AbortSignal.timeout(Math.min(BALANCE_TIMEOUT_MS, this.options.timeoutMs));
    try {
      const res = await this.dispatcher.request({
        origin: new URL(this.options.baseUrl).origin,
        path: this.balancePath,
        method: 'GET',
        headers: { 'x-api-key': apiKey, accept: 'application/json', 'user-agent': 'flux-discord-bot' },
        signal,
      });
      const contentType = header(res.headers, 'content-type')?.toLowerCase();
      const text = (await readCapped(res.body, MAX_BALANCE_BODY_BYTES, true)).toString('utf8');
      if (res.statusCode < 200 || res.statusCode >= 300) {
        const error = classifySegmindResponse(res.statusCode, contentType, text, errorHeaders(res.headers), clock.now());
        // Callers log a failed balance read as a passing trouble; this one is a bug to fix, so it is said here.
        if (error.kind === 'malformed_request')
          log.error({ kind: error.kind, status: error.status, reason: error.detail.reason, requestId: error.detail.requestId }, MALFORMED_REQUEST_LOG);
        throw error;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        throw new SegmindError('bad_response', { status: res.statusCode, reason: 'balance answer is not JSON' });
      }
      const result = balanceSchema.safeParse(parsed);
      if (!result.success)
        throw new SegmindError('bad_response', { status: res.statusCode, reason: 'balance answer without a credits number' });
      const credits = result.data.credits;
      const freeCredits = result.data['free-credits'] ?? 0;
      const balance = { credits, freeCredits, total: credits + freeCredits };
      this.lastRemainingCredits = balance.total;
      log.debug(balance, 'segmind balance read');
      return balance;
    } catch (caught) {
      throw this.toSegmindError(caught, undefined);
    }
  }

  async close(): Promise<void> {
    if (this.ownsDispatcher) await this.dispatcher.close();
  }

  /** Exponential backoff with equal jitter: half fixed, half random, so retries from many jobs spread out. */
  private backoffMs(attempt: number): number {
    const cap = this.options.retryMaxMs ?? 30_000;
    const exp = Math.min(cap, this.options.retryBaseMs * 2 ** (attempt - 1));
    return Math.round(exp / 2 + (this.random() * exp) / 2);
  }

  private async attempt(
    body: FluxDevRequestBody,
    attempt: number,
    opts: GenerateOptions,
  ): Promise<Omit<GeneratedImage, 'attempts' | 'durationMs'>> {
    const { clock, timeoutMs } = this.options;
    const remaining = opts.deadline === undefined ? timeoutMs : Math.min(timeoutMs, opts.deadline - clock.now());
    if (remaining <= 0) throw new SegmindError('timeout', { reason: 'deadline reached before the request' });
    const timeout = AbortSignal.timeout(remaining);
    const outer = opts.signal;
    if (!outer) return this.request(body, attempt, opts, timeout);
    // Not `AbortSignal.any([outer, timeout])`: Node keeps every signal derived that way on the source for as long as
    // the source lives, and the outer signal is the pipeline's, alive for the whole process. A per-attempt controller
    // and one listener removed afterwards leave nothing behind on it.
    const cancel = new AbortController();
    const forward = () => cancel.abort(outer.reason);
    if (outer.aborted) forward();
    else outer.addEventListener('abort', forward, { once: true });
    try {
      return await this.request(body, attempt, opts, AbortSignal.any([cancel.signal, timeout]));
    } finally {
      outer.removeEventListener('abort', forward);
    }
  }

  /** One HTTP request and its body, cancelled by `signal`. */
  private async request(
    body: FluxDevRequestBody,
    attempt: number,
    opts: GenerateOptions,
    signal: AbortSignal,
  ): Promise<Omit<GeneratedImage, 'attempts' | 'durationMs'>> {
    const { apiKey } = this.options;
    const res = await this.dispatcher.request({
      origin: new URL(this.options.baseUrl).origin,
      path: this.path,
      method: 'POST',
      headers: {
        'x-api-key': apiKey,
        'content-type': 'application/json',
        accept: 'image/webp, image/jpeg, image/png, application/json',
        'user-agent': 'flux-discord-bot',
      },
      body: JSON.stringify(body),
      signal,
    });

    const contentType = header(res.headers, 'content-type')?.toLowerCase();
    const remainingCredits = parseCredits(header(res.headers, 'x-remaining-credits'));
    if (remainingCredits !== undefined) this.lastRemainingCredits = remainingCredits;
    const requestId = header(res.headers, 'x-request-id');
    const log = (opts.log ?? this.options.logger).child({ seed: body.seed, attempt });
    log.debug({ status: res.statusCode, contentType, remainingCredits, requestId }, 'segmind responded');
    try {
      return await this.readResponse(res, contentType, remainingCredits, requestId, body);
    } catch (caught) {
      // Every failure after Segmind answered (an error status, a body that is no image, a body cut short) names the
      // call, so the operator can quote it to Segmind's support.
      throw this.toSegmindError(caught, opts.signal).withRequestId(requestId);
    }
  }

  /** What Segmind answered: the image, or the SegmindError the answer amounts to. */
  private async readResponse(
    res: Dispatcher.ResponseData,
    contentType: string | undefined,
    remainingCredits: number | undefined,
    requestId: string | undefined,
    body: FluxDevRequestBody,
  ): Promise<Omit<GeneratedImage, 'attempts' | 'durationMs'>> {
    const { clock, maxResponseBytes } = this.options;
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const text = (await readCapped(res.body, MAX_ERROR_BODY_BYTES, true)).toString('utf8');
      throw classifySegmindResponse(res.statusCode, contentType, text, errorHeaders(res.headers), clock.now());
    }

    const lengthHeader = header(res.headers, 'content-length');
    const declared = lengthHeader === undefined || lengthHeader === '' ? undefined : Number(lengthHeader);
    if (declared !== undefined && Number.isFinite(declared) && declared > maxResponseBytes) {
      res.body.destroy();
      throw new SegmindError('bad_response', { status: res.statusCode, reason: `response of ${declared} bytes is over the cap` });
    }
    const raw = await readCapped(res.body, maxResponseBytes, false, declared);
    const bytes = this.extractImage(raw, contentType, res.statusCode);
    const format = detectImageFormat(bytes);
    if (format === undefined)
      throw new SegmindError('bad_response', { status: res.statusCode, reason: 'the body is not a PNG, JPEG or WebP image' });
    if (format !== body.output_format)
      throw new SegmindError('bad_response', {
        status: res.statusCode,
        reason: `asked for ${body.output_format}, got ${format}`,
      });
    return { bytes, format, seed: body.seed, status: res.statusCode, remainingCredits, requestId };
  }

  private extractImage(raw: Buffer, contentType: string | undefined, status: number): Buffer {
    if (contentType?.startsWith('image/')) return raw;
    if (contentType?.includes('json')) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(raw.toString('utf8'));
      } catch {
        throw new SegmindError('bad_response', { status, reason: 'malformed JSON body' });
      }
      const result = jsonImageSchema.safeParse(parsed);
      if (!result.success) throw new SegmindError('bad_response', { status, reason: 'JSON body without an image' });
      const encoded = 'image' in result.data ? result.data.image : result.data.images[0]!;
      return Buffer.from(encoded.replace(/^data:[^,]*,/, ''), 'base64');
    }
    throw new SegmindError('bad_response', { status, reason: `unexpected content type ${contentType ?? '(none)'}` });
  }

  private toSegmindError(caught: unknown, signal: AbortSignal | undefined): SegmindError {
    if (caught instanceof SegmindError) return caught;
    if (signal?.aborted) return new SegmindError('cancelled', { cause: caught });
    const kind = networkErrorKind(caught);
    return new SegmindError(kind, { reason: describeNetworkError(caught), cause: caught });
  }
}

function networkErrorKind(caught: unknown): SegmindErrorKind {
  if (caught instanceof undiciErrors.HeadersTimeoutError || caught instanceof undiciErrors.BodyTimeoutError)
    return 'timeout';
  if (caught instanceof Error && (caught.name === 'TimeoutError' || caught.name === 'AbortError')) return 'timeout';
  if (caught instanceof undiciErrors.ResponseExceededMaxSizeError) return 'bad_response';
  return 'connection';
}

function describeNetworkError(caught: unknown): string {
  if (caught instanceof Error) {
    const code = (caught as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${caught.message}` : caught.message;
  }
  return String(caught);
}

/**
 * Reads a body up to `limit` bytes. Over the limit it either truncates (error snippets) or fails (images).
 *
 * With a `content-length` (Segmind sends one), the body is read straight into one buffer of that size: no list of
 * chunks to concatenate, so an image is in memory once rather than twice while it is read. Should a body turn out
 * longer than declared, the rest is read as chunks (and concatenated); one shorter is returned as far as it went.
 */
async function readCapped(
  body: Dispatcher.ResponseData['body'],
  limit: number,
  truncate: boolean,
  declaredLength?: number,
): Promise<Buffer> {
  let buffer =
    declaredLength !== undefined && Number.isSafeInteger(declaredLength) && declaredLength > 0
      ? Buffer.allocUnsafe(Math.min(declaredLength, limit))
      : undefined;
  let chunks: Buffer[] | undefined = buffer ? undefined : [];
  let total = 0;
  for await (const chunk of body) {
    let buf = chunk as Buffer;
    const over = total + buf.length > limit;
    if (over) {
      body.destroy();
      if (!truncate) throw new SegmindError('bad_response', { reason: `response is over the ${limit}-byte cap` });
      buf = buf.subarray(0, limit - total);
    }
    if (buffer && total + buf.length > buffer.length) {
      // Longer than declared: carry on as a list of chunks.
      chunks = [buffer.subarray(0, total)];
      buffer = undefined;
    }
    if (buffer) buf.copy(buffer, total);
    else chunks!.push(buf);
    total += buf.length;
    if (over) break;
  }
  if (buffer) return total === buffer.length ? buffer : buffer.subarray(0, total);
  return Buffer.concat(chunks!, total);
}

function errorHeaders(headers: Dispatcher.ResponseData['headers']): SegmindErrorHeaders {
  return {
    retryAfter: header(headers, 'retry-after'),
    rateLimitResetAt: header(headers, 'x-rate-limit-reset-at-utc'),
    requestId: header(headers, 'x-request-id'),
  };
}

function header(headers: Dispatcher.ResponseData['headers'], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

function parseCredits(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}
