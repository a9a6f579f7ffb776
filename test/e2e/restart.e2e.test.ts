import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import { FakeDiscord, snowflake, type RecordedRequest, type SentInteraction } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { crashAllBotProcesses, startBotProcess, type BotProcess } from '../support/bot-process.js';
import { eventually, TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, type LogLine } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger, readLedger } from '../support/ledger.js';

/**
 * The real entry point, killed and started again on the same SQLite file and the same fake Discord and Segmind:
 * what a member sees and what they are charged when the bot crashes (SIGKILL) or is restarted (SIGTERM) mid-job.
 */

const RESUMING = 'resuming a request left unfinished by the last run';
const TOO_LATE = 'refunding a request left unfinished by the last run: too late to resume';
const FINISHED = 'imagine job finished';
const SETTLED = 'credits settled';
const TOO_LATE_TEXT = '❌ The bot restarted and could not finish this request in time. Nothing was charged — please try again.';
const SUSPENDED_TEXT = '⏸️ The bot is restarting. Your request is saved and will continue when it is back.';
const NOT_POSTED_TEXT = '❌ The bot restarted before your images could be posted. Nothing was charged — please try again.';
const MINUTE = 60_000;

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const isImageEdit = (r: RecordedRequest) => isEdit(r) && r.files.length > 0;
const contentOf = (r: RecordedRequest) => messageOf(r.json).content ?? '';
const imageEditsOf = (interaction: SentInteraction) => interaction.edits().filter((r) => r.files.length > 0);
/** Status and file names of a recorded upload. */
const summary = (r: RecordedRequest) => [r.status, ...r.files.map((f) => f.name)];
const about = (msg: string, jobId: string) => (l: LogLine) => l.msg === msg && l.jobId === jobId;
/** Messages posted in a channel rather than on a reply: the fallback once a token is dead. */
const channelPosts = (discord: FakeDiscord) => discord.requests.filter((r) => r.method === 'POST' && r.path.startsWith('/channels/'));

/** A request ended with no image: its public reply deleted, then `text` as an ephemeral follow-up. */
async function privateAnswer(job: SentInteraction, text: string): Promise<RecordedRequest> {
  const followUp = await job.waitForRequest((r) => r.method === 'POST' && r.path.startsWith('/webhooks/') && contentOf(r) === text);
  expect((messageOf(followUp.json).flags ?? 0) & 64, 'the answer is private').toBe(64);
  const deletion = job.requests().find((r) => r.method === 'DELETE' && r.path.endsWith('/messages/@original'));
  expect(deletion?.status, 'the public reply deleted').toBe(204);
  expect(deletion!.seq).toBeLessThan(followUp.seq);
  return followUp;
}
const seedsAsked = (segmind: FakeSegmind) => segmind.requests.map((r) => (r.body as { seed?: unknown }).seed);

