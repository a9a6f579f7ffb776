import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { Journal } from '../../src/services/generation/journal.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import { snowflake, type SentInteraction } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { immediateRefusal } from '../support/refusals.js';

/** Issue 17, the core: which language the bot's own answers are in, through the real discord.js client. */

const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
const quietLogger = createLogger({ level: 'silent', secrets: [] });

/** Discord answers the deferral of this interaction with a 400, so the command fails with an error nobody expected. */
function failDeferral(h: Harness, sent: () => SentInteraction): SentInteraction {
  h.discord.failNext({ method: 'POST', path: /^\/interactions\/\d+\/[^/]+\/callback$/ }, { status: 400, body: { code: 50035, message: 'Invalid Form Body' } });
  return sent();
}

describe('the language of the bot’s own answers', () => {
  let h: Harness;
  beforeAll(async () => {
    // The server's own Discord language is German: a member's answers must not follow it.
    h = await startHarness({ env: NO_LIMITS, discord: { guilds: [{ locale: 'de' }] } });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it("answers a Japanese member's unexpected error in Japanese, with its reference, and charges nothing", async () => {
    const member = snowflake();
    const sent = failDeferral(h, () => sendImagine(h.discord, { prompt: 'a lighthouse' }, { userId: member, locale: 'ja' }));
    const answer = await sent.waitForRequest((r) => r.path.endsWith('/callback') && r.status < 300);
    expect(messageOf(answer.json)).toMatchObject({
      content: `❌ ボット側で問題が発生しました。画像は生成されていません。（参照 \`${sent.id}\`）`,
      flags: 64,
    });
    expect(h.segmind.requests).toHaveLength(0);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: h.discord.guildId });
  });

  it('answers a member whose language the bot does not speak (Turkish) in English, not in the server’s German', async () => {
    const member = snowflake();
    const sent = failDeferral(h, () => sendImagine(h.discord, { prompt: 'a lighthouse' }, { userId: member, locale: 'tr' }));
    const answer = await sent.waitForRequest((r) => r.path.endsWith('/callback') && r.status < 300);
    expect(messageOf(answer.json).content).toBe(`❌ Something went wrong on the bot's side. Nothing was generated. (ref \`${sent.id}\`)`);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: h.discord.guildId });
  });

  it('tells each member in their own language that a button or a command is gone', async () => {
    const member = snowflake();
    const button = (locale: string) => h.discord.sendButton({ customId: 'retired:button', userId: member, locale });
    expect(await immediateRefusal(button('ko'))).toBe('❌ 이 버튼은 더 이상 작동하지 않아요.');
    expect(await immediateRefusal(button('zh-TW'))).toBe('❌ This button does not work any more.');
    const command = h.discord.sendSlashCommand({ name: 'retired-command', userId: member, locale: 'es-419' });
    expect(await immediateRefusal(command)).toBe('❌ Este comando ya no está disponible.');
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: h.discord.guildId });
  });

  it("tells a Korean member in Korean that storage is in trouble, at once and for free", async () => {
    const member = snowflake();
    const kv = h.storage.kv;
    const get = kv.get.bind(kv);
    // This member's preferences cannot be read (a broken connection): /imagine refuses before anything is reserved.
    kv.get = ((key: string, ...rest: unknown[]) =>
      key.startsWith('prefs:') && key.endsWith(`:${member}`)
        ? Promise.reject(new Error('connection reset'))
        : (get as (...args: unknown[]) => unknown)(key, ...rest)) as typeof kv.get;
    try {
      const sent = sendImagine(h.discord, { prompt: 'a lighthouse' }, { userId: member, locale: 'ko' });
      expect(await immediateRefusal(sent)).toBe(
        '❌ 봇 쪽에 문제가 있어 지금은 요청을 받을 수 없어요. 크레딧은 차감되지 않았어요. 1분 후에 다시 시도해 주세요.',
      );
    } finally {
      kv.get = get;
    }
    expect(h.segmind.requests).toHaveLength(0);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: h.discord.guildId });
  });

  it("journals a request with the member's language for their answers and the server's for channel posts", async () => {
    const member = snowflake();
    h.segmind.pause();
    const job = sendImagine(h.discord, { prompt: 'a lighthouse', seed: 7 }, { userId: member, locale: 'pt-BR' });
    await h.segmind.waitForInFlight(1);
    const [entry] = await new Journal(h.storage, 'main').list();
    expect(entry).toMatchObject({ id: job.id, locale: 'pt-BR', channelLocale: 'de' });
    h.segmind.resume();
    await eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === job.id), 'the job to finish');
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it('journals the language moderators fixed for both, whatever the member’s and the server’s', async () => {
    const member = snowflake();
    const settings = new GuildSettingsRepository(h.storage, quietLogger);
    await settings.update(h.discord.guildId, (s) => Object.assign(s, { language: 'fr' }));
    try {
      h.segmind.pause();
      const job = sendImagine(h.discord, { prompt: 'a lighthouse', seed: 8 }, { userId: member, locale: 'ja' });
      await h.segmind.waitForInFlight(1);
      const [entry] = await new Journal(h.storage, 'main').list();
      expect(entry).toMatchObject({ id: job.id, locale: 'fr', channelLocale: 'fr' });
      h.segmind.resume();
      await eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === job.id), 'the job to finish');
      await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
    } finally {
      await settings.update(h.discord.guildId, (s) => Object.assign(s, { language: 'auto' }));
    }
  });
});
