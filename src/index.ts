import { existsSync } from 'node:fs';
import { createBot } from './app.js';
import { ConfigError, loadConfig, parseWebhookUrl, retiredSettingWarnings, type Config } from './config.js';
import { startHealthServer } from './http/health-server.js';
import { createLogger } from './logger.js';
import { acquireInstanceLease, InstanceLeaseError, type InstanceLease } from './services/generation/instance-lease.js';
import { openStorage, StorageConfigError } from './services/storage/open-storage.js';
import type { Storage } from './services/storage/storage.js';

// `npm start` reads .env when there is one; real environment variables win over it.
if (existsSync('.env')) process.loadEnvFile('.env');

let config: Config;
try {
  config = loadConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}

const logger = createLogger({
  level: config.LOG_LEVEL,
  secrets: [
    config.DISCORD_TOKEN,
    config.SEGMIND_API_KEY,
    urlPassword(config.STORE_URL),
    // whoever holds a webhook's token can post as it
    config.OPERATOR_WEBHOOK_URL === undefined ? '' : (parseWebhookUrl(config.OPERATOR_WEBHOOK_URL, config.DISCORD_API_URL)?.token ?? ''),
  ].filter((s) => s !== ''),
});
for (const warning of retiredSettingWarnings(process.env)) logger.warn(warning);

let storage: Storage;
try {
  storage = await openStorage(config.STORE_URL, { logger: logger.child({ component: 'storage' }) });
} catch (error) {
  if (!(error instanceof StorageConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(1);
}
logger.info({ store: storage.kind }, 'storage ready');
// Before anything reads this instance's journal: one live process per INSTANCE_ID on a Redis (none needed otherwise).
let lease: InstanceLease | undefined;
try {
  lease = await acquireInstanceLease(storage, {
    instanceId: config.INSTANCE_ID,
    leaseMs: config.INSTANCE_LEASE_SECONDS * 1000,
    logger: logger.child({ component: 'instance' }),
  });
} catch (error) {
  if (!(error instanceof InstanceLeaseError)) throw error;
  process.stderr.write(`${error.message}\n`);
  await storage.close();
  process.exit(1);
}
const bot = createBot({ config, logger, storage, ...(lease ? { instanceLease: lease } : {}) });
const health =
  config.HTTP_PORT === undefined
    ? undefined
    : await startHealthServer({ port: config.HTTP_PORT, host: config.HTTP_HOST, metrics: bot.metrics, logger: logger.child({ component: 'http' }) });
if (health) logger.info({ port: health.port }, 'serving /healthz and /metrics');

process.on('unhandledRejection', (reason) => logger.error({ err: reason }, 'unhandled promise rejection'));

let stopping = false;
function shutdown(exitCode: 0 | 1, why: object): void {
  if (stopping) return;
  stopping = true;
  logger.info(why, 'shutting down');
  bot
    .stop()
    .then(() => health?.close())
    .then(() => lease?.release())
    .then(() => storage.close())
    .then(
      () => process.exit(exitCode),
      (error: unknown) => {
        logger.error({ err: error }, 'error while shutting down');
        process.exit(1);
      },
    );
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.once(signal, () => shutdown(0, { signal }));
// Another process now runs as this INSTANCE_ID (this one lost Redis longer than the lease): it must not go on.
void lease?.lost.then(() => shutdown(1, { reason: 'INSTANCE_ID lease lost' }));

try {
  await bot.start();
} catch (error) {
  logger.fatal({ err: error }, 'could not start the bot');
  await bot.stop().catch(() => undefined);
  await lease?.release();
  process.exit(1);
}

function urlPassword(url: string): string {
  try {
    return decodeURIComponent(new URL(url).password);
  } catch {
    return '';
  }
}
