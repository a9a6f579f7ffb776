import { Writable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/logger.js';
import type { FluxDevRequestBody } from '../../../src/services/segmind/flux-params.js';
import { SegmindClient, type SegmindClientOptions } from '../../../src/services/segmind/segmind-client.js';
import { SegmindError } from '../../../src/services/segmind/segmind-errors.js';
import { FakeSegmind } from '../../fakes/fake-segmind.js';

/** The client against a fake Segmind on loopback: the headers and bodies Segmind sends besides the usual ones. */

const KEY = 'SG_conformance_key_0123456789';
const body: FluxDevRequestBody = {
  prompt: 'a lighthouse at dusk',
  aspect_ratio: '1:1',
  guidance: 3.5,
  steps: 25,
  samples: 1,
  seed: 46588,
  output_format: 'webp',
  output_quality: 80,
  prompt_strength: 0.8,
};

interface LogLine {
  level: number;
  msg: string;
  [field: string]: unknown;
}
const ERROR = 50;
const WARN = 40;

let segmind: FakeSegmind;
let rawLog = '';
const logs: LogLine[] = [];
const logger = createLogger({
  level: 'debug',
  secrets: [KEY],
  format: 'json',
  destination: new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString();
      rawLog += text;
      for (const line of text.split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
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
    retryBaseMs: 1,
    maxResponseBytes: 5 * 1024 * 1024,
    connections: 2,
    random: () => 0.5,
    ...overrides,
  });
  clients.push(c);
  return c;
}

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
beforeEach(() => {
  segmind.reset();
  logs.length = 0;
  rawLog = '';
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.close()));
  await segmind.stop();
});

describe('a 429 with x-rate-limit-reset-at-utc instead of Retry-After', () => {
  it.each([
    ['an ISO date', (at: number) => new Date(at).toISOString()],
    ['epoch milliseconds', (at: number) => String(at)],
  ])('waits until the reset time given as %s, then retries', async (_shape, format) => {
    let resetAt: number | undefined;
    segmind.respondWith(() => {
      if (resetAt !== undefined) return { kind: 'image' };
      resetAt = Date.now() + 400;
      return { kind: 'error', status: 429, rateLimitResetAt: format(resetAt) };
    });
    const image = await client().generate(body);
    expect(image.attempts).toBe(2);
    // The backoff alone (1 ms base) would have come back within a few ms.
    expect(segmind.requests[1]!.at).toBeGreaterThanOrEqual(resetAt! - 15);
    expect(logs.find((l) => l.msg === 'segmind request failed, retrying')?.retryInMs).toBeGreaterThan(300);
  });

  it('gives up at once when the reset comes after the deadline, as for a Retry-After', async () => {
    segmind.setDefault({ kind: 'error', status: 429, rateLimitResetAt: new Date(Date.now() + 60_000).toISOString() });
    const started = Date.now();
    const error = await failure(client().generate(body, { deadline: Date.now() + 30_000 }));
    expect(error.kind).toBe('rate_limited');
    expect(segmind.requests).toHaveLength(1);
    expect(Date.now() - started).toBeLessThan(2_000);
  });

  it('follows Retry-After when both are sent', async () => {
    segmind.enqueue({ kind: 'error', status: 429, retryAfter: '0.2', rateLimitResetAt: new Date(Date.now() + 60_000).toISOString() });
    const image = await client().generate(body, { deadline: Date.now() + 30_000 });
    expect(image.attempts).toBe(2);
    const gap = segmind.requests[1]!.at - segmind.requests[0]!.at;
    expect(gap).toBeGreaterThanOrEqual(190);
    expect(gap).toBeLessThan(5_000);
  });
});

describe('a 406 "Invalid content type"', () => {
  it.each(['message', 'error', 'detail', 'text'] as const)(
    'is a malformed request (body shape: %s), not retried, logged once at error level as a bug with its request id',
    async (shape) => {
      segmind.setDefault({ kind: 'invalidContentType', shape });
      const error = await failure(client().generate(body));
      expect(error.kind).toBe('malformed_request');
      expect(error.status).toBe(406);
      expect(segmind.requests).toHaveLength(1);
      const errors = logs.filter((l) => l.level >= ERROR);
      expect(errors).toHaveLength(1);
      expect(errors[0]!.msg).toMatch(/bug .* request.*not an empty account/);
      expect(errors[0]).toMatchObject({ kind: 'malformed_request', status: 406 });
      expect(errors[0]!.reason).toMatch(/invalid content type/i);
      expect(errors[0]!.requestId).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
      expect(errors[0]!.requestId).toBe(error.detail.requestId);
    },
  );

  it('leaves "not enough credits" as out_of_credits, logged as a warning', async () => {
    segmind.setDefault({ kind: 'error', status: 406 });
    const error = await failure(client().generate(body));
    expect(error.kind).toBe('out_of_credits');
    expect(logs.filter((l) => l.level >= ERROR)).toEqual([]);
    expect(logs.filter((l) => l.level === WARN && l.msg === 'segmind request failed')).toHaveLength(1);
  });

  it('on the balance read too: a malformed request, logged at error level', async () => {
    segmind.failBalance({ kind: 'error', status: 406, body: '{"message":"Invalid content type"}' });
    const error = await failure(client().balance());
    expect(error.kind).toBe('malformed_request');
    expect(logs.filter((l) => l.level >= ERROR && l.kind === 'malformed_request')).toHaveLength(1);
  });
});

describe('x-request-id', () => {
  it('is on the error and on every log line of a failed call (retries too), and the key is never logged', async () => {
    segmind.enqueue(
      { kind: 'error', status: 503, extraHeaders: { 'x-request-id': 'req-first' } },
      { kind: 'error', status: 500, extraHeaders: { 'x-request-id': 'req-second' } },
    );
    segmind.setDefault({ kind: 'error', status: 400, extraHeaders: { 'x-request-id': 'req-last' } });
    const error = await failure(client().generate(body));
    expect(error.detail.requestId).toBe('req-last');
    expect(logs.filter((l) => l.msg === 'segmind request failed, retrying').map((l) => l.requestId)).toEqual(['req-first', 'req-second']);
    expect(logs.filter((l) => l.msg === 'segmind request failed').map((l) => l.requestId)).toEqual(['req-last']);
    expect(rawLog).not.toContain(KEY);
  });

  it('names the call whose 200 answer was not an image', async () => {
    segmind.setDefault({ kind: 'image', contentType: 'text/html', extraHeaders: { 'x-request-id': 'req-html' } });
    const error = await failure(client({ maxRetries: 0 }).generate(body));
    expect(error.kind).toBe('bad_response');
    expect(error.detail.requestId).toBe('req-html');
    expect(logs.find((l) => l.msg === 'segmind request failed')).toMatchObject({ requestId: 'req-html', kind: 'bad_response' });
  });

  it('names the call whose image was cut off mid-body', async () => {
    segmind.setDefault({ kind: 'truncated' });
    const error = await failure(client({ maxRetries: 0 }).generate(body));
    expect(error.kind).toBe('connection');
    expect(error.detail.requestId).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
  });

  it('is returned with a generated image and logged when Segmind responded', async () => {
    segmind.setDefault({ kind: 'image', extraHeaders: { 'x-request-id': 'req-ok' } });
    const image = await client().generate(body);
    expect(image.requestId).toBe('req-ok');
    expect(logs.find((l) => l.msg === 'segmind responded')).toMatchObject({ requestId: 'req-ok', status: 200 });
  });
});
