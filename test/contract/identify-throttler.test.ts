import { pino } from 'pino';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { RedisIdentifyThrottler } from '../../src/services/discord/identify-throttler.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, listRedisKeys, redisTestNamespace } from '../support/redis.js';

const silent = pino({ level: 'silent' });
const WINDOW_MS = 1_000;
/**
 * The test sees a shard let through when its promise resolves, a little after Redis granted the slot; on a busy
 * machine that delay differs between two shards. Without the throttle the gaps are a few milliseconds.
 */
const SLACK_MS = 150;

describeWithRedis('RedisIdentifyThrottler: one identify per bucket per window, across processes', () => {
  const namespace = redisTestNamespace();
  /** Two connections: what two bot processes sharing one Redis have. */
  let first: Storage;
  let second: Storage;
  let tests = 0;

  beforeAll(async () => {
    first = await openStorage(REDIS_URL, { logger: silent, namespace });
    second = await openStorage(REDIS_URL, { logger: silent, namespace });
  });
  afterAll(async () => {
    await first.close();
    await second.close();
    await deleteRedisKeys(namespace);
  });

  /** A throttler on one "process", under a key prefix of this test's own. */
  function throttler(storage: Storage, maxConcurrency: number, prefix: string) {
    return new RedisIdentifyThrottler({ client: storage.redis!, keyPrefix: prefix, maxConcurrency, clock: systemClock, logger: silent, windowMs: WINDOW_MS });
  }
  function prefix() {
    tests += 1;
    return `${namespace}:t${tests}`;
  }
  /** Resolves with the time the shard was let through. */
  async function identifyAt(t: RedisIdentifyThrottler, shardId: number, signal = new AbortController().signal) {
    await t.waitForIdentify(shardId, signal);
    return Date.now();
  }

  it('spaces two processes sharing max_concurrency 1 by the window', async () => {
    const p = prefix();
    const [a, b, c] = await Promise.all([
      identifyAt(throttler(first, 1, p), 0),
      identifyAt(throttler(second, 1, p), 1),
      identifyAt(throttler(second, 1, p), 2),
    ]);
    const times = [a, b, c].sort((x, y) => x - y);
    expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(WINDOW_MS - SLACK_MS);
    expect(times[2]! - times[1]!).toBeGreaterThanOrEqual(WINDOW_MS - SLACK_MS);
  });

  it('lets shards of different buckets identify together, and spaces those of one bucket', async () => {
    const p = prefix();
    const start = Date.now();
    const [zero, one, two] = await Promise.all([
      identifyAt(throttler(first, 2, p), 0),
      identifyAt(throttler(second, 2, p), 1),
      identifyAt(throttler(second, 2, p), 2), // bucket 0 again
    ]);
    expect(Math.min(zero, one, two) - start).toBeLessThan(WINDOW_MS);
    // buckets 0 and 1 at once (shards 0 and 2 race for bucket 0: either may go first); the other of bucket 0 a
    // window after the first
    expect(Math.abs(Math.min(zero, two) - one)).toBeLessThan(WINDOW_MS);
    expect(Math.abs(two - zero)).toBeGreaterThanOrEqual(WINDOW_MS - SLACK_MS);
  });

  it('keeps bots of different namespaces apart', async () => {
    const start = Date.now();
    await Promise.all([identifyAt(throttler(first, 1, prefix()), 0), identifyAt(throttler(second, 1, prefix()), 0)]);
    expect(Date.now() - start).toBeLessThan(WINDOW_MS);
  });

  it('gives up waiting when the shard closes (its abort signal)', async () => {
    const p = prefix();
    await identifyAt(throttler(first, 1, p), 0);
    const controller = new AbortController();
    const waiting = throttler(second, 1, p).waitForIdentify(1, controller.signal);
    setTimeout(() => controller.abort(new Error('shard closed')), 50);
    const started = Date.now();
    await expect(waiting).rejects.toThrow('shard closed');
    expect(Date.now() - started).toBeLessThan(WINDOW_MS - 100);
    // nothing was taken for the aborted shard: the key is still the first shard's, and expires by itself
    expect((await listRedisKeys(p)).length).toBeLessThanOrEqual(1);
  });
});
