import { Events, type Interaction } from 'discord.js';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import type { Bot } from '../../src/app.js';
import { FakeDiscord, type SentInteraction } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { buildDist, crashAllBotProcesses, startBotProcess, type BotProcess } from '../support/bot-process.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, eventually, startHarness, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace } from '../support/redis.js';

/** Two servers, one on each shard of two. */
const ON_SHARD_0 = FakeDiscord.guildIdOnShard(0, 2);
const ON_SHARD_1 = FakeDiscord.guildIdOnShard(1, 2);
const ALICE = '111111111111111111';
const BOB = '222222222222222222';
/** Short enough for a quick test, long enough to tell a spaced identify from two processes starting one after the other. */
const IDENTIFY_WINDOW_MS = 1_500;
/** The fake records an IDENTIFY when it arrives, a little after the slot was granted; that delay varies under load. */
const SLACK_MS = 250;

/** The interactions each bot's discord.js client received, by interaction id. */
function recordInteractions(bot: Bot): Set<string> {
  const seen = new Set<string>();
  bot.client.on(Events.InteractionCreate, (interaction: Interaction) => seen.add(interaction.id));
  return seen;
}

/** `/imagine` until its image is delivered and its credits are settled. */
async function imagineDelivered(h: Harness, sent: SentInteraction, images = 1): Promise<void> {
  const edit = await sent.waitForRequest((r) => r.method === 'PATCH' && r.path.endsWith('/messages/@original'), 15_000);
  expect(edit.files, 'the images are delivered').toHaveLength(images);
  await eventually(() => h.logs.some((l) => l.msg === 'credits settled' && l.reservationId === sent.id), 'the credits to be settled', 10_000);
  expect(sent.requests().filter((r) => r.path.endsWith('/callback')), 'acknowledged once').toHaveLength(1);
}

/** The gap between the first identifies of two shards, in ms. */
function identifyGap(discord: FakeDiscord, a: number, b: number): number {
  const at = (shard: number) => discord.identifies.find((i) => i.shardId === shard)?.at;
  const first = at(a);
  const second = at(b);
  if (first === undefined || second === undefined) throw new Error(`shards ${a} and ${b} did not both identify`);
  return Math.abs(second - first);
}

const commandPutCount = (h: Harness) => h.discord.requests.filter((r) => r.method === 'PUT' && r.path.endsWith('/commands')).length;

