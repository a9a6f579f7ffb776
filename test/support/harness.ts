import { Writable } from 'node:stream';
import { createBot, type Bot } from '../../src/app.js';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { FakeDiscord, type FakeDiscordOptions } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { FakeImageChecker } from '../fakes/fake-image-checker.js';
import type { ImageChecker } from '../../src/services/safety/image-checker.js';

export const TEST_DISCORD_TOKEN = 'MTA5ODc2NTQzMjEwOTg3NjU0.GtEsT0.fake-discord-token-for-tests-0123456789';
export const TEST_SEGMIND_KEY = 'SG_test_0123456789abcdef';

export interface LogLine {
  level: number;
  msg: string;
  [key: string]: unknown;
}

/** A bot built by the real composition root, wired to a fake Discord and a fake Segmind on loopback. */
export interface Harness {
  discord: FakeDiscord;
  segmind: FakeSegmind;
  /** The image checker the bot is given (unless the test passed its own): clears every image until told otherwise. */
  checker: FakeImageChecker;
  bot: Bot;
  config: Config;
  /** Shared by every bot this harness starts, like a database surviving a restart. */
  storage: Storage;
  /** Every log line the bot wrote, parsed, and the raw text (to look for leaked secrets). */
  logs: LogLine[];
  rawLogs(): string;
  /** Stops the bot and starts a new one on the same fakes and storage (a restart). */
  restartBot(): Promise<void>;
  /**
   * Starts one more bot on the same fakes with its own storage connection to the same STORE_URL and namespace:
   * what a second bot process is. It receives interactions sent with `connection: 1` (then 2, …), or those of its
   * servers when it runs other shards. `config` overrides settings of this bot only (e.g. `SHARDS`, `INSTANCE_ID`).
   */
  addBot(config?: Partial<Config>): Promise<Bot>;
  stop(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  config?: Partial<Config>;
  discord?: FakeDiscordOptions;
  random?: () => number;
  /** Queue position edits; off unless a test asks (they would interleave with the edits tests wait for). */
  progress?: { firstEditDelayMs: number; minIntervalMs: number };
  breaker?: { failureThreshold: number; openMs: number; maxOpenMs: number };
  /** Key prefix in the store (Redis tests use a unique one per run). */
  storageNamespace?: string;
  /** discord.js REST options; by default no retries and short timeouts, so failures show at once. */
  restOptions?: { retries?: number; timeout?: number; handlerSweepInterval?: number };
  /** Checks the bot's images instead of the harness's FakeImageChecker. */
  imageChecker?: ImageChecker;
  /** The bot's own classifier (worker threads and model), as `npm start` runs it, instead of any injected checker. */
  realClassifier?: boolean;
  /** The Redis identify window (gateway shards), shortened so tests need not wait Discord's 5 s. */
  identifyWindowMs?: number;
  /** Let the test arrange the fakes (e.g. pre-registered commands) before the bot starts. */
  beforeStart?: (fakes: { discord: FakeDiscord; segmind: FakeSegmind }) => void;
}

export async function startHarness(options: HarnessOptions = {}): Promise<Harness> {
  const discord = await FakeDiscord.start(options.discord);
  const segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
  const checker = new FakeImageChecker(() => segmind.requests.map((r) => (r.body as { seed?: unknown }).seed).filter((s) => typeof s === 'number'));
  const config: Config = {
    ...loadConfig({
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      SEGMIND_RETRY_BASE_MS: '20',
      LOG_LEVEL: 'debug',
      STORE_URL: 'memory://',
      SHUTDOWN_GRACE_SECONDS: '5',
      ...options.env,
    }),
    ...options.config,
  };
  const chunks: string[] = [];
  const logs: LogLine[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      const text = chunk.toString();
      chunks.push(text);
      for (const line of text.split('\n')) if (line.trim()) logs.push(JSON.parse(line) as LogLine);
      done();
    },
  });
  const logger = createLogger({ level: config.LOG_LEVEL, secrets: [config.DISCORD_TOKEN, config.SEGMIND_API_KEY], destination });
  const openStore = () =>
    openStorage(config.STORE_URL, { logger, ...(options.storageNamespace ? { namespace: options.storageNamespace } : {}) });
  const storage = await openStore();
  const extra: Array<{ bot: Bot; storage: Storage }> = [];
  const makeBot = (store: Storage = storage, botConfig: Config = config) =>
    createBot({
      config: botConfig,
      logger,
      storage: store,
      ...(options.random ? { random: options.random } : {}),
      restOptions: { retries: 0, timeout: 5_000, ...options.restOptions },
      progress: options.progress ?? { firstEditDelayMs: 3_600_000, minIntervalMs: 3_600_000 },
      ...(options.breaker ? { breaker: options.breaker } : {}),
      ...(options.realClassifier ? {} : { imageChecker: options.imageChecker ?? checker }),
      ...(options.identifyWindowMs === undefined ? {} : { identifyWindowMs: options.identifyWindowMs }),
    });

  options.beforeStart?.({ discord, segmind });
  let bot = makeBot();
  try {
    await bot.start();
  } catch (error) {
    await bot.stop().catch(() => undefined);
    await storage.close();
    await discord.stop();
    await segmind.stop();
    throw error;
  }

  return {
    discord,
    segmind,
    checker,
    get bot() {
      return bot;
    },
    config,
    storage,
    logs,
    rawLogs: () => chunks.join(''),
    async restartBot() {
      await bot.stop();
      bot = makeBot();
      await bot.start();
    },
    async addBot(overrides = {}) {
      const store = await openStore();
      const another = makeBot(store, { ...config, ...overrides });
      extra.push({ bot: another, storage: store });
      await another.start();
      return another;
    },
    async stop() {
      // discord.js must be destroyed before its gateway goes away, or it reconnects forever.
      for (const other of extra) {
        await other.bot.stop().catch(() => undefined);
        await other.storage.close();
      }
      await bot.stop().catch(() => undefined);
      await storage.close();
      await discord.stop();
      await segmind.stop();
    },
  };
}

/** Polls until `check` returns a value, or fails with `what` after the deadline. No fixed sleeps. */
export async function eventually<T>(check: () => T | undefined | false, what: string, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
