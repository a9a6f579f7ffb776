import { once } from 'node:events';
import {
  Client,
  Events,
  GatewayDispatchEvents,
  GatewayIntentBits,
  MessageFlags,
  REST,
  Routes,
  type ClientOptions,
  type Guild,
  type RESTGetAPIGatewayBotResult,
  type WebSocketOptions,
} from 'discord.js';
import type { Dispatcher } from 'undici';
import { systemClock, type Clock } from './clock.js';
import { memberTranslator } from './i18n/i18n.js';
import { createCancelButton } from './commands/cancel-button.js';
import { createResultControls } from './commands/result-controls.js';
import { createShareButton } from './commands/share-button.js';
import { createStarboard } from './commands/starboard.js';
import { createModeratorButtons } from './commands/generation-info.js';
import { commandDefinitions, createCommands } from './commands/index.js';
import { parseWebhookUrl, type Config } from './config.js';
import { createInteractionRouter } from './commands/interaction-router.js';
import type { Logger } from './logger.js';
import { AuditLog } from './services/usage/audit-log.js';
import { syncCommands } from './services/discord/command-sync.js';
import { RedisIdentifyThrottler } from './services/discord/identify-throttler.js';
import { describeShards, shardPlan, type ShardPlan } from './services/discord/shards.js';
import { DiscordResponder, type ChannelMessageBody } from './services/discord/discord-responder.js';
import { DEFAULT_PAUSE_PROBE_MS, GenerationGate } from './services/generation/generation-gate.js';
import { inviteUrl } from './services/discord/invite.js';
import { OperatorAlerts } from './services/discord/operator-alerts.js';
import { GuildSettingsRepository } from './services/usage/guild-settings.js';
import { ImaginePipeline } from './services/generation/imagine-pipeline.js';
import { Metrics } from './services/metrics.js';
import { PromptHistory } from './services/results/prompt-history.js';
import { GenerationLog } from './services/results/generation-log.js';
import { ResultStore } from './services/results/result-store.js';
import { Gallery } from './services/results/gallery.js';
import { PreferenceStore } from './services/creative/preference-store.js';
import { StyleStore } from './services/creative/style-store.js';
import { FairScheduler } from './services/generation/fair-scheduler.js';
import { Journal } from './services/generation/journal.js';
import { JournalAdoption } from './services/generation/journal-adoption.js';
import type { InstanceLease } from './services/generation/instance-lease.js';
import { createSegmindLimiter } from './services/generation/create-segmind-limiter.js';
import { SegmindClient } from './services/segmind/segmind-client.js';
import { SegmindError, type SegmindErrorKind } from './services/segmind/segmind-errors.js';
import { translator, type Translator } from './i18n/i18n.js';
import { localeFor } from './i18n/locales.js';
import type { Storage } from './services/storage/storage.js';
import { UsagePolicy } from './services/usage/usage-policy.js';
import { RedisOpenRequests } from './services/usage/open-requests.js';
import { createImageChecker, DEFAULT_MAX_QUEUED } from './services/safety/classifier-pool.js';
import type { ImageChecker } from './services/safety/image-checker.js';

/** Interaction and webhook routes are not under Discord's global limit; this only guards against runaway loops. */
const INTERACTION_REQUESTS_PER_SECOND = 1_000;
/**
 * discord.js keeps one REST handler per route, and every interaction token is a route of its own: at its default
 * hourly sweep a bot answering 10 interactions a second holds ~36,000 idle handlers (the 30-minute soak's heap grew
 * 31 → 49 MiB). Idle handlers are swept every minute instead; a busy one is never swept.
 */
export const REST_HANDLER_SWEEP_MS = 60_000;

/** How often reservations whose request can no longer be delivered are refunded (e.g. after a crash). */
const SWEEP_INTERVAL_MS = 60_000;
/** How often expired records (results past RESULT_RETENTION_DAYS, old statistics) are deleted from SQLite or memory. */
const PURGE_INTERVAL_MS = 60 * 60_000;

