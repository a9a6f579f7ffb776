import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved } from 'discord.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition as adminDefinition } from '../../src/commands/imagine-admin/index.js';
import { snowflake, type FakeGuildSpec, type RecordedRequest, type SentInteraction, type SlashCommandOption } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';

const MANAGE_SERVER = String(1 << 5);
const EPHEMERAL = 64;

interface GuildFixture {
  id: string;
  general: string;
  modLog: string;
  genLog: string;
  art: string;
  forum: string;
  artistRole: string;
  moderator: string;
}

function guildFixture(): { spec: FakeGuildSpec; fixture: GuildFixture } {
  const fixture: GuildFixture = {
    id: snowflake(),
    general: snowflake(),
    modLog: snowflake(),
    genLog: snowflake(),
    art: snowflake(),
    forum: snowflake(),
    artistRole: snowflake(),
    moderator: snowflake(),
  };
  return {
    fixture,
    spec: {
      id: fixture.id,
      channels: [
        { id: fixture.general, name: 'general' },
        { id: fixture.modLog, name: 'mod-log' },
        { id: fixture.genLog, name: 'generations' },
        { id: fixture.art, name: 'art' },
        { id: fixture.forum, name: 'gallery', type: ChannelType.GuildForum },
      ],
      roles: [{ id: fixture.artistRole, name: 'Artists' }],
    },
  };
}

// A server per test: settings, blocks and audit never leak from one test into another.
const guilds = Array.from({ length: 14 }, guildFixture);
const channelsById = new Map(guilds.flatMap((g) => (g.spec.channels ?? []).map((c) => [c.id!, c] as const)));
let nextGuild = 0;
function freshGuild(): GuildFixture {
  const guild = guilds[nextGuild++];
  if (!guild) throw new Error('add more guild fixtures');
  return guild.fixture;
}

interface Actor {
  userId: string;
  permissions?: string;
}
const moderatorOf = (guild: GuildFixture): Actor => ({ userId: guild.moderator, permissions: MANAGE_SERVER });
const member = (): Actor => ({ userId: snowflake() });

// ---------------------------------------------------------------------------------------------------------------------
// /imagine-admin as Discord sends it

interface DefinedOption {
  name: string;
  type: number;
  options?: readonly DefinedOption[];
}

function nestedOptions(command: string, leaf: SlashCommandOption[]): SlashCommandOption[] {
  let options = leaf;
  for (const [i, name] of command.split(' ').reverse().entries())
    options = [{ name, type: i === 0 ? ApplicationCommandOptionType.Subcommand : ApplicationCommandOptionType.SubcommandGroup, options }];
  return options;
}

function optionTypes(command: string): Map<string, number> {
  let level = adminDefinition.options as readonly DefinedOption[];
  for (const name of command.split(' ')) level = level.find((o) => o.name === name)?.options ?? [];
  return new Map(level.map((o) => [o.name, o.type]));
}

interface AdminReply {
  content: string;
  request: RecordedRequest;
}

async function admin(h: Harness, guild: GuildFixture, command: string, values: Record<string, string | number | boolean> = {}, actor = moderatorOf(guild)): Promise<AdminReply> {
  const types = optionTypes(command);
  const leaf = Object.entries(values).map(([name, value]) => {
    const type = types.get(name);
    if (type === undefined) throw new Error(`/imagine-admin ${command} has no option ${name}`);
    return { name, type, value };
  });
  const resolved: APIInteractionDataResolved = { channels: {} };
  for (const option of leaf)
    if (option.type === Number(ApplicationCommandOptionType.Channel))
      resolved.channels![String(option.value)] = {
        id: String(option.value),
        name: channelsById.get(String(option.value))?.name ?? 'channel',
        type: channelsById.get(String(option.value))?.type ?? ChannelType.GuildText,
        permissions: '0',
      };
  const sent = h.discord.sendSlashCommand({
    name: 'imagine-admin',
    guildId: guild.id,
    channelId: guild.general,
    ...actor,
    options: nestedOptions(command, leaf),
    resolved,
  });
  const callback = await sent.waitForCallback();
  if ((callback.json as { type: number }).type === 4) return { content: messageOf(callback.json).content ?? '', request: callback };
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
  return { content: messageOf(edit.json).content ?? '', request: edit };
}

