import { ApplicationCommandOptionType, ChannelType, type APIInteractionDataResolved, type GuildMemberFlags } from 'discord.js';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { definition } from '../../src/commands/imagine-admin/index.js';
import { dayOf } from '../../src/services/storage/quota/quota-store.js';
import { snowflake, type FakeGuildSpec, type RecordedRequest, type SlashCommandOption } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { immediateRefusal, refusalAfterDeferral } from '../support/refusals.js';

const MANAGE_SERVER = String(1 << 5);
/** A typical member without Manage Server (the fake's default @everyone set). */
const PLAIN_MEMBER = undefined;

interface GuildFixture {
  id: string;
  general: string;
  art: string;
  artNsfw: string;
  modLog: string;
  /** A voice channel: fine for /imagine (its text chat), not for the log. */
  lounge: string;
  moderatorRole: string;
  artistRole: string;
}

function guildFixture(): { spec: FakeGuildSpec; fixture: GuildFixture } {
  const fixture: GuildFixture = {
    id: snowflake(),
    general: snowflake(),
    art: snowflake(),
    artNsfw: snowflake(),
    modLog: snowflake(),
    lounge: snowflake(),
    moderatorRole: snowflake(),
    artistRole: snowflake(),
  };
  return {
    fixture,
    spec: {
      id: fixture.id,
      channels: [
        { id: fixture.general, name: 'general' },
        { id: fixture.art, name: 'art' },
        { id: fixture.artNsfw, name: 'art-nsfw', nsfw: true },
        { id: fixture.modLog, name: 'mod-log' },
        { id: fixture.lounge, name: 'lounge', type: ChannelType.GuildVoice },
      ],
      roles: [
        { id: fixture.moderatorRole, name: 'Moderators' },
        { id: fixture.artistRole, name: 'Artists' },
      ],
    },
  };
}

// Every test gets a server of its own, so settings never leak from one test into another.
const guilds = Array.from({ length: 24 }, guildFixture);
const channelsById = new Map(guilds.flatMap((g) => (g.spec.channels ?? []).map((c) => [c.id!, c] as const)));
let nextGuild = 0;
function freshGuild(): GuildFixture {
  const guild = guilds[nextGuild++];
  if (!guild) throw new Error('add more guild fixtures');
  return guild.fixture;
}

// ---------------------------------------------------------------------------------------------------------------------
// Talking to the bot as Discord would

interface DefinedOption {
  name: string;
  type: number;
  options?: readonly DefinedOption[];
}

function optionTypesOf(path: string[]): Map<string, number> {
  let level = definition.options as readonly DefinedOption[];
  for (const name of path) level = level.find((o) => o.name === name)?.options ?? [];
  return new Map(level.map((o) => [o.name, o.type]));
}

interface Actor {
  userId: string;
  permissions?: string | undefined;
  roles?: string[];
}

interface Reply {
  content: string;
  /** 4 = answered at once, 5 = deferred then edited. */
  callbackType: number;
  flags: number;
  request: RecordedRequest;
}

const USER = Number(ApplicationCommandOptionType.User);
const CHANNEL = Number(ApplicationCommandOptionType.Channel);

/**
 * Sends `/imagine-admin <group> <sub> option:value…` with the nested options Discord sends, and what Discord resolves
 * for them: users and members for user options (their roles from `memberRoles`), channels for channel options.
 * Resolves with the final reply text.
 */
