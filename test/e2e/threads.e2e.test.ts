import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { GuildSettingsRepository, newGuildSettings, type GuildSettings } from '../../src/services/usage/guild-settings.js';
import { snowflake, type RecordedRequest, type SentInteraction } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

/** Credits are counted, but no cooldown gets in the way of a member's second request. */
const LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0' };

const GUILD = snowflake();
const GENERAL = snowflake();
const AGE_RESTRICTED = snowflake();
const NSFW_PROMPT = 'a nude marble statue';

const quiet = createLogger({ level: 'silent', secrets: [] });
const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');

describe('a thread counts as age-restricted when the channel it belongs to is', () => {
  let h: Harness;
  let settings: GuildSettingsRepository;
  /** A member of their own for each test, so each test's ledger is its own. */
  let member: string;

  beforeAll(async () => {
    h = await startHarness({
      env: LIMITS,
      discord: {
        guilds: [
          {
            id: GUILD,
            channels: [
              { id: GENERAL, name: 'general' },
              { id: AGE_RESTRICTED, name: 'after-dark', nsfw: true },
            ],
          },
        ],
      },
    });
    settings = new GuildSettingsRepository(h.storage, quiet);
  });
  afterAll(() => h?.stop());

  beforeEach(async () => {
    await setServer({ nsfwPolicy: 'age_restricted' });
    member = snowflake();
  });

  function setServer(change: Partial<GuildSettings>): Promise<GuildSettings> {
    return settings.update(GUILD, (current) => Object.assign(current, newGuildSettings(), change));
  }

  function imagine(prompt: string, seed: number, where: string): SentInteraction {
    return sendImagine(h.discord, { prompt, seed, samples: 1 }, { guildId: GUILD, channelId: where, userId: member });
  }

  async function finished(sent: SentInteraction): Promise<void> {
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the credits to be settled', 10_000);
  }

  const ledger = (used: number) => expectConsistentLedger(h.storage, { [member]: used }, { guildId: GUILD });

  it('accepts and delivers an NSFW prompt in a thread of an age-restricted channel under the age_restricted policy', async () => {
    const thread = h.discord.addThread({ parentId: AGE_RESTRICTED, name: 'figure studies' });
    const before = h.segmind.requests.length;
    const sent = imagine(NSFW_PROMPT, 11, thread);

    const edit = await sent.waitForRequest((r) => isEdit(r) && r.files.length > 0, 10_000);
    expect(edit.status).toBeLessThan(300);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-11.webp']);
    expect(sent.payload).toMatchObject({ channel_id: thread, channel: { id: thread, parent_id: AGE_RESTRICTED } });
    expect(h.segmind.requests.length - before, 'one image generated').toBe(1);
    await finished(sent);
    await ledger(1);
  });

  it('posts a flagged image as it is in a thread of an age-restricted channel, as in the channel itself', async () => {
    const thread = h.discord.addThread({ parentId: AGE_RESTRICTED });
    h.checker.set('flagged', 12);
    const sent = imagine('a figure study', 12, thread);

    const edit = await sent.waitForRequest((r) => isEdit(r) && r.files.length > 0, 10_000);
    expect(edit.files.map((f) => f.name), 'not spoilered').toEqual(['flux-12.webp']);
    expect(messageOf(edit.json).embeds![0]!.image?.url).toBe('attachment://flux-12.webp');
    await finished(sent);
    await ledger(1);
  });

  it('refuses an NSFW prompt in a thread of a normal channel, privately, and charges nothing', async () => {
    const thread = h.discord.addThread({ parentId: GENERAL });
    const before = h.segmind.requests.length;
    const sent = imagine(NSFW_PROMPT, 13, thread);

    expect(await refusalAfterDeferral(sent)).toBe("❌ NSFW prompts (“nude”) are only allowed in this server's age-restricted channels.");
    expect(h.segmind.requests.length, 'nothing generated').toBe(before);
    await ledger(0);
  });

  it('spoilers a flagged image in a thread of a normal channel', async () => {
    const thread = h.discord.addThread({ parentId: GENERAL });
    h.checker.set('flagged', 14);
    const sent = imagine('a figure study', 14, thread);

    const edit = await sent.waitForRequest((r) => isEdit(r) && r.files.length > 0, 10_000);
    expect(edit.files.map((f) => f.name)).toEqual(['SPOILER_flux-14.webp']);
    await finished(sent);
    await ledger(1);
  });
});
