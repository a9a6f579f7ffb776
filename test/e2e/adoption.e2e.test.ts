import { afterEach, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { Journal } from '../../src/services/generation/journal.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { FakeDiscord, snowflake, type RecordedRequest, type SentInteraction } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { crashAllBotProcesses, startBotProcess, type BotProcess } from '../support/bot-process.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, type LogLine } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger, readLedger } from '../support/ledger.js';
import { PrivateRedis } from '../support/private-redis.js';
import { redisReachable } from '../support/redis.js';

/**
 * No job stranded: real bot processes sharing a Redis of the test's own, one killed with SIGKILL while its jobs wait on
 * Segmind and never restarted. The others notice its lease is gone and adopt its jobs, each exactly once.
 */

const ADOPTED = 'adopted an unfinished job from an instance whose lease is gone';
const RESUMING = 'resuming a request left unfinished by the last run';
const TOO_LATE = 'refunding a request left unfinished by the last run: too late to resume';
const FINISHED = 'imagine job finished';
const WATCHING = 'watching for unfinished jobs of instances whose lease is gone';
const TOO_LATE_TEXT = '❌ The bot restarted and could not finish this request in time. Nothing was charged — please try again.';
const MINUTE = 60_000;
/** What the issue asks: the member is answered within 90 s of the crash. */
const ANSWER_WITHIN_MS = 90_000;

const isImageEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0;
const imageEditsOf = (job: SentInteraction) => job.requests().filter(isImageEdit);
const about = (msg: string, jobId: string) => (l: LogLine) => l.msg === msg && l.jobId === jobId;
const seedsAsked = (segmind: FakeSegmind) => segmind.requests.map((r) => (r.body as { seed?: unknown }).seed);

