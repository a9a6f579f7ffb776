import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { immediateRefusal, refusalAfterDeferral } from '../support/refusals.js';
import { deleteRedisKeys, describeWithRedis, redisTestNamespace, REDIS_URL, TcpProxy } from '../support/redis.js';

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0', MAX_QUEUED_PER_USER: '10' };

describe('circuit breaker around Segmind', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('opens after repeated server errors, refuses for free meanwhile, and closes again after a good probe', async () => {
    h = await startHarness({
      env: { ...NO_LIMITS, SEGMIND_MAX_RETRIES: '0' },
      breaker: { failureThreshold: 2, openMs: 300, maxOpenMs: 300 },
    });
    const harness = h;
    harness.segmind.setDefault({ kind: 'error', status: 503 });
    // each failure is answered privately, in place of the "thinking…" reply
    expect(await refusalAfterDeferral(sendImagine(harness.discord, { prompt: 'one' }))).toContain('No image could be generated');
    expect(await refusalAfterDeferral(sendImagine(harness.discord, { prompt: 'two' }))).toContain('No image could be generated');
    const openedAt = Date.now();

    const text = await immediateRefusal(sendImagine(harness.discord, { prompt: 'three' }));
    expect(text).toMatch(/^❌ The image service is having trouble right now\. Try again <t:\d+:R> — nothing was charged\.$/);
    expect(harness.segmind.requests).toHaveLength(2);
    expect(harness.bot.metrics.health().breaker).toBe('open');
    expect(await harness.bot.metrics.render().then((m) => m.body)).toContain('flux_bot_breaker_state 2');

    // after the open period one probe goes through; Segmind is healthy again
    harness.segmind.setDefault({ kind: 'image' });
    await eventually(() => Date.now() - openedAt >= 300, 'the open period to pass', 2_000);
    const edit = await sendImagine(harness.discord, { prompt: 'four', seed: 4 }).waitForRequest(isEdit);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-4.webp']);
    expect(harness.bot.metrics.health().breaker).toBe('closed');
    // everyone's credits: the three failed or refused requests cost nothing
    const usage = await harness.storage.quota.usage(harness.discord.guildId, harness.discord.defaultUserId, Date.now());
    expect(usage.usedToday).toBe(1);
  });
});

describeWithRedis('several bot processes sharing Redis', () => {
  const namespace = redisTestNamespace();
  afterAll(async () => {
    await deleteRedisKeys(namespace);
  });

  it('never exceed the bot-wide Segmind concurrency together', async () => {
    const h = await startHarness({
      env: { ...NO_LIMITS, STORE_URL: REDIS_URL, SEGMIND_CONCURRENCY: '2' },
      storageNamespace: namespace,
    });
    try {
      await h.addBot();
      await h.discord.waitForReadyConnections(2);
      h.segmind.pause();
      const members = Array.from({ length: 8 }, (_, i) => String(300000000000000000n + BigInt(i)));
      const sent = members.map((userId, i) =>
        sendImagine(h.discord, { prompt: `job ${i}`, seed: 100 + i }, { userId, connection: i % 2 }),
      );
      await Promise.all(sent.map((s) => s.waitForCallback()));
      await h.segmind.waitForInFlight(2);
      h.segmind.resume();
      const edits = await Promise.all(sent.map((s) => s.waitForRequest(isEdit, 10_000)));
      expect(edits.every((e) => e.files.length === 1)).toBe(true);
      expect(h.segmind.requests).toHaveLength(8);
      expect(h.segmind.maxInFlight()).toBe(2);
      await eventually(() => h.logs.filter((l) => l.msg === 'imagine job finished').length === 8, 'eight job log lines');
      // each process admitted only what it received, and all of them shared one limiter
      expect(h.discord.requests.filter((r) => r.path.includes('/callback')).length).toBe(8);
      // the journal entries are closed before each job's last log line; both processes wrote to one ledger
      await expectConsistentLedger(h.storage, Object.fromEntries(members.map((m) => [m, 1])), { guildId: h.discord.guildId });
    } finally {
      await h.stop();
    }
  });
});

describeWithRedis('storage outage', () => {
  const namespace = redisTestNamespace();
  let proxy: TcpProxy;
  beforeAll(async () => {
    proxy = await TcpProxy.start();
  });
  afterAll(async () => {
    await proxy.stop();
    await deleteRedisKeys(namespace);
  });

  it('fails closed while Redis is down and recovers by itself when it is back', async () => {
    const h = await startHarness({ env: { ...NO_LIMITS, STORE_URL: proxy.url }, storageNamespace: namespace });
    try {
      await sendImagine(h.discord, { prompt: 'before' }).waitForRequest(isEdit);

      await proxy.stop();
      // The member's preferences (is the request private?) are read before the deferral: refused at once.
      const text = await immediateRefusal(sendImagine(h.discord, { prompt: 'during' }));
      expect(text).toContain('The bot is having trouble on its side and cannot take requests right now.');
      expect(h.segmind.requests).toHaveLength(1);
      expect(h.bot.metrics.health().storage).toBe(false);

      await proxy.start();
      const deadline = Date.now() + 10_000;
      for (;;) {
        try {
          await h.storage.ping();
          break;
        } catch (error) {
          if (Date.now() > deadline) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      const edit = await sendImagine(h.discord, { prompt: 'after', seed: 3 }).waitForRequest(isEdit);
      expect(edit.files.map((f) => f.name)).toEqual(['flux-3.webp']);
      expect(h.bot.metrics.health().storage).toBe(true);
      const usage = await h.storage.quota.usage(h.discord.guildId, h.discord.defaultUserId, Date.now());
      expect(usage.usedToday).toBe(2);
    } finally {
      await h.stop();
    }
  });
});
