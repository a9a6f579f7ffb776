import { UserFacingError } from '../../errors.js';
import { translator } from '../../i18n/i18n.js';

export type SegmindErrorKind =
  | 'invalid_parameters'
  | 'bad_api_key'
  | 'forbidden'
  | 'model_not_found'
  | 'out_of_credits'
  /** Segmind refused the request itself (406 "Invalid content type"): a bug in the bot, not the account. */
  | 'malformed_request'
  | 'rate_limited'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'bad_response'
  | 'cancelled';

/**
 * What a member reads, about their own request (the `imagine:segmind.*` texts of the catalog; the error's `message`
 * is the English one, for logs): what happened and what to do, in plain words. No service names, keys or accounts: the
 * log line carries those (kind, status, Segmind's reason). Whether anything was charged is said by the text around
 * these (a whole request or one image of it).
 */
const english = translator('en-US');

const RETRYABLE: ReadonlySet<SegmindErrorKind> = new Set(['rate_limited', 'server_error', 'timeout', 'connection']);

export class SegmindError extends UserFacingError {
  readonly retryable: boolean;

  constructor(
    readonly kind: SegmindErrorKind,
    readonly detail: {
      status?: number;
      /** Segmind's own explanation, from a JSON `error` field or a cleaned snippet of a text/HTML body. */
      reason?: string;
      retryAfterMs?: number;
      /** Segmind's `x-request-id`, for asking Segmind about one call. */
      requestId?: string;
      cause?: unknown;
    } = {},
  ) {
    super(userMessage(kind, detail.reason), `segmind_${kind}`, { cause: detail.cause });
    this.name = 'SegmindError';
    this.retryable = RETRYABLE.has(kind);
  }

  get status(): number | undefined {
    return this.detail.status;
  }

  /** The same error naming the Segmind request it came from (found only once the response's headers were read). */
  withRequestId(requestId: string | undefined): SegmindError {
    if (requestId === undefined || this.detail.requestId !== undefined) return this;
    return new SegmindError(this.kind, { ...this.detail, requestId });
  }
}

function userMessage(kind: SegmindErrorKind, reason: string | undefined): string {
  // Only a parameter complaint is worth quoting to the member: it tells them what to change.
  return kind === 'invalid_parameters' && reason ? english('imagine:segmind.invalid_parametersSaid', { reason }) : english(`imagine:segmind.${kind}`);
}

export function kindForStatus(status: number): SegmindErrorKind {
  if (status === 400 || status === 422) return 'invalid_parameters';
  if (status === 401) return 'bad_api_key';
  if (status === 403) return 'forbidden';
  if (status === 404) return 'model_not_found';
  if (status === 406) return 'out_of_credits';
  if (status === 429) return 'rate_limited';
  if (status === 504 || status === 408) return 'timeout';
  if (status >= 500) return 'server_error';
  // 405 and any other unexpected 4xx: our request is wrong in a way the member cannot fix.
  return 'bad_response';
}

/** The headers of an error response that say when to retry and which call it was. */
export interface SegmindErrorHeaders {
  retryAfter?: string | undefined;
  /** `x-rate-limit-reset-at-utc`, which Segmind sends on a 429 instead of `Retry-After`. */
  rateLimitResetAt?: string | undefined;
  requestId?: string | undefined;
}

/** Turns an error response into a typed error. The body may be JSON, HTML or garbage: it never throws. */
export function classifySegmindResponse(
  status: number,
  contentType: string | undefined,
  body: string,
  headers: SegmindErrorHeaders | undefined,
  now: number,
): SegmindError {
  const { retryAfter, rateLimitResetAt, requestId } = headers ?? {};
  const reason = extractReason(contentType, body);
  // Segmind answers 406 for an empty account and for a request without a JSON content type alike: only the body tells
  // them apart, and pausing the whole bot for our own bug would stop every member until a restart fixed nothing.
  const kind = status === 406 && reason !== undefined && INVALID_CONTENT_TYPE.test(reason) ? 'malformed_request' : kindForStatus(status);
  const retryAfterMs = retryDelayMs(status, retryAfter, rateLimitResetAt, now);
  return new SegmindError(kind, {
    status,
    ...(reason !== undefined ? { reason } : {}),
    ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
    ...(requestId !== undefined && requestId !== '' ? { requestId } : {}),
  });
}

