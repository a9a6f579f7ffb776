import { afterEach, describe, expect, it } from 'vitest';
import { startHealthServer } from '../../src/http/health-server.js';
import { createLogger } from '../../src/logger.js';
import type { RecordedRequest, SentInteraction } from '../fakes/fake-discord.js';
import type { RecordedSegmindRequest } from '../fakes/fake-segmind.js';
import { describeImage } from '../fakes/images.js';
import { eventually, startHarness, type Harness, type HarnessOptions, type LogLine } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger, readLedger } from '../support/ledger.js';
import { immediateRefusal, refusalAfterDeferral } from '../support/refusals.js';

/** These tests are about the queue, not usage limits (each test that needs a limit sets its own). */
const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
/** Queue position edits, fast enough for a test and still throttled. */
const PROGRESS = { firstEditDelayMs: 50, minIntervalMs: 200 };
/**
 * Recorded `at` times are taken when the fake Discord has read a request, after a REST round trip; the bot's throttle
 * counts from when it sent the edit. Allow that transit jitter, far below what an unthrottled edit would show.
 */
const TRANSIT_JITTER_MS = 25;

const ALICE = '111111111111111111';
const BOB = '222222222222222222';
const CAROL = '333333333333333333';
const DAVE = '444444444444444444';
const ERIN = '555555555555555555';

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const textOf = (r: RecordedRequest) => messageOf(r.json).content ?? '';
const seedOf = (r: RecordedSegmindRequest) => (r.body as { seed: number }).seed;
const seedsSent = (h: Harness) => h.segmind.requests.map(seedOf);

/** Custom ids of the buttons in a message body (edit or callback). */
function buttonsOf(json: unknown): string[] {
  const rows = (messageOf(json) as { components?: Array<{ components?: Array<{ custom_id?: string }> }> }).components ?? [];
  return rows.flatMap((row) => (row.components ?? []).map((c) => c.custom_id ?? ''));
}

/** The edit of the original reply that posted the images (a successful one). */
function imageEdit(interaction: SentInteraction): Promise<RecordedRequest> {
  return interaction.waitForRequest((r) => isEdit(r) && r.status === 200 && r.files.length > 0);
}

function queuedEdit(interaction: SentInteraction): Promise<RecordedRequest> {
  return interaction.waitForRequest((r) => isEdit(r) && textOf(r).startsWith('⏳ Queued'));
}

/** The private reply a Cancel press gets: a type 4 callback with the ephemeral flag. */
async function privateReply(interaction: SentInteraction): Promise<string> {
  const callback = await interaction.waitForCallback();
  expect(callback.json).toMatchObject({ type: 4 });
  const message = messageOf(callback.json);
  expect((message.flags ?? 0) & 64).toBe(64);
  return message.content ?? '';
}

/** Presses the Cancel button on the message the member sees for `job`. */
function pressCancel(h: Harness, job: SentInteraction, userId: string): SentInteraction {
  const messageId = job.originalMessage()?.id;
  if (messageId === undefined) throw new Error(`no reply for ${job.id} to press Cancel on`);
  return h.discord.sendButton({ customId: `cancel:${job.id}`, userId, messageId });
}

/** Holds Segmind's answers from the moment the request with this seed arrives (it is held too), until resume(). */
function pauseWhenSeedArrives(h: Harness, seed: number): void {
  h.segmind.respondWith((request) => {
    if (seedOf(request) === seed) h.segmind.pause();
    return { kind: 'image' };
  });
}

async function usedToday(h: Harness, userId: string): Promise<number> {
  return (await h.storage.quota.usage(h.discord.guildId, userId, Date.now())).usedToday;
}

function settlementOf(h: Harness, job: SentInteraction): Promise<LogLine> {
  return eventually(() => h.logs.find((l) => l.msg === 'credits settled' && l.reservationId === job.id), `the settlement of ${job.id}`);
}

function jobFinished(h: Harness, job: SentInteraction): Promise<LogLine> {
  return eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === job.id), `the end of job ${job.id}`);
}