describeWithRedis('gateway shards across processes (Redis)', () => {
  let h: Harness | undefined;
  const namespaces: string[] = [];
  afterEach(async () => {
    await h?.stop();
    h = undefined;
    for (const namespace of namespaces.splice(0)) await deleteRedisKeys(namespace);
  });

  function start(env: Record<string, string>) {
    const namespace = redisTestNamespace();
    namespaces.push(namespace);
    return startHarness({
      env: { STORE_URL: REDIS_URL, DEFAULT_COOLDOWN_SECONDS: '0', ...env },
      storageNamespace: namespace,
      discord: { guilds: [{ id: ON_SHARD_0 }, { id: ON_SHARD_1 }], maxConcurrency: 1 },
      identifyWindowMs: IDENTIFY_WINDOW_MS,
    });
  }

  it('two processes with one shard each: each server answered once by the process of its shard, identifies spaced, commands put once', async () => {
    h = await start({ SHARD_COUNT: '2', SHARDS: '0', INSTANCE_ID: 'shard-0' });
    const first = h.bot;
    const second = await h.addBot({ SHARDS: [1], INSTANCE_ID: 'shard-1' });
    const onFirst = recordInteractions(first);
    const onSecond = recordInteractions(second);

    // each process holds the servers of its own shard only
    expect([...first.client.guilds.cache.keys()]).toEqual([ON_SHARD_0]);
    expect([...second.client.guilds.cache.keys()]).toEqual([ON_SHARD_1]);
    expect(h.discord.identifies.map((i) => [i.shardId, i.shardCount])).toEqual([
      [0, 2],
      [1, 2],
    ]);
    // max_concurrency 1: the second process waited for the first one's identify window (Redis), not just its start-up
    expect(identifyGap(h.discord, 0, 1)).toBeGreaterThanOrEqual(IDENTIFY_WINDOW_MS - SLACK_MS);
    expect(h.logs.some((l) => l.msg === 'waiting for an identify slot' && l.shardId === 1)).toBe(true);
    // only the process running shard 0 syncs the commands
    expect(commandPutCount(h)).toBe(1);
    expect(h.discord.requests.filter((r) => r.path.endsWith('/commands')).map((r) => r.method), 'one GET and one PUT, by shard 0').toEqual(['GET', 'PUT']);
    expect(h.logs.filter((l) => l.msg === 'slash commands are synced by the process running shard 0')).toHaveLength(1);

    const inFirst = sendImagine(h.discord, { prompt: 'a harbour', samples: 1, seed: 1 }, { guildId: ON_SHARD_0, userId: ALICE });
    const inSecond = sendImagine(h.discord, { prompt: 'a forest', samples: 2, seed: 2 }, { guildId: ON_SHARD_1, userId: BOB });
    await imagineDelivered(h, inFirst);
    await imagineDelivered(h, inSecond, 2);
    expect([...onFirst]).toEqual([inFirst.id]);
    expect([...onSecond]).toEqual([inSecond.id]);

    // health: each process names its own shard of two, up
    expect(first.metrics.health()).toMatchObject({ gateway: true, shardCount: 2, shards: [{ id: 0, up: true }] });
    expect(second.metrics.health()).toMatchObject({ gateway: true, shardCount: 2, shards: [{ id: 1, up: true }] });
    expect((await second.metrics.render()).body).toContain('flux_bot_gateway_up{shard="1"} 1');
    expect((await second.metrics.render()).body).not.toContain('flux_bot_gateway_up{shard="0"}');

    await expectConsistentLedger(h.storage, { [ALICE]: 1 }, { guildId: ON_SHARD_0, instanceId: 'shard-0' });
    await expectConsistentLedger(h.storage, { [BOB]: 2 }, { guildId: ON_SHARD_1, instanceId: 'shard-1' });
  });

  it("one process running both shards Discord recommends (SHARD_COUNT auto): identifies spaced, both servers answered", async () => {
    const namespace = redisTestNamespace();
    namespaces.push(namespace);
    h = await startHarness({
      env: { STORE_URL: REDIS_URL, DEFAULT_COOLDOWN_SECONDS: '0' },
      storageNamespace: namespace,
      discord: { guilds: [{ id: ON_SHARD_0 }, { id: ON_SHARD_1 }], maxConcurrency: 1, shards: 2 },
      identifyWindowMs: IDENTIFY_WINDOW_MS,
    });
    const seen = recordInteractions(h.bot);
    expect(h.discord.identifies.map((i) => [i.shardId, i.shardCount]).sort()).toEqual([
      [0, 2],
      [1, 2],
    ]);
    expect(identifyGap(h.discord, 0, 1)).toBeGreaterThanOrEqual(IDENTIFY_WINDOW_MS - SLACK_MS);
    expect(h.bot.client.guilds.cache.get(ON_SHARD_0)?.shardId).toBe(0);
    expect(h.bot.client.guilds.cache.get(ON_SHARD_1)?.shardId).toBe(1);
    expect(commandPutCount(h)).toBe(1);
    expect(h.bot.metrics.health()).toMatchObject({ gateway: true, shardCount: 2, shards: [{ id: 0, up: true }, { id: 1, up: true }] });

    const a = sendImagine(h.discord, { prompt: 'a harbour', samples: 1, seed: 3 }, { guildId: ON_SHARD_0, userId: ALICE });
    const b = sendImagine(h.discord, { prompt: 'a forest', samples: 1, seed: 4 }, { guildId: ON_SHARD_1, userId: BOB });
    await imagineDelivered(h, a);
    await imagineDelivered(h, b);
    expect([...seen].sort()).toEqual([a.id, b.id].sort());

    await expectConsistentLedger(h.storage, { [ALICE]: 1 }, { guildId: ON_SHARD_0 });
    await expectConsistentLedger(h.storage, { [BOB]: 1 }, { guildId: ON_SHARD_1 });
  });
});

