import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, Routes, type ClientOptions } from 'discord.js';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from './clock.js';
import { commandDefinitions, createCommands } from './commands/index.js';
import type { Config } from './config.js';
import { createInteractionRouter } from './discord/interaction-router.js';
import type { Logger } from './logger.js';
import { AuditLog } from './services/audit-log.js';
import { syncCommands } from './services/command-sync.js';
import { GuildSettingsRepository } from './services/guild-settings.js';
import { ImageGenerator } from './services/image-generator.js';
import { ImaginePipeline } from './services/imagine-pipeline.js';
import { PromptHistory } from './services/prompt-history.js';
import { SegmindClient } from './services/segmind-client.js';
import type { Storage } from './services/storage/storage.js';
import { UsagePolicy } from './services/usage-policy.js';

/** How often reservations whose interaction can no longer be answered are refunded (e.g. after a crash). */
const SWEEP_INTERVAL_MS = 60_000;

export interface BotDeps {
  config: Config;
  logger: Logger;
  /** Opened by the caller, so a wrong STORE_URL stops start-up before anything connects to Discord. */
  storage: Storage;
  clock?: Clock;
  random?: () => number;
  /** Extra REST options for discord.js (tests shorten timeouts and retries). */
  restOptions?: Partial<NonNullable<ClientOptions['rest']>>;
  segmindDispatcher?: Dispatcher;
}

export interface Bot {
  readonly client: Client;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** The composition root: every service is built here and handed its collaborators. */
export function createBot(deps: BotDeps): Bot {
  const { config, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;

  const segmind = new SegmindClient({
    baseUrl: config.SEGMIND_API_URL,
    apiKey: config.SEGMIND_API_KEY,
    clock,
    logger: logger.child({ component: 'segmind' }),
    timeoutMs: config.SEGMIND_TIMEOUT_SECONDS * 1000,
    maxRetries: config.SEGMIND_MAX_RETRIES,
    retryBaseMs: config.SEGMIND_RETRY_BASE_MS,
    maxResponseBytes: config.SEGMIND_MAX_IMAGE_MB * 1024 * 1024,
    connections: config.SEGMIND_CONNECTIONS,
    random,
    ...(deps.segmindDispatcher ? { dispatcher: deps.segmindDispatcher } : {}),
  });
  const { storage } = deps;
  const settings = new GuildSettingsRepository(storage, logger.child({ component: 'settings' }));
  const policy = new UsagePolicy({
    settings,
    quota: storage.quota,
    defaults: {
      dailyCredits: config.DEFAULT_DAILY_CREDITS,
      cooldownSeconds: config.DEFAULT_COOLDOWN_SECONDS,
      guildDailyCap: config.DEFAULT_GUILD_DAILY_CREDITS,
      maxSamples: config.DEFAULT_MAX_SAMPLES,
      maxSteps: config.DEFAULT_MAX_STEPS,
    },
    clock,
    storageTimeoutMs: config.STORAGE_TIMEOUT_MS,
    logger: logger.child({ component: 'policy' }),
  });
  const history = new PromptHistory(storage);
  const pipeline = new ImaginePipeline(new ImageGenerator(segmind, clock), policy, history, clock);

  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    rest: { api: config.DISCORD_API_URL, ...deps.restOptions },
  });
  const audit = new AuditLog(
    storage,
    clock,
    async (channelId, text) => {
      await client.rest.post(Routes.channelMessages(channelId), { body: { content: text, allowed_mentions: { parse: [] } } });
    },
    logger.child({ component: 'audit' }),
  );
  const commands = createCommands({ pipeline, policy, random, settings, audit, history, quota: storage.quota, clock });

  /** Refunds reservations that can no longer be delivered (their process died mid-job). */
  const sweep = async () => {
    try {
      const expired = await storage.quota.expiredReservations(clock.now(), 100);
      for (const { guildId, id } of expired) {
        const result = await storage.quota.settle(guildId, id, 0, clock.now());
        if (result.settled) logger.warn({ guildId, reservationId: id, refunded: result.refunded }, 'refunded an abandoned request');
      }
    } catch (error) {
      logger.warn({ err: error }, 'refund sweep failed; will retry');
    }
  };
  let sweeper: NodeJS.Timeout | undefined;
  const route = createInteractionRouter(commands, logger);
  client.on(Events.InteractionCreate, (interaction) => {
    route(interaction).catch((error: unknown) => logger.error({ err: error }, 'interaction handler crashed'));
  });
  client.on(Events.Error, (error) => logger.error({ err: error }, 'discord client error'));
  client.on(Events.Warn, (message) => logger.warn({ discord: message }, 'discord client warning'));
  client.on(Events.ShardDisconnect, (_event, shardId) => logger.warn({ shardId }, 'gateway disconnected'));

  return {
    client,
    async start() {
      await sweep();
      sweeper = setInterval(() => void sweep(), SWEEP_INTERVAL_MS);
      sweeper.unref();
      const ready = once(client, Events.ClientReady);
      await client.login(config.DISCORD_TOKEN);
      await ready;
      logger.info({ user: client.user?.tag, guilds: client.guilds.cache.size }, 'connected to Discord');
      if (config.SYNC_COMMANDS_ON_START) {
        await syncCommands({
          rest: client.rest,
          applicationId: client.application!.id,
          guildId: config.DISCORD_GUILD_ID,
          definitions: commandDefinitions,
          log: logger,
        });
      }
    },
    async stop() {
      clearInterval(sweeper);
      await client.destroy();
      await segmind.close();
    },
  };
}