async function admin(
  h: Harness,
  guild: GuildFixture,
  command: string,
  values: Record<string, string | number | boolean> = {},
  actor: Actor = moderatorOf(guild),
  memberRoles: Record<string, string[]> = {},
): Promise<Reply> {
  const path = command.split(' ');
  const types = optionTypesOf(path);
  const leaf: SlashCommandOption[] = Object.entries(values).map(([name, value]) => {
    const type = types.get(name);
    if (type === undefined) throw new Error(`/imagine-admin ${command} has no option ${name}`);
    return { name, type, value };
  });
  let options = leaf;
  for (const [i, name] of [...path].reverse().entries())
    options = [{ name, type: i === 0 ? ApplicationCommandOptionType.Subcommand : ApplicationCommandOptionType.SubcommandGroup, options }];
  const resolved: APIInteractionDataResolved = { users: {}, members: {}, channels: {} };
  for (const option of leaf) {
    const id = String(option.value);
    const known = channelsById.get(id);
    if (option.type === CHANNEL && known) {
      resolved.channels![id] = { id, name: known.name ?? 'channel', type: known.type ?? ChannelType.GuildText, permissions: '0' };
      continue;
    }
    if (option.type !== USER) continue;
    resolved.users![id] = { id, username: `user${id.slice(-4)}`, discriminator: '0', global_name: null, avatar: null };
    resolved.members![id] = {
      roles: memberRoles[id] ?? [],
      permissions: '0',
      joined_at: new Date().toISOString(),
      premium_since: null,
      flags: 0 as GuildMemberFlags,
      pending: false,
      nick: null,
      avatar: null,
      banner: null,
      communication_disabled_until: null,
    };
  }
  const sent = h.discord.sendSlashCommand({
    name: 'imagine-admin',
    guildId: guild.id,
    channelId: guild.general,
    userId: actor.userId,
    ...(actor.permissions !== undefined ? { permissions: actor.permissions } : {}),
    roles: actor.roles ?? [],
    options,
    resolved,
  });
  const callback = await sent.waitForCallback();
  const callbackType = (callback.json as { type: number }).type;
  if (callbackType === 4) {
    const message = messageOf(callback.json);
    return { content: message.content ?? '', callbackType, flags: message.flags ?? 0, request: callback };
  }
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'));
  return { content: messageOf(edit.json).content ?? '', callbackType, flags: messageOf(callback.json).flags ?? 0, request: edit };
}

const moderators = new Map<string, string>();
function moderatorOf(guild: GuildFixture): Actor {
  let id = moderators.get(guild.id);
  if (!id) moderators.set(guild.id, (id = snowflake()));
  return { userId: id, permissions: MANAGE_SERVER };
}

/** Delivered, or refused privately: at once (no storage needed) or, after the public deferral, privately in its place. */
type Outcome = { delivered: true } | { delivered: false; content: string; refused: 'at once' | 'after the deferral' };

/** `/imagine` with one image; waits until the job has been settled (credits counted, history written). */
async function imagine(
  h: Harness,
  guild: GuildFixture,
  userId: string,
  prompt: string,
  spec: { channelId?: string; roles?: string[]; seed?: number } = {},
): Promise<Outcome> {
  const sent = sendImagine(
    h.discord,
    { prompt, samples: 1, ...(spec.seed !== undefined ? { seed: spec.seed } : {}) },
    { guildId: guild.id, channelId: spec.channelId ?? guild.general, userId, roles: spec.roles ?? [] },
  );
  const callback = await sent.waitForCallback();
  if ((callback.json as { type: number }).type === 4) return { delivered: false, content: await immediateRefusal(sent), refused: 'at once' };
  const answer = await sent.waitForRequest((r) => r.path.endsWith('/messages/@original') && (r.method === 'PATCH' || r.method === 'DELETE'));
  if (answer.method === 'DELETE') return { delivered: false, content: await refusalAfterDeferral(sent), refused: 'after the deferral' };
  await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the credits to be settled');
  return { delivered: true };
}

/** Polls an async check until it holds (no fixed sleeps). */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

// ---------------------------------------------------------------------------------------------------------------------