describe('gateway shards without Redis', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('a process running shard 1 of 2 serves its servers and leaves the command sync to shard 0', async () => {
    h = await startHarness({
      env: { SHARD_COUNT: '2', SHARDS: '1', DEFAULT_COOLDOWN_SECONDS: '0' },
      discord: { guilds: [{ id: ON_SHARD_0 }, { id: ON_SHARD_1 }] },
    });
    expect([...h.bot.client.guilds.cache.keys()]).toEqual([ON_SHARD_1]);
    expect(commandPutCount(h)).toBe(0);
    expect(h.discord.requests.some((r) => r.path.endsWith('/commands'))).toBe(false);
    expect(h.bot.metrics.health()).toMatchObject({ gateway: true, shardCount: 2, shards: [{ id: 1, up: true }] });

    // a dropped connection: shard 1 reconnects and resumes, and is counted down then up again under its own label
    h.discord.disconnectAll();
    await eventually(() => h!.logs.some((l) => l.msg === 'gateway shard reconnecting' && l.shardId === 1), 'shard 1 to reconnect');
    await h.discord.waitForReadyConnections(1);
    await eventually(() => h!.bot.metrics.health().shards[0]?.up, 'shard 1 to be up again');
    expect((await h.bot.metrics.render()).body).toContain('flux_bot_gateway_up{shard="1"} 1');

    const sent = sendImagine(h.discord, { prompt: 'a lighthouse', samples: 1, seed: 5 }, { guildId: ON_SHARD_1, userId: ALICE });
    await imagineDelivered(h, sent);
    await expectConsistentLedger(h.storage, { [ALICE]: 1 }, { guildId: ON_SHARD_1 });
  });
});

describe('SHARDS and SHARD_COUNT at start-up (the real entry point)', () => {
  let discord: FakeDiscord | undefined;
  let segmind: FakeSegmind | undefined;
  beforeAll(async () => {
    await buildDist();
    discord = await FakeDiscord.start({ guilds: [{ id: ON_SHARD_0 }, { id: ON_SHARD_1 }], shards: 2, maxConcurrency: 2 });
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
  }, 180_000);
  afterEach(async () => {
    await crashAllBotProcesses();
  });
  afterAll(async () => {
    await discord?.stop();
    await segmind?.stop();
  });

  function startBot(env: Record<string, string>): BotProcess {
    if (!discord || !segmind) throw new Error('the fakes did not start');
    const bot = startBotProcess(
      {
        DISCORD_TOKEN: TEST_DISCORD_TOKEN,
        SEGMIND_API_KEY: TEST_SEGMIND_KEY,
        DISCORD_API_URL: discord.apiUrl,
        SEGMIND_API_URL: segmind.url,
        STORE_URL: 'memory://',
        LOG_LEVEL: 'info',
        ...env,
      },
      { compiled: true },
    );
    onTestFailed(() => console.log(`--- bot process ${bot.pid} ---\n${bot.output()}`));
    return bot;
  }

  it.each([
    [{ SHARD_COUNT: '2', SHARDS: '2' }, 'SHARDS names shard 2, but SHARD_COUNT is 2, so shard ids run from 0 to 1'],
    [{ SHARDS: '0-1' }, 'SHARDS must be all while SHARD_COUNT is auto: to split the shards over processes, set SHARD_COUNT to the same number in every process'],
    [{ SHARD_COUNT: '4', SHARDS: '[0]' }, 'SHARDS must be all, a list of shard ids such as 0,1,2 or a range such as 0-3'],
    [{ SHARD_COUNT: '4', SHARDS: '1,1' }, 'SHARDS names shard 1 twice'],
    [{ SHARD_COUNT: 'lots' }, 'SHARD_COUNT must be auto or a whole number of shards from 1 to 100000'],
  ])('refuses %o with exit code 1 and one message', async (env, problem) => {
    const bot = startBot(env);
    expect(await bot.exited).toEqual({ code: 1, signal: null });
    const problems = bot
      .output()
      .split('\n')
      .filter((l) => l.startsWith('  - '));
    expect(problems).toEqual([`  - ${problem}`]);
    expect(bot.output()).not.toContain('connected to Discord');
    expect(bot.output()).not.toContain(TEST_DISCORD_TOKEN);
  });

  // discord.js reads SHARDS and SHARD_COUNT from the environment itself (as JSON, from its ShardingManager) unless the
  // client is given both: our syntax in the environment must not reach it.
  it.each([
    [{ SHARD_COUNT: 'auto', SHARDS: 'all' }, [0, 1], '0-1'],
    [{ SHARD_COUNT: '2', SHARDS: '1' }, [1], '1'],
    [{ SHARD_COUNT: '2', SHARDS: '0,1' }, [0, 1], '0-1'],
  ])('starts with %o in its environment and connects the shards it names', async (env, shards, described) => {
    const identifies = discord!.identifies;
    const before = identifies.length;
    const bot = startBot(env);
    const connected = await bot.waitForLog('connected to Discord', 60_000);
    expect(connected).toMatchObject({ shardCount: 2, shards: described });
    expect(identifies.slice(before).map((i) => i.shardId).sort()).toEqual(shards);
    bot.terminate();
    expect(await bot.exited).toEqual({ code: 0, signal: null });
  });
});
