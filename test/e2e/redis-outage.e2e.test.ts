import { afterEach, beforeEach, describe, expect, it, onTestFailed } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import { FakeDiscord, snowflake, type RecordedRequest } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { crashAllBotProcesses, startBotProcess, type BotProcess } from '../support/bot-process.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, type LogLine } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { PrivateRedis } from '../support/private-redis.js';

/**
 * The real bot process on a Redis server of this test's own, killed and started again while images wait for a
 * Segmind slot (the slots are counted in Redis): what members see, whether the process stays responsive, and what
 * they are charged. The machine's shared Redis on 6379 is never touched.
 */

const LIMITER_FAILED = 'could not acquire a Segmind slot from Redis';
const OUTAGE = 'Segmind slots unavailable: the limiter is failing; waiting jobs are kept and retried';
const RECOVERED = 'Segmind slots available again';
const FINISHED = 'imagine job finished';

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const isImageEdit = (r: RecordedRequest) => isEdit(r) && r.files.length > 0;
const contentOf = (r: RecordedRequest) => messageOf(r.json).content ?? '';
const summary = (r: RecordedRequest) => [r.status, ...r.files.map((f) => f.name)];
const about = (msg: string, jobId: string) => (l: LogLine) => l.msg === msg && l.jobId === jobId;

describe('a Redis outage while images are queued', { timeout: 60_000 }, () => {
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  let redis: PrivateRedis;

  beforeEach(async () => {
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
    redis = await PrivateRedis.start();
  });
  afterEach(async () => {
    await crashAllBotProcesses();
    await redis.destroy();
    await discord.stop();
    await segmind.stop();
  });

  async function startBot(): Promise<{ bot: BotProcess; healthz: () => Promise<number> }> {
    const bot = startBotProcess({
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      DISCORD_GUILD_ID: discord.guildId,
      STORE_URL: redis.url,
      HTTP_PORT: '0',
      HTTP_HOST: '127.0.0.1',
      DEFAULT_COOLDOWN_SECONDS: '0',
      DEFAULT_DAILY_CREDITS: '10',
      SEGMIND_CONCURRENCY: '1',
      // The limiter's refused attempts are logged at debug (the outage itself once, at error).
      LOG_LEVEL: 'debug',
    });
    onTestFailed(() => console.log(`--- bot process ${bot.pid} ---\n${bot.output().split('\n').slice(-60).join('\n')}`));
    const { port } = (await bot.waitForLog('serving /healthz and /metrics')) as LogLine & { port: number };
    await bot.waitForLog('connected to Discord');
    /** The status of GET /healthz; rejects if the process does not answer within 2 s. */
    const healthz = async () => (await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(2_000) })).status;
    return { bot, healthz };
  }

  it('keeps answering /healthz, then delivers the queued images, takes new requests and charges each member once', async () => {
    const [alice, bob, carol] = [snowflake(), snowflake(), snowflake()];
    const { bot, healthz } = await startBot();
    segmind.pause();
    const running = sendImagine(discord, { prompt: 'a moth', seed: 81 }, { userId: alice });
    await segmind.waitForInFlight(1);
    const queued = sendImagine(discord, { prompt: 'two lamps', samples: 2, seed: 82 }, { userId: bob });
    await queued.waitForRequest((r) => isEdit(r) && contentOf(r).startsWith('⏳ Queued'), 10_000);

    await redis.kill();
    // The process stays responsive while Redis is down and Bob's request keeps asking it for a slot: /healthz is
    // answered again and again, until the slot has been refused a few times.
    for (let answered = 0; answered < 5 || bot.logsWith(LIMITER_FAILED).length < 3; answered++) {
      expect([200, 503]).toContain(await healthz());
    }
    await bot.waitForLog(OUTAGE);

    await redis.start(); // with every key it had
    await bot.waitForLog('Redis connection restored');
    segmind.resume(); // Alice's image is answered and frees the one slot, kept in Redis, that Bob is waiting for

    const [aliceImages, bobImages] = await Promise.all([running.waitForRequest(isImageEdit, 15_000), queued.waitForRequest(isImageEdit, 15_000)]);
    expect(summary(aliceImages)).toEqual([200, 'flux-81.webp']);
    expect(summary(bobImages)).toEqual([200, 'flux-82.webp', 'flux-83.webp']);
    expect(bot.logsWith(OUTAGE)).toHaveLength(1);
    expect(bot.logsWith(RECOVERED)).toHaveLength(1);
    // Redis is back: a new request is admitted, generated and delivered.
    const later = sendImagine(discord, { prompt: 'a dawn', seed: 84 }, { userId: carol });
    expect(summary(await later.waitForRequest(isImageEdit, 15_000))).toEqual([200, 'flux-84.webp']);
    await Promise.all([running, queued, later].map((job) => bot.waitForLog(about(FINISHED, job.id))));
    expect(await healthz()).toBe(200);

    bot.terminate();
    expect(await bot.exited).toEqual({ code: 0, signal: null });
    const storage = await openStorage(redis.url, { logger: createLogger({ level: 'silent', secrets: [] }) });
    try {
      await expectConsistentLedger(storage, { [alice]: 1, [bob]: 2, [carol]: 1 }, { guildId: discord.guildId });
    } finally {
      await storage.close();
    }
  });
});
