import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/services/segmind/flux-params.js';
import { Journal, journalIndexKey, type JournalEntry } from '../../src/services/generation/journal.js';
import { JournalAdoption } from '../../src/services/generation/journal-adoption.js';
import {
  InstanceLease,
  adoptedMarkerKey,
  knownInstancesKey,
} from '../../src/services/generation/instance-lease.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace, withRedisClient } from '../support/redis.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';

const logger = pino({ level: 'silent' });
const dir = await mkdtemp(join(tmpdir(), 'flux-journal-'));
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function entry(id: string): JournalEntry {
  return {
    v: 1,
    id,
    guildId: 'g1',
    channelId: 'c1',
    userId: `u-${id}`,
    applicationId: 'app',
    token: `token-${id}`,
    createdAt: 1_000,
    tokenExpiresAt: 901_000,
    attachmentSizeLimit: 10 * 1024 * 1024,
    params: { ...DEFAULTS, prompt: `prompt ${id}`, seed: 7 },
    reservation: {
      id,
      guildId: 'g1',
      userId: `u-${id}`,
      credits: 1,
      fromDaily: 1,
      fromBonus: 0,
      day: 0,
      createdAt: 1_000,
      expiresAt: 3_601_000,
    },
    state: 'queued',
  };
}

/** Counts the writes of the journal's index key, passing every call through to the real store. */
function countIndexWrites(storage: Storage): () => number {
  let writes = 0;
  const set = storage.kv.set.bind(storage.kv);
  storage.kv.set = ((key: string, value: unknown, ttl?: number) => {
    if (key.startsWith('journal:index:')) writes += 1;
    return set(key, value, ttl);
  });
  return () => writes;
}

