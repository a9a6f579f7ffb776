import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationCommandOptionType } from 'discord.js';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { RecordedRequest, SentInteraction } from '../fakes/fake-discord.js';
import type { QuotaStore } from '../../src/services/storage/quota/quota-store.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { immediateRefusal, refusalAfterDeferral as refusal } from '../support/refusals.js';

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');

async function delivered(interaction: SentInteraction): Promise<RecordedRequest> {
  const callback = await interaction.waitForCallback();
  expect(callback.json).toMatchObject({ type: 5 });
  return interaction.waitForRequest(isEdit);
}

function credits(h: Harness, userId?: string) {
  return h.discord.sendSlashCommand({ name: 'credits', ...(userId ? { userId } : {}) });
}

/** `/imagine-admin credits give member:<id> amount:<n>` from a moderator (Manage Server), as Discord sends it. */
async function giveBonus(h: Harness, member: string, amount: number): Promise<string> {
  const sent = h.discord.sendSlashCommand({
    name: 'imagine-admin',
    userId: '999999999999999990',
    permissions: '32',
    options: [
      {
        name: 'credits',
        type: ApplicationCommandOptionType.SubcommandGroup,
        options: [
          {
            name: 'give',
            type: ApplicationCommandOptionType.Subcommand,
            options: [
              { name: 'member', type: ApplicationCommandOptionType.User, value: member },
              { name: 'amount', type: ApplicationCommandOptionType.Integer, value: amount },
            ],
          },
        ],
      },
    ],
    resolved: {
      users: { [member]: { id: member, username: 'member', discriminator: '0', global_name: null, avatar: null } },
    },
  });
  const edit = await sent.waitForRequest(isEdit);
  return messageOf(edit.json).content ?? '';
}

