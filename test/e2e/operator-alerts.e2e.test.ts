import { afterEach, describe, expect, it } from 'vitest';
import { snowflake, type SentInteraction } from '../fakes/fake-discord.js';
import { createLogger } from '../../src/logger.js';
import { INVITE_PERMISSIONS } from '../../src/services/discord/invite.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { immediateRefusal } from '../support/refusals.js';

const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_MAX_RETRIES: '0' };
/** Discord's own URL form: the bot posts it through DISCORD_API_URL, here the fake Discord. */
const HOOK = { id: '123456789012345678', token: 'operatorHookToken_abcdefghijklmnopqrstuvwxyz' };
const WEBHOOK_ENV = { OPERATOR_WEBHOOK_URL: `https://discord.com/api/webhooks/${HOOK.id}/${HOOK.token}` };
/** Balance reads (and so pause probes) every 120 ms instead of every few minutes. */
const FAST_CHECKS = { SEGMIND_BALANCE_CHECK_MINUTES: 0.002 };
const GUILD = snowflake();
const GENERAL = snowflake();
const MOD_LOG = snowflake();
const GUILDS = { guilds: [{ id: GUILD, channels: [{ id: GENERAL, name: 'general' }, { id: MOD_LOG, name: 'mod-log' }] }] };

const alertTexts = (h: Harness) =>
  h.discord
    .webhookExecutions()
    .filter((e) => e.id === HOOK.id)
    .map((e) => (e.body as { content: string }).content);
const logPosts = (h: Harness) =>
  h.discord.requests
    .filter((r) => r.method === 'POST' && r.path === `/channels/${MOD_LOG}/messages`)
    .map((r) => messageOf(r.json).content ?? '');

async function withLogChannel(h: Harness): Promise<void> {
  const settings = new GuildSettingsRepository(h.storage, createLogger({ level: 'silent', secrets: [] }));
  await settings.update(GUILD, (current) => Object.assign(current, { logChannelId: MOD_LOG }));
}

function imagine(h: Harness, userId: string, prompt = 'a lighthouse'): SentInteraction {
  return sendImagine(h.discord, { prompt }, { guildId: GUILD, channelId: GENERAL, userId });
}

/** Waits until the job `userId` started (each test's members start one each) has logged its end: its outcome. */
async function jobOutcome(h: Harness, sent: SentInteraction, userId: string): Promise<unknown> {
  await sent.waitForCallback();
  const line = await eventually(
    () => h.logs.find((l) => l.msg === 'imagine job finished' && l.userId === userId),
    `the job of ${userId} to finish`,
    10_000,
  );
  return line.outcome;
}

