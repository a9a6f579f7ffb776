import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { Gallery, galleryContent, shareableImages, type GalleryDeps, type SourceMessage } from '../../src/services/results/gallery.js';
import { MAX_CONTENT_LENGTH } from '../../src/services/results/result-message.js';
import type { ResultRecord } from '../../src/services/results/result-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { DEFAULTS } from '../../src/services/segmind/flux-params.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace } from '../support/redis.js';

/** The gallery's claim: a result is posted once, whoever shares it and however many at once; a failed post frees it. */
const silent = pino({ level: 'silent' });
const CDN = 'https://cdn.discordapp.com/attachments/2/';

function record(id: string, images: ResultRecord['images'] = [{ index: 0, seed: 7 }], extra: Partial<ResultRecord> = {}): ResultRecord {
  return { v: 1, id, guildId: '1', channelId: '2', ownerId: '3', params: { ...DEFAULTS, prompt: 'a cat', seed: 7 }, images, createdAt: Date.now(), ...extra };
}

function source(files: string[] = ['flux-7.jpeg']): SourceMessage {
  return { guildId: '1', channelId: '2', messageId: '4', attachments: files.map((filename) => ({ url: `${CDN}${filename}`, filename, size: 3 })) };
}

/** A Discord stand-in: posts are recorded (and can be refused), images are served from the CDN URLs. */
function discord() {
  const posts: Array<{ route: string; files: Array<{ name: string; data: Buffer }> }> = [];
  const fetched: string[] = [];
  let refuseNext = false;
  const deps: Pick<GalleryDeps, 'rest' | 'fetch'> = {
    rest: {
      post: async (route: string, options?: { files?: Array<{ name: string; data: Buffer }> }) => {
        await new Promise((resolve) => setImmediate(resolve));
        if (refuseNext) {
          refuseNext = false;
          throw new Error('Discord refused the post');
        }
        posts.push({ route, files: options?.files ?? [] });
        return { id: String(900 + posts.length) };
      },
    },
    fetch: (url: string | URL | Request) => {
      fetched.push(typeof url === 'string' ? url : url instanceof URL ? url.href : url.url);
      return Promise.resolve(new Response(Buffer.from('img')));
    },
  };
  return { deps, posts, fetched, refuseNext: () => (refuseNext = true) };
}

function sharedBehaviour(open: () => Promise<Storage>) {
  let storage: Storage;
  beforeAll(async () => {
    storage = await open();
  });
  afterAll(async () => {
    await storage.close();
  });
  const gallery = (d: ReturnType<typeof discord>) => new Gallery({ storage, clock: systemClock, retentionDays: 30, log: silent, ...d.deps });

  it('posts once for twenty shares at once; the others are told it is already shared', async () => {
    const d = discord();
    const outcomes = await Promise.all(Array.from({ length: 20 }, () => gallery(d).share(record('10'), source(), '5', { kind: 'stars', count: 3 })));
    expect(d.posts).toHaveLength(1);
    expect(outcomes.filter((o) => o.kind === 'shared')).toEqual([{ kind: 'shared', link: 'https://discord.com/channels/1/5/901' }]);
    expect(outcomes.filter((o) => o.kind === 'already')).toHaveLength(19);
    expect(await gallery(d).share(record('10'), source(), '5', { kind: 'member', userId: '3' })).toEqual({
      kind: 'already',
      link: 'https://discord.com/channels/1/5/901',
    });
    expect(await gallery(d).sharedLink('10')).toBe('https://discord.com/channels/1/5/901');
  });

  it('frees the claim when the post fails, so the result can be shared again', async () => {
    const d = discord();
    d.refuseNext();
    await expect(gallery(d).share(record('20'), source(), '5', { kind: 'member', userId: '3' })).rejects.toThrow('Discord refused the post');
    expect(await gallery(d).sharedLink('20')).toBeUndefined();
    expect((await gallery(d).share(record('20'), source(), '5', { kind: 'member', userId: '3' })).kind).toBe('shared');
    expect(d.posts).toHaveLength(1);
  });

  it('claims nothing for a private result or one whose images were all flagged', async () => {
    const d = discord();
    expect(await gallery(d).share(record('30', undefined, { private: true }), source(), '5', { kind: 'member', userId: '3' })).toEqual({ kind: 'private' });
    expect(await gallery(d).share(record('31', [{ index: 0, seed: 7, spoiler: true }]), source(['SPOILER_flux-7.jpeg']), '5', { kind: 'stars', count: 1 })).toEqual({
      kind: 'nothing',
    });
    expect(d.posts).toEqual([]);
    expect(d.fetched).toEqual([]);
    expect(await gallery(d).sharedLink('30')).toBeUndefined();
    expect(await gallery(d).sharedLink('31')).toBeUndefined();
  });
}

