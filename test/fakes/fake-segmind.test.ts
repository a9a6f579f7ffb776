import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { request } from 'undici';
import { FakeSegmind, MODEL_PATH, nginxErrorPage } from './fake-segmind.js';
import type { SegmindScenario } from './fake-segmind.js';
import { ASPECT_RATIOS, describeImage, dimensionsFor, renderImage, sniffFormat } from './images.js';
import type { ImageFormat } from './images.js';

const BRIEF_BODY = {
  prompt: 'a lighthouse at dusk',
  guidance: 3.5,
  steps: 25,
  prompt_strength: 0.8,
  aspect_ratio: '1:1',
  seed: 46588,
  output_format: 'webp',
  output_quality: 80,
  samples: 1,
};

async function post(fake: FakeSegmind, body: unknown, opts: { headers?: Record<string, string>; signal?: AbortSignal; path?: string; method?: 'POST' | 'GET' | 'PUT' } = {}) {
  const res = await request(fake.url + (opts.path ?? MODEL_PATH), {
    method: opts.method ?? 'POST',
    headers: { 'content-type': 'application/json', 'x-api-key': 'SG_test', ...opts.headers },
    body: opts.method === 'GET' ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    signal: opts.signal,
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  return { status: res.statusCode, headers: res.headers, bytes, text: bytes.toString('utf8') };
}

function header(h: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Poll a condition with a deadline (no fixed sleeps). */
async function eventually(cond: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met before deadline');
    await new Promise((r) => setImmediate(r));
  }
}

describe('images', () => {
  it('maps every aspect ratio to dimensions with the long side', () => {
    expect(dimensionsFor('1:1')).toEqual({ width: 64, height: 64 });
    expect(dimensionsFor('16:9')).toEqual({ width: 64, height: 36 });
    expect(dimensionsFor('9:16')).toEqual({ width: 36, height: 64 });
    expect(dimensionsFor('21:9')).toEqual({ width: 64, height: 27 });
    expect(dimensionsFor('9:21')).toEqual({ width: 27, height: 64 });
    expect(dimensionsFor('2:3')).toEqual({ width: 43, height: 64 });
    expect(dimensionsFor('3:2')).toEqual({ width: 64, height: 43 });
    expect(dimensionsFor('4:5')).toEqual({ width: 51, height: 64 });
    expect(dimensionsFor('5:4')).toEqual({ width: 64, height: 51 });
    expect(dimensionsFor('16:9', 1024)).toEqual({ width: 1024, height: 576 });
    expect(() => dimensionsFor('square')).toThrow(RangeError);
    expect(() => dimensionsFor('0:1')).toThrow(RangeError);
  });

  it('renders real, cached images and colours them from the seed', async () => {
    const a = await renderImage({ format: 'png', width: 20, height: 10, seed: 1 });
    expect(await renderImage({ format: 'png', width: 20, height: 10, seed: 1 })).toBe(a); // cached
    expect(await describeImage(a)).toEqual({ format: 'png', width: 20, height: 10 });
    const b = await renderImage({ format: 'png', width: 20, height: 10, seed: 2 });
    expect(b.equals(a)).toBe(false);
    await expect(describeImage(Buffer.from('<html>nope</html>'))).rejects.toThrow();
    const jpg = await renderImage({ format: 'jpg', width: 64, height: 64, noise: true, seed: 3 });
    await expect(describeImage(jpg.subarray(0, jpg.length >> 1))).rejects.toThrow(); // truncated data fails decoding
  });

  it('noise images of longSide 1024 are large as png', async () => {
    const { width, height } = dimensionsFor('1:1', 1024);
    const png = await renderImage({ format: 'png', width, height, noise: true, seed: 7 });
    expect(png.length).toBeGreaterThan(500 * 1024);
    expect(await describeImage(png)).toEqual({ format: 'png', width: 1024, height: 1024 });
  });
});

describe('FakeSegmind', () => {
  let fake: FakeSegmind;
  beforeAll(async () => {
    fake = await FakeSegmind.start();
  });
  afterAll(async () => {
    await fake.stop();
  });
  beforeEach(() => fake.reset());

  it('answers the brief example with realistic raw webp bytes and headers, and records the request', async () => {
    const res = await post(fake, BRIEF_BODY);
    expect(res.status).toBe(200);
    expect(header(res.headers, 'content-type')).toBe('image/webp');
    expect(header(res.headers, 'content-length')).toBe(String(res.bytes.length));
    expect(header(res.headers, 'x-remaining-credits')).toBe('9.87');
    expect(header(res.headers, 'x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(Number(header(res.headers, 'x-generation-time'))).toBeGreaterThanOrEqual(0);
    expect(await describeImage(res.bytes)).toEqual({ format: 'webp', width: 64, height: 64 });

    const [rec] = await fake.waitForRequests(1);
    expect(rec).toMatchObject({ seq: 1, method: 'POST', path: MODEL_PATH, body: BRIEF_BODY });
    expect(rec?.headers['x-api-key']).toBe('SG_test');
    expect(rec?.headers['content-type']).toBe('application/json');
    expect(rec?.at).toBeLessThanOrEqual(Date.now());
  });

  it.each([
    ['webp', 'image/webp'],
    ['jpg', 'image/jpeg'],
    ['png', 'image/png'],
  ] as const)('output_format %s → %s bytes with the requested dimensions', async (format, mime) => {
    const res = await post(fake, { ...BRIEF_BODY, output_format: format, aspect_ratio: '16:9' });
    expect(res.status).toBe(200);
    expect(header(res.headers, 'content-type')).toBe(mime);
    expect(await describeImage(res.bytes)).toEqual({ format, width: 64, height: 36 });
  });

  it('defaults to webp and 1:1 when the request does not say', async () => {
    const res = await post(fake, { prompt: 'x' });
    expect(header(res.headers, 'content-type')).toBe('image/webp');
    expect(await describeImage(res.bytes)).toEqual({ format: 'webp', width: 64, height: 64 });
  });

  it('follows every aspect ratio, and longSide from the scenario', async () => {
    for (const ar of ASPECT_RATIOS) {
      const res = await post(fake, { ...BRIEF_BODY, aspect_ratio: ar, output_format: 'png' });
      const { width, height } = await describeImage(res.bytes);
      expect({ width, height }, ar).toEqual(dimensionsFor(ar));
    }
    fake.setDefault({ kind: 'image', longSide: 200 });
    const res = await post(fake, { ...BRIEF_BODY, aspect_ratio: '9:21' });
    expect(await describeImage(res.bytes)).toMatchObject({ width: 86, height: 200 });
  });

  it('colours from the seed and encodes with output_quality', async () => {
    const a = await post(fake, { ...BRIEF_BODY, seed: 1, output_format: 'png' });
    const b = await post(fake, { ...BRIEF_BODY, seed: 2, output_format: 'png' });
    const a2 = await post(fake, { ...BRIEF_BODY, seed: 1, output_format: 'png' });
    expect(a.bytes.equals(b.bytes)).toBe(false);
    expect(a.bytes.equals(a2.bytes)).toBe(true);

    fake.setDefault({ kind: 'image', noise: true, longSide: 256 });
    const low = await post(fake, { ...BRIEF_BODY, output_format: 'jpg', output_quality: 10 });
    const high = await post(fake, { ...BRIEF_BODY, output_format: 'jpg', output_quality: 95 });
    expect(high.bytes.length).toBeGreaterThan(low.bytes.length * 2);
  });

  it('scenario format, content type, credits and extra headers override', async () => {
    fake.enqueue(
      { kind: 'image', format: 'png', remainingCredits: '0.42', extraHeaders: { 'x-credits-consumed': '0.0196' } },
      { kind: 'image', remainingCredits: null, contentType: 'application/octet-stream' },
    );
    const r1 = await post(fake, BRIEF_BODY);
    expect(header(r1.headers, 'content-type')).toBe('image/png');
    expect(sniffFormat(r1.bytes)).toBe('png');
    expect(header(r1.headers, 'x-remaining-credits')).toBe('0.42');
    expect(header(r1.headers, 'x-credits-consumed')).toBe('0.0196');
    const r2 = await post(fake, BRIEF_BODY);
    expect(header(r2.headers, 'content-type')).toBe('application/octet-stream');
    expect(header(r2.headers, 'x-remaining-credits')).toBeUndefined();
    expect(sniffFormat(r2.bytes)).toBe('webp');
  });

  it('json variants carry decodable base64 images', async () => {
    fake.enqueue({ kind: 'image', json: 'image' }, { kind: 'image', json: 'images' });
    const r1 = await post(fake, { ...BRIEF_BODY, output_format: 'jpg', aspect_ratio: '3:2' });
    expect(header(r1.headers, 'content-type')).toBe('application/json');
    const j1 = JSON.parse(r1.text) as { image: string };
    expect(await describeImage(Buffer.from(j1.image, 'base64'))).toEqual({ format: 'jpg', width: 64, height: 43 });
    const r2 = await post(fake, BRIEF_BODY);
    const j2 = JSON.parse(r2.text) as { images: string[] };
    expect(j2.images).toHaveLength(1);
    expect(await describeImage(Buffer.from(j2.images[0] ?? '', 'base64'))).toEqual({ format: 'webp', width: 64, height: 64 });
  });

  const errorCases: [number, string, RegExp][] = [
    [400, 'application/json', /^\{"error":"Invalid parameter: /],
    [401, 'application/json', /"error":"Invalid API key","error_description":"/],
    [403, 'application/json', /"error":"Forbidden"/],
    [404, 'application/json', /^\{"error":"Model not found"\}$/],
    [405, 'text/html', /<html>[\s\S]*405 Not Allowed[\s\S]*<\/html>/],
    [406, 'application/json', /^\{"error":"Not enough credits"\}$/],
    [422, 'application/json', /^\{"error":"Invalid parameter: /],
    [429, 'application/json', /^\{"error":"Rate limit exceeded"\}$/],
    [500, 'application/json', /^\{"error":"Internal server error"\}$/],
    [502, 'application/json', /^\{"error":"Bad gateway"\}$/],
    [503, 'application/json', /^\{"error":"Service temporarily unavailable/],
    [504, 'application/json', /^\{"error":"Gateway timeout"\}$/],
  ];
  it.each(errorCases)('error %i has a realistic default body (%s)', async (status, contentType, body) => {
    fake.enqueue({ kind: 'error', status });
    const res = await post(fake, BRIEF_BODY);
    expect(res.status).toBe(status);
    expect(header(res.headers, 'content-type')).toBe(contentType);
    expect(res.text).toMatch(body);
    if (contentType === 'application/json') expect(() => JSON.parse(res.text) as unknown).not.toThrow();
  });

  it('error with retryAfter, custom body and content type', async () => {
    fake.enqueue(
      { kind: 'error', status: 429, retryAfter: '7' },
      { kind: 'error', status: 502, body: nginxErrorPage(502), contentType: 'text/html' },
    );
    const r1 = await post(fake, BRIEF_BODY);
    expect(r1.status).toBe(429);
    expect(header(r1.headers, 'retry-after')).toBe('7');
    const r2 = await post(fake, BRIEF_BODY);
    expect(r2.status).toBe(502);
    expect(header(r2.headers, 'content-type')).toBe('text/html');
    expect(r2.text).toContain('502 Bad Gateway');
  });

  it('routes: other paths 404 JSON, wrong method 405 HTML, bad JSON 400, invalid parameters 400', async () => {
    const r404 = await post(fake, BRIEF_BODY, { path: '/v1/flux-schnell' });
    expect(r404.status).toBe(404);
    expect(JSON.parse(r404.text)).toEqual({ error: 'Model not found' });
    const r405 = await post(fake, undefined, { method: 'GET' });
    expect(r405.status).toBe(405);
    expect(header(r405.headers, 'content-type')).toBe('text/html');
    expect(r405.text).toContain('405 Not Allowed');
    const r400 = await post(fake, '{"prompt": ');
    expect(r400.status).toBe(400);
    expect(JSON.parse(r400.text)).toMatchObject({ error: expect.stringMatching(/^Invalid parameter/) as unknown });
    for (const bad of [{}, { ...BRIEF_BODY, aspect_ratio: '4:3' }, { ...BRIEF_BODY, steps: 51 }, { ...BRIEF_BODY, output_format: 'gif' }]) {
      const r = await post(fake, bad);
      expect(r.status, JSON.stringify(bad)).toBe(400);
      expect(r.text).toMatch(/"error":"Invalid parameter: /);
    }
    // All of them were recorded, the raw text kept when not JSON; none consumed a scenario.
    const recs = await fake.waitForRequests(7);
    expect(recs.map((r) => r.seq)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(recs[2]?.body).toBe('{"prompt": ');
    expect(recs[1]?.method).toBe('GET');
  });

  it('queue first, then the default, in arrival order', async () => {
    fake.setDefault({ kind: 'error', status: 503 });
    fake.enqueue({ kind: 'error', status: 500 }, { kind: 'image' });
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await post(fake, BRIEF_BODY)).status);
    expect(statuses).toEqual([500, 200, 503, 503]);
    fake.reset(); // restores {kind:'image'}
    expect((await post(fake, BRIEF_BODY)).status).toBe(200);
  });

  it('respondWith takes precedence over the queue (fail only seed 43)', async () => {
    fake.enqueue({ kind: 'error', status: 500 });
    fake.respondWith((req) =>
      (req.body as { seed?: number }).seed === 43 ? { kind: 'error', status: 422 } : ({ kind: 'image' } satisfies SegmindScenario),
    );
    const results = await Promise.all([42, 43, 44].map((seed) => post(fake, { ...BRIEF_BODY, seed })));
    expect(results.map((r) => r.status)).toEqual([200, 422, 200]);
    fake.respondWith(null);
    expect((await post(fake, BRIEF_BODY)).status).toBe(500); // the queue was untouched
  });

  it('truncated yields a client-side error after the headers', async () => {
    fake.enqueue({ kind: 'truncated', noise: true, longSide: 128 });
    const res = await request(fake.url + MODEL_PATH, { method: 'POST', body: JSON.stringify(BRIEF_BODY) });
    expect(res.statusCode).toBe(200);
    expect(Number(res.headers['content-length'])).toBeGreaterThan(0);
    await expect(res.body.arrayBuffer()).rejects.toThrow();
    await fake.waitForInFlight(0);
  });

  it('truncated with default options also fails on the client', async () => {
    fake.enqueue({ kind: 'truncated' });
    await expect(post(fake, BRIEF_BODY)).rejects.toThrow();
  });

  it('reset yields a connection error', async () => {
    fake.enqueue({ kind: 'reset' });
    await expect(post(fake, BRIEF_BODY)).rejects.toMatchObject({ code: expect.stringMatching(/^UND_ERR_SOCKET|ECONNRESET/) as unknown });
    expect(fake.requests).toHaveLength(1);
    expect((await post(fake, BRIEF_BODY)).status).toBe(200); // the server is still fine
  });

  it('hang can be aborted by the client', async () => {
    fake.enqueue({ kind: 'hang' });
    const ac = new AbortController();
    const pending = post(fake, BRIEF_BODY, { signal: ac.signal });
    await fake.waitForRequests(1);
    expect(fake.inFlight()).toBe(1);
    ac.abort();
    await expect(pending).rejects.toThrow();
    await fake.waitForInFlight(0);
  });

  it('notAnImage and wrongFormat deliver bytes that fail image checks', async () => {
    fake.enqueue({ kind: 'notAnImage' }, { kind: 'notAnImage', contentType: 'image/webp', body: Buffer.from([1, 2, 3, 4]) }, { kind: 'wrongFormat' }, { kind: 'wrongFormat' });
    const r1 = await post(fake, BRIEF_BODY);
    expect(r1.status).toBe(200);
    expect(header(r1.headers, 'content-type')).toBe('image/png');
    await expect(describeImage(r1.bytes)).rejects.toThrow();
    const r2 = await post(fake, BRIEF_BODY);
    expect(header(r2.headers, 'content-type')).toBe('image/webp');
    expect([...r2.bytes]).toEqual([1, 2, 3, 4]);
    const r3 = await post(fake, { ...BRIEF_BODY, output_format: 'jpg' });
    expect(header(r3.headers, 'content-type')).toBe('image/jpeg');
    expect((await describeImage(r3.bytes)).format).not.toBe('jpg');
    const r4 = await post(fake, { ...BRIEF_BODY, output_format: 'png' });
    expect(header(r4.headers, 'content-type')).toBe('image/png');
    expect((await describeImage(r4.bytes)).format).not.toBe('png');
  });

  it('counts inFlight and maxInFlight with parallel delayed requests', async () => {
    fake.setDefault({ kind: 'image', delayMs: 150 });
    const all = Promise.all(Array.from({ length: 5 }, (_, i) => post(fake, { ...BRIEF_BODY, seed: i })));
    await fake.waitForRequests(5);
    expect(fake.inFlight()).toBe(5);
    const res = await all;
    expect(res.every((r) => r.status === 200)).toBe(true);
    expect(fake.maxInFlight()).toBe(5);
    await fake.waitForInFlight(0);
    fake.reset();
    expect(fake.maxInFlight()).toBe(0);
  });

  it('pause/resume holds responses deterministically', async () => {
    fake.pause();
    const all = Promise.all([1, 2, 3].map((seed) => post(fake, { ...BRIEF_BODY, seed })));
    await fake.waitForRequests(3);
    expect(fake.inFlight()).toBe(3);
    fake.resume();
    expect((await all).map((r) => r.status)).toEqual([200, 200, 200]);
    await eventually(() => fake.inFlight() === 0);
  });

  it('waitForRequests rejects after its deadline', async () => {
    await expect(fake.waitForRequests(1, 30)).rejects.toThrow(/only 0 request/);
  });

  it('serves many concurrent large requests', async () => {
    fake.setDefault({ kind: 'image', noise: true, longSide: 512 });
    const formats: ImageFormat[] = ['png', 'jpg', 'webp'];
    const res = await Promise.all(Array.from({ length: 60 }, (_, i) => post(fake, { ...BRIEF_BODY, output_format: formats[i % 3] })));
    expect(res.every((r, i) => r.status === 200 && sniffFormat(r.bytes) === formats[i % 3])).toBe(true);
    expect(fake.requestCount()).toBe(60);
  });
});

describe('FakeSegmind with an API key', () => {
  let fake: FakeSegmind;
  beforeAll(async () => {
    fake = await FakeSegmind.start({ apiKey: 'SG_right' });
  });
  afterAll(() => fake.stop());

  it('rejects a missing or wrong x-api-key with 401 and accepts the right one', async () => {
    const wrong = await post(fake, BRIEF_BODY, { headers: { 'x-api-key': 'SG_wrong' } });
    expect(wrong.status).toBe(401);
    expect(JSON.parse(wrong.text)).toMatchObject({ error: 'Invalid API key', error_description: expect.any(String) as unknown });
    const bearer = await request(fake.url + MODEL_PATH, { method: 'POST', headers: { authorization: 'Bearer SG_right' }, body: JSON.stringify(BRIEF_BODY) });
    expect(bearer.statusCode).toBe(401);
    await bearer.body.dump();
    const right = await post(fake, BRIEF_BODY, { headers: { 'x-api-key': 'SG_right' } });
    expect(right.status).toBe(200);
    expect(fake.requests.map((r) => r.headers['x-api-key'])).toEqual(['SG_wrong', undefined, 'SG_right']);
  });

  it('serves the credits endpoint behind the key', async () => {
    const r = await post(fake, undefined, { method: 'GET', path: '/v1/get-user-credits', headers: { 'x-api-key': 'SG_right' } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.text)).toEqual({ credits: 9.87, 'free-credits': 0 });
  });
});

describe('FakeSegmind.stop', () => {
  it('returns promptly with hanging and delayed requests, fails them on the client, and is safe twice', async () => {
    const fake = await FakeSegmind.start();
    fake.enqueue({ kind: 'hang' }, { kind: 'image', delayMs: 60_000 });
    const p1 = post(fake, BRIEF_BODY);
    const p2 = post(fake, BRIEF_BODY);
    const settled = Promise.allSettled([p1, p2]);
    await fake.waitForRequests(2);
    const t0 = performance.now();
    await fake.stop();
    expect(performance.now() - t0).toBeLessThan(1_000);
    const [s1, s2] = await settled;
    expect(s1?.status).toBe('rejected');
    expect(s2?.status).toBe('rejected');
    await fake.stop();
    expect(fake.inFlight()).toBe(0);
  });

  it('stops an idle server with keep-alive connections promptly', async () => {
    const fake = await FakeSegmind.start();
    expect((await post(fake, BRIEF_BODY)).status).toBe(200);
    const t0 = performance.now();
    await fake.stop();
    expect(performance.now() - t0).toBeLessThan(1_000);
  });
});
