import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  InstanceLease,
  InstanceLeaseError,
  acquireInstanceLease,
  adoptedMarkerKey,
  instanceLeaseKey,
  knownInstancesKey,
  type InstanceLeaseOptions,
} from '../../src/services/generation/instance-lease.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace, withRedisClient } from '../support/redis.js';

const silent = pino({ level: 'silent' });

/** Polls `check` (which may ask Redis) until it holds, or fails after the deadline. */
async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A logger whose lines the test can read. */
function recordingLogger() {
  const lines: Array<{ msg: string; [key: string]: unknown }> = [];
  const logger = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { msg: string });
        done();
      },
    }),
  );
  return { logger, lines };
}

describeWithRedis('InstanceLease on Redis', () => {
  const namespace = redisTestNamespace();
  let storage: Storage;
  const leases: InstanceLease[] = [];
  let ids = 0;

  beforeAll(async () => {
    storage = await openStorage(REDIS_URL, { logger: silent, namespace });
  });
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.release()));
  });
  afterAll(async () => {
    await storage.close();
    await deleteRedisKeys(namespace);
  });

  /** A fresh INSTANCE_ID per test, so tests never see each other's leases. */
  function instance() {
    ids += 1;
    const instanceId = `lease-${ids}`;
    return { instanceId, key: instanceLeaseKey(namespace, instanceId) };
  }

  async function acquire(
    instanceId: string,
    options: Partial<Omit<InstanceLeaseOptions, 'client' | 'keyPrefix' | 'instanceId'>> = {},
  ): Promise<InstanceLease> {
    const lease = await InstanceLease.acquire({
      client: storage.redis!,
      keyPrefix: namespace,
      instanceId,
      logger: silent,
      pollMs: 20,
      ...options,
    });
    leases.push(lease);
    return lease;
  }

  const holderOf = (key: string) => withRedisClient((c) => c.get(key));
  const ttlOf = (key: string) => withRedisClient((c) => c.pTTL(key));

  it('takes a free lease under a token naming this process, with the lease as expiry', async () => {
    const { instanceId, key } = instance();
    await acquire(instanceId, { leaseMs: 30_000 });
    expect(await holderOf(key)).toMatch(new RegExp(`/${process.pid}/[0-9a-f-]{36}$`));
    const ttl = await ttlOf(key);
    expect(ttl).toBeGreaterThan(25_000);
    expect(ttl).toBeLessThanOrEqual(30_000);
  });

  it('refuses a second process while the first one renews, naming the INSTANCE_ID, and leaves the first holding', async () => {
    const { instanceId, key } = instance();
    const first = await acquire(instanceId, { leaseMs: 3_000, renewEveryMs: 100 });
    const holder = await holderOf(key);
    const started = Date.now();
    const error: unknown = await acquire(instanceId, { leaseMs: 3_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(InstanceLeaseError);
    expect((error as Error).message).toMatch(
      new RegExp(`^INSTANCE_ID "${instanceId}" is in use by another running bot process on this Redis \\(pid ${process.pid} on host `),
    );
    expect((error as Error).message).toContain('needs its own INSTANCE_ID');
    // recognised by the first one's renewal, long before its lease could have run out
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(await holderOf(key)).toBe(holder);
    expect(await first.renew()).toBe(true);
  });

  it('renews: the expiry is pushed back to a full lease', async () => {
    const { instanceId, key } = instance();
    const lease = await acquire(instanceId, { leaseMs: 2_000, renewEveryMs: 1_999 });
    await until(async () => (await ttlOf(key)) < 1_800, 'the lease to run down a little', 5_000);
    expect(await lease.renew()).toBe(true);
    expect(await ttlOf(key)).toBeGreaterThan(1_900);
  });

  it('renews by itself, so a live lease outlives its first expiry', async () => {
    const { instanceId, key } = instance();
    await acquire(instanceId, { leaseMs: 300, renewEveryMs: 50 });
    const holder = await holderOf(key);
    const started = Date.now();
    // three lease lengths later it is still the same holder
    await until(async () => Date.now() - started > 900 && (await holderOf(key)) === holder, 'three lease lengths', 5_000);
  });

  it('releases on a clean shutdown: the next process takes it at once', async () => {
    const { instanceId, key } = instance();
    const first = await acquire(instanceId, { leaseMs: 30_000 });
    await first.release();
    expect(await holderOf(key)).toBeNull();
    const { logger, lines } = recordingLogger();
    const started = Date.now();
    await acquire(instanceId, { leaseMs: 30_000, logger });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(lines.map((l) => l.msg)).toEqual([`INSTANCE_ID "${instanceId}" lease taken`]);
  });

  it('never deletes a lease another process holds when releasing', async () => {
    const { instanceId, key } = instance();
    const lease = await acquire(instanceId, { leaseMs: 30_000 });
    await withRedisClient((c) => c.set(key, 'other-host/4242/someone-else', { PX: 30_000 }));
    await lease.release();
    expect(await holderOf(key)).toBe('other-host/4242/someone-else');
  });

  it("waits for a crashed process's lease to expire, says so, then takes it", async () => {
    const { instanceId, key } = instance();
    // a process that crashed: its lease is never renewed
    await withRedisClient((c) => c.set(key, 'old-host/999/crashed', { PX: 400 }));
    const { logger, lines } = recordingLogger();
    const started = Date.now();
    await acquire(instanceId, { leaseMs: 30_000, logger });
    expect(Date.now() - started).toBeGreaterThanOrEqual(300);
    expect(await holderOf(key)).toMatch(new RegExp(`/${process.pid}/`));
    const waiting = lines.find((l) => l.level === 40);
    expect(waiting?.msg).toBe(
      `INSTANCE_ID "${instanceId}" is held on this Redis by another process: waiting up to 1 s for its lease to ` +
        'expire (a process that crashed) or be renewed (a process still running: then this one stops)',
    );
    expect(waiting?.holder).toBe('pid 999 on host old-host');
  });

  it('reports it lost when another process holds the lease, and stops renewing', async () => {
    const { instanceId, key } = instance();
    const lease = await acquire(instanceId, { leaseMs: 30_000 });
    let lost = false;
    void lease.lost.then(() => (lost = true));
    await withRedisClient((c) => c.set(key, 'other-host/4242/someone-else', { PX: 30_000 }));
    expect(await lease.renew()).toBe(false);
    await until(() => lost, 'lost to resolve');
    expect(await holderOf(key)).toBe('other-host/4242/someone-else');
  });

  it('takes the lease again when it lapsed (e.g. during a Redis outage) and nobody took it', async () => {
    const { instanceId, key } = instance();
    const lease = await acquire(instanceId, { leaseMs: 30_000 });
    const holder = await holderOf(key);
    await withRedisClient((c) => c.del(key));
    expect(await lease.renew()).toBe(true);
    expect(await holderOf(key)).toBe(holder);
  });

  it('names itself in the set of known instances, where adopters look for orphaned journals', async () => {
    const { instanceId } = instance();
    await acquire(instanceId, { leaseMs: 30_000 });
    expect(Number(await withRedisClient((c) => c.sIsMember(knownInstancesKey(namespace), instanceId)))).toBe(1);
  });

  it('does not take a lapsed lease back once another process adopted from it: it reports it lost', async () => {
    const { instanceId, key } = instance();
    const { logger, lines } = recordingLogger();
    const lease = await acquire(instanceId, { leaseMs: 30_000, logger });
    let lost = false;
    void lease.lost.then(() => (lost = true));
    await withRedisClient(async (c) => {
      await c.del(key);
      await c.set(adoptedMarkerKey(namespace, instanceId), 'adopter', { PX: 30_000 });
    });
    expect(await lease.renew()).toBe(false);
    await until(() => lost, 'lost to resolve');
    expect(await holderOf(key)).toBeNull();
    expect(lines.at(-1)?.msg).toBe(
      `INSTANCE_ID "${instanceId}" lease lapsed and another process adopted its unfinished jobs: this process stops ` +
        '(a restart resumes only what is still its own)',
    );
    // a fresh start reads its journal anew: the marker no longer concerns it
    await acquire(instanceId, { leaseMs: 30_000 });
    expect(await withRedisClient((c) => c.exists(adoptedMarkerKey(namespace, instanceId)))).toBe(0);
  });

  /** The system clock, `offset` ms ahead: a lease that has not been confirmed for a while, without waiting. */
  function aheadClock() {
    const clock = { offset: 0, now: () => Date.now() + clock.offset, sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)) };
    return clock;
  }

  it('confirms its journal at once while the last renewal is recent, without asking Redis', async () => {
    const { instanceId, key } = instance();
    const lease = await acquire(instanceId, { leaseMs: 30_000 });
    await withRedisClient((c) => c.del(key));
    expect(await lease.confirm()).toBe(true);
    // not renewed by confirm: the lease key is still gone
    expect(await holderOf(key)).toBeNull();
  });

  it('after a silence of most of a lease, confirms only once Redis renews it', async () => {
    const { instanceId, key } = instance();
    const clock = aheadClock();
    const lease = await acquire(instanceId, { leaseMs: 30_000, clock });
    clock.offset = 25_000;
    expect(await lease.confirm()).toBe(true);
    expect(await ttlOf(key)).toBeGreaterThan(25_000);
  });

  it('after a silence of most of a lease, does not confirm a journal another process adopted from', async () => {
    const { instanceId, key } = instance();
    const clock = aheadClock();
    const lease = await acquire(instanceId, { leaseMs: 30_000, clock });
    // cut off from Redis past its lease: the lease lapsed and another process adopted its jobs
    clock.offset = 25_000;
    await withRedisClient(async (c) => {
      await c.del(key);
      await c.set(adoptedMarkerKey(namespace, instanceId), 'adopter', { PX: 30_000 });
    });
    expect(await lease.confirm()).toBe(false);
    expect(await lease.confirm()).toBe(false);
  });

  it('lives 60 s by default and is renewed at least every 10 s', async () => {
    const { instanceId, key } = instance();
    const lease = await acquire(instanceId);
    expect(lease.leaseMs).toBe(60_000);
    expect(await ttlOf(key)).toBeGreaterThan(55_000);
  });
});

describe('acquireInstanceLease without Redis', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'flux-lease-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it.each(['memory://', 'sqlite'])('needs no lease on %s: the store is single-process already', async (kind) => {
    const url = kind === 'sqlite' ? `sqlite://${join(dir, 'bot.sqlite')}` : kind;
    const storage = await openStorage(url, { logger: silent });
    try {
      expect(await acquireInstanceLease(storage, { instanceId: 'main', logger: silent })).toBeUndefined();
    } finally {
      await storage.close();
    }
  });
});