describe('/imagine-admin end to end, through the real discord.js client', () => {
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

  it('refuses a member without Manage Server or the moderator role, even though Discord delivered the command', async () => {
    const guild = freshGuild();
    const member = snowflake();
    const reply = await admin(h, guild, 'settings set', { daily_credits: 1 }, { userId: member, permissions: PLAIN_MEMBER });
    expect(reply.callbackType).toBe(4);
    expect(reply.flags & 64).toBe(64);
    expect(reply.content).toBe('❌ Only moderators can use /imagine-admin.');

    const noPermissions = await admin(h, guild, 'pause', {}, { userId: member, permissions: '0' });
    expect(noPermissions.content).toBe('❌ Only moderators can use /imagine-admin.');

    // Nothing changed: still the bot default, still running, no audit entry.
    const view = await admin(h, guild, 'settings view');
    expect(view.content).toContain('Daily credits: **20** credits per member per UTC day _(bot default)_');
    expect(view.content).toContain('Generation: running');
    expect((await admin(h, guild, 'audit')).content).toBe('No moderator actions recorded yet.');
    expect((await imagine(h, guild, member, 'a quiet pond')).delivered).toBe(true);
  });

  it('answers moderators privately, without pinging anyone', async () => {
    const guild = freshGuild();
    const reply = await admin(h, guild, 'block add', { member: snowflake(), reason: 'spam' });
    expect(reply.callbackType).toBe(5);
    expect(reply.flags & 64).toBe(64);
    expect(reply.request.json).toMatchObject({ allowed_mentions: { parse: [] } });
  });

  it('lets a member with the configured moderator role in, without Manage Server', async () => {
    const guild = freshGuild();
    const roleHolder: Actor = { userId: snowflake(), permissions: PLAIN_MEMBER, roles: [guild.moderatorRole] };
    expect((await admin(h, guild, 'block list', {}, roleHolder)).content).toBe('❌ Only moderators can use /imagine-admin.');

    const set = await admin(h, guild, 'settings set', { moderator_role: guild.moderatorRole });
    expect(set.content).toBe(
      `✅ Changed \`moderator_role\` → <@&${guild.moderatorRole}>. Discord still hides \`/imagine-admin\` from this role until a server admin allows it: Server Settings → Integrations → this bot → \`/imagine-admin\`, add the role.`,
    );

    const reply = await admin(h, guild, 'block list', {}, roleHolder);
    expect(reply.content).toBe('Nobody is blocked.');
    const view = await admin(h, guild, 'settings view', {}, roleHolder);
    expect(view.content).toContain(`Moderators: members with Manage Server and <@&${guild.moderatorRole}>`);
    // Another role is still not enough.
    const artist: Actor = { userId: snowflake(), permissions: PLAIN_MEMBER, roles: [guild.artistRole] };
    expect((await admin(h, guild, 'block list', {}, artist)).content).toBe('❌ Only moderators can use /imagine-admin.');
  });

  it('limits members to the daily credits it sets, and bonus credits let them go on', async () => {
    const guild = freshGuild();
    const member = snowflake();
    expect((await admin(h, guild, 'settings set', { daily_credits: 2, cooldown_seconds: 0 })).content).toBe(
      '✅ Changed `daily_credits` → 2, `cooldown_seconds` → 0 s.',
    );

    expect(await imagine(h, guild, member, 'first')).toEqual({ delivered: true });
    expect(await imagine(h, guild, member, 'second')).toEqual({ delivered: true });
    const third = await imagine(h, guild, member, 'third');
    expect(third).toMatchObject({ delivered: false, refused: 'after the deferral' });
    expect(third.delivered === false && third.content).toMatch(/^❌ You've used all your image credits for today\. Your allowance resets <t:\d+:R>\.$/);
    expect(h.segmind.requests).toHaveLength(2);

    const give = await admin(h, guild, 'credits give', { member, amount: 1 });
    expect(give.content).toBe(`✅ Gave <@${member}> 1 bonus credit. Their bonus balance is now **1**.`);
    expect(await imagine(h, guild, member, 'fourth')).toEqual({ delivered: true });
    expect((await imagine(h, guild, member, 'fifth')).delivered).toBe(false);
    expect(h.segmind.requests).toHaveLength(3);

    // A reset gives them today's allowance back.
    expect((await admin(h, guild, 'credits reset', { member })).content).toBe(`✅ Cleared today's usage and the cooldown of <@${member}>.`);
    expect(await imagine(h, guild, member, 'sixth')).toEqual({ delivered: true });

    const take = await admin(h, guild, 'credits take', { member, amount: 5 });
    expect(take.content).toContain('Their bonus balance is now **0**.');
  });

  it('gives one member a personal allowance, and takes it away again', async () => {
    const guild = freshGuild();
    const member = snowflake();
    await admin(h, guild, 'settings set', { daily_credits: 0 });
    expect((await imagine(h, guild, member, 'nothing left')).delivered).toBe(false);
    expect((await admin(h, guild, 'credits allowance', { member, amount: 1 })).content).toContain('personal allowance of **1**');
    expect((await imagine(h, guild, member, 'now allowed')).delivered).toBe(true);
    expect((await admin(h, guild, 'settings view')).content).toContain('Personal allowances: 1 member');
    await admin(h, guild, 'credits clear-allowance', { member });
    expect((await admin(h, guild, 'credits clear-allowance', { member })).content).toBe(`❌ <@${member}> has no personal allowance.`);
  });

  it('blocks a member, who is told the reason, and unblocks them', async () => {
    const guild = freshGuild();
    const member = snowflake();
    await admin(h, guild, 'block add', { member, reason: 'spamming the art channel' });

    const refused = await imagine(h, guild, member, 'a cat');
    expect(refused).toMatchObject({ delivered: false, refused: 'after the deferral' });
    expect(refused.delivered === false && refused.content).toBe(
      '❌ You are blocked from generating images in this server. Reason: spamming the art channel',
    );
    const list = await admin(h, guild, 'block list');
    expect(list.content).toContain(`<@${member}> by <@${moderatorOf(guild).userId}>`);
    expect(list.content).toContain('spamming the art channel');

    await admin(h, guild, 'block remove', { member });
    expect((await imagine(h, guild, member, 'a cat')).delivered).toBe(true);
    expect(h.segmind.requests).toHaveLength(1);
  });

  it('restricts /imagine to the listed channels', async () => {
    const guild = freshGuild();
    const member = snowflake();
    expect((await admin(h, guild, 'channels add', { channel: guild.art })).content).toContain(`<#${guild.art}>`);

    const elsewhere = await imagine(h, guild, member, 'a heron', { channelId: guild.general });
    expect(elsewhere.delivered === false && elsewhere.content).toBe(`❌ \`/imagine\` is not allowed in this channel. Use <#${guild.art}>.`);
    expect(await imagine(h, guild, member, 'a heron', { channelId: guild.art })).toEqual({ delivered: true });
    expect((await admin(h, guild, 'channels list')).content).toBe(`\`/imagine\` works only in: <#${guild.art}>`);

    await admin(h, guild, 'channels clear');
    expect(await imagine(h, guild, member, 'a heron', { channelId: guild.general })).toEqual({ delivered: true });
    expect((await admin(h, guild, 'channels list')).content).toBe('`/imagine` works in every channel (no list set).');
  });

  it('bans a word, disguises included, and word tests report the rule', async () => {
    const guild = freshGuild();
    const member = snowflake();
    expect((await admin(h, guild, 'words add', { phrase: 'nsfw', list: 'banned' })).content).toContain('Added `nsfw` to the banned list');

    const refused = await imagine(h, guild, member, 'an n.s.f.w poster', { channelId: guild.artNsfw });
    expect(refused.delivered === false && refused.content).toBe('❌ Your prompt contains something this server does not allow (“nsfw”).');
    expect(h.segmind.requests).toHaveLength(0);

    const test = await admin(h, guild, 'words test', { prompt: 'an n s f w poster' });
    expect(test.content).toContain('Banned list: breaks `nsfw` → refused everywhere');
    expect(test.content).toContain('NSFW list: breaks `nsfw`');
    expect(test.content).toContain('❌ This prompt would be refused everywhere.');
    expect((await admin(h, guild, 'words test', { prompt: 'a sunny meadow' })).content).toContain('✅ This prompt passes the word lists.');

    expect((await admin(h, guild, 'words list', { list: 'banned' })).content).toBe('**Banned words (refused everywhere)** (1)\n`nsfw`');
    await admin(h, guild, 'words remove', { phrase: 'NSFW', list: 'banned' });
    expect((await admin(h, guild, 'words list', { list: 'banned' })).content).toBe('**Banned words (refused everywhere)**: none.');
  });

  it('pauses and resumes generation for everyone', async () => {
    const guild = freshGuild();
    const member = snowflake();
    await admin(h, guild, 'pause', { reason: 'maintenance until 8pm' });
    const refused = await imagine(h, guild, member, 'a boat');
    expect(refused.delivered === false && refused.content).toBe(
      '❌ Image generation is paused in this server by its moderators. Reason: maintenance until 8pm',
    );
    expect((await admin(h, guild, 'settings view')).content).toMatch(/Generation: ⏸️ \*\*paused\*\* by <@\d+> <t:\d+:R> — maintenance until 8pm/);

    expect((await admin(h, guild, 'resume')).content).toBe('▶️ `/imagine` works again in this server.');
    expect(await imagine(h, guild, member, 'a boat')).toEqual({ delivered: true });
    expect((await admin(h, guild, 'resume')).content).toBe('❌ `/imagine` is not paused.');
  });

  it('raises the allowance of members with a role override', async () => {
    const guild = freshGuild();
    const member = snowflake();
    const roles = [guild.artistRole];
    await admin(h, guild, 'settings set', { daily_credits: 1 });
    expect(await imagine(h, guild, member, 'one', { roles })).toEqual({ delivered: true });
    expect((await imagine(h, guild, member, 'two', { roles })).delivered).toBe(false);

    const set = await admin(h, guild, 'role set', { role: guild.artistRole, daily_credits: 5 });
    expect(set.content).toContain(`<@&${guild.artistRole}>: 5 credits/day, server cooldown`);
    expect(await imagine(h, guild, member, 'two', { roles })).toEqual({ delivered: true });
    // Someone without the role still has the server's one credit.
    const other = snowflake();
    expect(await imagine(h, guild, other, 'one')).toEqual({ delivered: true });
    expect((await imagine(h, guild, other, 'two')).delivered).toBe(false);

    const usage = await admin(h, guild, 'usage', { member }, moderatorOf(guild), { [member]: roles });
    expect(usage.content).toContain('Today: **3** of 5 credits left');
    expect(usage.content).toContain(`Allowance: 5 per UTC day (role override: <@&${guild.artistRole}>)`);
    expect((await admin(h, guild, 'role list')).content).toContain(`<@&${guild.artistRole}>: 5 credits/day`);

    await admin(h, guild, 'role clear', { role: guild.artistRole });
    expect((await imagine(h, guild, member, 'three', { roles })).delivered).toBe(false);
  });

  it('allows NSFW prompts only in age-restricted channels under the age_restricted policy', async () => {
    const guild = freshGuild();
    const member = snowflake();
    const off = await imagine(h, guild, member, 'a nude marble statue', { channelId: guild.artNsfw });
    expect(off.delivered === false && off.content).toBe('❌ NSFW prompts (“nude”) are not allowed in this server.');

    await admin(h, guild, 'settings set', { nsfw_policy: 'age_restricted' });
    const normal = await imagine(h, guild, member, 'a nude marble statue', { channelId: guild.general });
    expect(normal.delivered === false && normal.content).toBe(
      "❌ NSFW prompts (“nude”) are only allowed in this server's age-restricted channels.",
    );
    expect(await imagine(h, guild, member, 'a nude marble statue', { channelId: guild.artNsfw })).toEqual({ delivered: true });
    expect(h.segmind.requests).toHaveLength(1);
    expect((await admin(h, guild, 'words test', { prompt: 'a nude statue' })).content).toContain(
      '🔞 This prompt would be allowed only in age-restricted channels.',
    );

    await admin(h, guild, 'settings reset', { setting: 'nsfw_policy' });
    expect((await imagine(h, guild, member, 'a nude marble statue', { channelId: guild.artNsfw })).delivered).toBe(false);
  });

  it('reports usage that matches what happened', async () => {
    const guild = freshGuild();
    const alice = snowflake();
    const bob = snowflake();
    await admin(h, guild, 'settings set', { daily_credits: 2, server_daily_cap: 50 });
    await admin(h, guild, 'words add', { phrase: 'gore', list: 'banned' });
    expect(await imagine(h, guild, alice, 'a red fox in the snow', { seed: 4242 })).toEqual({ delivered: true });
    expect(await imagine(h, guild, alice, 'a lighthouse at dusk', { seed: 77 })).toEqual({ delivered: true });
    expect(await imagine(h, guild, bob, 'an owl')).toEqual({ delivered: true });
    expect((await imagine(h, guild, alice, 'one more')).delivered).toBe(false); // allowance
    expect((await imagine(h, guild, bob, 'g0re everywhere')).delivered).toBe(false); // banned word
    await until(async () => {
      const stats = await h.storage.quota.stats(guild.id, dayOf(Date.now()));
      return stats['refused:allowance'] === 1 && stats['refused:banned_word'] === 1;
    }, 'the refusals to be counted');

    const server = await admin(h, guild, 'usage');
    expect(server.content).toContain('Images today: **3** · last 7 days: **3**');
    expect(server.content).toContain('Per day, newest first: 3 · 0 · 0 · 0 · 0 · 0 · 0');
    expect(server.content).toContain('Server budget today: **3** of 50 credits used');
    expect(server.content).toContain(`Top members (7 days): <@${alice}> 2 · <@${bob}> 1`);
    expect(server.content).toContain('Refused requests (7 days): **2**');
    expect(server.content).toContain('• out of credits: 1');
    expect(server.content).toContain('• banned word: 1');
    expect(server.content).toContain('Credits refunded (7 days): **0**');

    await until(async () => (await h.storage.kv.get(`history:${guild.id}:${alice}`)) !== undefined, 'the prompt history');
    const mine = await admin(h, guild, 'usage', { member: alice });
    expect(mine.content).toContain(`**/imagine usage of <@${alice}>**`);
    expect(mine.content).toContain('Today: **0** of 2 credits left');
    expect(mine.content).toContain('Bonus: **0**');
    const lighthouse = mine.content.indexOf('a lighthouse at dusk');
    const fox = mine.content.indexOf('a red fox in the snow');
    expect(lighthouse).toBeGreaterThan(0);
    expect(fox).toBeGreaterThan(lighthouse); // newest first
    expect(mine.content).toContain('seed `4242`');
    expect(mine.content).toContain('seed `77`');
    expect(mine.content.length).toBeLessThanOrEqual(2000);
  });

  it('keeps the reply under 2000 characters with a long prompt history', async () => {
    const guild = freshGuild();
    const member = snowflake();
    for (let i = 0; i < 12; i++) expect(await imagine(h, guild, member, `${'a very long and detailed prompt '.repeat(30)}${i}`)).toEqual({ delivered: true });
    await until(async () => {
      const entries: unknown = await h.storage.kv.get(`history:${guild.id}:${member}`);
      return Array.isArray(entries) && entries.length === 12;
    }, 'the prompt history');
    const reply = await admin(h, guild, 'usage', { member });
    expect(reply.content.length).toBeLessThanOrEqual(2000);
    expect(reply.content).toMatch(/… and \d+ more$/);
  });

  it('posts every action to the log channel and keeps an audit record', async () => {
    const guild = freshGuild();
    const member = snowflake();
    const moderator = moderatorOf(guild).userId;
    const isLogPost = (r: RecordedRequest) => r.method === 'POST' && r.path === `/channels/${guild.modLog}/messages`;

    await admin(h, guild, 'settings set', { log_channel: guild.modLog });
    await admin(h, guild, 'block add', { member, reason: 'spam' });

    const post = await h.discord.waitForRequest(
      (r) => isLogPost(r) && (r.json as { content?: string }).content?.includes('blocked a member') === true,
    );
    expect(post.json).toEqual({
      content: `🛠️ <@${moderator}> blocked a member: <@${member}> — spam`,
      allowed_mentions: { parse: [] },
    });
    expect(h.discord.requests.filter(isLogPost).map((r) => (r.json as { content: string }).content)).toEqual([
      `🛠️ <@${moderator}> made this the log channel of \`/imagine\`: moderator actions and members' reports are posted here.`,
      `🛠️ <@${moderator}> changed settings: \`log_channel\` → <#${guild.modLog}>`,
      `🛠️ <@${moderator}> blocked a member: <@${member}> — spam`,
    ]);

    const audit = await admin(h, guild, 'audit');
    expect(audit.content).toMatch(
      new RegExp(`blocked a member: <@${member}> — spam\\n• <t:\\d+:R> <@${moderator}> changed settings: \`log_channel\``),
    );

    await admin(h, guild, 'settings reset', { setting: 'log_channel' });
    await admin(h, guild, 'block remove', { member });
    expect(h.discord.requests.filter(isLogPost)).toHaveLength(4); // the test line, two actions, and the reset itself last
  });

  it('shows every setting and where it comes from, and resets one to the bot default', async () => {
    const guild = freshGuild();
    await admin(h, guild, 'settings set', { daily_credits: 5, max_samples: 2, exempt_moderators: false });
    const view = await admin(h, guild, 'settings view');
    expect(view.content).toContain('Daily credits: **5** credits per member per UTC day _(server setting; bot default 20)_');
    expect(view.content).toContain('Samples: at most **2** images per request _(server setting; bot default 4)_');
    expect(view.content).toContain('Steps: at most **50** steps per image _(bot default)_');
    expect(view.content).toContain('Server cap: **no server cap** _(bot default)_');
    expect(view.content).toContain('Exempt from cooldown: nobody _(server setting)_');
    expect(view.content).toContain('Word lists: 0 banned words, 14 NSFW words');
    expect(view.content).toContain('Allowed channels: everywhere');

    expect((await admin(h, guild, 'settings reset', { setting: 'daily_credits' })).content).toBe(
      '✅ Reset `daily_credits` to the bot default. It is now **20** credits per member per UTC day.',
    );
    expect((await admin(h, guild, 'settings view')).content).toContain('Daily credits: **20** credits per member per UTC day _(bot default)_');
  });

  it('turns on private results, a gallery (once a test line reached it) and the starboard, and resets them', async () => {
    const guild = freshGuild();
    const moderator = moderatorOf(guild).userId;
    const before = await admin(h, guild, 'settings view');
    expect(before.content).toContain('Private results: not allowed _(bot default)_');
    expect(before.content).toContain('Gallery: none');
    expect(before.content).toContain('Starboard: off _(bot default)_');

    const starsFirst = await admin(h, guild, 'settings set', { gallery_stars: 3 });
    expect(starsFirst.content).toBe('✅ Changed `gallery_stars` → 3 ⭐. The starboard starts once `gallery_channel` is set.');
    const set = await admin(h, guild, 'settings set', { allow_private: true, gallery_channel: guild.modLog });
    expect(set.content).toBe(`✅ Changed \`allow_private\` → yes, \`gallery_channel\` → <#${guild.modLog}>. A test line was posted there.`);
    expect(h.discord.requests.some((r) => r.method === 'POST' && r.path === `/channels/${guild.modLog}/messages` &&
      (r.json as { content?: string }).content === `🛠️ <@${moderator}> made this the gallery of \`/imagine\`: results members share with ⭐ are posted here.`)).toBe(true);

    const after = await admin(h, guild, 'settings view');
    expect(after.content).toContain('Private results: allowed (`/imagine private:true`) _(server setting)_');
    expect(after.content).toContain(`Gallery: <#${guild.modLog}> (⭐ Share)`);
    expect(after.content).toContain('Starboard: a result with **3** ⭐ from other members is shared _(server setting)_');
    expect(after.content.length).toBeLessThanOrEqual(2000);

    await admin(h, guild, 'settings reset', { setting: 'allow_private' });
    await admin(h, guild, 'settings reset', { setting: 'gallery_channel' });
    const reset = await admin(h, guild, 'settings view');
    expect(reset.content).toContain('Private results: not allowed _(bot default)_');
    expect(reset.content).toContain('Gallery: none');
    expect(reset.content).toContain('Starboard: a result with **3** ⭐ from other members is shared (once `gallery_channel` is set) _(server setting)_');
  });

  it('takes no gallery in a voice channel, nor one the bot cannot post in, and changes nothing', async () => {
    const guild = freshGuild();
    const voice = await admin(h, guild, 'settings set', { gallery_channel: guild.lounge });
    expect(voice.content).toBe(`❌ <#${guild.lounge}> is not a channel this can use.`);
    h.discord.failNext({ method: 'POST', path: new RegExp(`^/channels/${guild.modLog}/messages$`) }, { status: 403, body: { code: 50013, message: 'Missing Permissions' } });
    const forbidden = await admin(h, guild, 'settings set', { gallery_channel: guild.modLog, allow_private: true });
    expect(forbidden.content).toContain(`The bot cannot post in <#${guild.modLog}>, so nothing was changed.`);
    const view = await admin(h, guild, 'settings view');
    expect(view.content).toContain('Gallery: none');
    expect(view.content).toContain('Private results: not allowed');
  });

  it('takes a voice channel for /imagine but not for the log', async () => {
    const guild = freshGuild();
    const refused = await admin(h, guild, 'settings set', { log_channel: guild.lounge });
    expect(refused.content).toBe(`❌ <#${guild.lounge}> is not a channel this can use.`);
    expect((await admin(h, guild, 'settings view')).content).toContain('Log channel: none');

    await admin(h, guild, 'channels add', { channel: guild.lounge });
    expect(await imagine(h, guild, snowflake(), 'a campfire', { channelId: guild.lounge })).toEqual({ delivered: true });
  });

  it('refuses more samples than the server setting allows, privately, without calling Segmind or charging', async () => {
    const guild = freshGuild();
    const member = snowflake();
    expect((await admin(h, guild, 'settings set', { max_samples: 2 })).content).toBe('✅ Changed `max_samples` → 2.');

    const sent = sendImagine(h.discord, { prompt: 'three foxes', samples: 3 }, { guildId: guild.id, channelId: guild.general, userId: member });
    expect(await refusalAfterDeferral(sent)).toBe('❌ This server allows at most 2 images per request (`samples`).');
    expect(h.segmind.requests).toHaveLength(0);
    const usage = await h.storage.quota.usage(guild.id, member, Date.now());
    expect(usage.usedToday).toBe(0);
    expect(usage.lastAcceptedAt, 'the refusal started no cooldown').toBeUndefined();
    await until(async () => (await h.storage.quota.stats(guild.id, dayOf(Date.now())))['refused:limits'] === 1, 'the refusal to be counted');

    // the limit itself is allowed, and only then is anything charged
    const allowed = sendImagine(h.discord, { prompt: 'two foxes', samples: 2 }, { guildId: guild.id, channelId: guild.general, userId: member });
    const edit = await allowed.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0);
    expect(edit.files).toHaveLength(2);
    expect(h.segmind.requests).toHaveLength(2);
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === allowed.id), 'the credits to be settled');
    expect((await h.storage.quota.usage(guild.id, member, Date.now())).usedToday).toBe(2);
  });

  it('validates options again and changes nothing when they are wrong', async () => {
    const guild = freshGuild();
    const member = snowflake();
    const reply = await admin(h, guild, 'credits give', { member, amount: 0 });
    expect(reply.callbackType).toBe(4);
    expect(reply.flags & 64).toBe(64);
    expect(reply.content).toBe('❌ Some options are not valid:\n• `amount`: must be between 1 and 100000');
    expect((await admin(h, guild, 'settings set', { max_steps: 80 })).content).toContain('`max_steps`: must be between 1 and 50');
    expect((await admin(h, guild, 'settings set')).content).toBe('❌ Give at least one setting to change.');
    expect((await admin(h, guild, 'audit')).content).toBe('No moderator actions recorded yet.');
  });
});