describe('operator alerts, the balance and the pause that lifts itself (real discord.js client)', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('a rejected key at start-up logs one clear error, pauses generation, tells the operator, and members are refused plainly for free', async () => {
    h = await startHarness({
      env: { ...NO_LIMITS, ...WEBHOOK_ENV },
      config: { SEGMIND_API_KEY: 'SG_this_key_was_revoked_42' },
      discord: GUILDS,
      beforeStart: ({ discord }) => void discord.createWebhook(HOOK),
    });
    const errors = h.logs.filter((l) => l.level >= 50);
    expect(errors).toHaveLength(1);
    expect(errors[0]!.msg).toMatch(/^generation paused bot-wide: SEGMIND_API_KEY was rejected by Segmind: Invalid API key/);
    expect(h.rawLogs()).not.toContain('SG_this_key_was_revoked_42');
    expect(h.bot.metrics.health().paused).toBe(true);
    const [paused] = await eventually(() => (alertTexts(h!).length > 0 ? alertTexts(h!) : undefined), 'the pause alert');
    expect(paused).toContain('**Generation paused**');
    expect(paused).toContain('Segmind rejected SEGMIND_API_KEY');
    expect(h.discord.webhookExecutions()[0]!.body).toMatchObject({ allowed_mentions: { parse: [] } });

    const member = snowflake();
    const refusal = await immediateRefusal(imagine(h, member));
    expect(refusal).toContain('Image generation is paused');
    expect(refusal).toContain('Nothing was charged');
    expect(refusal).not.toMatch(/segmind|api key/i);
    expect(h.segmind.requests, 'no image was asked for').toHaveLength(0);
    await expectConsistentLedger(h.storage, { [member]: 0 }, { guildId: GUILD });
  });

  it('an unreachable Segmind at start-up is a warning: start-up and generation go on', async () => {
    h = await startHarness({
      env: NO_LIMITS,
      discord: GUILDS,
      beforeStart: ({ segmind }) => segmind.failBalance({ kind: 'reset' }),
    });
    expect(h.logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(h.logs.find((l) => l.msg === 'could not read the Segmind balance; generation carries on')).toMatchObject({ level: 40, kind: 'connection' });
    expect(h.bot.metrics.health().paused).toBe(false);
    const member = snowflake();
    expect(await jobOutcome(h, imagine(h, member), member)).toBe('delivered');
    await eventually(() => h!.logs.some((l) => l.msg === 'credits settled'), 'the credits to be settled');
    await expectConsistentLedger(h.storage, { [member]: 1 }, { guildId: GUILD });
  });

  it('a 401 pause resumes by itself when Segmind recovers, with webhook posts for pause and resume', async () => {
    h = await startHarness({
      env: { ...NO_LIMITS, ...WEBHOOK_ENV },
      config: FAST_CHECKS,
      discord: GUILDS,
      breaker: { failureThreshold: 1_000_000, openMs: 1, maxOpenMs: 1 },
      beforeStart: ({ discord }) => void discord.createWebhook(HOOK),
    });
    const harness = h;
    await withLogChannel(harness);
    expect(alertTexts(harness)).toEqual([]);
    const [alice, bob, carol] = [snowflake(), snowflake(), snowflake()];

    // The key is revoked while the bot runs: the next image is answered 401, and so is every balance read.
    harness.segmind.setDefault({ kind: 'error', status: 401 });
    harness.segmind.failBalance({ kind: 'error', status: 401 });
    expect(await jobOutcome(harness, imagine(harness, alice), alice)).toBe('failed');
    await eventually(() => alertTexts(harness).length === 1, 'the pause alert');
    expect(alertTexts(harness)[0]).toContain('**Generation paused**');
    await eventually(() => logPosts(harness).some((t) => t.startsWith('⚠️ Image generation is paused for the whole bot')), 'the log channel notice');
    expect(harness.bot.metrics.health().paused).toBe(true);

    // While paused, probes keep failing and members are refused at once, for free.
    const probesBefore = harness.segmind.balanceRequests().length;
    await eventually(() => harness.segmind.balanceRequests().length >= probesBefore + 2, 'two more probes');
    expect(harness.bot.metrics.health().paused).toBe(true);
    expect(await immediateRefusal(imagine(harness, bob))).toContain('Image generation is paused');
    expect(harness.segmind.requests).toHaveLength(1);

    // Segmind takes the key again: the next probe lifts the pause, nobody restarts anything.
    harness.segmind.setDefault({ kind: 'image' });
    harness.segmind.failBalance(null);
    await eventually(() => alertTexts(harness).length === 2, 'the resume alert');
    expect(alertTexts(harness)[1]).toContain('**Generation resumed**');
    expect(harness.bot.metrics.health().paused).toBe(false);
    await eventually(() => logPosts(harness).includes('✅ Image generation is running again.'), 'the log channel notice of the resume');
    expect(harness.logs.some((l) => l.msg === 'Segmind accepts the account again: generation resumed')).toBe(true);

    expect(await jobOutcome(harness, imagine(harness, carol), carol)).toBe('delivered');
    await eventually(() => harness.logs.some((l) => l.msg === 'credits settled'), 'the credits to be settled');
    expect(alertTexts(harness), 'one alert each for pause and resume').toHaveLength(2);
    expect(harness.rawLogs()).not.toContain(HOOK.token);
    await expectConsistentLedger(harness.storage, { [alice]: 0, [bob]: 0, [carol]: 1 }, { guildId: GUILD });
  });

  it('warns the log channel and the operator once per crossing of SEGMIND_LOW_BALANCE, and exports the balance', async () => {
    h = await startHarness({
      env: { ...NO_LIMITS, ...WEBHOOK_ENV, SEGMIND_LOW_BALANCE: '1' },
      config: FAST_CHECKS,
      discord: GUILDS,
      beforeStart: ({ discord, segmind }) => {
        discord.createWebhook(HOOK);
        segmind.setBalance(3.5, 0.25);
      },
    });
    const harness = h;
    await withLogChannel(harness);
    const gauge = async () => (await harness.bot.metrics.registry.getSingleMetricAsString('flux_bot_segmind_remaining_credits')).split('\n').at(-1);
    expect(await gauge()).toBe('flux_bot_segmind_remaining_credits 3.75');
    expect(harness.logs.find((l) => l.msg === 'Segmind balance')).toMatchObject({ credits: 3.5, freeCredits: 0.25 });
    const lowPosts = () => logPosts(harness).filter((t) => t.includes('running low'));
    const checksAfter = async (extra: number) => {
      const target = harness.segmind.balanceRequests().length + extra;
      await eventually(() => harness.segmind.balanceRequests().length >= target, `${extra} more balance reads`);
    };

    harness.segmind.setBalance(0.42);
    await eventually(() => alertTexts(harness).length === 1 && lowPosts().length === 1, 'the low-balance warnings');
    expect(alertTexts(harness)[0]).toContain('**Segmind balance low**: $0.42 left, below SEGMIND_LOW_BALANCE ($1.00)');
    expect(lowPosts()[0]).toBe("⚠️ The bot's image budget is running low ($0.42 left). Image generation stops when it runs out; the bot's operator needs to top it up.");
    expect(lowPosts()[0]).not.toMatch(/segmind/i);
    await checksAfter(3);
    harness.segmind.setBalance(0.3);
    await checksAfter(3);
    expect(alertTexts(harness), 'still below: no second warning').toHaveLength(1);
    expect(lowPosts()).toHaveLength(1);
    expect(await gauge()).toBe('flux_bot_segmind_remaining_credits 0.3');

    // Topped up, then down again: a new crossing, a new warning.
    harness.segmind.setBalance(5);
    await checksAfter(2);
    expect(alertTexts(harness)).toHaveLength(1);
    harness.segmind.setBalance(0.2);
    await eventually(() => alertTexts(harness).length === 2 && lowPosts().length === 2, 'the second crossing');
    expect(alertTexts(harness)[1]).toContain('$0.20 left');

    // A failing balance read is logged and changes nothing.
    harness.segmind.failBalance({ kind: 'error', status: 503 });
    await checksAfter(2);
    expect(harness.logs.some((l) => l.msg === 'could not read the Segmind balance; generation carries on' && l.kind === 'server_error')).toBe(true);
    expect(harness.bot.metrics.health().paused).toBe(false);
    expect(alertTexts(harness)).toHaveLength(2);
    await expectConsistentLedger(harness.storage, {}, { guildId: GUILD });
  });

  it('logs the invite URL with the README permissions when the bot is in no server it may serve', async () => {
    h = await startHarness({ env: { ALLOWED_GUILD_IDS: '111111111111111111' } });
    const line = h.logs.find((l) => l.msg === 'the bot is in no server it may serve: open inviteUrl to add it to yours');
    expect(line?.level).toBe(40);
    expect(line?.inviteUrl).toBe(
      `https://discord.com/oauth2/authorize?client_id=${h.discord.applicationId}&scope=bot%20applications.commands&permissions=${INVITE_PERMISSIONS}`,
    );
    await h.stop();
    // In a server it serves, no such line.
    h = await startHarness();
    expect(h.logs.some((l) => l.msg.startsWith('the bot is in no server'))).toBe(false);
  });
});