describe('Gallery in memory', () => {
  sharedBehaviour(() => openStorage('memory://', { logger: silent }));
});

describe('Gallery on SQLite', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gallery-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  sharedBehaviour(() => openStorage(`sqlite://${join(dir, 'bot.sqlite')}`, { logger: silent }));
});

describeWithRedis('Gallery on Redis', () => {
  const namespace = redisTestNamespace();
  afterAll(async () => {
    await deleteRedisKeys(namespace);
  });
  sharedBehaviour(() => openStorage(REDIS_URL, { logger: silent, namespace }));

  let first: Storage | undefined;
  let second: Storage | undefined;
  beforeEach(async () => {
    [first, second] = await Promise.all([openStorage(REDIS_URL, { logger: silent, namespace }), openStorage(REDIS_URL, { logger: silent, namespace })]);
  });
  afterEach(async () => {
    await Promise.all([first?.close(), second?.close()]);
  });

  it('posts once when two processes sharing the Redis share at once', async () => {
    const d = discord();
    const shares = Array.from({ length: 10 }, (_, i) =>
      new Gallery({ storage: i % 2 === 0 ? first! : second!, clock: systemClock, retentionDays: 30, log: silent, ...d.deps }).share(record('40'), source(), '5', {
        kind: 'stars',
        count: 3,
      }),
    );
    expect((await Promise.all(shares)).filter((o) => o.kind === 'shared')).toHaveLength(1);
    expect(d.posts).toHaveLength(1);
  });
});

describe('what a gallery post takes and says', () => {
  let storage: Storage;
  beforeAll(async () => {
    storage = await openStorage('memory://', { logger: silent });
  });
  afterAll(async () => {
    await storage.close();
  });

  it("takes only the record's unflagged images, and never a SPOILER_ file whatever the record says", () => {
    const images = [
      { index: 0, seed: 7 },
      { index: 1, seed: 8, spoiler: true },
      { index: 2, seed: 9 },
    ];
    const files = ['flux-7.png', 'flux-8.png', 'SPOILER_flux-9.png', 'flux-10.png'];
    expect(shareableImages({ images }, source(files).attachments)).toEqual([{ url: `${CDN}flux-7.png`, filename: 'flux-7.png' }]);
  });

  it('downloads only from the URLs of Discord’s CDN, and stops at the size limit', async () => {
    const d = discord();
    const elsewhere: SourceMessage = { ...source(), attachments: [{ url: 'http://169.254.169.254/flux-7.jpeg', filename: 'flux-7.jpeg', size: 3 }] };
    const gallery = new Gallery({ storage, clock: systemClock, retentionDays: 30, log: silent, ...d.deps });
    await expect(gallery.share(record('50'), elsewhere, '5', { kind: 'stars', count: 1 })).rejects.toThrow("outside Discord's CDN");
    expect(d.fetched).toEqual([]);
    expect(await gallery.sharedLink('50')).toBeUndefined();

    const huge = new Gallery({
      storage,
      clock: systemClock,
      retentionDays: 30,
      log: silent,
      ...d.deps,
      fetch: () => Promise.resolve(new Response(Buffer.alloc(26 * 1024 * 1024))),
    });
    await expect(huge.share(record('51'), source(), '5', { kind: 'stars', count: 1 })).rejects.toThrow('over');
    expect(d.posts).toEqual([]);
  });

  it("names the member's own prompt escaped and cut to fit, the style, the author without a ping and the original", () => {
    const styled = {
      ownerId: '3',
      params: { ...DEFAULTS, prompt: 'a soft watercolour of a *cat*', seed: 1 },
      style: { name: 'soft_water', template: 'a soft watercolour of {prompt}', memberPrompt: 'a *cat*' },
    };
    expect(galleryContent(styled, 'https://discord.com/channels/1/2/4', { kind: 'member', userId: '6' })).toBe(
      '⭐ **a \\*cat\\*** — <@3>\nStyle: **soft\\_water** · [Original](https://discord.com/channels/1/2/4) · shared by <@6>',
    );
    const long = galleryContent({ ownerId: '3', params: { ...DEFAULTS, prompt: 'a_b '.repeat(500), seed: 1 } }, 'https://discord.com/channels/1/2/4', {
      kind: 'stars',
      count: 5,
    });
    expect(long.length).toBeLessThanOrEqual(MAX_CONTENT_LENGTH);
    expect(long).toMatch(/^⭐ \*\*(a\\_b )+a(\\_b?)?…\*\* — <@3>\n\[Original\]\(https:\/\/discord\.com\/channels\/1\/2\/4\) · starred by 5 members$/);
  });
});
