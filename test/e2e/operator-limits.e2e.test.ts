import { ApplicationCommandOptionType } from 'discord.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedRequest, SentInteraction, SlashCommandOption } from '../fakes/fake-discord.js';
import { createLogger } from '../../src/logger.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { immediateRefusal, refusalAfterDeferral } from '../support/refusals.js';

const MODERATOR = '999999999999999990';
const MANAGE_SERVER = '32';
const EPHEMERAL = 64;
const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');

/** `/imagine-admin <group> <sub> option:value…` from a moderator; resolves with the private reply's text. */
async function admin(h: Harness, command: string, options: SlashCommandOption[]): Promise<string> {
  const [group, sub] = command.split(' ') as [string, string];
  const sent = h.discord.sendSlashCommand({
    name: 'imagine-admin',
    userId: MODERATOR,
    permissions: MANAGE_SERVER,
    options: [
      {
        name: group,
        type: ApplicationCommandOptionType.SubcommandGroup,
        options: [{ name: sub, type: ApplicationCommandOptionType.Subcommand, options }],
      },
    ],
  });
  const callback = await sent.waitForCallback();
  expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL, 'the moderator reply is private').toBe(EPHEMERAL);
  if ((callback.json as { type: number }).type === 4) return messageOf(callback.json).content ?? '';
  return messageOf((await sent.waitForRequest(isEdit)).json).content ?? '';
}

const int = (name: string, value: number): SlashCommandOption => ({ name, type: ApplicationCommandOptionType.Integer, value });

/** `/imagine` until it is delivered and its credits are settled, or refused privately after the deferral (its text). */
async function imagine(h: Harness, userId: string, samples: number): Promise<string> {
  const sent: SentInteraction = sendImagine(h.discord, { prompt: 'a lighthouse', samples }, { userId });
  const answer = await sent.waitForRequest((r) => r.path.endsWith('/messages/@original') && (r.method === 'PATCH' || r.method === 'DELETE'));
  if (answer.method === 'DELETE') return refusalAfterDeferral(sent);
  await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the credits to be settled');
  return 'delivered';
}

describe("the operator's ceilings and server allow-list", () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('refuses moderators values above MAX_DAILY_CREDITS / MAX_GUILD_DAILY_CREDITS, shows the ceilings, and holds stored values to them at reserve', async () => {
    h = await startHarness({ env: { MAX_DAILY_CREDITS: '3', MAX_GUILD_DAILY_CREDITS: '5', DEFAULT_DAILY_CREDITS: '20', DEFAULT_COOLDOWN_SECONDS: '0' } });
    const member = h.discord.defaultUserId;
    const second = '222222222222222222';
    const third = '333333333333333333';

    const refusedDaily = await admin(h, 'settings set', [int('daily_credits', 4)]);
    expect(refusedDaily).toContain('`daily_credits` can be at most **3** here');
    expect(refusedDaily).toContain('`MAX_DAILY_CREDITS`');
    const refusedCap = await admin(h, 'settings set', [int('server_daily_cap', 6)]);
    expect(refusedCap).toContain('`server_daily_cap` can be at most **5** here');
    expect(refusedCap).toContain('`MAX_GUILD_DAILY_CREDITS`');
    expect(
      await admin(h, 'credits allowance', [{ name: 'member', type: ApplicationCommandOptionType.User, value: member }, int('amount', 50)]),
    ).toContain('`amount` can be at most **3** here');
    expect(
      await admin(h, 'role set', [{ name: 'role', type: ApplicationCommandOptionType.Role, value: '444444444444444444' }, int('daily_credits', 10)]),
    ).toContain('`daily_credits` can be at most **3** here');
    // at the ceiling is fine
    expect(await admin(h, 'settings set', [int('daily_credits', 3)])).toBe('✅ Changed `daily_credits` → 3.');
    expect(await admin(h, 'settings set', [int('server_daily_cap', 0)])).toBe(
      "✅ Changed `server_daily_cap` → no cap. The operator's ceiling of **5** images per UTC day still applies.",
    );

    const settings = new GuildSettingsRepository(h.storage, createLogger({ level: 'silent', secrets: [] }));
    expect(await settings.get(h.discord.guildId)).toMatchObject({ dailyCredits: 3, guildDailyCap: 0, memberAllowances: {}, roleOverrides: {} });

    // A value stored before the operator set the ceilings: a personal allowance of 50.
    await settings.update(h.discord.guildId, (s) => {
      s.memberAllowances = { [member]: 50 };
    });
    const view = await admin(h, 'settings view', []);
    expect(view).toContain("Operator's ceilings: at most **3** credits per member per UTC day and **5** images per UTC day for the server, whatever is set here");
    expect(view).toContain('Server cap: **5** images per UTC day for the server');

    expect(await imagine(h, member, 3)).toBe('delivered');
    expect(await imagine(h, member, 1)).toContain("You've used all your image credits for today.");
    expect(await imagine(h, second, 2)).toBe('delivered');
    expect(await imagine(h, third, 1)).toContain('This server has used its image budget for today.');
    expect(h.segmind.requests).toHaveLength(5);
    await expectConsistentLedger(h.storage, { [member]: 3, [second]: 2, [third]: 0 }, { guildId: h.discord.guildId });
  });

  it('leaves servers outside ALLOWED_GUILD_IDS, at start-up and when added, and refuses their interactions privately', async () => {
    const allowed = '111111111111111111';
    const already = '555555555555555555';
    h = await startHarness({
      env: { ALLOWED_GUILD_IDS: allowed, DEFAULT_COOLDOWN_SECONDS: '0' },
      discord: { guilds: [{ id: allowed }, { id: already, channels: [{ id: '555555555555555556' }] }] },
    });
    await eventually(() => h!.discord.leftGuilds.includes(already) || undefined, 'the bot to leave the server it was already in');
    const newcomer = h.discord.joinGuild({ id: '666666666666666666', channels: [{ id: '666666666666666667' }] });
    await eventually(() => h!.discord.leftGuilds.includes(newcomer) || undefined, 'the bot to leave the server it was added to');
    expect(h.discord.leftGuilds).toEqual([already, newcomer]);
    const leaving = h.logs.filter((l) => l.msg === 'leaving a server that is not in ALLOWED_GUILD_IDS');
    expect(leaving.map((l) => [l.guildId, l.when])).toEqual([
      [already, 'start-up'],
      [newcomer, 'added'],
    ]);

    // An interaction from such a server (sent before the bot left it) is refused privately, and nothing else happens.
    const member = h.discord.defaultUserId;
    const outside = sendImagine(h.discord, { prompt: 'a lighthouse' }, { guildId: newcomer, channelId: '666666666666666667', userId: member });
    expect(await immediateRefusal(outside)).toBe('❌ This bot is not available in this server.');
    // in the member's language
    const inJapanese = sendImagine(h.discord, { prompt: 'a lighthouse' }, { guildId: newcomer, channelId: '666666666666666667', userId: member, locale: 'ja' });
    expect(await immediateRefusal(inJapanese)).toBe('❌ このBotはこのサーバーでは利用できません。');
    expect(h.segmind.requests).toHaveLength(0);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: newcomer });

    // The allowed server is served as before.
    expect(await imagine(h, member, 1)).toBe('delivered');
    expect(h.discord.leftGuilds).toEqual([already, newcomer]);
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: allowed });
  });
});
