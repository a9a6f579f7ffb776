import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../src/commands/index.js';
import { createLogger } from '../../src/logger.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import { snowflake } from '../fakes/fake-discord.js';
import { imagine, preferences, serverFixture, type Actor } from '../support/creative.js';
import { startHarness, type Harness } from '../support/harness.js';
import { messageOf } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';

/** Issue 17: the commands as Discord shows them in each language, and the member's own commands answered in theirs. */

interface Registered {
  name: string;
  description_localizations?: Record<string, string>;
  options?: Registered[];
  choices?: Array<{ value: string; name_localizations?: Record<string, string> }>;
}

const option = (command: Registered | undefined, ...path: string[]) =>
  path.reduce<Registered | undefined>((node, name) => node?.options?.find((o) => o.name === name), command);

describe('registered commands in every language', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('registers every command with its localizations, reads them back with Discord’s localizations and leaves them alone on restart', async () => {
    h = await startHarness();
    expect(h.discord.commandPuts).toHaveLength(1);
    expect(h.discord.commandPuts[0]!.body).toEqual(commandDefinitions);

    const registered = h.discord.registeredCommands() as Registered[];
    const imagineCommand = registered.find((c) => c.name === 'imagine');
    expect(imagineCommand?.description_localizations).toMatchObject({ ja: 'FLUX.1 [dev] で画像を生成', 'pt-BR': 'Gera imagens com o FLUX.1 [dev]' });
    expect(option(imagineCommand, 'prompt')?.description_localizations).toMatchObject({ de: 'Was gezeichnet werden soll', ko: '그릴 내용' });
    const admin = registered.find((c) => c.name === 'imagine-admin');
    const imageCheck = option(admin, 'settings', 'set', 'image_check');
    expect(imageCheck?.choices?.find((c) => c.value === 'block')?.name_localizations).toMatchObject({ fr: 'retenir', 'zh-CN': '扣留' });
    expect(option(admin, 'credits', 'give', 'member')?.description_localizations).toMatchObject({ 'es-ES': 'El miembro', 'es-419': 'El miembro' });

    await h.restartBot();
    await h.restartBot();
    expect(h.discord.commandPuts, 'nothing registered again').toHaveLength(1);
    expect(h.logs.filter((l) => l.msg === 'slash commands already up to date')).toHaveLength(2);
    const reads = h.discord.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/commands'));
    expect(reads).toHaveLength(3);
    for (const read of reads) expect(read.query.get('with_localizations')).toBe('true');
    await expectConsistentLedger(h.storage, {}, { guildId: h.discord.guildId });
  });

  it('registers again when Discord still has an older translation', async () => {
    const older = JSON.parse(JSON.stringify(commandDefinitions)) as Registered[];
    option(older.find((c) => c.name === 'imagine'), 'prompt')!.description_localizations!.fr = 'Quoi dessiner';
    h = await startHarness({ beforeStart: ({ discord }) => discord.setRegisteredCommands(older) });
    expect(h.discord.commandPuts).toHaveLength(1);
    const registered = h.discord.registeredCommands() as Registered[];
    expect(option(registered.find((c) => c.name === 'imagine'), 'prompt')?.description_localizations?.fr).toBe('Ce qu’il faut dessiner');
    await expectConsistentLedger(h.storage, {}, { guildId: h.discord.guildId });
  });
});

