import { UserFacingError } from '../../errors.js';

export type SegmindErrorKind =
  | 'invalid_parameters'
  | 'bad_api_key'
  | 'forbidden'
  | 'model_not_found'
  | 'out_of_credits'
  | 'rate_limited'
  | 'server_error'
  | 'timeout'
  | 'connection'
  | 'bad_response'
  | 'cancelled';

/**
 * What a member reads, about their own request: what happened and what to do, in plain words. No service names, keys
 * or accounts: the log line carries those (kind, status, Segmind's reason). Whether anything was charged is said by
 * the text around these (a whole request or one image of it).
 */
const USER_MESSAGES: Record<SegmindErrorKind, string> = {
  invalid_parameters: 'The image service did not accept these settings. Change them and try again.',
  bad_api_key: "Image generation is paused until the bot's owner fixes its account.",
  forbidden: "The image service refused this request. Try again later; if it keeps happening, tell the bot's owner.",
  model_not_found: 'The image model is not available right now. Try again later.',
  out_of_credits: "Image generation is paused until the bot's owner tops up its account.",
  rate_limited: 'The image service is busy — try again in a minute.',
  server_error: 'The image service had a problem — try again in a moment.',
  timeout: 'The image service took too long to answer — try again in a moment.',
  connection: 'The image service could not be reached — try again in a moment.',
  bad_response: 'The image service sent back something that is not an image — try again in a moment.',
  cancelled: 'The request was stopped before the image was ready.',
};

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
}

function userMessage(kind: SegmindErrorKind, reason: string | undefined): string {
  const base = USER_MESSAGES[kind];
  // Only a parameter complaint is worth quoting to the member: it tells them what to change.
  return kind === 'invalid_parameters' && reason ? `${base} It said: “${reason}”` : base;
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

/** Turns an error response into a typed error. The body may be JSON, HTML or garbage: it never throws. */
export function classifySegmindResponse(
  status: number,
  contentType: string | undefined,
  body: string,
  retryAfter: string | undefined,
  now: number,
): SegmindError {
  return new SegmindError(kindForStatus(status), {
    status,
    reason: extractReason(contentType, body),
    retryAfterMs: parseRetryAfter(retryAfter, now),
  });
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