describe('/imagine limits from the bot defaults (environment)', () => {
  let h: Harness;
  const { spec, fixture: guild } = guildFixture();
  beforeAll(async () => {
    h = await startHarness({
      env: { DEFAULT_COOLDOWN_SECONDS: '0', DEFAULT_DAILY_CREDITS: '20', DEFAULT_MAX_STEPS: '20' },
      discord: { guilds: [spec] },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('refuses more steps than DEFAULT_MAX_STEPS, privately, without calling Segmind or charging', async () => {
    const member = snowflake();
    expect((await admin(h, guild, 'settings view')).content).toContain('Steps: at most **20** steps per image _(bot default)_');

    const sent = sendImagine(h.discord, { prompt: 'a slow render', steps: 21 }, { guildId: guild.id, channelId: guild.general, userId: member });
    expect(await refusalAfterDeferral(sent)).toBe('❌ This server allows at most 20 `steps` per image.');
    expect(h.segmind.requests).toHaveLength(0);
    expect((await h.storage.quota.usage(guild.id, member, Date.now())).usedToday).toBe(0);

    // exactly the limit goes through, with the steps asked for
    const allowed = sendImagine(h.discord, { prompt: 'a quick render', steps: 20 }, { guildId: guild.id, channelId: guild.general, userId: member });
    await allowed.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0);
    expect(h.segmind.requests.map((r) => (r.body as { steps: number }).steps)).toEqual([20]);
    await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === allowed.id), 'the credits to be settled');
    expect((await h.storage.quota.usage(guild.id, member, Date.now())).usedToday).toBe(1);
  });
});
