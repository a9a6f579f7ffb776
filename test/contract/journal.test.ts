import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULTS } from '../../src/services/segmind/flux-params.js';
import { Journal, type JournalEntry } from '../../src/services/generation/journal.js';
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