export interface BotDeps {
  config: Config;
  logger: Logger;
  /** Opened by the caller, so a wrong STORE_URL stops start-up before anything connects to Discord. */
  storage: Storage;
  clock?: Clock;
  random?: () => number;
  metrics?: Metrics;
  /** Extra REST options for discord.js (tests shorten timeouts and retries). */
  restOptions?: Partial<NonNullable<ClientOptions['rest']>>;
  segmindDispatcher?: Dispatcher;
  /** Queue position edits: first after this delay, then at most one per interval (Discord rate-limits edits). */
  progress?: { firstEditDelayMs: number; minIntervalMs: number };
  breaker?: { failureThreshold: number; openMs: number; maxOpenMs: number };
  /** Checks every generated image before it is posted (tests inject one); the bot builds its own otherwise. */
  imageChecker?: ImageChecker;
  /** While a rejected key or an empty account pauses generation, how often Segmind is asked again. */
  pauseProbeMs?: number;
  /** Tests only: the Redis identify window (Discord's 5 s, plus a margin, otherwise). */
  identifyWindowMs?: number;
  /**
   * The Redis lease this process holds on its INSTANCE_ID (src/index.ts takes it). With one, the bot also adopts the
   * unfinished jobs of processes whose lease is gone; without one (SQLite, memory, in-process tests) it never does.
   */
  instanceLease?: InstanceLease;
  /** How often orphaned journals are looked for; default half the lease. */
  adoptionScanMs?: number;
}

/** What moderators are told a pause means, in their log channel's language. */
const MODERATOR_PAUSE_CAUSE: Partial<Record<SegmindErrorKind, 'admin:notices.causeBadApiKey' | 'admin:notices.causeOutOfCredits'>> = {
  bad_api_key: 'admin:notices.causeBadApiKey',
  out_of_credits: 'admin:notices.causeOutOfCredits',
};
/** What the operator is told a pause means (technical: it goes to the log and the operator's webhook). */
const PAUSE_CAUSE: Partial<Record<SegmindErrorKind, string>> = {
  bad_api_key: 'Segmind rejected SEGMIND_API_KEY',
  out_of_credits: 'the Segmind account is out of credits',
};

export interface Bot {
  readonly client: Client;
  readonly metrics: Metrics;
  start(): Promise<void>;
  /** Graceful: refuse new work, let running images finish within the grace period, keep the rest journaled. */
  stop(): Promise<void>;
}

/** @discordjs/ws's manager, which discord.js hands to `ws.buildIdentifyThrottler` (its own class has the same name). */
type GatewayManager = Parameters<NonNullable<WebSocketOptions['buildIdentifyThrottler']>>[0];

/** A classifier that failed to load is tried again after this long, not on every image. */
const CLASSIFIER_RETRY_MS = 60_000;
/** After the grace period, how long the aborted jobs get to return before the connections close. */
const ABANDON_WAIT_MS = 2_000;