describe('a member’s own commands in their language', () => {
  let h: Harness;
  const server = serverFixture();
  const place = { guildId: server.ids.guildId, channelId: server.ids.general };
  const settings = () => new GuildSettingsRepository(h.storage, createLogger({ level: 'silent', secrets: [] }));
  beforeAll(async () => {
    // The server's own Discord language is German: a member's answers follow the member.
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '5', DEFAULT_COOLDOWN_SECONDS: '0' }, discord: { guilds: [{ ...server.spec, locale: 'de' }] } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function credits(userId: string, locale: string): Promise<string[]> {
    const callback = await h.discord.sendSlashCommand({ name: 'credits', ...place, userId, locale }).waitForCallback();
    expect(callback.json).toMatchObject({ type: 4, data: { flags: 64 } });
    return (messageOf(callback.json).content ?? '').split('\n');
  }

  it('/credits answers a Korean member in Korean, with the reset time as a Discord timestamp', async () => {
    const member = snowflake();
    const lines = await credits(member, 'ko');
    expect(lines[0]).toBe('**이 서버에서 내 이미지 크레딧**');
    expect(lines[1]).toBe('오늘 이미지를 **5장 더** 만들 수 있어요.');
    expect(lines[2]).toMatch(/^오늘 할당량: 5장 중 \*\*5\*\*장 남음 — <t:\d+:R> 초기화$/);
    expect(lines[3]).toBe('보너스: **0 크레딧** (모더레이터가 지급, 만료 없음, 오늘 할당량을 다 쓴 뒤에 사용)');
    expect(lines[4]).toBe('쿨다운: 없음, 지금 생성할 수 있어요');
    expect(lines.at(-1)).toBe('크레딧 1 = 이미지 1장 (`samples: 4`는 4). 실패한 이미지는 차감되지 않아요.');
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: place.guildId });
  });

  it('/credits answers a member whose language the bot does not speak in English, not in the server’s German', async () => {
    const member = snowflake();
    expect((await credits(member, 'tr'))[0]).toBe('**Your image credits in this server**');
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: place.guildId });
  });

  it('/preferences and Generation info answer a Japanese member in Japanese, the prompt shown as typed', async () => {
    const member = { userId: snowflake(), locale: 'ja' } as Actor;
    expect(await preferences(h, place, member, 'set', { samples: 2, private: false })).toBe(
      '✅ 保存しました: `samples` **2**、`private` いいえ。これらのオプションを省くと `/imagine` がこの値を使います。',
    );
    const view = (await preferences(h, place, member, 'view')).split('\n');
    expect(view[0]).toBe('**このサーバーでのあなたの設定**');
    expect(view.at(-1)).toBe('**プロンプトだけの `/imagine`（ここで、今）:** スタイルなし · 1:1 · guidance 3.5 · 25 ステップ · 2 枚 · webp 画質 80 · 公開');

    const result = await imagine(h, place, member, { prompt: 'a *lighthouse* at dusk', samples: 1 });
    const sent = h.discord.sendMessageCommand({ name: 'Generation info', targetMessageId: result.sent.originalMessage()!.id, ...place, ...member });
    const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    const info = (messageOf(edit.json).content ?? '').split('\n');
    expect(info[0]).toBe('**生成情報**');
    expect(info[1]).toMatch(new RegExp(`^<@${member.userId}> が <#${place.channelId}> で作成 · <t:\\d+:f>（<t:\\d+:R>）$`));
    expect(info[2]).toBe('> a \\*lighthouse\\* at dusk');
    expect(info[3]).toMatch(/^シード: `\d+`$/);
    expect(info[4]).toMatch(/^ステップ: 25 · Guidance: 3\.5 · アスペクト比: 1:1 · 形式: webp（画質 80）$/);
    await expectConsistentLedger(h.storage, { [member.userId]: 1 }, { guildId: place.guildId });
  });

  it('a language the moderators fixed wins over the member’s, refusals included', async () => {
    await settings().update(place.guildId, (s) => Object.assign(s, { language: 'fr' }));
    try {
      const member = { userId: snowflake(), locale: 'ko' } as Actor;
      expect((await credits(member.userId, 'ko'))[0]).toBe('**Tes crédits d’images sur ce serveur**');
      expect(await preferences(h, place, member, 'set', { style: 'watercolour' })).toBe(
        '❌ Ce serveur n’a aucun style nommé `watercolour`. Choisis-en un parmi les suggestions, ou `none`. Rien n’a été enregistré.',
      );
      expect(await preferences(h, place, member, 'view')).toMatch(/^Tu n’as aucune préférence sur ce serveur/);
      await expectConsistentLedger(h.storage, { [member.userId]: 0 }, { guildId: place.guildId });
    } finally {
      await settings().update(place.guildId, (s) => Object.assign(s, { language: 'auto' }));
    }
  });
});
