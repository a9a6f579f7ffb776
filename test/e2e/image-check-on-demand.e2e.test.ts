/**
 * The classifier is most of the bot's memory: a bot whose default is `DEFAULT_IMAGE_CHECK=off` does not load it until a
 * server turns its check on. The real classifier (worker thread, model) runs here, as `npm start` runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import type { RecordedRequest } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';

const LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0' };
const MEMBER = '777777777777777777';
const isImageEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0;
const quiet = createLogger({ level: 'silent', secrets: [] });

describe('the image classifier, loaded on demand when the bot-wide default is off', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { ...LIMITS, DEFAULT_IMAGE_CHECK: 'off' }, realClassifier: true });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const jobLine = async (jobId: string) => {
    const line = await eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === jobId), 'the job’s log line', 30_000);
    return line as typeof line & { segmind: Array<{ check?: unknown }> };
  };
  const classifierLines = () => h.logs.filter((l) => typeof l.msg === 'string' && /image classifier/.test(l.msg));

  it('starts without the model and posts images unchecked while no server checks them', async () => {
    expect(classifierLines()).toEqual([]);
    const sent = sendImagine(h.discord, { prompt: 'a lighthouse', seed: 1 }, { userId: MEMBER });
    expect((await sent.waitForRequest(isImageEdit)).files).toHaveLength(1);
    expect((await jobLine(sent.id)).segmind[0]!.check).toBe('off');
    expect(classifierLines()).toEqual([]);
  });

  it('loads the model when a server turns its check on, and checks that server’s images from then on', async () => {
    await new GuildSettingsRepository(h.storage, quiet).update(h.discord.guildId, (settings) => {
      settings.imageCheck = 'spoiler';
    });
    const sent = sendImagine(h.discord, { prompt: 'a lighthouse', seed: 2 }, { userId: MEMBER });
    expect((await sent.waitForRequest(isImageEdit, 60_000)).files).toHaveLength(1);
    const check = (await jobLine(sent.id)).segmind[0]!.check as { flagged: boolean; scores?: Record<string, number>; failure?: string };
    expect(check.failure).toBeUndefined();
    expect(Object.keys(check.scores ?? {}).sort()).toEqual(['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy']);
    expect(classifierLines().map((l) => l.msg)).toEqual(['loading the image classifier: a server checks images', 'image classifier loaded']);
    await expectConsistentLedger(h.storage, { [MEMBER]: 2 }, { guildId: h.discord.guildId });
  }, 90_000);
});
