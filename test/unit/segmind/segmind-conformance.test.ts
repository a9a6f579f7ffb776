import { describe, expect, it } from 'vitest';
import { classifySegmindResponse, parseRateLimitResetAt, SegmindError } from '../../../src/services/segmind/segmind-errors.js';

const NOW = Date.parse('2026-11-25T12:00:00.000Z');

describe('x-rate-limit-reset-at-utc on a 429', () => {
  it.each([
    ['ISO 8601 with Z', '2026-11-25T12:00:10Z', 10_000],
    ['ISO 8601 with milliseconds', '2026-11-25T12:00:10.250Z', 10_250],
    ['ISO 8601 with microseconds (Python isoformat)', '2026-11-25T12:00:10.250123+00:00', 10_250],
    ['ISO 8601 without a zone, read as UTC', '2026-11-25T12:00:10', 10_000],
    ['ISO 8601 with a space instead of T (Python str)', '2026-11-25 12:00:10.5', 10_500],
    ['ISO 8601 with an offset', '2026-11-25T13:00:10+01:00', 10_000],
    ['ISO 8601 with a short offset', '2026-11-25T13:00:10+0100', 10_000],
    ['epoch seconds', String(NOW / 1000 + 10), 10_000],
    ['epoch seconds with a fraction', String(NOW / 1000 + 10.5), 10_500],
    ['epoch milliseconds', String(NOW + 10_000), 10_000],
    ['an HTTP date', 'Wed, 25 Nov 2026 12:00:10 GMT', 10_000],
  ])('reads %s', (_shape, value, ms) => {
    expect(parseRateLimitResetAt(value, NOW)).toBe(ms);
  });

  it.each([
    ['nothing', undefined],
    ['blank', '  '],
    ['words', 'soon'],
    ['a date without a zone that is not ISO (it would be read as local time)', 'Nov 25 2026 12:00:10'],
    ['a time long past (misread or skewed clocks)', '2026-11-25T11:58:00Z'],
  ])('gives no delay for %s, so the backoff applies', (_what, value) => {
    expect(parseRateLimitResetAt(value, NOW)).toBeUndefined();
  });

  it('retries at once when the reset has just passed', () => {
    expect(parseRateLimitResetAt('2026-11-25T11:59:59Z', NOW)).toBe(0);
  });

  it('sets the retry delay of a 429 that has no Retry-After', () => {
    const error = classifySegmindResponse(429, 'application/json', '{"error":"Rate limit exceeded"}', { rateLimitResetAt: '2026-11-25T12:00:07Z' }, NOW);
    expect(error.kind).toBe('rate_limited');
    expect(error.detail.retryAfterMs).toBe(7_000);
  });

  it('lets Retry-After win when both are present', () => {
    const error = classifySegmindResponse(429, undefined, '', { retryAfter: '2', rateLimitResetAt: '2026-11-25T12:00:30Z' }, NOW);
    expect(error.detail.retryAfterMs).toBe(2_000);
  });

  it('falls back to the reset time when Retry-After cannot be read', () => {
    const error = classifySegmindResponse(429, undefined, '', { retryAfter: 'later', rateLimitResetAt: '2026-11-25T12:00:30Z' }, NOW);
    expect(error.detail.retryAfterMs).toBe(30_000);
  });

  it('ignores the reset time on other statuses: the rate window says nothing about when a server error passes', () => {
    const error = classifySegmindResponse(503, undefined, '', { rateLimitResetAt: '2026-11-25T12:00:30Z' }, NOW);
    expect(error.kind).toBe('server_error');
    expect(error.detail.retryAfterMs).toBeUndefined();
  });
});

describe('406 "Invalid content type"', () => {
  it.each([
    ['JSON message', 'application/json', '{"message":"Invalid content type"}'],
    ['JSON error', 'application/json', '{"error":"Invalid content type"}'],
    ['JSON detail', 'application/json; charset=utf-8', '{"detail":"invalid content-type, expected application/json"}'],
    ['plain text', 'text/plain', 'Invalid Content Type'],
    ['JSON sent as text', 'text/plain', '{"message":"Invalid content type"}'],
    ['no content type', undefined, 'INVALID CONTENT TYPE'],
  ])('is a request bug, not an empty account: %s', (_shape, contentType, body) => {
    const error = classifySegmindResponse(406, contentType, body, { requestId: 'req-406' }, NOW);
    expect(error.kind).toBe('malformed_request');
    expect(error.retryable).toBe(false);
    expect(error.status).toBe(406);
    expect(error.detail.requestId).toBe('req-406');
    expect(error.message).toBe("Something went wrong on the bot's side. Try again later; if it keeps happening, tell the bot's owner.");
  });

  it.each([
    ['Not enough credits', 'application/json', '{"error":"Not enough credits"}'],
    ['an empty body', 'application/json', ''],
    ['an HTML page', 'text/html', '<html><body><h1>406 Not Acceptable</h1></body></html>'],
    ['another content complaint', 'application/json', '{"error":"Invalid content"}'],
  ])('any other 406 still means out of credits: %s', (_shape, contentType, body) => {
    expect(classifySegmindResponse(406, contentType, body, undefined, NOW).kind).toBe('out_of_credits');
  });

  it('only on a 406: the same words on a 400 are a parameter complaint', () => {
    expect(classifySegmindResponse(400, 'application/json', '{"error":"Invalid content type"}', undefined, NOW).kind).toBe('invalid_parameters');
  });
});

describe('x-request-id', () => {
  it('is carried by the error of a failed call, and withRequestId keeps the first one', () => {
    const error = classifySegmindResponse(500, 'application/json', '{"error":"boom"}', { requestId: 'req-1' }, NOW);
    expect(error.detail.requestId).toBe('req-1');
    expect(error.withRequestId('req-2')).toBe(error);
    const named = new SegmindError('connection', { reason: 'ECONNRESET' }).withRequestId('req-3');
    expect(named).toBeInstanceOf(SegmindError);
    expect(named).toMatchObject({ kind: 'connection', detail: { reason: 'ECONNRESET', requestId: 'req-3' } });
    expect(new SegmindError('timeout').withRequestId(undefined).detail.requestId).toBeUndefined();
  });
});