/** Polls `check` (which may ask Redis) until it holds, or fails after the deadline. */
async function until(check: () => Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const describeWithRedisServer = redisReachable ? describe : describe.skip;

describeWithRedisServer('a bot process dies and the others adopt its jobs', { timeout: 180_000 }, () => {
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  let redis: PrivateRedis;

  beforeEach(async () => {
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
    redis = await PrivateRedis.start();
  });
  afterEach(async () => {
    // Bots first: a discord.js client whose gateway disappears reconnects forever.
    await crashAllBotProcesses();
    await discord.stop();
    await segmind.stop();
    await redis.destroy();
  });

  /** The real entry point as INSTANCE_ID `instanceId` on this test's Redis, with a 3 s lease; once connected. */
  async function startBot(instanceId: string): Promise<BotProcess> {
    const bot = startBotProcess({
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      DISCORD_GUILD_ID: discord.guildId,
      STORE_URL: redis.url,
      INSTANCE_ID: instanceId,
      INSTANCE_LEASE_SECONDS: '3',
      DEFAULT_COOLDOWN_SECONDS: '0',
      DEFAULT_DAILY_CREDITS: '10',
      SEGMIND_CONCURRENCY: '1',
      LOG_LEVEL: 'info',
    });
    onTestFailed(() => console.log(`--- bot process ${instanceId} (${bot.pid}) ---\n${bot.output()}`));
    await bot.waitForLog('connected to Discord', 30_000);
    // its own journal recovered, it now watches for dead instances
    await bot.waitForLog(WATCHING, 30_000);
    return bot;
  }

  async function withStorage<T>(fn: (storage: Storage) => Promise<T>): Promise<T> {
    const storage = await openStorage(redis.url, { logger: createLogger({ level: 'silent', secrets: [] }) });
    try {
      return await fn(storage);
    } finally {
      await storage.close();
    }
  }

  /** The ids in an instance's journal, as Redis holds it now. */
  function journalOf(instanceId: string): Promise<string[]> {
    return withStorage(async (storage) => (await new Journal(storage, instanceId).list()).map((e) => e.id).sort());
  }

  /** Each member charged exactly `expected`, nothing open, and no instance's journal holding anything. */
  async function expectLedger(expected: Record<string, number>, instances: string[]) {
    await withStorage(async (storage) => {
      for (const instanceId of instances) await expectConsistentLedger(storage, expected, { guildId: discord.guildId, instanceId });
    });
  }

  it('delivers the job of a process killed while it waited on Segmind, exactly once, and its restart leaves it alone', async () => {
    const member = snowflake();
    const a = await startBot('a');
    const b = await startBot('b');
    await discord.waitForReadyConnections(2);
    segmind.pause();
    const job = sendImagine(discord, { prompt: 'a lighthouse in a storm', seed: 7 }, { userId: member, connection: 0 });
    await job.waitForCallback();
    await segmind.waitForInFlight(1);
    expect(await journalOf('a'), 'process a took the job').toEqual([job.id]);

    expect(await a.crash()).toEqual({ code: null, signal: 'SIGKILL' });
    const crashedAt = Date.now();
    await segmind.waitForInFlight(0);

    // b finds a's lease gone, adopts the job and resumes it: its Segmind call waits like a's did
    await b.waitForLog(about(ADOPTED, job.id), ANSWER_WITHIN_MS);
    await b.waitForLog(about(RESUMING, job.id));
    // once the dead process's bot-wide Segmind slot has expired (SEGMIND_CONCURRENCY=1, slots are 30 s leases)
    await segmind.waitForInFlight(1, ANSWER_WITHIN_MS);

    // a comes back while b's call is still waiting: the job is not its own any more
    const back = await startBot('a');
    expect(back.logs.filter((l) => l.jobId === job.id)).toEqual([]);
    expect(segmind.requestCount()).toBe(2);

    segmind.resume();
    const edit = await job.waitForRequest(isImageEdit, ANSWER_WITHIN_MS);
    expect(edit.files.map((f) => f.name)).toEqual(['flux-7.webp']);
    expect(Date.now() - crashedAt).toBeLessThan(ANSWER_WITHIN_MS);
    await b.waitForLog(about(FINISHED, job.id));

    expect(imageEditsOf(job)).toHaveLength(1);
    expect(seedsAsked(segmind)).toEqual([7, 7]);
    expect(b.logsWith(ADOPTED)).toHaveLength(1);
    expect(back.logs.filter((l) => l.jobId === job.id)).toEqual([]);
    await expectLedger({ [member]: 1 }, ['a', 'b']);
  });

  it('with two survivors racing, hands each job to exactly one: resumed if its token lives, else refunded and the member told', async () => {
    const members = [snowflake(), snowflake(), snowflake()];
    const late = snowflake();
    const a = await startBot('a');
    const b = await startBot('b');
    const c = await startBot('c');
    await discord.waitForReadyConnections(3);
    segmind.pause();
    const jobs = members.map((userId, i) =>
      sendImagine(discord, { prompt: `job ${i}`, seed: 10 + i }, { userId, connection: 0 }),
    );
    // Sent 14 minutes ago: by the time it is adopted, less than the 2 minutes needed to resume are left of its 15.
    const old = sendImagine(discord, { prompt: 'an old request', seed: 99 }, { userId: late, connection: 0, createdAt: Date.now() - 14 * MINUTE });
    await Promise.all([...jobs, old].map((j) => j.waitForCallback()));
    await segmind.waitForInFlight(1);
    // every job journaled by a (one in Segmind, the others queued behind SEGMIND_CONCURRENCY=1)
    const all = [...jobs, old].map((j) => j.id).sort();
    await until(async () => (await journalOf('a')).join() === all.join(), 'all four jobs journaled by a');

    await a.crash();
    const crashedAt = Date.now();
    await segmind.waitForInFlight(0);
    segmind.resume();

    const survivors = [b, c];
    for (const j of jobs) {
      const edit = await j.waitForRequest(isImageEdit, ANSWER_WITHIN_MS);
      expect(edit.files).toHaveLength(1);
    }
    const told = await old.waitForRequest(
      (r) => r.method === 'POST' && r.path.startsWith('/webhooks/') && (messageOf(r.json).content ?? '') === TOO_LATE_TEXT,
      ANSWER_WITHIN_MS,
    );
    expect(told.status).toBeLessThan(300);
    expect(Date.now() - crashedAt).toBeLessThan(ANSWER_WITHIN_MS);
    for (const j of jobs) await Promise.any(survivors.map((s) => s.waitForLog(about(FINISHED, j.id), ANSWER_WITHIN_MS)));
    await Promise.any(survivors.map((s) => s.waitForLog((l) => l.msg === 'credits settled' && l.reservationId === old.id, ANSWER_WITHIN_MS)));

    // exactly once: one adoption, one answer per job, across both survivors
    for (const j of [...jobs, old]) {
      expect(survivors.flatMap((s) => s.logs.filter(about(ADOPTED, j.id))), `job ${j.id} adopted once`).toHaveLength(1);
    }
    for (const j of jobs) expect(imageEditsOf(j)).toHaveLength(1);
    expect(survivors.flatMap((s) => s.logs.filter(about(TOO_LATE, old.id)))).toHaveLength(1);
    expect(old.requests().filter((r) => (messageOf(r.json ?? {}).content ?? '') === TOO_LATE_TEXT)).toHaveLength(1);
    expect(imageEditsOf(old)).toEqual([]);
    // the old job never reached Segmind again; each of the others was generated by a survivor once more at most
    expect(seedsAsked(segmind).filter((s) => s === 99).length).toBeLessThanOrEqual(1);
    for (const [i] of members.entries()) expect(seedsAsked(segmind).filter((s) => s === 10 + i).length).toBeLessThanOrEqual(2);

    await expectLedger({ ...Object.fromEntries(members.map((m) => [m, 1])), [late]: 0 }, ['a', 'b', 'c']);
    const ledger = await withStorage((storage) => readLedger(storage, [late], { guildId: discord.guildId, instanceId: 'a' }));
    expect(ledger.journal).toEqual([]);
  });
});