function autocomplete(h: Harness, guild: GuildFixture, command: string, option: string, typed: string, actor = moderatorOf(guild)): SentInteraction {
  return h.discord.sendAutocomplete({
    name: 'imagine-admin',
    guildId: guild.id,
    channelId: guild.general,
    ...actor,
    options: nestedOptions(command, [{ name: option, type: ApplicationCommandOptionType.String, value: typed, focused: true }]),
  });
}

async function choicesOf(sent: SentInteraction): Promise<Array<{ name: string; value: string | number }>> {
  const callback = await sent.waitForCallback();
  expect(callback.status).toBe(204);
  expect(callback.json).toMatchObject({ type: 8 });
  return sent.autocompleteChoices() ?? [];
}

// ---------------------------------------------------------------------------------------------------------------------
// Results, and what the bot says about them

interface Result {
  sent: SentInteraction;
  messageId: string;
  seed: number;
}

async function imagine(h: Harness, guild: GuildFixture, owner: Actor, prompt: string, channelId = guild.general): Promise<Result> {
  const before = h.segmind.requests.length;
  const sent = sendImagine(h.discord, { prompt, samples: 1 }, { guildId: guild.id, channelId, ...owner });
  await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0);
  await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the credits to be settled');
  const message = sent.originalMessage();
  if (!message) throw new Error('no result message');
  return { sent, messageId: message.id, seed: (h.segmind.requests[before]!.body as { seed: number }).seed };
}

interface SentButton {
  custom_id: string;
  label: string;
}

interface Info {
  sent: SentInteraction;
  content: string;
  buttons: SentButton[];
  edit: RecordedRequest;
}

/** Generation info on a message: deferred privately, then the answer written in. */
async function generationInfo(h: Harness, guild: GuildFixture, messageId: string, actor: Actor): Promise<Info> {
  const sent = h.discord.sendMessageCommand({ name: 'Generation info', targetMessageId: messageId, guildId: guild.id, channelId: guild.general, ...actor });
  const callback = await sent.waitForCallback();
  expect(callback.json).toMatchObject({ type: 5 });
  expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL, 'answered privately').toBe(EPHEMERAL);
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
  const rows = (edit.json as { components?: Array<{ components: SentButton[] }> }).components ?? [];
  return { sent, content: messageOf(edit.json).content ?? '', buttons: rows.flatMap((row) => row.components), edit };
}

/** A press answered privately: an ephemeral deferral, then the text written in. */
async function pressPrivately(h: Harness, guild: GuildFixture, info: Info, label: string, actor: Actor, customId?: string): Promise<string> {
  const id = customId ?? info.buttons.find((b) => b.label === label)?.custom_id;
  if (id === undefined) throw new Error(`no ${label} button`);
  const sent = h.discord.sendButton({ customId: id, messageId: info.sent.originalMessage()!.id, guildId: guild.id, channelId: guild.general, ...actor });
  const callback = await sent.waitForCallback();
  expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL, 'answered privately').toBe(EPHEMERAL);
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
  expect(edit.json).toMatchObject({ allowed_mentions: { parse: [] } });
  return messageOf(edit.json).content ?? '';
}

/** The server's audit entries, newest first, without their times (each checked to be one). */
async function auditOf(h: Harness, guild: GuildFixture): Promise<Array<{ actorId: string; action: string; details: string }>> {
  const entries = ((await h.storage.kv.get(`audit:${guild.id}`)) as Array<{ at: number; actorId: string; action: string; details: string }> | undefined) ?? [];
  return entries.map(({ at, ...entry }) => {
    expect(typeof at).toBe('number');
    return entry;
  });
}

const posts = (h: Harness, channelId: string) =>
  h.discord.requests.filter((r) => r.method === 'POST' && r.path === `/channels/${channelId}/messages` && r.status < 300).map((r) => r.json as { content: string; allowed_mentions?: unknown });

// ---------------------------------------------------------------------------------------------------------------------