/** The composition root: every service is built here and handed its collaborators. */
export function createBot(deps: BotDeps): Bot {
  const { config, logger, storage } = deps;
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? Math.random;
  const metrics = deps.metrics ?? new Metrics({ clock });
  metrics.setStorageUp(true);

  // Discord exempts interaction callbacks and webhook edits from its 50 requests/s global limit, but discord.js
  // counts every request against one: under a burst, acknowledgements queued behind it missed the 3 s deadline. The
  // client (interactions, webhooks) gets a high ceiling; everything else goes through `channelRest`, held to 50/s.
  // This process's shards: known now for a fixed SHARD_COUNT; with `auto`, once start() has asked Discord.
  let shards: ShardPlan | undefined = config.SHARD_COUNT === 'auto' ? undefined : shardPlan(config.SHARD_COUNT, config.SHARDS, 1);
  if (shards) metrics.setShards(shards);
  const client = new Client({
    // GuildMessageReactions (not privileged): ⭐ reactions, for the gallery's starboard.
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions],
    rest: { api: config.DISCORD_API_URL, globalRequestsPerSecond: INTERACTION_REQUESTS_PER_SECOND, handlerSweepInterval: REST_HANDLER_SWEEP_MS, ...deps.restOptions },
    // Always explicit: left at their defaults, discord.js reads SHARDS and SHARD_COUNT from the environment (its
    // ShardingManager's hand-over, in another syntax than ours). With `auto` the count here is a stand-in other than
    // the default 1, replaced in start() before login.
    ...(shards ? { shards: [...shards.shards], shardCount: shards.count } : { shards: 'auto' as const, shardCount: 2 }),
    // With Redis, identifies are spaced across every process of the fleet; otherwise discord.js's own throttle.
    ...(storage.redis ? { ws: { buildIdentifyThrottler: buildRedisIdentifyThrottler } } : {}),
  });
  async function buildRedisIdentifyThrottler(manager: GatewayManager): Promise<RedisIdentifyThrottler> {
    const info = await manager.fetchGatewayInformation();
    return new RedisIdentifyThrottler({
      client: storage.redis!,
      keyPrefix: storage.namespace,
      maxConcurrency: info.session_start_limit.max_concurrency,
      clock,
      logger: logger.child({ component: 'identify' }),
      ...(deps.identifyWindowMs === undefined ? {} : { windowMs: deps.identifyWindowMs }),
    });
  }
  const channelRest = new REST({ api: config.DISCORD_API_URL, handlerSweepInterval: REST_HANDLER_SWEEP_MS, ...deps.restOptions }).setToken(config.DISCORD_TOKEN);
  const postToChannel = async (channelId: string, text: string) => {
    const body: ChannelMessageBody = { content: text, allowed_mentions: { parse: [] } };
    await channelRest.post(Routes.channelMessages(channelId), { body });
  };

  const webhook = config.OPERATOR_WEBHOOK_URL ? parseWebhookUrl(config.OPERATOR_WEBHOOK_URL, config.DISCORD_API_URL) : undefined;
  const alerts = new OperatorAlerts({ rest: channelRest, ...(webhook ? { webhook } : {}), logger: logger.child({ component: 'operator-alerts' }) });
  const balanceCheckMs = config.SEGMIND_BALANCE_CHECK_MINUTES * 60_000;
  // A paused bot asks at least as often as a running one reads its balance.
  const pauseProbeMs = deps.pauseProbeMs ?? Math.min(DEFAULT_PAUSE_PROBE_MS, balanceCheckMs);
  const segmind = new SegmindClient({
    baseUrl: config.SEGMIND_API_URL,
    apiKey: config.SEGMIND_API_KEY,
    clock,
    logger: logger.child({ component: 'segmind' }),
    timeoutMs: config.SEGMIND_TIMEOUT_SECONDS * 1000,
    maxRetries: config.SEGMIND_MAX_RETRIES,
    retryBaseMs: config.SEGMIND_RETRY_BASE_MS,
    maxResponseBytes: config.SEGMIND_MAX_IMAGE_MB * 1024 * 1024,
    // One connection per call the scheduler may have in flight, plus the balance check: a smaller pool would queue
    // calls the concurrency limit allows (and a burst behind it), a larger one is never used.
    connections: config.SEGMIND_CONCURRENCY + 1,
    random,
    ...(deps.segmindDispatcher ? { dispatcher: deps.segmindDispatcher } : {}),
  });
  const settings = new GuildSettingsRepository(storage, logger.child({ component: 'settings' }));
  // Its posts speak the server's language (moderators' own actions give theirs; the bot's, like an automatic block, do not).
  const audit = new AuditLog(storage, clock, postToChannel, logger.child({ component: 'audit' }), async (guildId) =>
    localeFor({ guildLocale: client.guilds.cache.get(guildId)?.preferredLocale, serverLanguage: (await settings.get(guildId)).language }, 'channel'),
  );
  /**
   * The local classifier (worker threads, each with its own model: most of the bot's memory). Loaded by `start()` when
   * the bot's default checks images; with `DEFAULT_IMAGE_CHECK=off`, only once a server turns the check on, so a bot
   * that checks nothing never pays for the model. A failed load is retried at most once a minute; meanwhile images
   * count as flagged (fail closed).
   */
  let classifier: Promise<ImageChecker> | undefined;
  let classifierFailedAt = Number.NEGATIVE_INFINITY;
  const imageCheckLog = logger.child({ component: 'image-check' });
  const loadClassifier = (): Promise<ImageChecker> =>
    (classifier ??= createImageChecker({
      threads: config.IMAGE_CHECK_THREADS,
      threshold: config.IMAGE_CHECK_THRESHOLD,
      // Each image is checked inside its Segmind slot: at most SEGMIND_CONCURRENCY wait here, so a burst is
      // slowed (back-pressure on Segmind calls) instead of answered "queue full" and flagged unchecked.
      maxQueued: Math.max(DEFAULT_MAX_QUEUED, config.SEGMIND_CONCURRENCY),
      logger: imageCheckLog,
      clock,
    }).catch((error: unknown) => {
      classifier = undefined;
      classifierFailedAt = clock.now();
      imageCheckLog.error({ err: error }, 'the image classifier could not load: images count as flagged until it does');
      throw error;
    }));
  const checker: ImageChecker = deps.imageChecker ?? {
    check: async (image) => {
      if (classifier === undefined && clock.now() - classifierFailedAt < CLASSIFIER_RETRY_MS) return { flagged: true, failure: 'error', durationMs: 0 };
      if (classifier === undefined) imageCheckLog.info('loading the image classifier: a server checks images');
      // Every image waiting on a load that fails is flagged; the failure is logged once, by loadClassifier.
      const loaded = await loadClassifier().catch(() => undefined);
      return loaded ? loaded.check(image) : { flagged: true, failure: 'error', durationMs: 0 };
    },
    close: async () => {
      await (await classifier?.catch(() => undefined))?.close();
    },
  };
  const gate = new GenerationGate({
    clock,
    logger: logger.child({ component: 'gate' }),
    ...(deps.breaker ?? { failureThreshold: 5, openMs: 30_000, maxOpenMs: 5 * 60_000 }),
    onBreakerChange: (state) => metrics.setBreakerState(state),
    pauseProbeMs,
    // The balance call is the probe: it answers 401 while the key is rejected and tells whether credits came back.
    probeOperatorPause: async (kind) => {
      const balance = await segmind.balance();
      metrics.setRemainingCredits(balance.total);
      return kind !== 'out_of_credits' || balance.total > 0;
    },
    onOperatorPause: (kind, _message, detail) => {
      metrics.setGenerationPaused(true);
      // Moderators get the cause (they can pass it on to the operator); members only read that generation is paused.
      const moderatorCause = MODERATOR_PAUSE_CAUSE[kind] ?? 'admin:notices.causeOther';
      void notifyLogChannels((t) => t('admin:notices.operatorPause', { cause: t(moderatorCause) }));
      const cause = `${PAUSE_CAUSE[kind] ?? `Segmind refused the account (${kind})`}${detail.reason ? ` (“${detail.reason}”)` : ''}`;
      void alerts.send(
        'generation_paused',
        `⚠️ **Generation paused** for the whole bot: ${cause}. Members are refused, nothing is charged. The bot asks Segmind again every ${minutes(pauseProbeMs)} and resumes by itself once it works.`,
      );
    },
    onOperatorResume: (kind) => {
      metrics.setGenerationPaused(false);
      void notifyLogChannels((t) => t('admin:notices.operatorResume'));
      void alerts.send('generation_resumed', `✅ **Generation resumed**: Segmind accepts the account again (it was paused because ${PAUSE_CAUSE[kind] ?? kind}).`);
    },
  });
  const limiter = createSegmindLimiter(storage, {
    concurrency: config.SEGMIND_CONCURRENCY,
    rpm: config.SEGMIND_RPM,
    clock,
    logger: logger.child({ component: 'limiter' }),
  });
  const scheduler = new FairScheduler(limiter, logger.child({ component: 'scheduler' }), { clock });
  // With Redis, a member's open requests are counted on every process, not only this one.
  const fleetOpen = storage.redis
    ? new RedisOpenRequests({ client: storage.redis, keyPrefix: storage.namespace, logger: logger.child({ component: 'open-requests' }) })
    : undefined;
  const policy = new UsagePolicy({
    settings,
    quota: storage.quota,
    defaults: {
      dailyCredits: config.DEFAULT_DAILY_CREDITS,
      cooldownSeconds: config.DEFAULT_COOLDOWN_SECONDS,
      guildDailyCap: config.DEFAULT_GUILD_DAILY_CREDITS,
      maxSamples: config.DEFAULT_MAX_SAMPLES,
      maxSteps: config.DEFAULT_MAX_STEPS,
      imageCheck: config.DEFAULT_IMAGE_CHECK,
      maxDailyCredits: config.MAX_DAILY_CREDITS,
      maxGuildDailyCredits: config.MAX_GUILD_DAILY_CREDITS,
    },
    clock,
    storageTimeoutMs: config.STORAGE_TIMEOUT_MS,
    logger: logger.child({ component: 'policy' }),
    gate,
    maxOpenPerUser: config.MAX_QUEUED_PER_USER,
    ...(fleetOpen ? { fleetOpen } : {}),
    metrics,
    audit,
  });
  const history = new PromptHistory(storage);
  const results = new ResultStore(storage, clock, config.RESULT_RETENTION_DAYS);
  const gallery = new Gallery({
    storage,
    clock,
    retentionDays: config.RESULT_RETENTION_DAYS,
    rest: channelRest,
    // Attachments come from Discord's CDN, or from the API's own host where DISCORD_API_URL is a proxy or test double.
    extraImageOrigins: [new URL(config.DISCORD_API_URL).origin],
    log: logger.child({ component: 'gallery' }),
  });
  /** From the Guilds intent's cache (a thread through its parent); a channel not cached counts as not age-restricted. */
  const isAgeRestricted = (channelId: string): boolean => {
    const channel = client.channels.cache.get(channelId);
    if (!channel) return false;
    if (channel.isThread()) return channel.parent?.nsfw ?? false;
    return 'nsfw' in channel ? channel.nsfw : false;
  };
  const generationLog = new GenerationLog({
    channelOf: async (guildId) => (await settings.get(guildId)).generationLogChannelId,
    post: postToChannel,
    clock,
    log: logger.child({ component: 'generation-log' }),
  });
  const journal = new Journal(storage, config.INSTANCE_ID);
  const pipeline = new ImaginePipeline({
    results,
    segmind,
    scheduler,
    gate,
    policy,
    journal,
    history,
    responder: new DiscordResponder({ webhooks: client.rest, channels: channelRest }, logger.child({ component: 'discord' })),
    checker,
    clock,
    metrics,
    progress: deps.progress ?? { firstEditDelayMs: 1_500, minIntervalMs: 3_000 },
    ownership: deps.instanceLease,
    onDelivered: (delivery) => generationLog.onDelivered(delivery),
  });
  const lease = deps.instanceLease;
  const adoption =
    lease && storage.redis
      ? new JournalAdoption({
          client: storage.redis,
          namespace: storage.namespace,
          instanceId: lease.instanceId,
          journal,
          recoverJob: (job, log) => pipeline.recoverJob(job, log),
          logger: logger.child({ component: 'adoption' }),
          scanEveryMs: deps.adoptionScanMs ?? Math.max(1, Math.floor(lease.leaseMs / 2)),
        })
      : undefined;
  const deleteChannelMessage = async (channelId: string, messageId: string) => {
    await channelRest.delete(Routes.channelMessage(channelId, messageId));
  };
  const styles = new StyleStore(storage, clock, logger.child({ component: 'styles' }));
  const preferences = new PreferenceStore(storage);
  const commandDeps = { pipeline, policy, random, settings, audit, history, quota: storage.quota, clock, postToChannel, results, deleteChannelMessage, styles, preferences };
  const commands = createCommands(commandDeps);
  const route = createInteractionRouter(
    commands,
    [
      createCancelButton(pipeline),
      createResultControls({
        pipeline,
        policy,
        results,
        settings,
        random,
        storage,
        clock,
        postToChannel,
        audit,
        retentionDays: config.RESULT_RETENTION_DAYS,
      }),
      createModeratorButtons(commandDeps),
      createShareButton({ gallery, results, settings, policy, isAgeRestricted }),
    ],
    logger,
  );

  /** Resolved once the gateway is ready: before that the bot knows no servers, so log channel notices wait for it. */
  let markDiscordReady!: () => void;
  const discordReady = new Promise<void>((resolve) => (markDiscordReady = resolve));

  /** Tells every server with a log channel, once, what concerns the whole bot (paused, resumed, low balance), in its language. */
  async function notifyLogChannels(text: (t: Translator) => string): Promise<void> {
    await discordReady;
    for (const [guildId, guild] of client.guilds.cache) {
      try {
        const { logChannelId, language } = await settings.get(guildId);
        const locale = localeFor({ guildLocale: guild.preferredLocale, serverLanguage: language }, 'channel');
        if (logChannelId) await postToChannel(logChannelId, text(translator(locale)));
      } catch (error) {
        logger.warn({ err: error, guildId }, 'could not notify the log channel');
      }
    }
  }

  /** Refunds reservations that can no longer be delivered (their process died mid-job and never came back). */
  const sweep = async () => {
    try {
      const expired = await storage.quota.expiredReservations(clock.now(), 100);
      for (const { guildId, id } of expired) {
        const result = await storage.quota.settle(guildId, id, 0, clock.now());
        if (result.settled) {
          metrics.refunded(result.refunded);
          logger.warn({ guildId, reservationId: id, refunded: result.refunded }, 'refunded an abandoned request');
        }
      }
      metrics.setStorageUp(true);
      void alerts.storageAnswered(true);
    } catch (error) {
      metrics.setStorageUp(false);
      logger.warn({ err: error }, 'refund sweep failed; will retry');
      void alerts.storageAnswered(false, error instanceof Error ? error.message : undefined);
    }
  };

  /** Below SEGMIND_LOW_BALANCE and not back above it since the last warning: one warning per crossing. */
  let balanceLow = false;
  /**
   * Reads the Segmind balance into the gauge and the log, and warns once per crossing of SEGMIND_LOW_BALANCE. A
   * failure is logged and changes nothing, except at start-up, where a rejected key pauses generation at once (members
   * are refused plainly instead of finding out with their first image).
   */
  const checkBalance = async (atStartUp: boolean): Promise<void> => {
    let balance;
    try {
      balance = await segmind.balance();
    } catch (error) {
      const segmindError = error instanceof SegmindError ? error : undefined;
      if (atStartUp && (segmindError?.kind === 'bad_api_key' || segmindError?.kind === 'forbidden')) {
        gate.pause(segmindError); // logs the one error line and tells the operator
        return;
      }
      logger.warn(
        { kind: segmindError?.kind, status: segmindError?.status, reason: segmindError?.detail.reason ?? String(error) },
        'could not read the Segmind balance; generation carries on',
      );
      return;
    }
    metrics.setRemainingCredits(balance.total);
    logger.info({ credits: balance.credits, freeCredits: balance.freeCredits }, 'Segmind balance');
    const threshold = config.SEGMIND_LOW_BALANCE;
    if (threshold <= 0 || balance.total >= threshold) {
      balanceLow = false;
      return;
    }
    if (balanceLow) return;
    balanceLow = true;
    await Promise.all([
      notifyLogChannels((t) => t('admin:notices.lowBalance', { amount: dollars(balance.total) })),
      alerts.send(
        'low_balance',
        `⚠️ **Segmind balance low**: ${dollars(balance.total)} left, below SEGMIND_LOW_BALANCE (${dollars(threshold)}). Generation pauses when it runs out: add credits in Segmind's console.`,
      ),
    ]);
  };
  let balanceChecking: Promise<void> | undefined;
  const runBalanceCheck = (atStartUp: boolean) =>
    (balanceChecking ??= checkBalance(atStartUp).finally(() => {
      balanceChecking = undefined;
    }));
  let balanceTimer: NodeJS.Timeout | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  /** keyv deletes an expired record only when it is read: without this, results and statistics stay for ever. */
  let purging: Promise<void> | undefined;
  const purge = () =>
    (purging ??= (async () => {
      try {
        // keyv stamps expiries with Date.now(), so that is the time to compare them with.
        const removed = await storage.purgeExpired(Date.now());
        logger[removed > 0 ? 'info' : 'debug']({ removed }, 'removed expired records from storage');
      } catch (error) {
        logger.warn({ err: error }, 'could not remove expired records from storage; will retry');
      }
    })().finally(() => {
      purging = undefined;
    }));
  let purger: NodeJS.Timeout | undefined;
  const queueGauges = setInterval(() => {
    const stats = scheduler.stats();
    metrics.setQueue({ tasks: stats.tasks, jobs: stats.jobs });
    metrics.setInFlight(stats.running);
  }, 1_000);
  queueGauges.unref();

  /** ALLOWED_GUILD_IDS: unset = any server; otherwise the bot serves only these (a public invite link cannot spend credits). */
  const allowedGuilds = config.ALLOWED_GUILD_IDS ? new Set(config.ALLOWED_GUILD_IDS) : undefined;
  const isAllowedGuild = (guildId: string | null) => !allowedGuilds || guildId === null || allowedGuilds.has(guildId);
  async function leaveIfNotAllowed(guild: Guild, when: string): Promise<void> {
    if (isAllowedGuild(guild.id)) return;
    logger.warn({ guildId: guild.id, guildName: guild.name, when }, 'leaving a server that is not in ALLOWED_GUILD_IDS');
    try {
      await guild.leave();
    } catch (error) {
      logger.error({ err: error, guildId: guild.id }, 'could not leave a server that is not in ALLOWED_GUILD_IDS');
    }
  }
  client.on(Events.GuildCreate, (guild) => void leaveIfNotAllowed(guild, 'added'));

  client.on(Events.InteractionCreate, (interaction) => {
    if (!isAllowedGuild(interaction.guildId)) {
      // Answered here, before any command runs: nothing reaches storage or Segmind for such a server.
      logger.warn({ guildId: interaction.guildId }, 'refused an interaction from a server not in ALLOWED_GUILD_IDS');
      if (interaction.isRepliable())
        interaction
          .reply({ content: `❌ ${memberTranslator(interaction)('common:errors.serverNotAllowed')}`, flags: MessageFlags.Ephemeral })
          .catch((error: unknown) => logger.warn({ err: error }, 'could not refuse an interaction from a server not allowed'));
      return;
    }
    route(interaction).catch((error: unknown) => logger.error({ err: error }, 'interaction handler crashed'));
  });
  // The raw event, not discord.js's messageReactionAdd: it names the message's author, so a ⭐ on anyone else's message
  // is dropped without a request, and it needs no partials for messages discord.js never cached (it caches none here).
  const starboard = createStarboard({ settings, results, gallery, rest: channelRest, botUserId: () => client.user?.id, isAgeRestricted, guildLocale: (id) => client.guilds.cache.get(id)?.preferredLocale, log: logger.child({ component: 'starboard' }) });
  client.ws.on(GatewayDispatchEvents.MessageReactionAdd, (data: { guild_id?: string }) => {
    if (isAllowedGuild(data.guild_id ?? null)) void starboard(data);
  });
  client.on(Events.Error, (error) => logger.error({ err: error }, 'discord client error'));
  client.on(Events.Warn, (message) => logger.warn({ discord: message }, 'discord client warning'));
  client.on(Events.ShardReady, (shardId) => {
    metrics.setShardUp(shardId, true);
    logger.info({ shardId }, 'gateway shard ready');
  });
  client.on(Events.ShardResume, (shardId) => metrics.setShardUp(shardId, true));
  client.on(Events.ShardDisconnect, (event, shardId) => {
    metrics.setShardUp(shardId, false);
    logger.warn({ shardId, code: event.code }, 'gateway shard disconnected for good');
  });
  client.on(Events.ShardReconnecting, (shardId) => {
    metrics.setShardUp(shardId, false);
    logger.warn({ shardId }, 'gateway shard reconnecting');
  });

  let stopping: Promise<void> | undefined;
  let recovering: Promise<void> | undefined;
  return {
    client,
    metrics,
    async start() {
      // A classifier that cannot load stops start-up here, before any request is taken.
      if (!deps.imageChecker && config.DEFAULT_IMAGE_CHECK !== 'off') await loadClassifier();
      // Before Discord: a rejected key pauses generation before the first member can ask for an image.
      await runBalanceCheck(true);
      balanceTimer = setInterval(() => void runBalanceCheck(false), balanceCheckMs);
      balanceTimer.unref();
      await sweep();
      sweeper = setInterval(() => void sweep(), SWEEP_INTERVAL_MS);
      sweeper.unref();
      void purge();
      purger = setInterval(() => void purge(), PURGE_INTERVAL_MS);
      purger.unref();
      if (!shards) {
        // SHARD_COUNT=auto: every shard Discord recommends (config allows no other SHARDS with auto).
        const gateway = (await channelRest.get(Routes.gatewayBot())) as RESTGetAPIGatewayBotResult;
        shards = shardPlan(config.SHARD_COUNT, config.SHARDS, gateway.shards);
        metrics.setShards(shards);
        client.options.shards = [...shards.shards];
        client.options.shardCount = shards.count;
      }
      const plan = shards;
      logger.info({ shards: describeShards(plan.shards), shardCount: plan.count }, 'connecting to Discord');
      const ready = once(client, Events.ClientReady);
      await client.login(config.DISCORD_TOKEN);
      await ready;
      metrics.setGatewayUp(true);
      markDiscordReady();
      logger.info(
        { user: client.user?.tag, guilds: client.guilds.cache.size, instance: config.INSTANCE_ID, shards: describeShards(plan.shards), shardCount: plan.count },
        'connected to Discord',
      );
      // Servers the bot was added to before ALLOWED_GUILD_IDS was set (or while it was offline).
      await Promise.all([...client.guilds.cache.values()].map((guild) => leaveIfNotAllowed(guild, 'start-up')));
      // A first start (or one whose servers are all outside ALLOWED_GUILD_IDS): say how to add the bot.
      if (![...client.guilds.cache.keys()].some(isAllowedGuild) && client.application)
        logger.warn({ inviteUrl: inviteUrl(client.application.id) }, 'the bot is in no server it may serve: open inviteUrl to add it to yours');
      // One process per fleet registers the commands: the one running shard 0 (every bot has one).
      if (config.SYNC_COMMANDS_ON_START && !plan.shards.includes(0))
        logger.info({ shards: describeShards(plan.shards) }, 'slash commands are synced by the process running shard 0');
      else if (config.SYNC_COMMANDS_ON_START) {
        await syncCommands({
          rest: client.rest,
          applicationId: client.application!.id,
          guildId: config.DISCORD_GUILD_ID,
          definitions: commandDefinitions,
          log: logger,
        });
      }
      recovering = pipeline.recover(logger.child({ component: 'recovery' }));
      await recovering;
      // Once this process's own jobs are back: then those of processes that died.
      if (!stopping) adoption?.start();
    },
    stop() {
      stopping ??= (async () => {
        gate.stopAccepting();
        // a start-up recovery still going must not find its storage closed under it
        await recovering?.catch(() => undefined);
        // nothing adopted from now on; what was adopted is drained below with the rest
        await adoption?.stop();
        scheduler.stop();
        // Running images finish, are delivered and settled; suspended jobs post their notice.
        const drained = await pipeline.drain(config.SHUTDOWN_GRACE_SECONDS * 1000);
        if (!drained) {
          logger.warn('shutdown grace period over: unfinished images stay journaled for the next start');
          pipeline.abandonRunning();
          await pipeline.drain(ABANDON_WAIT_MS);
        }
        clearInterval(sweeper);
        clearInterval(purger);
        clearInterval(balanceTimer);
        await gate.close();
        await balanceChecking; // the Segmind connections close next
        await purging; // the storage is closed next
        clearInterval(queueGauges);
        await limiter.close();
        fleetOpen?.close();
        await client.destroy();
        channelRest.clearHashSweeper();
        channelRest.clearHandlerSweeper();
        metrics.setGatewayUp(false);
        await segmind.close();
        if (!deps.imageChecker) await checker.close();
      })();
      return stopping;
    },
  };
}

function dollars(amount: number): string {
  return `$${amount.toFixed(2)}`;
}

function minutes(ms: number): string {
  const value = ms / 60_000;
  return value >= 1 ? `${Number(value.toFixed(1))} min` : `${Math.round(ms / 1000)} s`;
}
