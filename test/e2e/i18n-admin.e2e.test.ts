import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { snowflake, type FakeGuildSpec, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';

/**
 * Issue 17, moderators: /imagine-admin answers in the moderator's Discord language unless the server fixed one with
 * `settings set language`, and what lands in the log channel (nobody's interaction) is in the server's language.
 */

const MANAGE_SERVER = String(1 << 5);
const CHANNEL = Number(ApplicationCommandOptionType.Channel);

interface Server {
  id: string;
  general: string;
  modLog: string;
}

/** A server of its own per test (settings never leak), with its own Discord language. */
function server(locale: string): { spec: FakeGuildSpec; server: Server } {
  const s: Server = { id: snowflake(), general: snowflake(), modLog: snowflake() };
  return {
    server: s,
    spec: {
      id: s.id,
      locale,
      channels: [
        { id: s.general, name: 'general' },
        { id: s.modLog, name: 'mod-log', type: ChannelType.GuildText },
      ],
    },
  };
}

const english = server('en-US');
const french = server('en-US');
const brazilian = server('pt-BR');
const fixedThenReset = server('ko');

interface Actor {
  userId: string;
  locale: string;
  permissions?: string;
}
const moderator = (locale: string): Actor => ({ userId: snowflake(), locale, permissions: MANAGE_SERVER });

/** `/imagine-admin <group> <sub>` with the nested options Discord sends; resolves with the reply's text. */
async function admin(h: Harness, s: Server, command: string, actor: Actor, leaf: SlashCommandOption[] = []): Promise<string> {
  const resolved: APIInteractionDataResolved = { channels: {} };
  for (const option of leaf)
    if (option.type === CHANNEL)
      resolved.channels![String(option.value)] = { id: String(option.value), name: 'mod-log', type: ChannelType.GuildText, permissions: '0' };
  const sent = h.discord.sendSlashCommand({
    name: 'imagine-admin',
    guildId: s.id,
    channelId: s.general,
    userId: actor.userId,
    locale: actor.locale,
    ...(actor.permissions === undefined ? {} : { permissions: actor.permissions }),
    options: nested(command, leaf),
    resolved,
  });
  return replyOf(sent);
}

function nested(command: string, leaf: SlashCommandOption[]): SlashCommandOption[] {
  let options = leaf;
  for (const [i, name] of command.split(' ').reverse().entries())
    options = [{ name, type: i === 0 ? ApplicationCommandOptionType.Subcommand : ApplicationCommandOptionType.SubcommandGroup, options }];
  return options;
}

async function replyOf(sent: SentInteraction): Promise<string> {
  const callback = await sent.waitForCallback();
  if ((callback.json as { type: number }).type === 4) return messageOf(callback.json).content ?? '';
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
  return messageOf(edit.json).content ?? '';
}

const language = (value: string): SlashCommandOption => ({ name: 'language', type: ApplicationCommandOptionType.String, value });

describe('/imagine-admin in the moderator’s or the server’s language', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { DEFAULT_COOLDOWN_SECONDS: '0', DEFAULT_DAILY_CREDITS: '20' },
      discord: { guilds: [english.spec, french.spec, brazilian.spec, fixedThenReset.spec] },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('shows a German moderator every setting in German, and refuses them in German', async () => {
    const s = english.server;
    const de = moderator('de');
    const view = await admin(h, s, 'settings view', de);
    expect(view.split('\n').slice(0, 3)).toEqual([
      '**/imagine-Einstellungen auf diesem Server**',
      'Tägliche Credits: **20** Credits pro Mitglied und UTC-Tag _(Bot-Standard)_',
      'Wartezeit: **0 s** zwischen zwei Anfragen _(Bot-Standard)_',
    ]);
    expect(view).toContain('Generierung: läuft');
    expect(view).toContain('Persönliche Kontingente: 0 Mitglieder');
    expect(view).toContain('Sprache: **auto** — die Discord-Sprache jedes Mitglieds; Kanalbeiträge in der des Servers (`en-US`) _(Bot-Standard)_');
    expect(view).not.toMatch(/credits per member|Daily credits/);

    // A refusal goes through the central error reply, in the same language.
    expect(await admin(h, s, 'settings set', de)).toBe('❌ Gib mindestens eine Einstellung an, die geändert werden soll.');
    // An English moderator of the same server still reads English.
    expect(await admin(h, s, 'settings view', moderator('en-US'))).toContain('Daily credits: **20** credits per member per UTC day _(bot default)_');
    await expectConsistentLedger(h.storage, {}, { guildId: s.id });
  });

  it('answers everyone in French once moderators fix the language to fr, whatever their own Discord language', async () => {
    const s = french.server;
    const en = moderator('en-US');
    // The reply to the change is already in the language chosen: the moderator sees what members will.
    expect(await admin(h, s, 'settings set', en, [language('fr')])).toBe('✅ Modifié : `language` → fr.');
    expect(await admin(h, s, 'settings view', en)).toContain('Langue : **Français** (`fr`) pour tout le monde _(serveur)_');

    const japaneseMember: Actor = { userId: snowflake(), locale: 'ja' };
    expect(await admin(h, s, 'pause', japaneseMember)).toBe('❌ Seuls les modérateurs peuvent utiliser /imagine-admin.');
    const japaneseModerator = moderator('ja');
    expect(await admin(h, s, 'block list', japaneseModerator)).toBe("Personne n'est bloqué.");
    expect(await admin(h, s, 'audit', japaneseModerator)).toMatch(
      new RegExp(`^\\*\\*Actions récentes des modérateurs\\*\\* \\(de la plus récente à la plus ancienne\\)\\n• <t:\\d+:R> <@${en.userId}> a modifié des réglages : \`language\` → fr$`),
    );
    await expectConsistentLedger(h.storage, {}, { guildId: s.id });
  });

  it('speaks each member’s own language again once the language is reset to auto', async () => {
    const s = fixedThenReset.server;
    const ja = moderator('ja');
    await admin(h, s, 'settings set', ja, [language('de')]);
    expect(await admin(h, s, 'block list', ja)).toBe('Niemand ist gesperrt.');
    const reset = await admin(h, s, 'settings reset', ja, [{ name: 'setting', type: ApplicationCommandOptionType.String, value: 'language' }]);
    expect(reset).toBe('✅ リセットしました：`language` をボットの既定値に。');
    expect(await admin(h, s, 'block list', ja)).toBe('ブロック中のメンバーはいません。');
    expect(await admin(h, s, 'settings view', ja)).toContain('言語：**auto** — 各メンバーの Discord の言語。チャンネルへの投稿はサーバーの言語（`ko`） _（ボットの既定値）_');
    await expectConsistentLedger(h.storage, {}, { guildId: s.id });
  });

  it('posts to the log channel in the server’s language while the German moderator reads German', async () => {
    const s = brazilian.server;
    const de = moderator('de');
    const isLogPost = (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${s.modLog}/messages`;
    const logChannel: SlashCommandOption = { name: 'log_channel', type: ApplicationCommandOptionType.Channel, value: s.modLog };

    expect(await admin(h, s, 'settings set', de, [logChannel])).toBe(`✅ Geändert: \`log_channel\` → <#${s.modLog}>. Dort wurde eine Testzeile gepostet.`);
    await admin(h, s, 'pause', de, [{ name: 'reason', type: ApplicationCommandOptionType.String, value: 'manutenção' }]);
    await eventually(() => h.discord.requests.filter(isLogPost).length === 3, 'three log-channel posts');
    expect(h.discord.requests.filter(isLogPost).map((r) => (r.json as { content: string }).content)).toEqual([
      `🛠️ <@${de.userId}> fez deste o canal de log do \`/imagine\`: ações de moderação e denúncias de membros são postadas aqui.`,
      `🛠️ <@${de.userId}> alterou configurações: \`log_channel\` → <#${s.modLog}>`,
      `🛠️ <@${de.userId}> pausou o /imagine: manutenção`,
    ]);
    // The audit keeps English; the moderator reads its actions in German.
    const audit = await admin(h, s, 'audit', de);
    expect(audit).toContain(`<@${de.userId}> hat /imagine pausiert: manutenção`);
    expect(audit).toContain(`<@${de.userId}> hat Einstellungen geändert: \`log_channel\` → <#${s.modLog}>`);
    await expectConsistentLedger(h.storage, {}, { guildId: s.id });
  });

  it('suggests the server languages by their own names', async () => {
    const s = english.server;
    const sent = h.discord.sendAutocomplete({
      name: 'imagine-admin',
      guildId: s.id,
      channelId: s.general,
      ...moderator('de'),
      options: nested('settings set', [{ ...language('fr'), focused: true }]),
    });
    await sent.waitForCallback();
    expect(sent.autocompleteChoices()).toEqual([{ name: 'fr — Français', value: 'fr' }]);
    await expectConsistentLedger(h.storage, {}, { guildId: s.id });
  });
});
