import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { PreferenceStore } from '../../../src/services/creative/preference-store.js';
import { CACHE_TTL_MS, findStyle, StyleStore, type Style } from '../../../src/services/creative/style-store.js';
import { openStorage } from '../../../src/services/storage/open-storage.js';
import type { Storage } from '../../../src/services/storage/storage.js';

const logger = createLogger({ level: 'silent', secrets: [] });
const anime: Style = { name: 'anime', template: '{prompt}, anime', createdBy: '42', createdAt: 1 };

describe('the style store', () => {
  let storage: Storage;
  let now: number;
  let store: StyleStore;
  beforeEach(async () => {
    storage = await openStorage('memory://', { logger });
    now = 1_000_000;
    store = new StyleStore(storage, { now: () => now, sleep: () => Promise.resolve() }, logger);
  });
  afterEach(async () => {
    await storage.close();
  });

  it('starts a server with no styles and no defaults', async () => {
    expect(await store.get('1')).toEqual({ v: 1, styles: [], serverDefault: null, channelDefaults: {} });
  });

  it('stores changes and finds styles by name whatever the case', async () => {
    await store.update('1', (styles) => {
      styles.styles.push(anime);
      styles.serverDefault = 'anime';
    });
    const read = await store.get('1');
    expect(findStyle(read, 'ANIME')).toEqual(anime);
    expect(read.serverDefault).toBe('anime');
    expect(await store.get('2')).toMatchObject({ styles: [] });
  });

  it('writes nothing when a change refuses halfway', async () => {
    await store.update('1', (styles) => void styles.styles.push(anime));
    await expect(
      store.update('1', (styles) => {
        styles.styles.length = 0;
        throw new Error('refused');
      }),
    ).rejects.toThrow('refused');
    expect((await store.get('1')).styles).toEqual([anime]);
    expect((await store.cached('1')).styles).toEqual([anime]);
  });

  it('keeps the readable styles of a damaged record', async () => {
    await storage.kv.set('styles:1', { styles: [anime, { name: 'broken' }], serverDefault: 7, channelDefaults: { '5': 'anime' } });
    expect(await store.get('1')).toEqual({ v: 1, styles: [anime], serverDefault: null, channelDefaults: { '5': 'anime' } });
  });

  it('serves autocomplete from a cached read for a few seconds, and its own writes at once', async () => {
    await store.update('1', (styles) => void styles.styles.push(anime));
    expect((await store.cached('1')).styles).toHaveLength(1);
    // Another process writes: this one's cache does not see it until it expires.
    await storage.kv.set('styles:1', { v: 1, styles: [], serverDefault: null, channelDefaults: {} });
    expect((await store.cached('1')).styles).toHaveLength(1);
    now += CACHE_TTL_MS;
    expect((await store.cached('1')).styles).toHaveLength(0);
    // The /imagine path always reads fresh.
    await storage.kv.set('styles:1', { v: 1, styles: [anime], serverDefault: null, channelDefaults: {} });
    expect((await store.get('1')).styles).toHaveLength(1);
  });
});

describe('the preference store', () => {
  let storage: Storage;
  let store: PreferenceStore;
  beforeEach(async () => {
    storage = await openStorage('memory://', { logger });
    store = new PreferenceStore(storage);
  });
  afterEach(async () => {
    await storage.close();
  });

  it('keeps each member’s preferences per server, merging each set into the last', async () => {
    expect(await store.get('1', '7')).toEqual({});
    await store.set('1', '7', { samples: 2, style: 'anime' });
    expect(await store.set('1', '7', { private: true, samples: undefined })).toEqual({ samples: 2, style: 'anime', private: true });
    expect(await store.get('1', '7')).toEqual({ samples: 2, style: 'anime', private: true });
    expect(await store.get('2', '7')).toEqual({});
    expect(await store.get('1', '8')).toEqual({});
  });

  it('resets them all, saying whether there was anything', async () => {
    await store.set('1', '7', { steps: 30 });
    expect(await store.reset('1', '7')).toBe(true);
    expect(await store.get('1', '7')).toEqual({});
    expect(await store.reset('1', '7')).toBe(false);
  });

  it('drops only the unreadable values of a damaged record', async () => {
    await storage.kv.set('prefs:1:7', { samples: 9, aspect_ratio: '2:3', private: 'yes' });
    expect(await store.get('1', '7')).toEqual({ aspect_ratio: '2:3' });
  });
});