describe('moderators see who made what, and undo it; /imagine-admin for a busy server', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({
      env: { DEFAULT_COOLDOWN_SECONDS: '0', DEFAULT_DAILY_CREDITS: '20' },
      discord: { guilds: guilds.map((g) => g.spec) },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it('Generation info shows a moderator the owner, prompt and settings, with Block owner and Delete that work and are audited', async () => {
    const guild = freshGuild();
    const owner = member();
    await admin(h, guild, 'settings set', { log_channel: guild.modLog });
    const result = await imagine(h, guild, owner, 'a lighthouse at *dusk*');

    const info = await generationInfo(h, guild, result.messageId, moderatorOf(guild));
    expect(info.content).toContain(`Made by <@${owner.userId}> in <#${guild.general}>`);
    expect(info.content).toContain('> a lighthouse at \\*dusk\\*');
    expect(info.content).toContain(`Seed: \`${result.seed}\``);
    expect(info.content).toMatch(/Steps: \d+ · Guidance: [\d.]+ · Aspect ratio: 1:1 · Format: /);
    expect(info.content).toMatch(/<t:\d+:f>/);
    expect(info.edit.json, 'the owner is named, never pinged').toMatchObject({ allowed_mentions: { parse: [] } });
    expect(info.buttons.map((b) => b.label)).toEqual(['Delete', 'Block owner']);
    for (const button of info.buttons) expect(button.custom_id.length).toBeLessThanOrEqual(100);

    expect(await pressPrivately(h, guild, info, 'Block owner', moderatorOf(guild))).toBe(`✅ Blocked <@${owner.userId}> from \`/imagine\` in this server.`);
    const blocked = sendImagine(h.discord, { prompt: 'one more', samples: 1 }, { guildId: guild.id, channelId: guild.general, ...owner });
    expect(await refusalAfterDeferral(blocked)).toBe('❌ You are blocked from generating images in this server.');

    expect(await pressPrivately(h, guild, info, 'Delete', moderatorOf(guild))).toBe(`🗑️ Deleted the result of <@${owner.userId}>.`);
    const deletion = h.discord.requests.filter((r) => r.method === 'DELETE' && r.path === `/channels/${guild.general}/messages/${result.messageId}`);
    expect(deletion.map((r) => r.status)).toEqual([204]);
    expect(h.discord.message(result.messageId)).toBeUndefined();
    expect(await h.storage.kv.get(`result:${result.sent.id}`)).toBeUndefined();

    const audit = await auditOf(h, guild);
    expect(audit.slice(0, 2)).toEqual([
      { actorId: guild.moderator, action: 'deleted a result', details: `<@${owner.userId}>'s result in <#${guild.general}> — “a lighthouse at \\*dusk\\*”` },
      { actorId: guild.moderator, action: 'blocked a member', details: `<@${owner.userId}>` },
    ]);
    await eventually(() => posts(h, guild.modLog).some((p) => p.content.includes('deleted a result')), 'the deletion in the log channel');
    expect(posts(h, guild.modLog).at(-1)).toEqual({
      content: `🛠️ <@${guild.moderator}> deleted a result: <@${owner.userId}>'s result in <#${guild.general}> — “a lighthouse at \\*dusk\\*”`,
      allowed_mentions: { parse: [] },
    });
    await expectConsistentLedger(h.storage, { [owner.userId]: 1 }, { guildId: guild.id });
  });

  it('Generation info shows a member the same info without buttons, and refuses a forged moderator button', async () => {
    const guild = freshGuild();
    const owner = member();
    const curious = member();
    const result = await imagine(h, guild, owner, 'a quiet harbour');

    const info = await generationInfo(h, guild, result.messageId, curious);
    expect(info.content).toContain(`Made by <@${owner.userId}>`);
    expect(info.content).toContain('> a quiet harbour');
    expect(info.buttons).toEqual([]);
    expect(info.edit.json).toMatchObject({ allowed_mentions: { parse: [] } });

    const forged = `mod:delete:${result.sent.id}:${result.messageId}`;
    expect(await pressPrivately(h, guild, info, 'Delete', curious, forged)).toBe('❌ Only moderators can use this button.');
    expect(await pressPrivately(h, guild, info, 'Block owner', curious, `mod:block:${result.sent.id}`)).toBe('❌ Only moderators can use this button.');
    expect(h.discord.message(result.messageId), 'nothing was deleted').toBeDefined();
    expect(await h.storage.kv.get(`result:${result.sent.id}`)).toBeDefined();
    expect(await auditOf(h, guild)).toEqual([]);
    await expectConsistentLedger(h.storage, { [owner.userId]: 1, [curious.userId]: 0 }, { guildId: guild.id });
  });

  it('Generation info on a message that is not a result, or whose result is no longer kept, says so privately', async () => {
    const guild = freshGuild();
    const owner = member();
    const someoneElses = h.discord.sendMessageCommand({ name: 'Generation info', targetMessageId: snowflake(), guildId: guild.id, channelId: guild.general, ...owner });
    const callback = await someoneElses.waitForCallback();
    expect(callback.json).toMatchObject({ type: 4, data: { flags: EPHEMERAL, content: '❌ Generation info works on images this bot posted; this message is not one of them.' } });

    const result = await imagine(h, guild, owner, 'a paper moon');
    await h.storage.kv.delete(`result:${result.sent.id}`);
    const sent = h.discord.sendMessageCommand({ name: 'Generation info', targetMessageId: result.messageId, guildId: guild.id, channelId: guild.general, ...moderatorOf(guild) });
    const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    expect(messageOf(edit.json).content).toBe('❌ The details of this result are no longer kept (results are kept for a limited time, or it was deleted).');
    await expectConsistentLedger(h.storage, { [owner.userId]: 1 }, { guildId: guild.id });
  });

  it('posts one line per delivered result to the generation log channel: member, prompt, link, and no pings', async () => {
    const guild = freshGuild();
    const owner = member();
    const set = await admin(h, guild, 'settings set', { generation_log_channel: guild.genLog });
    expect(set.content).toBe(`✅ Changed \`generation_log_channel\` → <#${guild.genLog}>. A test line was posted there.`);
    expect(posts(h, guild.genLog)).toEqual([
      {
        content: `🛠️ <@${guild.moderator}> made this the generation log of \`/imagine\`: one line per image result is posted here (who, prompt, link).`,
        allowed_mentions: { parse: [] },
      },
    ]);
    expect((await admin(h, guild, 'settings view')).content).toContain(`Generation log: <#${guild.genLog}> (one line per image result)`);

    const result = await imagine(h, guild, owner, 'a _tiny_ robot   watering plants @everyone');
    const line = await eventually(() => posts(h, guild.genLog)[1], 'the generation log line');
    expect(line).toEqual({
      content: `<@${owner.userId}> · a \\_tiny\\_ robot watering plants @everyone · https://discord.com/channels/${guild.id}/${guild.general}/${result.messageId}`,
      allowed_mentions: { parse: [] },
    });
    expect(h.discord.message(result.messageId), 'the link leads to the result').toBeDefined();

    await admin(h, guild, 'settings reset', { setting: 'generation_log_channel' });
    expect((await admin(h, guild, 'settings view')).content).toContain('Generation log: none');
    await expectConsistentLedger(h.storage, { [owner.userId]: 1 }, { guildId: guild.id });
  });

  it('records a moderator’s 🗑️ Delete under the result in the audit log with the prompt and the owner; the owner’s own is not', async () => {
    const guild = freshGuild();
    const owner = member();
    const mine = await imagine(h, guild, owner, 'my own sketch');
    const theirs = await imagine(h, guild, owner, 'a rude doodle');
    const deleteButton = (result: Result) =>
      ((result.sent.originalMessage()?.components ?? []) as Array<{ components: Array<{ custom_id?: string; label?: string }> }>)
        .flatMap((row) => row.components)
        .find((c) => c.label === 'Delete')!.custom_id!;
    const press = async (result: Result, actor: Actor) => {
      const sent = h.discord.sendButton({ customId: deleteButton(result), messageId: result.messageId, guildId: guild.id, channelId: guild.general, ...actor });
      const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
      return messageOf(edit.json).content;
    };

    expect(await press(mine, owner)).toBe('🗑️ Deleted.');
    expect(await auditOf(h, guild), 'a member deleting their own images is no moderator action').toEqual([]);
    expect(await press(theirs, moderatorOf(guild))).toBe('🗑️ Deleted.');
    expect(await auditOf(h, guild)).toEqual([
      { actorId: guild.moderator, action: 'deleted a result', details: `<@${owner.userId}>'s result in <#${guild.general}> — “a rude doodle”` },
    ]);
    expect((await admin(h, guild, 'audit')).content).toContain(`deleted a result: <@${owner.userId}>'s result in <#${guild.general}> — “a rude doodle”`);
    await expectConsistentLedger(h.storage, { [owner.userId]: 2 }, { guildId: guild.id });
  });

  it('`words add` takes a comma-separated list: trimmed, deduplicated, each checked, one answer', async () => {
    const guild = freshGuild();
    const added = await admin(h, guild, 'words add', { phrase: ' gore , Blood*, gore, ***, blood* ', list: 'banned' });
    expect(added.content).toBe('✅ Added `gore`, `Blood*` to the banned list. Disguises like `g.o.r.e` are caught too.\nSkipped 1 phrase: `***` (no letters or digits to match)');
    const again = await admin(h, guild, 'words add', { phrase: 'gore, skull', list: 'banned' });
    expect(again.content).toBe('✅ Added `skull` to the banned list. Disguises like `s.k.u.l.l` are caught too.\nSkipped 1 phrase: `gore` (already in the list)');
    expect((await admin(h, guild, 'words add', { phrase: 'GORE', list: 'banned' })).content).toBe('❌ `GORE` is already in the banned list.');
    expect((await admin(h, guild, 'words list', { list: 'banned' })).content).toBe('**Banned words (refused everywhere)** (3)\n`gore`, `Blood*`, `skull`');
    const audit = await auditOf(h, guild);
    expect(audit.map((e) => [e.action, e.details])).toEqual([
      ['added to the banned words', '`skull`'],
      ['added to the banned words', '`gore`, `Blood*`'],
    ]);
    await expectConsistentLedger(h.storage, { [guild.moderator]: 0 }, { guildId: guild.id });
  });

  it('`words list export:true` attaches the whole list as words.txt, privately; `words reset` audits the words it removed', async () => {
    const guild = freshGuild();
    await admin(h, guild, 'words add', { phrase: 'gore, skull, blood*', list: 'banned' });
    const sent = h.discord.sendSlashCommand({
      name: 'imagine-admin',
      guildId: guild.id,
      channelId: guild.general,
      ...moderatorOf(guild),
      options: nestedOptions('words list', [
        { name: 'list', type: ApplicationCommandOptionType.String, value: 'banned' },
        { name: 'export', type: ApplicationCommandOptionType.Boolean, value: true },
      ]),
    });
    const callback = await sent.waitForCallback();
    expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL).toBe(EPHEMERAL);
    const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
    expect(messageOf(edit.json).content).toBe('**Banned words (refused everywhere)** (3): attached as `words.txt`, one per line.');
    expect(edit.files.map((f) => [f.name, f.bytes.toString()])).toEqual([['words.txt', 'gore\nskull\nblood*\n']]);

    expect((await admin(h, guild, 'words reset', { list: 'banned' })).content).toBe('✅ The banned list is empty.');
    await admin(h, guild, 'words add', { phrase: 'tentacle', list: 'nsfw' });
    await admin(h, guild, 'words reset', { list: 'nsfw' });
    const audit = await auditOf(h, guild);
    expect(audit.slice(0, 3).map((e) => [e.action, e.details])).toEqual([
      ['reset the nsfw words', 'back to the 14 built-in words; removed 1 phrase: `tentacle`'],
      ['added to the nsfw words', '`tentacle`'],
      ['reset the banned words', 'emptied; removed 3 phrases: `gore`, `skull`, `blood*`'],
    ]);
    await expectConsistentLedger(h.storage, { [guild.moderator]: 0 }, { guildId: guild.id });
  });

  it('`channels remove` suggests the listed channels, a deleted one by its id, and removes it', async () => {
    const guild = freshGuild();
    await admin(h, guild, 'channels add', { channel: guild.art });
    await admin(h, guild, 'channels add', { channel: guild.general });
    h.discord.deleteChannel(guild.art);
    const choices = await choicesOf(autocomplete(h, guild, 'channels remove', 'channel', ''));
    expect(choices).toEqual([
      { name: `${guild.art} (deleted)`, value: guild.art },
      { name: '#general', value: guild.general },
    ]);
    expect(await choicesOf(autocomplete(h, guild, 'channels remove', 'channel', 'gen'))).toEqual([{ name: '#general', value: guild.general }]);
    expect(await choicesOf(autocomplete(h, guild, 'channels remove', 'channel', '', member())), 'nothing for a member').toEqual([]);

    expect((await admin(h, guild, 'channels remove', { channel: guild.art })).content).toBe(`✅ Removed <#${guild.art}>.`);
    expect((await admin(h, guild, 'channels remove', { channel: '#general' })).content).toBe(
      `✅ Removed <#${guild.general}>. No channel is listed any more: \`/imagine\` works everywhere.`,
    );
    expect((await admin(h, guild, 'channels remove', { channel: 'nowhere' })).content).toBe('❌ Pick the channel from the suggestions, or give its id.');
    await expectConsistentLedger(h.storage, { [guild.moderator]: 0 }, { guildId: guild.id });
  });

  it('`role clear` suggests the roles with an override, a deleted one by its id, and clears it', async () => {
    const guild = freshGuild();
    await admin(h, guild, 'role set', { role: guild.artistRole, daily_credits: 5 });
    expect(await choicesOf(autocomplete(h, guild, 'role clear', 'role', 'art'))).toEqual([{ name: '@Artists', value: guild.artistRole }]);
    h.discord.deleteRole(guild.id, guild.artistRole);
    expect(await choicesOf(autocomplete(h, guild, 'role clear', 'role', ''))).toEqual([{ name: `${guild.artistRole} (deleted)`, value: guild.artistRole }]);
    expect((await admin(h, guild, 'role clear', { role: guild.artistRole })).content).toBe(`✅ <@&${guild.artistRole}> follows the server settings again.`);
    expect((await admin(h, guild, 'role list')).content).toBe('No role overrides: every role follows the server settings.');
    await expectConsistentLedger(h.storage, { [guild.moderator]: 0 }, { guildId: guild.id });
  });

  it('allows /imagine in a forum channel: its posts (threads) work, other channels do not', async () => {
    const guild = freshGuild();
    const artist = member();
    expect((await admin(h, guild, 'channels add', { channel: guild.forum })).content).toContain(`<#${guild.forum}>`);
    const post = h.discord.addThread({ parentId: guild.forum, name: 'my gallery' });
    await imagine(h, guild, artist, 'a forum of foxes', post);
    const elsewhere = sendImagine(h.discord, { prompt: 'a fox', samples: 1 }, { guildId: guild.id, channelId: guild.general, ...artist });
    expect(await refusalAfterDeferral(elsewhere)).toBe(`❌ \`/imagine\` is not allowed in this channel. Use <#${guild.forum}>.`);
    await expectConsistentLedger(h.storage, { [artist.userId]: 1 }, { guildId: guild.id });
  });

  it('`settings set log_channel` posts a test line, and saves nothing when the bot cannot post there', async () => {
    const guild = freshGuild();
    h.discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${guild.modLog}/messages$`) }, { status: 403, body: { code: 50013, message: 'Missing Permissions' } });
    const refused = await admin(h, guild, 'settings set', { log_channel: guild.modLog });
    expect(refused.content).toBe(
      `❌ The bot cannot post in <#${guild.modLog}>, so nothing was changed. Give the bot **View Channel** and **Send Messages** there (Edit Channel → Permissions), then set it again.`,
    );
    expect((await admin(h, guild, 'settings view')).content).toContain('Log channel: none');
    expect(await auditOf(h, guild)).toEqual([]);

    const set = await admin(h, guild, 'settings set', { log_channel: guild.modLog });
    expect(set.content).toBe(`✅ Changed \`log_channel\` → <#${guild.modLog}>. A test line was posted there.`);
    expect(posts(h, guild.modLog).map((p) => p.content)).toEqual([
      `🛠️ <@${guild.moderator}> made this the log channel of \`/imagine\`: moderator actions and members' reports are posted here.`,
      `🛠️ <@${guild.moderator}> changed settings: \`log_channel\` → <#${guild.modLog}>`,
    ]);
    expect((await admin(h, guild, 'settings view')).content).toContain(`Log channel: <#${guild.modLog}>`);
    await expectConsistentLedger(h.storage, { [guild.moderator]: 0 }, { guildId: guild.id });
  });

  it('says wherever the moderator role is set or shown that Discord still hides /imagine-admin until an admin allows it', async () => {
    const guild = freshGuild();
    const set = await admin(h, guild, 'settings set', { moderator_role: guild.artistRole });
    expect(set.content).toContain('Server Settings → Integrations');
    expect((await admin(h, guild, 'settings view')).content).toContain(
      `Moderators: members with Manage Server and <@&${guild.artistRole}> — Discord still hides \`/imagine-admin\` from this role until a server admin allows it`,
    );
    await expectConsistentLedger(h.storage, { [guild.moderator]: 0 }, { guildId: guild.id });
  });
});
