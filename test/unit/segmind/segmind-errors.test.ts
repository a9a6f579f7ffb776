import { describe, expect, it } from 'vitest';
import { classifySegmindResponse, extractReason, kindForStatus, parseRetryAfter } from '../../../src/services/segmind/segmind-errors.js';

describe('Segmind error classification', () => {
  it.each([
    [400, 'invalid_parameters', false],
    [422, 'invalid_parameters', false],
    [401, 'bad_api_key', false],
    [403, 'forbidden', false],
    [404, 'model_not_found', false],
    [405, 'bad_response', false],
    [406, 'out_of_credits', false],
    [429, 'rate_limited', true],
    [500, 'server_error', true],
    [502, 'server_error', true],
    [503, 'server_error', true],
    [504, 'timeout', true],
  ] as const)('maps HTTP %i to %s (retryable: %s)', (status, kind, retryable) => {
    expect(kindForStatus(status)).toBe(kind);
    const error = classifySegmindResponse(status, 'application/json', '{"error":"x"}', undefined, 0);
    expect(error.kind).toBe(kind);
    expect(error.retryable).toBe(retryable);
    expect(error.status).toBe(status);
    expect(error.message.length).toBeGreaterThan(10);
  });

  it('quotes Segmind’s reason to the member only for invalid parameters', () => {
    const invalid = classifySegmindResponse(400, 'application/json', '{"error":"steps must be <= 50"}', undefined, 0);
    expect(invalid.message).toContain('steps must be <= 50');
    const auth = classifySegmindResponse(401, 'application/json', '{"error":"Invalid API key SG_abc"}', undefined, 0);
    expect(auth.message).not.toContain('SG_abc');
    expect(auth.detail.reason).toBe('Invalid API key SG_abc');
  });

  it.each([400, 401, 403, 404, 405, 406, 429, 500, 504])('tells the member about HTTP %i in plain words, naming no service, key or storage', (status) => {
    const error = classifySegmindResponse(status, 'application/json', '{"error":"bad key SG_abc for segmind"}', undefined, 0);
    const text = status === 400 ? error.message.replace(/ It said: “.*”$/, '') : error.message;
    expect(text).not.toMatch(/segmind|api key|storage|operator|\(s\)/i);
    expect(text).toMatch(/[.!]$/);
  });

  it('says what 429 means and what to do', () => {
    expect(classifySegmindResponse(429, undefined, '', undefined, 0).message).toBe('The image service is busy — try again in a minute.');
  });

  it('reads the auth variant with error_description', () => {
    expect(extractReason('application/json', '{"error":"unauthorized","error_description":"key revoked"}')).toBe(
      'unauthorized — key revoked',
    );
  });

  it('turns an HTML body into a short text snippet', () => {
    const html = '<html><head><style>b{}</style></head><body><h1>405 Not Allowed</h1><hr><center>nginx</center></body></html>';
    expect(extractReason('text/html', html)).toBe('405 Not Allowed nginx');
  });

  it('never throws on a JSON content type with a broken body, and truncates long text', () => {
    expect(extractReason('application/json', '{"error": ')).toBe('{"error":');
    expect(extractReason('text/plain', 'x'.repeat(500))).toHaveLength(200);
    expect(extractReason('application/json', '')).toBeUndefined();
  });

  it('parses Retry-After as seconds or as an HTTP date', () => {
    expect(parseRetryAfter('3', 0)).toBe(3000);
    expect(parseRetryAfter('0.5', 0)).toBe(500);
    const now = Date.parse('2026-11-25T12:00:00Z');
    expect(parseRetryAfter('Wed, 25 Nov 2026 12:00:10 GMT', now)).toBe(10_000);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(undefined, now)).toBeUndefined();
  });
});
