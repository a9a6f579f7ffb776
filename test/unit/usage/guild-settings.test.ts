import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { DEFAULT_NSFW_WORDS, GuildSettingsRepository } from '../../../src/services/usage/guild-settings.js';
import { openStorage } from '../../../src/services/storage/open-storage.js';
import type { Storage } from '../../../src/services/storage/storage.js';

const logger = createLogger({ level: 'silent', secrets: [] });

describe('guild settings records', () => {
  let storage: Storage;
  let repo: GuildSettingsRepository;
  beforeEach(async () => {
    storage = await openStorage('memory://', { logger });
    repo = new GuildSettingsRepository(storage, logger);
  });
  afterEach(async () => {
    await storage.close();
  });

  it('starts a server with defaults and the built-in NSFW words', async () => {
    const settings = await repo.get('1');
    expect(settings).toMatchObject({ dailyCredits: null, nsfwPolicy: 'off', exemptModerators: true, paused: null });
    expect(settings.nsfwWords).toEqual([...DEFAULT_NSFW_WORDS]);
  });

  it('keeps the readable fields of a damaged or older record and resets the rest', async () => {
    await storage.kv.set('settings:1', {
      dailyCredits: 7,
      cooldownSeconds: 'thirty',
      allowedChannels: ['123', 456],
      nsfwPolicy: 'sometimes',
      blocked: { '42': { by: '9', at: 1, reason: 'spam' } },
    });
    const settings = await repo.get('1');
    expect(settings.dailyCredits).toBe(7);
    expect(settings.cooldownSeconds).toBeNull();
    expect(settings.allowedChannels).toEqual([]);
    expect(settings.nsfwPolicy).toBe('off');
    expect(settings.blocked['42']?.reason).toBe('spam');
  });

  it('survives a record that is not an object at all', async () => {
    await storage.kv.set('settings:1', 'garbage');
    expect((await repo.get('1')).dailyCredits).toBeNull();
  });

  it('serialises concurrent edits so none is lost', async () => {
    await Promise.all(
      Array.from({ length: 20 }, (_, i) => repo.update('1', (s) => void s.allowedChannels.push(String(1000 + i)))),
    );
    expect((await repo.get('1')).allowedChannels).toHaveLength(20);
  });
});