// Each test starts the bot two or three times (about a second each through tsx).
// Two or three bot processes per test, each loading the classifier's model, while other files run beside this one.
describe('crash and restart of the real bot process', { timeout: 60_000 }, () => {
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  let db: string;

  beforeEach(async () => {
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
    db = join(mkdtempSync(join(tmpdir(), 'flux-bot-restart-')), 'bot.sqlite');
  });
  afterEach(async () => {
    // Bots first: a discord.js client whose gateway disappears reconnects forever.
    await crashAllBotProcesses();
    await discord.stop();
    await segmind.stop();
  });

  /** Starts the real bot on this test's SQLite file and fakes; resolves once it is connected to Discord. */
  async function startBot(extra: Record<string, string> = {}): Promise<BotProcess> {
    const bot = startBotProcess({
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      DISCORD_GUILD_ID: discord.guildId,
      STORE_URL: `sqlite://${db}`,
      DEFAULT_COOLDOWN_SECONDS: '0',
      DEFAULT_DAILY_CREDITS: '10',
      SEGMIND_CONCURRENCY: '1',
      LOG_LEVEL: 'info',
      ...extra,
    });
    onTestFailed(() => console.log(`--- bot process ${bot.pid} ---\n${bot.output()}`));
    await bot.waitForLog('connected to Discord');
    return bot;
  }

  /** SIGTERM, then the exit status. */
  async function stopGracefully(bot: BotProcess) {
    bot.terminate();
    return bot.exited;
  }

  /** What the SQLite file says once no bot has it open: credits used today, open reservations, journaled jobs. */
  async function ledger(userIds: string[]) {
    const storage = await openStorage(`sqlite://${db}`, { logger: createLogger({ level: 'silent', secrets: [] }) });
    try {
      return await readLedger(storage, userIds, { guildId: discord.guildId });
    } finally {
      await storage.close();
    }
  }

  /** The same, as an assertion: each member charged exactly `expected`, nothing left open or journaled. */
  async function expectLedger(expected: Record<string, number>) {
    const storage = await openStorage(`sqlite://${db}`, { logger: createLogger({ level: 'silent', secrets: [] }) });
    try {
      await expectConsistentLedger(storage, expected, { guildId: discord.guildId });
    } finally {
      await storage.close();
    }
  }

  /** Waits until a restarted bot has dealt with every journaled job: resumed to the end, or settled from Discord. */
  async function waitForRecoveryOf(bot: BotProcess, journal: Array<{ id: string; state: string }>): Promise<void> {
    for (const { id, state } of journal) {
      if (state === 'delivering') await bot.waitForLog((l) => l.msg === SETTLED && l.reservationId === id);
      else await bot.waitForLog(about(FINISHED, id));
    }
  }

  it('resumes a job killed by SIGKILL mid-generation, delivers it exactly once and charges it once', async () => {
    const member = snowflake();
    const first = await startBot();
    segmind.pause();
    const job = sendImagine(discord, { prompt: 'a lighthouse in a storm', seed: 7 }, { userId: member });
    await segmind.waitForInFlight(1);

    expect(await first.crash()).toEqual({ code: null, signal: 'SIGKILL' });
    await segmind.waitForInFlight(0); // the dead process's Segmind connection is gone

    const second = await startBot();
    await second.waitForLog(about(RESUMING, job.id));
    const requests = await segmind.waitForRequests(2);
    expect((requests[1]!.body as { seed: number }).seed).toBe(7);
    segmind.resume();

    const delivered = await job.waitForRequest(isImageEdit, 10_000);
    expect(delivered.status).toBe(200);
    expect(delivered.files.map((f) => f.name)).toEqual(['flux-7.webp']);
    expect(messageOf(delivered.json).embeds?.[0]?.image?.url).toBe('attachment://flux-7.webp');
    const finished = await second.waitForLog(about(FINISHED, job.id));
    expect(finished).toMatchObject({ outcome: 'delivered', delivered: 1 });
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect(imageEditsOf(job)).toHaveLength(1);
    expect(job.originalMessage()?.attachments).toHaveLength(1);
    expect(segmind.requestCount()).toBe(2);
    expect(channelPosts(discord)).toEqual([]);
    expect(await ledger([member])).toEqual({ usedToday: { [member]: 1 }, openReservations: [], journal: [] });

    // A third start finds nothing to resume, and the member sees the one credit spent.
    const third = await startBot();
    await third.waitForLog((l) => l.msg === 'slash commands already up to date');
    const credits = discord.sendSlashCommand({ name: 'credits', userId: member });
    expect(contentOf(await credits.waitForCallback())).toContain("Today's allowance: **9** of 10 left");
    expect(await stopGracefully(third)).toEqual({ code: 0, signal: null });
    expect(third.logsWith(RESUMING)).toEqual([]);
    expect(segmind.requestCount()).toBe(2);
    expect(imageEditsOf(job)).toHaveLength(1);
  });

  it('after a SIGKILL with one job running and another queued, delivers both once and charges each member once', async () => {
    const alice = snowflake();
    const bob = snowflake();
    const first = await startBot();
    segmind.pause();
    const running = sendImagine(discord, { prompt: 'a red kite', seed: 11 }, { userId: alice });
    await segmind.waitForInFlight(1);
    const queued = sendImagine(discord, { prompt: 'a blue kite', seed: 12 }, { userId: bob });
    // Its place in the queue is shown once it is in the scheduler, i.e. journaled.
    await queued.waitForRequest((r) => isEdit(r) && contentOf(r).startsWith('⏳ Queued'), 10_000);

    await first.crash();
    await segmind.waitForInFlight(0);
    segmind.resume();

    const second = await startBot();
    await Promise.all([second.waitForLog(about(FINISHED, running.id)), second.waitForLog(about(FINISHED, queued.id))]);
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect(second.logsWith(RESUMING).map((l) => l.jobId).sort()).toEqual([running.id, queued.id].sort());
    expect(imageEditsOf(running).map(summary)).toEqual([[200, 'flux-11.webp']]);
    expect(imageEditsOf(queued).map(summary)).toEqual([[200, 'flux-12.webp']]);
    expect(channelPosts(discord)).toEqual([]);
    expect(seedsAsked(segmind)).toEqual([11, 11, 12]);
    expect(await ledger([alice, bob])).toEqual({ usedToday: { [alice]: 1, [bob]: 1 }, openReservations: [], journal: [] });
  });

  it('after a SIGKILL while the image is being posted, settles from the posted reply instead of posting it again', async () => {
    const alice = snowflake();
    const bob = snowflake();
    const first = await startBot();
    segmind.pause();
    // Bob's image never comes back in this run, so his job is still waiting when the bot dies.
    segmind.respondWith((req) => ((req.body as { seed?: unknown }).seed === 42 ? { kind: 'hang' } : { kind: 'image' }));
    const posting = sendImagine(discord, { prompt: 'a paper boat', seed: 41 }, { userId: alice });
    await segmind.waitForInFlight(1);
    const queued = sendImagine(discord, { prompt: 'a paper plane', seed: 42 }, { userId: bob });
    await queued.waitForRequest((r) => isEdit(r) && contentOf(r).startsWith('⏳ Queued'), 10_000);
    await posting.waitForRequest((r) => isEdit(r) && contentOf(r).startsWith('🎨 Generating'));

    // Discord applies the upload but its answer never reaches the bot: the job is journaled as 'delivering'.
    discord.setLatency({ method: 'PATCH', path: /\/messages\/@original$/ }, 20_000);
    segmind.resume();
    await eventually(() => imageEditsOf(posting).length === 1, 'the image upload to reach Discord');
    await first.crash();
    discord.setLatency({ method: 'PATCH', path: /\/messages\/@original$/ }, 0);
    segmind.respondWith(null);

    const second = await startBot();
    const settling = await second.waitForLog(about('settling a job interrupted while delivering', posting.id));
    expect(settling).toMatchObject({ delivered: 1 });
    // Recovery handles the journal in order: Bob's job is resumed only once Alice's entry is closed.
    await second.waitForLog(about(RESUMING, queued.id));
    await second.waitForLog(about(FINISHED, queued.id));
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect(second.logsWith(RESUMING).map((l) => l.jobId)).toEqual([queued.id]);
    expect(imageEditsOf(posting).map((r) => r.files.map((f) => f.name))).toEqual([['flux-41.webp']]);
    expect(posting.originalMessage()?.attachments).toHaveLength(1);
    expect(imageEditsOf(queued).map(summary)).toEqual([[200, 'flux-42.webp']]);
    expect(channelPosts(discord)).toEqual([]);
    expect(seedsAsked(segmind)).toEqual([41, 42, 42]);
    expect(await ledger([alice, bob])).toEqual({ usedToday: { [alice]: 1, [bob]: 1 }, openReservations: [], journal: [] });
  });

  it('after a SIGKILL while the image was being posted but before Discord took it, tells the member privately and refunds it', async () => {
    const member = snowflake();
    const first = await startBot();
    segmind.pause();
    const job = sendImagine(discord, { prompt: 'a lost letter', seed: 71 }, { userId: member });
    await segmind.waitForInFlight(1);
    await job.waitForRequest((r) => isEdit(r) && contentOf(r).startsWith('🎨 Generating'));

    // Discord refuses the upload (not applied), and the answer is still on its way when the bot dies.
    const original = { method: 'PATCH', path: /\/messages\/@original$/ };
    discord.failNext(original, { status: 500 });
    discord.setLatency(original, 20_000);
    segmind.resume();
    await eventually(() => imageEditsOf(job).length === 1, 'the image upload to reach Discord');
    await first.crash();
    discord.setLatency(original, 0);
    expect(await ledger([member])).toMatchObject({ usedToday: { [member]: 1 }, journal: [{ id: job.id, state: 'delivering' }] });
    expect(job.originalMessage()?.content).toBe('🎨 Generating 0/1…');

    const second = await startBot();
    expect(await second.waitForLog(about('settling a job interrupted while delivering', job.id))).toMatchObject({ delivered: 0 });
    const told = await privateAnswer(job, NOT_POSTED_TEXT);
    expect(told.status).toBeLessThan(300);
    const settled = await second.waitForLog((l) => l.msg === SETTLED && l.reservationId === job.id);
    expect(settled).toMatchObject({ settled: true, committed: 0, refunded: 1 });
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect(job.originalMessage(), 'the public "Generating…" reply is gone').toBeUndefined();
    expect(segmind.requestCount()).toBe(1);
    expect(channelPosts(discord)).toEqual([]);
    expect(second.logsWith(RESUMING)).toEqual([]);
    await expectLedger({ [member]: 0 });
  });

  it('refunds and tells the member privately when the interaction token is too close to expiry to resume', async () => {
    const member = snowflake();
    const first = await startBot();
    segmind.pause();
    // Sent 14 minutes ago: after the crash less than the 2 minutes needed to resume are left of its 15.
    const job = sendImagine(discord, { prompt: 'an old request', seed: 21 }, { userId: member, createdAt: Date.now() - 14 * MINUTE });
    await segmind.waitForInFlight(1);

    await first.crash();
    await segmind.waitForInFlight(0);

    const second = await startBot();
    await second.waitForLog(about(TOO_LATE, job.id));
    const told = await privateAnswer(job, TOO_LATE_TEXT);
    expect(told.status).toBeLessThan(300);
    const settled = await second.waitForLog((l) => l.msg === SETTLED && l.reservationId === job.id);
    expect(settled).toMatchObject({ settled: true, committed: 0, refunded: 1 });
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect(job.originalMessage(), 'the public "thinking…" reply is gone').toBeUndefined();
    expect(segmind.requestCount()).toBe(1);
    expect(channelPosts(discord)).toEqual([]);
    expect(second.logsWith(RESUMING)).toEqual([]);
    expect(await ledger([member])).toEqual({ usedToday: { [member]: 0 }, openReservations: [], journal: [] });
  });

  it('on SIGTERM finishes the running image, suspends the queued one, refuses new ones, and resumes it after the restart', async () => {
    const alice = snowflake();
    const bob = snowflake();
    const carol = snowflake();
    const first = await startBot({ SHUTDOWN_GRACE_SECONDS: '10' });
    segmind.pause();
    const running = sendImagine(discord, { prompt: 'a green kite', seed: 31 }, { userId: alice });
    await segmind.waitForInFlight(1);
    const queued = sendImagine(discord, { prompt: 'a yellow kite', seed: 32 }, { userId: bob });
    await queued.waitForCallback();

    first.terminate();
    await first.waitForLog('shutting down');
    // Still connected: the running image holds the shutdown until Segmind answers.
    const late = sendImagine(discord, { prompt: 'too late', seed: 33 }, { userId: carol });
    const refusal = await late.waitForCallback();
    expect(refusal.status).toBeLessThan(300);
    expect(refusal.json).toMatchObject({ type: 4 });
    expect(contentOf(refusal)).toContain('The bot is restarting');
    expect((messageOf(refusal.json).flags ?? 0) & 64).toBe(64); // ephemeral
    const suspended = await queued.waitForRequest((r) => isEdit(r) && contentOf(r) === SUSPENDED_TEXT);
    expect(suspended.status).toBe(200);

    segmind.resume();
    expect(await first.exited).toEqual({ code: 0, signal: null });
    // Within the grace period the running image is delivered and settled before the process exits: only the
    // suspended job is left in the journal. (Soft, so the restart below still shows what a failure here costs.)
    expect.soft(imageEditsOf(running).map(summary), 'the running image delivered before exit').toEqual([[200, 'flux-31.webp']]);
    expect.soft(first.logsWith(FINISHED).map((l) => l.jobId), 'jobs finished before exit').toEqual([running.id]);
    const afterShutdown = await ledger([alice, bob, carol]);
    expect.soft(afterShutdown.journal, 'journal after the graceful shutdown').toEqual([{ id: queued.id, state: 'queued' }]);
    expect(seedsAsked(segmind)).toEqual([31]);

    const second = await startBot({ SHUTDOWN_GRACE_SECONDS: '10' });
    await waitForRecoveryOf(second, afterShutdown.journal);
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect.soft(second.logsWith(RESUMING).map((l) => l.jobId), 'jobs the restart resumed').toEqual([queued.id]);
    expect.soft(seedsAsked(segmind), 'Segmind calls: no image generated twice').toEqual([31, 32]);
    // Whatever happened above, each member ends up with exactly one image and is charged for exactly that.
    expect(imageEditsOf(running).map(summary)).toEqual([[200, 'flux-31.webp']]);
    expect(imageEditsOf(queued).map(summary)).toEqual([[200, 'flux-32.webp']]);
    expect(late.edits()).toEqual([]);
    expect(channelPosts(discord)).toEqual([]);
    expect(await ledger([alice, bob, carol])).toEqual({
      usedToday: { [alice]: 1, [bob]: 1, [carol]: 0 },
      openReservations: [],
      journal: [],
    });
  });
  it('tells the member by direct message (no private reply is left) when a journaled job’s token is already dead after a restart', async () => {
    const member = snowflake();
    const first = await startBot();
    segmind.pause();
    // Sent 16 minutes ago: Discord no longer accepts edits of its reply, so the restart cannot answer on it.
    const job = sendImagine(discord, { prompt: 'a forgotten request', seed: 51 }, { userId: member, createdAt: Date.now() - 16 * MINUTE });
    await segmind.waitForInFlight(1);
    expect(await ledger([member])).toMatchObject({ usedToday: { [member]: 1 }, journal: [{ id: job.id, state: 'queued' }] });

    await first.crash();
    await segmind.waitForInFlight(0);
    segmind.resume();
    const segmindCallsBefore = segmind.requestCount();

    const second = await startBot();
    await second.waitForLog(about(TOO_LATE, job.id));
    const settled = await second.waitForLog((l) => l.msg === SETTLED && l.reservationId === job.id);
    expect(settled).toMatchObject({ settled: true, committed: 0, refunded: 1 });
    // No private reply is possible through a dead token: the member gets a direct message instead.
    await eventually(() => discord.directMessages(member).length > 0, 'the direct message');
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    const [dm, ...more] = discord.directMessages(member);
    expect(more).toEqual([]);
    expect(dm!.content).toContain(`About your \`/imagine\` request in <#${discord.channelId}>:`);
    expect(dm!.content).toContain('could not finish this request in time');
    expect(dm!.content).toContain('Nothing was charged');
    expect(channelPosts(discord).filter((r) => r.path === `/channels/${discord.channelId}/messages`), 'nothing posted in the channel').toEqual([]);
    // Nothing more asked of Segmind, and nothing written on the dead reply.
    expect(segmind.requestCount()).toBe(segmindCallsBefore);
    expect(second.logsWith(RESUMING)).toEqual([]);
    expect(job.edits().filter((r) => r.status < 300).map(contentOf)).not.toContain(TOO_LATE_TEXT);
    await expectLedger({ [member]: 0 });
  });

  it('on SIGTERM past SHUTDOWN_GRACE_SECONDS exits cleanly with the running image journaled, and delivers it once after the restart', async () => {
    const member = snowflake();
    const first = await startBot({ SHUTDOWN_GRACE_SECONDS: '1' });
    segmind.pause();
    const job = sendImagine(discord, { prompt: 'a slow sunrise', seed: 61 }, { userId: member });
    await segmind.waitForInFlight(1);

    const signalled = Date.now();
    first.terminate();
    const exit = await Promise.race([
      first.exited,
      new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 10_000)),
    ]);
    expect(exit).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalled).toBeLessThan(10_000);
    expect(first.logsWith('shutdown grace period over: unfinished images stay journaled for the next start')).toHaveLength(1);
    expect(first.logsWith(FINISHED)).toEqual([]);
    expect(imageEditsOf(job)).toEqual([]);
    await segmind.waitForInFlight(0);
    // Still journaled and reserved: neither charged nor refunded by the shutdown.
    expect(await ledger([member])).toMatchObject({ usedToday: { [member]: 1 }, journal: [{ id: job.id, state: 'queued' }] });
    segmind.resume();

    const second = await startBot({ SHUTDOWN_GRACE_SECONDS: '1' });
    await second.waitForLog(about(RESUMING, job.id));
    const finished = await second.waitForLog(about(FINISHED, job.id));
    expect(finished).toMatchObject({ outcome: 'delivered', delivered: 1 });
    const settled = await second.waitForLog((l) => l.msg === SETTLED && l.reservationId === job.id);
    expect(settled).toMatchObject({ settled: true, committed: 1, refunded: 0 });
    expect(await stopGracefully(second)).toEqual({ code: 0, signal: null });

    expect(imageEditsOf(job).map(summary)).toEqual([[200, 'flux-61.webp']]);
    expect(job.originalMessage()?.attachments).toHaveLength(1);
    expect(seedsAsked(segmind)).toEqual([61, 61]);
    expect(channelPosts(discord)).toEqual([]);
    await expectLedger({ [member]: 1 });
  });
});
