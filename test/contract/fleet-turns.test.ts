import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createSegmindLimiter } from '../../src/services/generation/create-segmind-limiter.js';
import { FairScheduler } from '../../src/services/generation/fair-scheduler.js';
import { redisLimiterKeys } from '../../src/services/generation/redis-limiter.js';
import type { LimiterOptions, SegmindLimiter } from '../../src/services/generation/segmind-limiter.js';
import { RedisOpenRequests, redisOpenRequestsKey } from '../../src/services/usage/open-requests.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace, withRedisClient } from '../support/redis.js';

const silent = pino({ level: 'silent' });

async function eventually(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Counts the commands a limiter sends to Redis: a round trip each. */
function counting(storage: Storage) {
  const redis = storage.redis!;
  const sent: string[][] = [];
  return {
    sent,
    storage: { ...storage, redis: { sendCommand: (args: string[]) => (sent.push(args), redis.sendCommand(args)) } } as Storage,
  };
}

describeWithRedis('fleet-wide turns and open requests on Redis', () => {
  let first: Storage;
  let second: Storage;
  const closers: Array<() => unknown> = [];
  const limiter = (on: Storage, keyPrefix: string, opts: Partial<LimiterOptions> = {}): SegmindLimiter => {
    const made = createSegmindLimiter(on, { concurrency: 1, rpm: 0, clock: systemClock, logger: silent, keyPrefix, ...opts });
    closers.push(() => made.close());
    return made;
  };

  beforeAll(async () => {
    // Two connections, as two bot processes have.
    first = await openStorage(REDIS_URL, { logger: silent, namespace: redisTestNamespace() });
    second = await openStorage(REDIS_URL, { logger: silent, namespace: redisTestNamespace() });
  });
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });
  afterAll(async () => {
    await Promise.all([first.close(), second.close()]);
    await deleteRedisKeys();
  });

  it('serves members in turn across two processes: a member alone on a quiet one is not starved by a busy one', async () => {
    const keyPrefix = redisTestNamespace();
    const busy = new FairScheduler(limiter(first, keyPrefix), silent);
    const quiet = new FairScheduler(limiter(second, keyPrefix), silent);
    const served: string[] = [];
    const gates: Array<() => void> = [];
    const job = (userId: string, tasks: number) => ({
      id: `${userId}-job`,
      userId,
      tasks,
      runTask: () =>
        new Promise<void>((resolve) => {
          served.push(userId);
          gates.push(resolve);
        }),
    });
    const busyMembers = ['u1', 'u2', 'u3', 'u4', 'u5'];
    const busyDone = busyMembers.map((u) => busy.submit(job(u, 4)).done);
    await eventually(() => served.length === 1, 'the first image to start');
    const quietDone = quiet.submit(job('z', 1)).done;
    // Both processes now wait for the one slot.
    const keys = redisLimiterKeys(keyPrefix);
    await eventually(async () => (await withRedisClient((c) => c.zCard(keys.waiting))) === 2, 'both processes in the turn order');

    for (let slot = 1; slot < 21; slot++) {
      gates.shift()!();
      await eventually(() => served.length === slot + 1, `image ${slot + 1} to start`);
    }
    gates.shift()!();
    await Promise.all([...busyDone, quietDone]);
    // A strict round robin of six members: z's turn comes once each member who waited before it has had one.
    expect(served.slice(0, 8)).toEqual(['u1', 'u2', 'u3', 'u4', 'u5', 'z', 'u1', 'u2']);
    expect(served).toHaveLength(21);
    busy.stop();
    quiet.stop();
  });

  it('costs one round trip per uncontended acquire, as before turns existed, and leaves no place behind', async () => {
    const keyPrefix = redisTestNamespace();
    const { sent, storage } = counting(first);
    const made = limiter(storage, keyPrefix, { concurrency: 2 });
    await (await made.acquire(undefined, () => ['warm-up'])).release(); // loads the script
    sent.length = 0;
    const permit = await made.acquire(undefined, () => ['m1', 'm2']);
    expect(sent).toHaveLength(1);
    expect(sent[0]?.[0]).toBe('EVALSHA');
    expect(permit.member).toBe('m1');
    // An immediate grant takes no place in the turn order; the record of turns expires on its own.
    const keys = redisLimiterKeys(keyPrefix);
    expect(await withRedisClient((c) => c.exists([keys.waiting, keys.waitingUntil]))).toBe(0);
    const ttls = await withRedisClient((c) => Promise.all([c.pTTL(keys.served), c.pTTL(keys.turn)]));
    expect(ttls.every((ttl) => ttl > 0 && ttl <= 24 * 60 * 60_000)).toBe(true);
    await permit.release();
    expect(sent).toHaveLength(2); // the release: one ZREM
    expect(await withRedisClient((c) => c.zCard(keys.waiting))).toBe(0);
  });

  it('names the member served least recently bot-wide among those offered', async () => {
    const keyPrefix = redisTestNamespace();
    const a = limiter(first, keyPrefix);
    const b = limiter(second, keyPrefix);
    await (await a.acquire(undefined, () => ['x'])).release();
    await (await b.acquire(undefined, () => ['y'])).release();
    // x and y have had a turn (x first); w is new: after those who waited longer, before the one served last
    const permit = await a.acquire(undefined, () => ['y', 'x', 'w']);
    expect(permit.member).toBe('x');
    await permit.release();
    const next = await a.acquire(undefined, () => ['y', 'w']);
    expect(next.member).toBe('w');
    await next.release();
  });

  it('gives the turn up at once when the waiting request is aborted', async () => {
    const keyPrefix = redisTestNamespace();
    const a = limiter(first, keyPrefix);
    const b = limiter(second, keyPrefix);
    const held = await a.acquire(undefined, () => ['x']);
    const controller = new AbortController();
    const waiting = b.acquire(controller.signal, () => ['y']);
    const keys = redisLimiterKeys(keyPrefix);
    await eventually(async () => (await withRedisClient((c) => c.zCard(keys.waiting))) === 1, 'b in the turn order');
    controller.abort(new Error('gave up'));
    await expect(waiting).rejects.toThrow('gave up');
    await eventually(async () => (await withRedisClient((c) => c.zCard(keys.waiting))) === 0, 'b out of the turn order', 2_000);
    await held.release();
  });

  it('lets a dead process’s turn lapse: a free slot waits for it only until its place expires', async () => {
    const keyPrefix = redisTestNamespace();
    const keys = redisLimiterKeys(keyPrefix);
    // A process that took a place ahead of everyone (an old turn) and died: its place lapses in 400 ms.
    await withRedisClient(async (c) => {
      const now = Date.now(); // the Redis server runs on this machine: same clock
      await c.zAdd(keys.waiting, { score: -(2 ** 50), value: 'dead-process' });
      await c.zAdd(keys.waitingUntil, { score: now + 400, value: 'dead-process' });
      await c.pExpire(keys.waiting, 5_000);
      await c.pExpire(keys.waitingUntil, 5_000);
    });
    const a = limiter(first, keyPrefix);
    const started = performance.now();
    const permit = await a.acquire(AbortSignal.timeout(5_000), () => ['x']);
    const waited = performance.now() - started;
    expect(waited).toBeGreaterThanOrEqual(200); // it did wait for the dead process's turn …
    expect(waited).toBeLessThan(400 + 1_000); // … only until it lapsed
    expect(await withRedisClient((c) => c.zCard(keys.waiting))).toBe(0);
    await permit.release();
  });

  it('counts a member’s open requests across processes, frees them on release, and lets a dead process’s lapse', async () => {
    const keyPrefix = redisTestNamespace();
    const onA = new RedisOpenRequests({ client: first.redis!, keyPrefix, logger: silent, leaseMs: 600, renewEveryMs: 100 });
    const onB = new RedisOpenRequests({ client: second.redis!, keyPrefix, logger: silent });
    closers.push(() => onA.close(), () => onB.close());
    expect(await onA.hold('m', 'a1', 2)).toBe(true);
    expect(await onB.hold('m', 'b1', 2)).toBe(true);
    expect(await onB.hold('m', 'b2', 2)).toBe(false); // at 2 on the two processes together
    expect(await onA.hold('other', 'a2', 2)).toBe(true); // per member
    await onB.release('m', 'b1');
    expect(await onB.hold('m', 'b2', 2)).toBe(true);
    const key = redisOpenRequestsKey(keyPrefix, 'm');
    expect(key).toBe(`${keyPrefix}:{limiter}:open:m`);
    const ttl = await withRedisClient((c) => c.pTTL(key));
    expect(ttl).toBeGreaterThan(0);

    // A renews its places while it lives: past its 600 ms lease, m is still at the limit …
    await new Promise((r) => setTimeout(r, 900));
    expect(await onB.hold('m', 'b3', 2)).toBe(false);
    // … and once A dies (no renewals), its place lapses.
    onA.close();
    await eventually(() => onB.hold('m', 'b3', 2), 'the dead process’s place to lapse', 3_000);
  });
});
