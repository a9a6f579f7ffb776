import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { GuildSettingsRepository, type GuildSettings } from '../../src/services/usage/guild-settings.js';
import { snowflake, type RecordedRequest, type SentInteraction } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

/**
 * Issue 17, the generation path: refusals, results, their buttons and late posts in the right language, through the
 * real discord.js client. The server's own Discord language is German throughout: a member's answers must not follow
 * it, and posts nobody interacted with must.
 */

const quietLogger = createLogger({ level: 'silent', secrets: [] });
const isResultEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0;

interface Row {
  components: Array<{ type: number; label?: string; custom_id?: string; placeholder?: string; options?: Array<{ label: string }> }>;
}
const rowsOf = (json: unknown): Row[] => (json as { components?: Row[] }).components ?? [];
const labelsOf = (json: unknown) => rowsOf(json).flatMap((row) => row.components.map((c) => c.label ?? c.placeholder));

describe('the generation path in the member’s or the server’s language', () => {
  let h: Harness;
  let settings: GuildSettingsRepository;
  const change = (patch: Partial<GuildSettings>) => settings.update(h.discord.guildId, (current) => Object.assign(current, patch));

  beforeAll(async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '100', DEFAULT_COOLDOWN_SECONDS: '0' }, discord: { guilds: [{ locale: 'de' }] } });
    settings = new GuildSettingsRepository(h.storage, quietLogger);
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(async () => {
    h.segmind.reset();
    await change({ language: 'auto', cooldownSeconds: null });
  });

  async function settled(sent: SentInteraction): Promise<void> {
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), `job ${sent.id} to settle`);
  }

  async function delivered(sent: SentInteraction): Promise<RecordedRequest> {
    expect((await sent.waitForCallback()).json).toMatchObject({ type: 5 });
    const edit = await sent.waitForRequest(isResultEdit);
    await settled(sent);
    return edit;
  }

  it('refuses a Japanese member on cooldown in Japanese, the <t:…:R> timestamp intact, and charges only the first image', async () => {
    await change({ cooldownSeconds: 600 });
    const member = snowflake();
    await delivered(sendImagine(h.discord, { prompt: 'first' }, { userId: member, locale: 'ja' }));
    const text = await refusalAfterDeferral(sendImagine(h.discord, { prompt: 'second' }, { userId: member, locale: 'ja' }));
    expect(text).toMatch(/^❌ クールダウン中です。<t:\d+:R>にもう一度お試しください。$/);
    const retryAt = Number(/<t:(\d+):R>/.exec(text)![1]) * 1000;
    expect(retryAt - Date.now()).toBeGreaterThan(590_000);
    expect(h.segmind.requests).toHaveLength(1);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it('shows a Brazilian member’s result, its buttons, its menu and its Details in Portuguese', async () => {
    const member = snowflake();
    const sent = sendImagine(h.discord, { prompt: 'um farol ao entardecer', samples: 2, seed: 42 }, { userId: member, locale: 'pt-BR' });
    const edit = await delivered(sent);
    const message = messageOf(edit.json);
    expect(message.content).toMatch(new RegExp(`^\\*\\*um farol ao entardecer\\*\\* — <@${member}>\\nseeds 42–43 · 1:1 · 25 passos · guidance 3\\.5 · \\d+\\.\\d s$`));
    expect(message.embeds![0]).toMatchObject({ footer: { text: 'FLUX.1 [dev]' } });
    expect(labelsOf(edit.json)).toEqual(['Gerar de novo', 'Remix', 'Detalhes', 'Apagar', 'Denunciar', 'Fazer remix de uma imagem…']);
    const menu = rowsOf(edit.json)[1]!.components[0]!;
    expect(menu.options!.map((o) => o.label)).toEqual(['✏️ Remix da imagem 1 (seed 42)', '✏️ Remix da imagem 2 (seed 43)']);

    const details = rowsOf(edit.json)[0]!.components[2]!.custom_id!;
    const press = h.discord.sendButton({ customId: details, messageId: sent.originalMessage()!.id, userId: member, locale: 'pt-BR' });
    const answer = await press.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    expect(messageOf(answer.json).content).toMatch(/^\*\*Todos os parâmetros deste resultado\*\*\nprompt: um farol ao entardecer\n[\s\S]*\*\*Reproduzir uma imagem\*\*\nImagem 1\n/);
    await expectConsistentLedger(h.storage, { [member]: 2 }, { guildId: h.discord.guildId });
  });

  it('posts a late result in the channel in the server’s language (German), not the Japanese member’s', async () => {
    const member = snowflake();
    // Sent 20 minutes ago: its token is dead, so the result is a new channel message nobody is waiting for.
    const sent = sendImagine(h.discord, { prompt: 'ein Leuchtturm', seed: 9 }, { userId: member, locale: 'ja', createdAt: Date.now() - 20 * 60_000 });
    expect((await sent.waitForCallback()).json).toMatchObject({ type: 5 });
    const post = await h.discord.waitForRequest(
      (r) => r.method === 'POST' && r.path === `/channels/${h.discord.channelId}/messages` && r.files.length > 0,
    );
    await settled(sent);
    expect(messageOf(post.json).content).toMatch(
      new RegExp(`^<@${member}> dein Bild hat etwas gedauert, deshalb kommt es hier in einer neuen Nachricht\\.\\n\\*\\*ein Leuchtturm\\*\\* — <@${member}>\\nSeed 9 · 1:1 · 25 Schritte · Guidance 3\\.5 · `),
    );
    expect(labelsOf(post.json)).toEqual(['Neu würfeln', 'Remix', 'Details', 'Löschen', 'Melden']);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it('answers a member whose language the bot does not speak (Turkish) in English, not the server’s German', async () => {
    await change({ cooldownSeconds: 600 });
    const member = snowflake();
    const edit = await delivered(sendImagine(h.discord, { prompt: 'a lighthouse', seed: 5 }, { userId: member, locale: 'tr' }));
    expect(messageOf(edit.json).content).toMatch(new RegExp(`^\\*\\*a lighthouse\\*\\* — <@${member}>\\nseed 5 · 1:1 · 25 steps · guidance 3\\.5 · `));
    expect(labelsOf(edit.json)).toEqual(['Re-roll', 'Remix', 'Details', 'Delete', 'Report']);
    const text = await refusalAfterDeferral(sendImagine(h.discord, { prompt: 'again' }, { userId: member, locale: 'tr' }));
    expect(text).toMatch(/^❌ You're on cooldown\. Try again <t:\d+:R>\.$/);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it('speaks the language moderators fixed (French) to a Japanese member: the result, its buttons and the refusal', async () => {
    await change({ language: 'fr', cooldownSeconds: 600 });
    const member = snowflake();
    const first = sendImagine(h.discord, { prompt: 'un phare', seed: 3 }, { userId: member, locale: 'ja' });
    const edit = await delivered(first);
    expect(messageOf(edit.json).content).toMatch(new RegExp(`^\\*\\*un phare\\*\\* — <@${member}>\\nseed 3 · 1:1 · 25 étapes · guidance 3\\.5 · `));
    expect(labelsOf(edit.json)).toEqual(['Relancer', 'Remix', 'Détails', 'Supprimer', 'Signaler']);
    // Details, read back from storage with the server's settings, answers in French too
    const details = rowsOf(edit.json)[0]!.components[2]!.custom_id!;
    const press = h.discord.sendButton({ customId: details, messageId: first.originalMessage()!.id, userId: member, locale: 'ja' });
    const answer = await press.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    expect(messageOf(answer.json).content).toMatch(/^\*\*Tous les paramètres de ce résultat\*\*\n/);
    const text = await refusalAfterDeferral(sendImagine(h.discord, { prompt: 'encore' }, { userId: member, locale: 'ja' }));
    expect(text).toMatch(/^❌ Tu dois patienter un peu\. Réessaie <t:\d+:R>\.$/);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it('shows a Korean member the remix form in Korean, and explains a wrong field in Korean at no cost', async () => {
    const member = snowflake();
    const sent = sendImagine(h.discord, { prompt: 'a windmill', seed: 3 }, { userId: member, locale: 'ko' });
    const edit = await delivered(sent);
    const remix = rowsOf(edit.json)[0]!.components[1]!.custom_id!;
    const press = h.discord.sendButton({ customId: remix, messageId: sent.originalMessage()!.id, userId: member, locale: 'ko' });
    const modal = ((await press.waitForCallback()).json as { type: number; data: { custom_id: string; title: string; components: Row[] } }).data;
    expect(modal.title).toBe('리믹스 · 이미지 1장');
    const inputs = modal.components.flatMap((row) => row.components) as unknown as Array<{ custom_id: string; label: string; value: string }>;
    expect(inputs.map((input) => input.label)).toEqual(['프롬프트', '화면 비율(예: 1:1, 16:9, 2:3, 9:16)', '스텝(1–50)', '가이던스(0–10)', '시드(숫자 또는 "random")']);
    const fields = Object.fromEntries(inputs.map((input) => [input.custom_id, input.value]));
    const submit = h.discord.sendModalSubmit({ customId: modal.custom_id, fields: { ...fields, steps: '80' }, userId: member, locale: 'ko' });
    const answer = messageOf((await submit.waitForCallback()).json);
    expect(answer).toMatchObject({ content: '❌ 올바르지 않은 항목이 있어요:\n• `steps`: 1에서 50 사이여야 해요', flags: 64 });
    expect(h.segmind.requests).toHaveLength(1);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: h.discord.guildId });
  });

  it('escapes a moderator’s block reason in a Korean member’s refusal, so it is never read as markup', async () => {
    const member = snowflake();
    await change({ blocked: { [member]: { by: snowflake(), at: Date.now(), reason: '**spam** in #general' } } });
    try {
      const text = await refusalAfterDeferral(sendImagine(h.discord, { prompt: 'a cat' }, { userId: member, locale: 'ko' }));
      expect(text).toBe('❌ 이 서버에서 이미지 생성이 차단되었어요. 사유: \\*\\*spam\\*\\* in #general');
      expect(h.segmind.requests).toHaveLength(0);
      await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: h.discord.guildId });
    } finally {
      await change({ blocked: {} });
    }
  });
});