/** `name{labels}` → value, for the samples asked for (undefined when a sample is missing). */
function samplesOf(exposition: string, names: readonly string[]): Record<string, number | undefined> {
  const values = new Map<string, number>();
  for (const line of exposition.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue;
    const at = line.lastIndexOf(' ');
    values.set(line.slice(0, at), Number(line.slice(at + 1)));
  }
  return Object.fromEntries(names.map((name) => [name, values.get(name)]));
}

describe('the job queue, end to end', () => {
  let h: Harness | undefined;
  const start = async (options: HarnessOptions) => {
    h = await startHarness(options);
    return h;
  };
  afterEach(async () => {
    // Let held Segmind answers go, so the bot's graceful stop does not wait out its grace period.
    h?.segmind.respondWith(null);
    h?.segmind.resume();
    await h?.stop();
    h = undefined;
  });

  it('serves members round-robin: a single image is not stuck behind the rest of a 4-image request', async () => {
    const h = await start({ env: { ...NO_LIMITS, SEGMIND_CONCURRENCY: '1' }, progress: { firstEditDelayMs: 0, minIntervalMs: 50 } });
    h.segmind.pause();
    const alice = sendImagine(h.discord, { prompt: 'four foxes', samples: 4, seed: 100 }, { userId: ALICE });
    await h.segmind.waitForInFlight(1); // Alice's first image is being generated
    const bob = sendImagine(h.discord, { prompt: 'one owl', samples: 1, seed: 900 }, { userId: BOB });
    const bobQueued = await queuedEdit(bob); // Bob's request is in the queue
    expect(seedsSent(h)).toEqual([100]); // one Segmind slot

    h.segmind.resume();
    const [aliceImages, bobImages] = await Promise.all([imageEdit(alice), imageEdit(bob)]);
    expect(seedsSent(h)).toEqual([100, 900, 101, 102, 103]);
    expect(textOf(bobQueued)).toBe("⏳ Queued — you're next.");
    expect(aliceImages.files.map((f) => f.name)).toEqual(['flux-100.webp', 'flux-101.webp', 'flux-102.webp', 'flux-103.webp']);
    expect(bobImages.files.map((f) => f.name)).toEqual(['flux-900.webp']);
    // the journal entry is closed before the job's last log line
    await Promise.all([jobFinished(h, alice), jobFinished(h, bob)]);
    await expectConsistentLedger(h.storage, { [ALICE]: 4, [BOB]: 1 }, { guildId: h.discord.guildId });
  });

  it('shows a waiting member their place with a Cancel button, then “Generating”, then the images, throttled', async () => {
    const h = await start({ env: { ...NO_LIMITS, SEGMIND_CONCURRENCY: '1' }, progress: PROGRESS });
    h.segmind.pause();
    pauseWhenSeedArrives(h, 300); // Bob's image is held while it is being generated
    const alice = sendImagine(h.discord, { prompt: 'first', seed: 100 }, { userId: ALICE });
    await h.segmind.waitForInFlight(1);
    const carol = sendImagine(h.discord, { prompt: 'second', seed: 200 }, { userId: CAROL });
    await queuedEdit(carol);
    const bob = sendImagine(h.discord, { prompt: 'third', seed: 300 }, { userId: BOB });

    const queued = await queuedEdit(bob);
    expect(textOf(queued)).toBe('⏳ Queued — 1 image ahead of you.'); // Carol's; Alice's is already generating
    expect(buttonsOf(queued.json)).toEqual([`cancel:${bob.id}`]);
    expect(queued.files).toHaveLength(0);
    expect(bob.originalMessage()?.content).toBe('⏳ Queued — 1 image ahead of you.');

    h.segmind.resume(); // Alice's and Carol's images are answered; Bob's is held when it reaches Segmind
    const generating = await bob.waitForRequest((r) => isEdit(r) && textOf(r).startsWith('🎨 Generating'));
    expect(textOf(generating)).toBe('🎨 Generating 0/1…');
    expect(buttonsOf(generating.json)).toEqual([]); // too late to cancel: no button
    await h.segmind.waitForRequests(3);
    expect(seedsSent(h)).toEqual([100, 200, 300]);
    await Promise.all([imageEdit(alice), imageEdit(carol)]);

    h.segmind.resume();
    const images = await imageEdit(bob);
    expect(images.files.map((f) => f.name)).toEqual(['flux-300.webp']);
    await jobFinished(h, bob);

    const edits = bob.edits();
    expect(edits[0]).toBe(queued);
    expect(edits.at(-1)).toBe(images); // the images are the last edit: no progress edit after them
    const progress = edits.slice(0, -1);
    expect(progress.map(textOf).every((t) => t.startsWith('⏳ Queued') || t.startsWith('🎨 Generating'))).toBe(true);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.at - progress[i - 1]!.at).toBeGreaterThanOrEqual(PROGRESS.minIntervalMs - TRANSIT_JITTER_MS);
    }
    expect(buttonsOf(images.json).filter((id) => id.startsWith('cancel:'))).toEqual([]); // no Cancel left on the result
    expect(buttonsOf({ data: bob.originalMessage() }).filter((id) => id.startsWith('cancel:'))).toEqual([]);
    expect(bob.originalMessage()?.attachments).toHaveLength(1);
    await Promise.all([jobFinished(h, alice), jobFinished(h, carol)]);
    await expectConsistentLedger(h.storage, { [ALICE]: 1, [CAROL]: 1, [BOB]: 1 }, { guildId: h.discord.guildId });
  });

  it('cancels a queued request for its member: “Cancelled” privately (the public reply deleted), never sent to Segmind, every credit refunded', async () => {
    const h = await start({
      env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_CONCURRENCY: '1' },
      progress: PROGRESS,
    });
    h.segmind.pause();
    const alice = sendImagine(h.discord, { prompt: 'running', seed: 100 }, { userId: ALICE });
    await h.segmind.waitForInFlight(1);
    const bob = sendImagine(h.discord, { prompt: 'waiting', samples: 2, seed: 500 }, { userId: BOB });
    await queuedEdit(bob);
    expect(await usedToday(h, BOB)).toBe(2); // reserved while waiting

    const press = pressCancel(h, bob, BOB);
    const callback = await press.waitForCallback();
    expect(callback.json).toMatchObject({ type: 6 }); // DEFERRED_UPDATE_MESSAGE
    expect(callback.status).toBe(204);
    const cancelled = await bob.waitForRequest((r) => r.method === 'POST' && textOf(r).startsWith('🚫'));
    expect(textOf(cancelled)).toBe('🚫 Cancelled. Nothing was charged.');
    expect((messageOf(cancelled.json).flags ?? 0) & 64, 'the answer is private').toBe(64);
    expect(bob.requests().some((r) => r.method === 'DELETE' && r.seq < cancelled.seq), 'the queue message deleted first').toBe(true);
    expect(await settlementOf(h, bob)).toMatchObject({ committed: 0, refunded: 2 });
    expect(await usedToday(h, BOB)).toBe(0);

    h.segmind.resume();
    await imageEdit(alice);
    await jobFinished(h, alice);
    expect(seedsSent(h)).toEqual([100]); // neither 500 nor 501 ever reached Segmind
    expect(bob.edits().every((r) => textOf(r).startsWith('⏳')), 'the public reply only ever showed the queue').toBe(true);
    expect(bob.originalMessage(), 'no public message of the request remains').toBeUndefined();
    const credits = h.discord.sendSlashCommand({ name: 'credits', userId: BOB });
    expect(messageOf((await credits.waitForCallback()).json).content).toContain("Today's allowance: **10** of 10 left");
  });

  it('refuses, privately, a Cancel pressed by another member, and the request goes on', async () => {
    const h = await start({
      env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_CONCURRENCY: '1' },
      progress: PROGRESS,
    });
    h.segmind.pause();
    sendImagine(h.discord, { prompt: 'running', seed: 100 }, { userId: ALICE });
    await h.segmind.waitForInFlight(1);
    const bob = sendImagine(h.discord, { prompt: 'waiting', seed: 500 }, { userId: BOB });
    await queuedEdit(bob);

    const press = pressCancel(h, bob, CAROL);
    expect(await privateReply(press)).toBe('Only the member who asked for these images can cancel them.');
    expect(bob.edits().some((r) => textOf(r).startsWith('🚫'))).toBe(false);

    h.segmind.resume();
    const images = await imageEdit(bob);
    expect(images.files.map((f) => f.name)).toEqual(['flux-500.webp']);
    expect(seedsSent(h)).toEqual([100, 500]);
    expect(await settlementOf(h, bob)).toMatchObject({ committed: 1, refunded: 0 });
    expect(await usedToday(h, BOB)).toBe(1);
    expect(await usedToday(h, CAROL)).toBe(0);
  });

  it('answers “Too late” to a Cancel pressed once the images are being generated, and charges them', async () => {
    const h = await start({
      env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_CONCURRENCY: '1' },
      progress: PROGRESS,
    });
    h.segmind.pause();
    pauseWhenSeedArrives(h, 500);
    sendImagine(h.discord, { prompt: 'running', seed: 100 }, { userId: ALICE });
    await h.segmind.waitForInFlight(1);
    const bob = sendImagine(h.discord, { prompt: 'waiting', seed: 500 }, { userId: BOB });
    await queuedEdit(bob); // the member sees the Cancel button…
    h.segmind.resume();
    await h.segmind.waitForRequests(2); // …but by the time they press it, their image is at Segmind
    expect(seedsSent(h)).toEqual([100, 500]);

    const press = pressCancel(h, bob, BOB);
    expect(await privateReply(press)).toBe('Too late to cancel: the images are already being generated (or are done).');

    h.segmind.resume();
    const images = await imageEdit(bob);
    expect(images.files.map((f) => f.name)).toEqual(['flux-500.webp']);
    expect(bob.edits().some((r) => textOf(r).startsWith('🚫'))).toBe(false);
    expect(await settlementOf(h, bob)).toMatchObject({ committed: 1, refunded: 0 });
  });

  it('refuses a member’s third request while two are waiting or generating, privately and for free', async () => {
    const h = await start({
      env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_CONCURRENCY: '1', MAX_QUEUED_PER_USER: '2' },
      progress: PROGRESS,
    });
    h.segmind.pause();
    const first = sendImagine(h.discord, { prompt: 'first', seed: 100 }, { userId: ALICE });
    await h.segmind.waitForInFlight(1);
    const second = sendImagine(h.discord, { prompt: 'second', samples: 2, seed: 200 }, { userId: ALICE });
    await queuedEdit(second);
    expect(await usedToday(h, ALICE)).toBe(3);

    const third = sendImagine(h.discord, { prompt: 'third', samples: 4, seed: 300 }, { userId: ALICE });
    expect(await immediateRefusal(third)).toBe(
      '❌ You already have 2 requests waiting or generating. Wait for one to finish (or cancel it) — nothing was charged.',
    );
    expect(await usedToday(h, ALICE)).toBe(3); // the refused request reserved nothing
    // another member is not affected by Alice's queue
    const bob = sendImagine(h.discord, { prompt: 'bob', seed: 900 }, { userId: BOB });
    expect((await bob.waitForCallback()).json).toMatchObject({ type: 5 });

    h.segmind.resume();
    await Promise.all([imageEdit(first), imageEdit(second), imageEdit(bob)]);
    await Promise.all([settlementOf(h, first), settlementOf(h, second)]);
    expect(seedsSent(h).sort()).toEqual([100, 200, 201, 900]);
    expect(await usedToday(h, ALICE)).toBe(3);

    // with her requests done, Alice may ask again
    const fourth = sendImagine(h.discord, { prompt: 'fourth', seed: 400 }, { userId: ALICE });
    expect((await fourth.waitForCallback()).json).toMatchObject({ type: 5 });
    await imageEdit(fourth);
  });

  it('holds the per-member queue limit when a member fires several requests at once', async () => {
    const h = await start({
      env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '0', SEGMIND_CONCURRENCY: '1', MAX_QUEUED_PER_USER: '2' },
    });
    h.segmind.pause();
    const sent = [100, 200, 300].map((seed) => sendImagine(h.discord, { prompt: `burst ${seed}`, seed }, { userId: ALICE }));
    const callbacks = await Promise.all(sent.map((s) => s.waitForCallback()));
    const types = callbacks.map((c) => (c.json as { type: number }).type);
    expect(types.filter((t) => t === 5)).toHaveLength(2);
    expect(types.filter((t) => t === 4)).toHaveLength(1);

    h.segmind.resume();
    const accepted = sent.filter((_s, i) => types[i] === 5);
    await Promise.all(accepted.map((s) => imageEdit(s)));
    await Promise.all(accepted.map((s) => settlementOf(h, s)));
    expect(h.segmind.requests).toHaveLength(2);
    expect(await usedToday(h, ALICE)).toBe(2);
  });

  describe('when Discord fails the delivery once', () => {
    /** Only this interaction's final edit is failed. */
    const originalOf = (job: SentInteraction) => ({ method: 'PATCH', path: new RegExp(`/${job.token}/messages/@original$`) });

    it('retries a 500 on the edit and posts the images once, charging them', async () => {
      const h = await start({ env: NO_LIMITS, restOptions: { retries: 1 } });
      const job = sendImagine(h.discord, { prompt: 'second time lucky', seed: 42 }, { userId: ALICE });
      h.discord.failNext(originalOf(job), { status: 500 });

      const images = await imageEdit(job);
      expect(job.edits().map((r) => [r.status, r.injected])).toEqual([
        [500, true],
        [200, false],
      ]);
      expect(images.files.map((f) => f.name)).toEqual(['flux-42.webp']);
      expect(await describeImage(images.files[0]!.bytes)).toEqual({ format: 'webp', width: 64, height: 64 });
      expect(job.originalMessage()?.attachments).toHaveLength(1);
      expect(await settlementOf(h, job)).toMatchObject({ committed: 1, refunded: 0 });
      expect(await usedToday(h, ALICE)).toBe(1);
      expect(h.segmind.requests).toHaveLength(1);
      expect(h.discord.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels/'))).toHaveLength(0);
    });

    it('waits out a 429 (Retry-After 0.2 s) and posts the images once, charging them', async () => {
      const h = await start({ env: NO_LIMITS, restOptions: { retries: 1 } });
      const job = sendImagine(h.discord, { prompt: 'patience', seed: 43 }, { userId: ALICE });
      h.discord.failNext(originalOf(job), {
        status: 429,
        headers: { 'retry-after': '0.2' },
        body: { message: 'You are being rate limited.', retry_after: 0.2, global: false, code: 0 },
      });

      const images = await imageEdit(job);
      const edits = job.edits();
      expect(edits.map((r) => [r.status, r.injected])).toEqual([
        [429, true],
        [200, false],
      ]);
      expect(edits[1]!.at - edits[0]!.at).toBeGreaterThanOrEqual(200);
      expect(images.files.map((f) => f.name)).toEqual(['flux-43.webp']);
      expect(job.originalMessage()?.attachments).toHaveLength(1);
      expect(await settlementOf(h, job)).toMatchObject({ committed: 1, refunded: 0 });
      expect(await usedToday(h, ALICE)).toBe(1);
    });
  });

  it('counts what happened in its metrics, served on /metrics next to an ok /healthz', async () => {
    const h = await start({ env: { DEFAULT_DAILY_CREDITS: '10', DEFAULT_COOLDOWN_SECONDS: '600', SEGMIND_MAX_RETRIES: '0' } });
    const delivered = sendImagine(h.discord, { prompt: 'delivered', seed: 1 }, { userId: ALICE });
    await imageEdit(delivered);
    await jobFinished(h, delivered);
    expect(await refusalAfterDeferral(sendImagine(h.discord, { prompt: 'too soon' }, { userId: ALICE }))).toMatch(/on cooldown/);
    h.segmind.setDefault({ kind: 'error', status: 500 });
    const failed = sendImagine(h.discord, { prompt: 'failed', samples: 2, seed: 10 }, { userId: BOB });
    expect(await refusalAfterDeferral(failed)).toContain('❌ No image could be generated.');
    expect(await jobFinished(h, failed)).toMatchObject({ outcome: 'failed' });

    const expected = {
      'flux_bot_jobs_total{outcome="delivered"}': 1,
      'flux_bot_jobs_total{outcome="failed"}': 1,
      'flux_bot_jobs_total{outcome="cancelled"}': 0,
      'flux_bot_refusals_total{reason="cooldown"}': 1,
      flux_bot_credits_committed_total: 1,
      flux_bot_credits_refunded_total: 2,
      'flux_bot_segmind_requests_total{status="200"}': 1,
      'flux_bot_segmind_requests_total{status="500"}': 2,
      'flux_bot_gateway_up{shard="0"}': 1,
      flux_bot_storage_up: 1,
    };
    const names = Object.keys(expected);
    expect(samplesOf((await h.bot.metrics.render()).body, names)).toEqual(expected);

    const server = await startHealthServer({
      port: 0,
      host: '127.0.0.1',
      metrics: h.bot.metrics,
      logger: createLogger({ level: 'silent', secrets: [] }),
    });
    try {
      const health = await fetch(`http://127.0.0.1:${server.port}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({
        status: 'ok',
        gateway: true,
        storage: true,
        breaker: 'closed',
        paused: false,
        shardCount: 1,
        shards: [{ id: 0, up: true }],
      });
      const scrape = await fetch(`http://127.0.0.1:${server.port}/metrics`);
      expect(scrape.status).toBe(200);
      expect(scrape.headers.get('content-type')).toMatch(/^text\/plain/);
      expect(samplesOf(await scrape.text(), names)).toEqual(expected);
    } finally {
      await server.close();
    }
    await expectConsistentLedger(h.storage, { [ALICE]: 1, [BOB]: 0 }, { guildId: h.discord.guildId });
  });

  it('never has more Segmind calls in flight than SEGMIND_CONCURRENCY, and delivers every image', async () => {
    const h = await start({ env: { ...NO_LIMITS, SEGMIND_CONCURRENCY: '2' }, progress: { firstEditDelayMs: 0, minIntervalMs: 50 } });
    const inFlightOnArrival: number[] = [];
    h.segmind.respondWith(() => {
      inFlightOnArrival.push(h.segmind.inFlight());
      return { kind: 'image' };
    });
    h.segmind.pause();
    const members = [ALICE, BOB, CAROL, DAVE, ERIN];
    const jobs = members.map((userId, i) =>
      sendImagine(h.discord, { prompt: `member ${i}`, samples: 2, seed: 1000 * (i + 1) }, { userId }),
    );
    await h.segmind.waitForInFlight(2);
    await Promise.all(jobs.map((job) => job.waitForRequest(isEdit))); // every job is in the queue
    expect(h.segmind.requestCount()).toBe(2);
    expect(h.segmind.inFlight()).toBe(2);

    h.segmind.resume();
    const images = await Promise.all(jobs.map((job) => imageEdit(job)));
    expect(images.map((edit) => edit.files.length)).toEqual([2, 2, 2, 2, 2]);
    expect(seedsSent(h).sort((a, b) => a - b)).toEqual([1000, 1001, 2000, 2001, 3000, 3001, 4000, 4001, 5000, 5001]);
    expect(Math.max(...inFlightOnArrival)).toBe(2);
    expect(h.segmind.maxInFlight()).toBe(2);
  });

  it('has as many Segmind calls in flight as SEGMIND_CONCURRENCY allows, with no second setting to raise', async () => {
    // 24 is above the 16 connections the pool used to default to: a pool smaller than the concurrency queued the rest.
    const h = await start({ env: { ...NO_LIMITS, SEGMIND_CONCURRENCY: '24' } });
    h.segmind.pause();
    const members = [ALICE, BOB, CAROL, DAVE, ERIN, '666666666666666666'];
    const jobs = members.map((userId, i) => sendImagine(h.discord, { prompt: `member ${i}`, samples: 4, seed: 1000 * (i + 1) }, { userId }));
    await h.segmind.waitForInFlight(24);
    expect(h.segmind.inFlight()).toBe(24);
    h.segmind.resume();
    const images = await Promise.all(jobs.map((job) => imageEdit(job)));
    expect(images.map((edit) => edit.files.length)).toEqual([4, 4, 4, 4, 4, 4]);
    await Promise.all(jobs.map((job) => jobFinished(h, job)));
    await expectConsistentLedger(h.storage, Object.fromEntries(members.map((m) => [m, 4])), { guildId: h.discord.guildId });
  });

  describe('on a graceful shutdown while a request’s first image is being generated', () => {
    const SHUTDOWN = { ...NO_LIMITS, SEGMIND_CONCURRENCY: '1', SHUTDOWN_GRACE_SECONDS: '20' };
    const GRACE_OVER = 'shutdown grace period over: unfinished images stay journaled for the next start';

    it('delivers the image generated, tells the member the other was not generated, and charges one credit', async () => {
      const h = await start({ env: SHUTDOWN });
      h.segmind.pause();
      const alice = sendImagine(h.discord, { prompt: 'two herons', samples: 2, seed: 700 }, { userId: ALICE });
      await h.segmind.waitForInFlight(1);

      const stopped = h.bot.stop();
      h.segmind.resume();
      await stopped; // well within the 20 s grace period: nothing waits for the image never started

      expect(h.logs.filter((l) => l.msg === GRACE_OVER)).toEqual([]);
      expect(seedsSent(h)).toEqual([700]);
      const images = alice.edits().filter((r) => r.files.length > 0);
      expect(images.map((r) => [r.status, ...r.files.map((f) => f.name)])).toEqual([[200, 'flux-700.webp']]);
      expect(textOf(images[0]!)).toContain('1 image was not generated because the bot is restarting. Nothing was charged for it.');
      expect(alice.edits().at(-1)).toBe(images[0]);
      expect(await jobFinished(h, alice)).toMatchObject({ outcome: 'partial', delivered: 1, failed: 1 });
      expect(await settlementOf(h, alice)).toMatchObject({ committed: 1, refunded: 1 });
      await expectConsistentLedger(h.storage, { [ALICE]: 1 }, { guildId: h.discord.guildId });
    });

    it('keeps the request journaled with the restart notice when its started image failed, charging nothing yet', async () => {
      const h = await start({ env: { ...SHUTDOWN, SEGMIND_MAX_RETRIES: '0' } });
      h.segmind.pause();
      h.segmind.respondWith(() => ({ kind: 'error', status: 500 }));
      const alice = sendImagine(h.discord, { prompt: 'two cranes', samples: 2, seed: 800 }, { userId: ALICE });
      await h.segmind.waitForInFlight(1);

      const stopped = h.bot.stop();
      h.segmind.resume();
      await stopped;

      expect(h.logs.filter((l) => l.msg === GRACE_OVER)).toEqual([]);
      expect(seedsSent(h)).toEqual([800]);
      expect(textOf(alice.edits().at(-1)!)).toBe('⏸️ The bot is restarting. Your request is saved and will continue when it is back.');
      expect(alice.edits().filter((r) => r.files.length > 0)).toEqual([]);
      expect(await readLedger(h.storage, [ALICE], { guildId: h.discord.guildId })).toMatchObject({
        usedToday: { [ALICE]: 2 }, // still reserved: the next start resumes it or refunds it
        journal: [{ id: alice.id, state: 'queued' }],
      });
    });
  });
});