describe('credits and cooldowns on /imagine', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('spends one credit per image and refuses, privately and for free, once the allowance is used', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '5', DEFAULT_COOLDOWN_SECONDS: '0' } });
    await delivered(sendImagine(h.discord, { prompt: 'one', samples: 4 }));
    const text = await refusal(sendImagine(h.discord, { prompt: 'two', samples: 2 }));
    expect(text).toContain('You asked for 2 images but have 1 credit left today.');
    expect(text).toMatch(/<t:\d+:R>/);
    await delivered(sendImagine(h.discord, { prompt: 'three' }));
    expect(await refusal(sendImagine(h.discord, { prompt: 'four' }))).toContain("You've used all your image credits for today.");
    expect(h.segmind.requests).toHaveLength(5);

    const reply = messageOf((await credits(h).waitForCallback()).json);
    expect(reply.flags! & 64).toBe(64);
    expect(reply.content).toMatch(/^Today's allowance: \*\*0\*\* of 5 left — resets <t:\d+:R>$/m);
    expect(reply.content).toContain("\nBonus: **0 credits** (granted by moderators, never expire, spent after today's allowance)\n");
  });

  it('shows the bonus balance and when the allowance resets in /credits, and spends the bonus after the allowance', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0' } });
    const member = h.discord.defaultUserId;
    expect(await giveBonus(h, member, 5)).toBe(`✅ Gave <@${member}> 5 bonus credits. Their bonus balance is now **5**.`);

    const before = Date.now();
    const reply = messageOf((await credits(h).waitForCallback()).json);
    const after = Date.now();
    expect(reply.flags! & 64).toBe(64);
    const lines = reply.content!.split('\n');
    expect(lines[0]).toBe('**Your image credits in this server**');
    // today's 3 and the bonus 5, counted together
    expect(lines[1]).toBe('You can make **8 more images** today.');
    const today = /^Today's allowance: \*\*3\*\* of 3 left — resets <t:(\d+):R>$/.exec(lines[2]!);
    expect(today, lines[2]).not.toBeNull();
    // the next midnight UTC, in whole seconds
    const nextMidnight = (ms: number) => (Math.floor(ms / 86_400_000) + 1) * 86_400;
    expect([nextMidnight(before), nextMidnight(after)]).toContain(Number(today![1]));
    expect(lines[3]).toBe("Bonus: **5 credits** (granted by moderators, never expire, spent after today's allowance)");
    expect(lines[4]).toBe('Cooldown: none, you can generate now');

    await delivered(sendImagine(h.discord, { prompt: 'four of them', samples: 4 }));
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    const spent = messageOf((await credits(h).waitForCallback()).json).content!;
    expect(spent).toContain('\nYou can make **4 more images** today.\n');
    expect(spent).toMatch(/^Today's allowance: \*\*0\*\* of 3 left — resets <t:\d+:R>$/m);
    expect(spent).toContain("\nBonus: **4 credits** (granted by moderators, never expire, spent after today's allowance)\n");
    // another member has no bonus
    expect(messageOf((await credits(h, '222222222222222222').waitForCallback()).json).content).toContain(
      "\nBonus: **0 credits** (granted by moderators, never expire, spent after today's allowance)\n",
    );
  });

  it('makes a member wait out the cooldown, which a refusal does not restart', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '600' } });
    await delivered(sendImagine(h.discord, { prompt: 'first' }));
    const text = await refusal(sendImagine(h.discord, { prompt: 'second' }));
    expect(text).toMatch(/^❌ You're on cooldown\. Try again <t:(\d+):R>\.$/);
    const retryAt = Number(/<t:(\d+):R>/.exec(text)![1]) * 1000;
    expect(retryAt - Date.now()).toBeGreaterThan(590_000);
    expect(retryAt - Date.now()).toBeLessThanOrEqual(601_000); // rounded up to whole seconds
    // another member is not affected
    await delivered(sendImagine(h.discord, { prompt: 'someone else' }, { userId: '222222222222222222' }));
    expect(h.segmind.requests).toHaveLength(2);
    const reply = messageOf((await credits(h).waitForCallback()).json).content!;
    expect(reply).toContain("Today's allowance: **9** of 10 left");
    expect(reply).toMatch(/Cooldown: ends <t:\d+:R>/);
  });

  it('exempts moderators (Manage Server) from the cooldown by default', async () => {
    h = await startHarness({ env: { DEFAULT_COOLDOWN_SECONDS: '600' } });
    const moderator = { permissions: '32' };
    await delivered(sendImagine(h.discord, { prompt: 'a' }, moderator));
    await delivered(sendImagine(h.discord, { prompt: 'b' }, moderator));
  });

  it('holds the server-wide daily cap across members', async () => {
    h = await startHarness({ env: { DEFAULT_GUILD_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0' } });
    await delivered(sendImagine(h.discord, { prompt: 'a', samples: 2 }, { userId: '111111111111111111' }));
    const text = await refusal(sendImagine(h.discord, { prompt: 'b', samples: 2 }, { userId: '222222222222222222' }));
    expect(text).toContain('This server has only 1 image left in today');
    await delivered(sendImagine(h.discord, { prompt: 'c' }, { userId: '222222222222222222' }));
    expect(await refusal(sendImagine(h.discord, { prompt: 'd' }, { userId: '333333333333333333' }))).toContain(
      'This server has used its image budget for today.',
    );
  });

  it('grants exactly what remains when a member fires many requests at once', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0', MAX_QUEUED_PER_USER: '10' } });
    const harness = h;
    const sent = Array.from({ length: 10 }, (_, i) => sendImagine(harness.discord, { prompt: `burst ${i}` }));
    // every request is acknowledged at once, before storage decides
    const callbacks = await Promise.all(sent.map((s) => s.waitForCallback()));
    expect(callbacks.map((c) => (c.json as { type: number }).type)).toEqual(Array<number>(10).fill(5));
    const refused = await eventually(() => {
      const done = sent.filter((s) => s.followUps().length > 0);
      return done.length === 7 && done;
    }, '7 private refusals');
    for (const s of refused) expect(await refusal(s)).toContain("You've used all your image credits for today.");
    await eventually(() => h!.segmind.requests.length === 3 || undefined, '3 Segmind calls');
    const granted = sent.filter((s) => !refused.includes(s));
    await Promise.all(granted.map((s) => s.waitForRequest((r) => isEdit(r) && r.files.length > 0)));
    expect(h.segmind.requests).toHaveLength(3);
  });

  // Each image may be retried once (SEGMIND_RETRY_BASE_MS is 20 ms in the harness, so retries end quickly): only
  // rate limits, server errors, timeouts and connection failures are retried. A hanging Segmind is given up on after
  // a quarter of a second (set past the config's 5 s minimum, as the fast timeout tests in imagine.e2e do).
  it.each([
    [{ kind: 'error' as const, status: 500 }, 'The image service had a problem', true],
    [{ kind: 'error' as const, status: 406 }, "paused until the bot's owner tops up its account", false],
    [{ kind: 'error' as const, status: 401 }, "paused until the bot's owner fixes its account", false],
    [{ kind: 'error' as const, status: 400 }, 'did not accept these settings', false],
    [{ kind: 'error' as const, status: 403 }, 'The image service refused this request.', false],
    [{ kind: 'error' as const, status: 404 }, 'The image model is not available right now.', false],
    [{ kind: 'error' as const, status: 422 }, 'The image service did not accept these settings. Change them and try again. It said: “Invalid parameter: steps', false],
    [{ kind: 'error' as const, status: 429 }, 'The image service is busy — try again in a minute.', true],
    [{ kind: 'error' as const, status: 502 }, 'The image service had a problem', true],
    [{ kind: 'error' as const, status: 503 }, 'The image service had a problem', true],
    [{ kind: 'error' as const, status: 504 }, 'The image service took too long to answer', true],
    [{ kind: 'hang' as const }, 'The image service took too long to answer', true],
    [{ kind: 'notAnImage' as const }, 'not an image', false],
    [{ kind: 'reset' as const }, 'The image service could not be reached', true],
  ])('refunds every credit when Segmind fails (%j)', async (scenario, text, retried) => {
    h = await startHarness({
      env: { DEFAULT_DAILY_CREDITS: '4', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_MAX_RETRIES: '1' },
      config: { SEGMIND_TIMEOUT_SECONDS: 0.25 },
    });
    h.segmind.setDefault(scenario);
    // answered privately, the public "thinking…" reply deleted (refusalAfterDeferral checks both)
    const answer = await refusal(sendImagine(h.discord, { prompt: 'doomed', samples: 4 }));
    expect(answer).toContain(text);
    expect(answer).toContain('Nothing was charged.');
    expect(answer).not.toMatch(/segmind/i);
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect(h.logs.find((l) => l.msg === 'credits settled')).toMatchObject({ committed: 0, refunded: 4 });
    expect(h.segmind.requests, retried ? 'every image tried twice' : 'no retry').toHaveLength(retried ? 8 : 4);
    const reply = messageOf((await credits(h).waitForCallback()).json).content!;
    expect(reply).toContain("Today's allowance: **4** of 4 left");
    expect(reply).toContain('Cooldown: none, you can generate now');
  });

  it('charges only the images delivered when some fail', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '4', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_MAX_RETRIES: '0' } });
    h.segmind.respondWith((req) => ((req.body as { seed: number }).seed === 11 ? { kind: 'error', status: 503 } : { kind: 'image' }));
    const edit = await delivered(sendImagine(h.discord, { prompt: 'mixed', samples: 3, seed: 10 }));
    expect(edit.files).toHaveLength(2);
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect(h.logs.find((l) => l.msg === 'credits settled')).toMatchObject({ committed: 2, refunded: 1 });
    expect(messageOf((await credits(h).waitForCallback()).json).content).toContain("Today's allowance: **2** of 4 left");
  });

  it('posts what fits the upload limit, explains the rest, and refunds it', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '4', DEFAULT_COOLDOWN_SECONDS: '0' } });
    // seed 21 comes back as a large noisy PNG, seed 20 as a small one
    h.segmind.respondWith((req) =>
      (req.body as { seed: number }).seed === 21 ? { kind: 'image', longSide: 256, noise: true } : { kind: 'image' },
    );
    const interaction = sendImagine(h.discord, { prompt: 'big and small', samples: 2, seed: 20, output_format: 'png' }, { attachmentSizeLimit: 20_000 });
    const edit = await delivered(interaction);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-20.png']);
    expect(messageOf(edit.json).content).toMatch(/Image 2 of 2 \(seed 21\) is \d+ KiB, over this server's 20 KiB upload limit/);
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect(h.logs.find((l) => l.msg === 'credits settled')).toMatchObject({ committed: 1, refunded: 1 });
  });

  it('refunds when the result cannot be delivered to Discord', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '2', DEFAULT_COOLDOWN_SECONDS: '0' } });
    h.discord.failNext({ method: 'PATCH', path: /messages\/@original$/ }, { status: 404, body: { code: 10015, message: 'Unknown Webhook' } });
    h.discord.failNext({ method: 'POST', path: /^\/channels\/\d+\/messages$/ }, { status: 403, body: { code: 50013, message: 'Missing Permissions' } });
    const interaction = sendImagine(h.discord, { prompt: 'lost in transit' });
    await interaction.waitForCallback();
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect(h.logs.find((l) => l.msg === 'credits settled')).toMatchObject({ committed: 0, refunded: 1 });
    expect(messageOf((await credits(h).waitForCallback()).json).content).toContain("Today's allowance: **2** of 2 left");
  });

  it('fails closed when storage is down: refused, nothing sent to Segmind, nothing charged', async () => {
    h = await startHarness({ env: { DEFAULT_COOLDOWN_SECONDS: '0' } });
    await h.storage.close();
    // Refused at once: whether the answer is private depends on the member's preferences, read before the deferral.
    const text = await immediateRefusal(sendImagine(h.discord, { prompt: 'no storage' }));
    expect(text).toContain('The bot is having trouble on its side and cannot take requests right now.');
    expect(text).toContain('Nothing was charged');
    expect(h.segmind.requests).toHaveLength(0);
  });

  it('acknowledges before storage answers, then runs the request once it does', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '5', DEFAULT_COOLDOWN_SECONDS: '0', STORAGE_TIMEOUT_MS: '2500' } });
    const quota = h.storage.quota;
    const reserve = quota.reserve.bind(quota);
    let answer!: () => void;
    const held = new Promise<void>((resolve) => (answer = resolve));
    const spy = vi.spyOn(quota, 'reserve').mockImplementation(async (...args: Parameters<QuotaStore['reserve']>) => {
      await held;
      return reserve(...args);
    });
    const sent = sendImagine(h.discord, { prompt: 'slow storage' });
    const callback = await sent.waitForCallback();
    expect(callback.json).toMatchObject({ type: 5 });
    // storage is asked after the acknowledgement and has not answered
    await eventually(() => spy.mock.calls.length === 1, 'the credit reservation to be asked');
    expect(sent.requests()).toEqual([callback]);
    expect(h.segmind.requests).toHaveLength(0);
    answer();
    const edit = await sent.waitForRequest((r) => isEdit(r) && r.files.length > 0);
    expect(edit.files).toHaveLength(1);
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect((await quota.usage(h.discord.guildId, h.discord.defaultUserId, Date.now())).usedToday).toBe(1);
  });

  it('acknowledges at once when storage hangs, then refuses privately ("cannot take requests right now"), for free', async () => {
    h = await startHarness({ env: { DEFAULT_COOLDOWN_SECONDS: '0', STORAGE_TIMEOUT_MS: '300' } });
    const quota = h.storage.quota;
    const hanging = vi.spyOn(quota, 'reserve').mockImplementation(() => new Promise(() => undefined));
    const sent = sendImagine(h.discord, { prompt: 'storage hangs' });
    const callback = await sent.waitForCallback();
    expect(callback.json).toMatchObject({ type: 5 });
    const text = await refusal(sent);
    expect(text).toContain('The bot is having trouble on its side and cannot take requests right now.');
    expect(text).toContain('Nothing was charged');
    // the refusal came only once storage had been given up on
    expect(sent.followUps()[0]!.at - callback.at).toBeGreaterThanOrEqual(250);
    expect(hanging).toHaveBeenCalledTimes(1);
    hanging.mockRestore();
    expect(h.segmind.requests).toHaveLength(0);
    expect((await quota.usage(h.discord.guildId, h.discord.defaultUserId, Date.now())).usedToday).toBe(0);
  });

  it('writes a refusal into the "thinking…" message when that message cannot be deleted', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '600' } });
    await delivered(sendImagine(h.discord, { prompt: 'first' }));
    h.discord.failNext({ method: 'DELETE', path: /messages\/@original$/ }, { status: 500, body: { code: 0, message: 'Internal Server Error' } });
    const sent = sendImagine(h.discord, { prompt: 'second' });
    const edit = await sent.waitForRequest(isEdit);
    const [callback, deletion] = sent.requests();
    expect(callback!.json).toMatchObject({ type: 5 });
    expect(deletion).toMatchObject({ method: 'DELETE', status: 500, injected: true });
    expect(messageOf(edit.json).content).toMatch(/^❌ You're on cooldown\. Try again <t:\d+:R>\.$/);
    expect(sent.originalMessage()?.content).toBe(messageOf(edit.json).content);
    expect(sent.followUps()).toEqual([]);
    expect(h.segmind.requests).toHaveLength(1);
  });

  it('keeps usage in a SQLite file across a bot restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flux-bot-sqlite-'));
    h = await startHarness({
      env: { STORE_URL: `sqlite://${join(dir, 'bot.sqlite')}`, DEFAULT_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0' },
    });
    await delivered(sendImagine(h.discord, { prompt: 'before restart', samples: 2 }));
    await h.restartBot();
    expect(await refusal(sendImagine(h.discord, { prompt: 'after restart', samples: 2 }))).toContain('have 1 credit left');
  });

  it('refunds, at start-up, a request whose process died before it finished', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0' } });
    const now = Date.now();
    // what a crash leaves behind: a reservation nobody will settle, whose interaction token has expired
    const reserved = await h.storage.quota.reserve({
      reservationId: '999999999999999999',
      guildId: h.discord.guildId,
      userId: h.discord.defaultUserId,
      credits: 2,
      now: now - 1_000,
      limits: { dailyAllowance: 3, cooldownMs: 0, guildDailyCap: 0 },
      expiresAt: now - 500,
    });
    expect(reserved.ok).toBe(true);
    expect((await h.storage.quota.usage(h.discord.guildId, h.discord.defaultUserId, now)).usedToday).toBe(2);
    await h.restartBot();
    expect((await h.storage.quota.usage(h.discord.guildId, h.discord.defaultUserId, now)).usedToday).toBe(0);
    expect(h.logs.some((l) => l.msg === 'refunded an abandoned request')).toBe(true);
  });
});