const INVALID_CONTENT_TYPE = /invalid content[\s_-]?type/i;

/**
 * `Retry-After` wins; on a 429 without it, the rate-limit window's reset time. The reset header is not read on other
 * statuses: it describes the rate window, not when a server error will have passed.
 */
function retryDelayMs(status: number, retryAfter: string | undefined, resetAt: string | undefined, now: number): number | undefined {
  const fromRetryAfter = parseRetryAfter(retryAfter, now);
  if (fromRetryAfter !== undefined || status !== 429) return fromRetryAfter;
  return parseRateLimitResetAt(resetAt, now);
}

export function extractReason(contentType: string | undefined, body: string): string | undefined {
  if (contentType?.includes('json')) {
    try {
      const parsed: unknown = JSON.parse(body);
      if (parsed && typeof parsed === 'object') {
        const record = parsed as Record<string, unknown>;
        const parts = [record.error, record.error_description, record.message, record.detail]
          .filter((v): v is string => typeof v === 'string' && v.trim() !== '');
        if (parts.length > 0) return clean([...new Set(parts)].join(' — '));
      }
    } catch {
      // fall through to the text snippet
    }
  }
  const text = clean(body.replace(/<script[\s\S]*?<\/script>|<style[\s\S]*?<\/style>/gi, ' ').replace(/<[^>]*>/g, ' '));
  return text === '' ? undefined : text;
}

function clean(text: string): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return flat.length > 200 ? `${flat.slice(0, 199)}…` : flat;
}

/** `Retry-After` is either delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined || value.trim() === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(value);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/** A reset time further back than this is not a reset that just passed: it was misread, or the clocks disagree. */
const STALE_RESET_MS = 60_000;
/** Epoch numbers from here up are milliseconds (1e11 s is the year 5138; 1e11 ms is 1973). */
const EPOCH_MS_FROM = 1e11;
const ISO_DATE_TIME = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)(Z|[+-]\d{2}(?::?\d{2})?)?$/i;
const ENDS_WITH_ZONE = /(?:GMT|UTC|Z|[+-]\d{2}:?\d{2})$/i;

/**
 * `x-rate-limit-reset-at-utc`: when the rate window resets, as milliseconds from `now`. Its format is undocumented,
 * so every plausible shape of "a UTC time" is read: ISO 8601 (`T` or a space between date and time, any fraction,
 * `Z`, an offset, or no zone at all, which the header's name says is UTC), epoch seconds or milliseconds, and an HTTP
 * date. Anything else, or a time long past, is `undefined`: the caller's backoff applies instead.
 */
export function parseRateLimitResetAt(value: string | undefined, now: number): number | undefined {
  const text = value?.trim();
  if (text === undefined || text === '') return undefined;
  const at = parseUtcInstant(text);
  if (at === undefined || !Number.isFinite(at) || at < now - STALE_RESET_MS) return undefined;
  return Math.max(0, Math.ceil(at - now));
}

function parseUtcInstant(text: string): number | undefined {
  if (/^\d+(?:\.\d+)?$/.test(text)) {
    const n = Number(text);
    return n >= EPOCH_MS_FROM ? n : n * 1000;
  }
  const iso = ISO_DATE_TIME.exec(text);
  if (iso) {
    const [, date, time, zone] = iso;
    const at = Date.parse(`${date}T${time!.replace(',', '.')}${isoZone(zone)}`);
    return Number.isNaN(at) ? undefined : at;
  }
  // Without a zone, Date.parse reads a free-form date as local time: not what a UTC header means.
  if (!ENDS_WITH_ZONE.test(text)) return undefined;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : at;
}

/** `+05` and `+0530` as Date.parse reads them (`+05:00`, `+05:30`); no zone is UTC. */
function isoZone(zone: string | undefined): string {
  if (zone === undefined || /^z$/i.test(zone)) return 'Z';
  const digits = zone.slice(1).replace(':', '');
  return `${zone[0]}${digits.slice(0, 2)}:${digits.slice(2).padEnd(2, '0')}`;
}
