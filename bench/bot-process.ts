/**
 * The bot under test, in its own process: built exactly as src/index.ts builds it (config from the environment,
 * pino to stdout, openStorage, createBot with no test-only options), plus the benchmark's telemetry channel.
 * Started by bench/run.ts compiled, with plain `node` (bench/lib/build.ts); stdout (the bot's log) goes to a file.
 * The `ours-nocheck` bot switches the image check off as an operator does, with `DEFAULT_IMAGE_CHECK=off`.
 */
import { createBot } from '../src/app.js';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { Journal } from '../src/services/generation/journal.js';
import { dayOf } from '../src/services/storage/quota/quota-store.js';
import { openStorage } from '../src/services/storage/open-storage.js';
import { serveTelemetry } from './lib/telemetry.js';

export interface AuditRequest {
  guildId: string;
  userIds: string[];
}

export interface AuditResult {
  /** Credits used today per user id (daily allowance; the benchmark gives no bonus credits). */
  usedToday: Record<string, number>;
  guildUsedToday: number;
  /** Per-server stats of today (images committed, refunds, refusals by reason). */
  stats: Record<string, number>;
  /** Reservations neither committed nor refunded yet. */
  openReservations: number;
  /** Jobs still in the journal (accepted, not finished). */
  journaled: number;
}

const config = loadConfig(process.env);
const logger = createLogger({ level: config.LOG_LEVEL, secrets: [config.DISCORD_TOKEN, config.SEGMIND_API_KEY] });
const storage = await openStorage(config.STORE_URL, { logger: logger.child({ component: 'storage' }) });
logger.info({ store: storage.kind }, 'storage ready');
const bot = createBot({ config, logger, storage });
process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

let stopping: Promise<void> | undefined;
const telemetry = serveTelemetry({
  audit: async (args) => {
    const { guildId, userIds } = args as AuditRequest;
    const now = Date.now();
    const usedToday: Record<string, number> = {};
    for (const userId of userIds) usedToday[userId] = (await storage.quota.usage(guildId, userId, now)).usedToday;
    const result: AuditResult = {
      usedToday,
      guildUsedToday: await storage.quota.guildUsage(guildId, now),
      stats: await storage.quota.stats(guildId, dayOf(now)),
      openReservations: (await storage.quota.expiredReservations(Number.MAX_SAFE_INTEGER, 1_000_000)).length,
      journaled: (await new Journal(storage, config.INSTANCE_ID).list()).length,
    };
    return result;
  },
  stop: () => {
    stopping ??= bot
      .stop()
      .then(() => storage.close())
      .then(() => {
        setImmediate(() => process.exit(0));
      });
    return stopping;
  },
});

try {
  await bot.start();
  telemetry.announceReady({ store: storage.kind, pid: process.pid });
} catch (error) {
  logger.fatal({ err: error }, 'could not start the bot');
  telemetry.fatal(error);
  await bot.stop().catch(() => undefined);
  process.exit(1);
}
