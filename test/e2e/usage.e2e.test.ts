import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RecordedRequest, SentInteraction } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');

/** The private reply a refused request gets: a type 4 callback with the ephemeral flag. */
async function refusal(interaction: SentInteraction): Promise<string> {
  const callback = await interaction.waitForCallback();
  expect(callback.json).toMatchObject({ type: 4 });
  const message = messageOf(callback.json);
  expect((message.flags ?? 0) & 64).toBe(64);
  return message.content ?? '';
}

async function delivered(interaction: SentInteraction): Promise<RecordedRequest> {
  const callback = await interaction.waitForCallback();
  expect(callback.json).toMatchObject({ type: 5 });
  return interaction.waitForRequest(isEdit);
}

function credits(h: Harness, userId?: string) {
  return h.discord.sendSlashCommand({ name: 'credits', ...(userId ? { userId } : {}) });
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
    expect(text).toContain('You asked for 2 image(s) but have 1 credit(s) left today.');
    expect(text).toMatch(/<t:\d+:R>/);
    await delivered(sendImagine(h.discord, { prompt: 'three' }));
    expect(await refusal(sendImagine(h.discord, { prompt: 'four' }))).toContain("You've used all your image credits for today.");
    expect(h.segmind.requests).toHaveLength(5);

    const reply = messageOf((await credits(h).waitForCallback()).json);
    expect(reply.flags! & 64).toBe(64);
    expect(reply.content).toContain('Today: **0** of 5 left');
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
    expect(reply).toContain('Today: **9** of 10 left');
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
    expect(text).toContain('This server has only 1 image(s) left in today');
    await delivered(sendImagine(h.discord, { prompt: 'c' }, { userId: '222222222222222222' }));
    expect(await refusal(sendImagine(h.discord, { prompt: 'd' }, { userId: '333333333333333333' }))).toContain(
      'This server has used its image budget for today.',
    );
  });

  it('grants exactly what remains when a member fires many requests at once', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0', MAX_QUEUED_PER_USER: '10' } });
    const harness = h;
    const sent = Array.from({ length: 10 }, (_, i) => sendImagine(harness.discord, { prompt: `burst ${i}` }));
    const callbacks = await Promise.all(sent.map((s) => s.waitForCallback()));
    expect(callbacks.filter((c) => (c.json as { type: number }).type === 5)).toHaveLength(3);
    expect(callbacks.filter((c) => (c.json as { type: number }).type === 4)).toHaveLength(7);
    await eventually(() => h!.segmind.requests.length === 3 || undefined, '3 Segmind calls');
  });

  it.each([
    [{ kind: 'error' as const, status: 500 }, 'server error'],
    [{ kind: 'error' as const, status: 406 }, 'out of credits'],
    [{ kind: 'error' as const, status: 401 }, 'API key'],
    [{ kind: 'error' as const, status: 400 }, 'rejected these parameters'],
    [{ kind: 'notAnImage' as const }, 'not a valid image'],
    [{ kind: 'reset' as const }, 'Could not reach Segmind'],
  ])('refunds every credit when Segmind fails (%j)', async (scenario, text) => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '4', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_MAX_RETRIES: '0' } });
    h.segmind.setDefault(scenario);
    const edit = await delivered(sendImagine(h.discord, { prompt: 'doomed', samples: 4 }));
    expect(messageOf(edit.json).content).toContain(text);
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect(h.logs.find((l) => l.msg === 'credits settled')).toMatchObject({ committed: 0, refunded: 4 });
    const reply = messageOf((await credits(h).waitForCallback()).json).content!;
    expect(reply).toContain('Today: **4** of 4 left');
  });

  it('charges only the images delivered when some fail', async () => {
    h = await startHarness({ env: { DEFAULT_DAILY_CREDITS: '4', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_MAX_RETRIES: '0' } });
    h.segmind.respondWith((req) => ((req.body as { seed: number }).seed === 11 ? { kind: 'error', status: 503 } : { kind: 'image' }));
    const edit = await delivered(sendImagine(h.discord, { prompt: 'mixed', samples: 3, seed: 10 }));
    expect(edit.files).toHaveLength(2);
    await eventually(() => h!.logs.find((l) => l.msg === 'credits settled'), 'the settlement');
    expect(h.logs.find((l) => l.msg === 'credits settled')).toMatchObject({ committed: 2, refunded: 1 });
    expect(messageOf((await credits(h).waitForCallback()).json).content).toContain('Today: **2** of 4 left');
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
    expect(messageOf((await credits(h).waitForCallback()).json).content).toContain('Today: **2** of 2 left');
  });

  it('fails closed when storage is down: refused, nothing sent to Segmind, nothing charged', async () => {
    h = await startHarness({ env: { DEFAULT_COOLDOWN_SECONDS: '0' } });
    await h.storage.close();
    const text = await refusal(sendImagine(h.discord, { prompt: 'no storage' }));
    expect(text).toContain('Image generation is temporarily unavailable');
    expect(text).toContain('Nothing was charged');
    expect(h.segmind.requests).toHaveLength(0);
  });

  it('keeps usage in a SQLite file across a bot restart', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flux-bot-sqlite-'));
    h = await startHarness({
      env: { STORE_URL: `sqlite://${join(dir, 'bot.sqlite')}`, DEFAULT_DAILY_CREDITS: '3', DEFAULT_COOLDOWN_SECONDS: '0' },
    });
    await delivered(sendImagine(h.discord, { prompt: 'before restart', samples: 2 }));
    await h.restartBot();
    expect(await refusal(sendImagine(h.discord, { prompt: 'after restart', samples: 2 }))).toContain('have 1 credit(s) left');
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