describe('Journal on a SQLite file', () => {
  it('lists after a restart exactly the jobs added and not removed, even when added all at once', async () => {
    const url = `sqlite://${join(dir, 'restart.sqlite')}`;
    const first = await openStorage(url, { logger });
    const journal = new Journal(first, 'main');
    const ids = Array.from({ length: 200 }, (_, i) => `job${i}`);
    await Promise.all(ids.map((id) => journal.add(entry(id))));
    await Promise.all(ids.filter((_, i) => i % 3 === 0).map((id) => journal.remove(id)));
    await first.close();

    const second = await openStorage(url, { logger });
    try {
      const listed = await new Journal(second, 'main').list();
      expect(listed.map((e) => e.id).sort()).toEqual(ids.filter((_, i) => i % 3 !== 0).sort());
      expect(listed.find((e) => e.id === 'job1')).toEqual(entry('job1'));
      expect(await new Journal(second, 'other-instance').list()).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('rewrites its index a few times for a burst of jobs, not once per job', async () => {
    const storage = await openStorage(`sqlite://${join(dir, 'burst.sqlite')}`, { logger });
    try {
      const writes = countIndexWrites(storage);
      const journal = new Journal(storage, 'main');
      await Promise.all(Array.from({ length: 100 }, (_, i) => journal.add(entry(`job${i}`))));
      expect((await journal.list()).length).toBe(100);
      expect(writes()).toBeGreaterThanOrEqual(1);
      expect(writes()).toBeLessThanOrEqual(5);
    } finally {
      await storage.close();
    }
  });

  it('fails to add a job whose index could not be saved', async () => {
    const storage = await openStorage('memory://', { logger });
    const journal = new Journal(storage, 'main');
    await journal.add(entry('before'));
    await storage.close();
    await expect(journal.add(entry('after'))).rejects.toThrow();
  });
});

describeWithRedis('adoption of an orphaned journal on Redis', () => {
  const namespaces: string[] = [];
  const opened: Storage[] = [];
  const leases: InstanceLease[] = [];
  afterEach(async () => {
    await Promise.all(leases.splice(0).map((l) => l.release()));
    await Promise.all(opened.splice(0).map((s) => s.close()));
  });
  afterAll(async () => {
    for (const ns of namespaces) await deleteRedisKeys(ns);
  });

  /** A connection of its own per process, as separate bot processes have. */
  async function connect(namespace: string): Promise<Storage> {
    const storage = await openStorage(REDIS_URL, { logger, namespace });
    opened.push(storage);
    return storage;
  }

  async function lease(storage: Storage, instanceId: string): Promise<InstanceLease> {
    const taken = await InstanceLease.acquire({ client: storage.redis!, keyPrefix: storage.namespace, instanceId, logger, leaseMs: 30_000 });
    leases.push(taken);
    return taken;
  }

  /** An instance that journaled `ids` and died: its lease is gone, its index and entries stay. */
  async function deadInstance(namespace: string, instanceId: string, ids: string[]): Promise<void> {
    const storage = await connect(namespace);
    const held = await lease(storage, instanceId);
    const journal = new Journal(storage, instanceId);
    await Promise.all(ids.map((id) => journal.add(entry(id))));
    await held.release();
  }

  /** A live process that adopts into its own journal and records what it was handed. */
  async function adopter(namespace: string, instanceId: string) {
    const storage = await connect(namespace);
    await lease(storage, instanceId);
    const journal = new Journal(storage, instanceId);
    const recovered: JournalEntry[] = [];
    const adoption = new JournalAdoption({
      client: storage.redis!,
      namespace,
      instanceId,
      journal,
      recoverJob: (job) => {
        recovered.push(job);
        return Promise.resolve();
      },
      logger,
      scanEveryMs: 60_000,
    });
    return { storage, journal, adoption, recovered, instanceId };
  }

  const storedIndex = (namespace: string, instanceId: string) =>
    withRedisClient(async (c) => {
      const raw = await c.get(`${namespace}::${journalIndexKey(instanceId)}`);
      return raw === null ? undefined : ((JSON.parse(raw) as { value: string[] }).value);
    });

  it('hands each orphaned job to exactly one of several adopters racing, moving it into that one\'s journal', async () => {
    const namespace = redisTestNamespace();
    namespaces.push(namespace);
    const ids = Array.from({ length: 40 }, (_, i) => `job${i}`);
    await deadInstance(namespace, 'dead', ids);
    const adopters = await Promise.all(['a1', 'a2', 'a3', 'a4', 'a5'].map((id) => adopter(namespace, id)));

    const counts = await Promise.all(adopters.map((a) => a.adoption.scan()));

    const handed = adopters.flatMap((a) => a.recovered.map((job) => job.id));
    expect(handed.sort()).toEqual([...ids].sort());
    expect(counts.reduce((a, b) => a + b, 0)).toBe(ids.length);
    // each adopter's journal, in memory and in Redis, holds exactly what it was handed, marked as its own
    for (const a of adopters) {
      const mine = a.recovered.map((job) => job.id).sort();
      expect((await storedIndex(namespace, a.instanceId))?.sort() ?? []).toEqual(mine);
      expect((await a.journal.list()).map((job) => job.id).sort()).toEqual(mine);
      for (const job of a.recovered) expect((await a.journal.get(job.id))?.owner).toBe(a.instanceId);
      // the entry is otherwise as the dead instance wrote it
      for (const job of a.recovered) expect({ ...job, owner: undefined }).toEqual({ ...entry(job.id), owner: undefined });
    }
    expect(await storedIndex(namespace, 'dead')).toEqual([]);
    expect(await withRedisClient((c) => c.get(adoptedMarkerKey(namespace, 'dead')))).not.toBeNull();
    // the dead instance, restarted, finds nothing of its own
    const restarted = await connect(namespace);
    await lease(restarted, 'dead');
    expect(await new Journal(restarted, 'dead').list()).toEqual([]);
  });

  it('leaves alone the journal of an instance whose lease lives, and forgets an instance that left nothing', async () => {
    const namespace = redisTestNamespace();
    namespaces.push(namespace);
    const alive = await connect(namespace);
    await lease(alive, 'alive');
    await new Journal(alive, 'alive').add(entry('running'));
    await deadInstance(namespace, 'empty', []);
    const a = await adopter(namespace, 'adopter');

    expect(await a.adoption.scan()).toBe(0);
    expect(a.recovered).toEqual([]);
    expect(await storedIndex(namespace, 'alive')).toEqual(['running']);
    const known = await withRedisClient((c) => c.sMembers(knownInstancesKey(namespace)));
    expect(known.sort()).toEqual(['adopter', 'alive']);
  });

  it('adopts an orphaned job once more when its adopter dies too, and never takes one back from a stale index', async () => {
    const namespace = redisTestNamespace();
    namespaces.push(namespace);
    await deadInstance(namespace, 'first', ['job1']);
    const second = await adopter(namespace, 'second');
    expect(await second.adoption.scan()).toBe(1);
    // the second one dies as well: its lease gone, the job still in its journal
    await Promise.all(leases.splice(0).map((l) => l.release()));
    // and the first one's index names the job again (written back from memory by a process that had lost Redis)
    await withRedisClient((c) => c.set(`${namespace}::${journalIndexKey('first')}`, JSON.stringify({ value: ['job1'] })));

    const third = await adopter(namespace, 'third');
    expect(await third.adoption.scan()).toBe(1);
    expect(third.recovered.map((job) => job.id)).toEqual(['job1']);
    expect((await third.journal.get('job1'))?.owner).toBe('third');
    expect(await storedIndex(namespace, 'first')).toEqual([]);
    expect(await storedIndex(namespace, 'second')).toEqual([]);
    // a restart of the first one does not run it: it is not its own any more
    await withRedisClient((c) => c.set(`${namespace}::${journalIndexKey('first')}`, JSON.stringify({ value: ['job1'] })));
    const first = await connect(namespace);
    await lease(first, 'first');
    expect(await new Journal(first, 'first').list()).toEqual([]);
    expect(await storedIndex(namespace, 'first')).toEqual([]);
  });

  it('keeps a claimed job in the adopter\'s index while the adopter journals its own new jobs at the same time', async () => {
    const namespace = redisTestNamespace();
    namespaces.push(namespace);
    const orphaned = Array.from({ length: 20 }, (_, i) => `old${i}`);
    await deadInstance(namespace, 'dead', orphaned);
    const a = await adopter(namespace, 'busy');
    const fresh = Array.from({ length: 50 }, (_, i) => `new${i}`);
    await Promise.all([a.adoption.scan(), ...fresh.map((id) => a.journal.add(entry(id)))]);
    expect((await storedIndex(namespace, 'busy'))?.sort()).toEqual([...orphaned, ...fresh].sort());
  });
});
