import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, type ClientOptions } from 'discord.js';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from './clock.js';
import { commandDefinitions, createCommands } from './commands/index.js';
import type { Config } from './config.js';
import { createInteractionRouter } from './discord/interaction-router.js';
import type { Logger } from './logger.js';
import { syncCommands } from './services/command-sync.js';
import { ImageGenerator } from './services/image-generator.js';
import { ImaginePipeline } from './services/imagine-pipeline.js';
import { SegmindClient } from './services/segmind-client.js';

export interface BotDeps {
  config: Config;
  logger: Logger;
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
  const pipeline = new ImaginePipeline(new ImageGenerator(segmind, clock), clock);
  const commands = createCommands({ pipeline, random });

  const client = new Client({
    intents: [GatewayIntentBits.Guilds],
    rest: { api: config.DISCORD_API_URL, ...deps.restOptions },
  });
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
      await client.destroy();
      await segmind.close();
    },
  };
}
