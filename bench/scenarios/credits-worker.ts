/**
 * Credits scenario, run in its own process per store: N concurrent members reserving one credit at a time and
 * settling it (3 of 4 committed, 1 of 4 refunded, as delivered and failed images are), for a fixed time.
 *
 * Two levels are measured, each on its own server (guild) so they do not share counters:
 *  - `store`: QuotaStore.reserve + settle, the atomic section alone;
 *  - `policy`: UsagePolicy.admit + settle, what /imagine does before its deferral (settings read, rules, reserve) and
 *    after delivery (settle, stats, a log line).
 * Afterwards every member's usage and the server total are read back and compared with what was committed.
 */
import { pino } from 'pino';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/logger.js';
import { GenerationGate } from '../../src/services/generation/generation-gate.js';
import { GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import { Metrics } from '../../src/services/metrics.js';
import type { QuotaLimits, Reservation } from '../../src/services/storage/quota/quota-store.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import { UsagePolicy, type MemberContext } from '../../src/services/usage/usage-policy.js';
import { snowflake } from '../../test/fakes/fake-discord.js';
import { distribution, round, type Distribution } from '../lib/stats.js';
import { serveTelemetry } from '../lib/telemetry.js';
import { DEFAULTS } from '../../src/services/segmind/flux-params.js';

export interface CreditsRunArgs {
  storeUrl: string;
  /** Redis key prefix / keyv namespace, unique per run so runs never see each other's keys. */
  namespace: string;
  users: number;
  durationMs: number;
  warmupMs: number;
  logFile: string;
}

export interface CreditsLevelResult {
  reservations: number;
  reservationsPerSecond: number;
  /** Time of one reserve (store) or admit (policy) call, as seen by the caller, ms. */
  reserveMs: Distribution;
  settleMs: Distribution;
  committed: number;
  refunded: number;
  refused: number;
  errors: number;
  /** Members whose stored usage is above what was committed (must be 0). */
  doubleCharged: number;
  /** Members whose stored usage is below what was committed (must be 0). */
  underCharged: number;
  serverTotalMatches: boolean;
  openReservationsLeft: number;
}

export interface CreditsStoreResult {
  kind: string;
  store: CreditsLevelResult;
  policy: CreditsLevelResult;
}

const LIMITS: QuotaLimits = { dailyAllowance: 10_000_000, cooldownMs: 0, guildDailyCap: 0 };
const RESERVATION_LIFETIME_MS = 60 * 60_000;

async function runLevel(
  level: 'store' | 'policy',
  storage: Storage,
  policy: UsagePolicy,
  args: CreditsRunArgs,
): Promise<CreditsLevelResult> {
  const guildId = snowflake();
  const channelId = snowflake();
  const users = Array.from({ length: args.users }, () => snowflake());
  const committedBy = new Map<string, number>(users.map((u) => [u, 0]));
  const reserveTimes: number[] = [];
  const settleTimes: number[] = [];
  // Counting starts by the clock, not by a timer: on the memory store the loops may never yield to timers.
  let measuredFrom = Number.POSITIVE_INFINITY;
  let reservations = 0;
  let committed = 0;
  let refunded = 0;
  let refused = 0;
  let errors = 0;
  let seq = 0;

  const reserve = async (userId: string, id: string): Promise<Reservation | undefined> => {
    const now = Date.now();
    if (level === 'store') {
      const result = await storage.quota.reserve({
        reservationId: id,
        guildId,
        userId,
        credits: 1,
        now,
        limits: LIMITS,
        expiresAt: now + RESERVATION_LIFETIME_MS,
      });
      return result.ok ? result.reservation : undefined;
    }
    const member: MemberContext = {
      guildId,
      userId,
      channelId,
      parentChannelId: null,
      roleIds: [],
      canManageGuild: false,
      channelNsfw: false,
    };
    const admission = await policy.admit(
      {
        id,
        userId,
        guildId,
        channelId,
        params: { ...DEFAULTS, prompt: 'a lighthouse at dusk, oil painting', seed: 1 },
        createdAt: now,
        tokenExpiresAt: now + 15 * 60_000,
        attachmentSizeLimit: 10 * 1024 * 1024,
      },
      member,
      now + RESERVATION_LIFETIME_MS,
    );
    // The job is over as soon as it is settled: let go of the member's open-request slot (when the policy has one).
    (admission as { release?: () => void }).release?.();
    return admission.reservation;
  };

  const settle = async (reservation: Reservation, delivered: number): Promise<void> => {
    if (level === 'store') await storage.quota.settle(reservation.guildId, reservation.id, delivered, Date.now());
    else await policy.settle(reservation, delivered);
  };

  const memberLoop = async (userId: string, until: number) => {
    while (performance.now() < until) {
      const id = snowflake();
      const delivered = seq++ % 4 === 3 ? 0 : 1;
      try {
        const t0 = performance.now();
        const reservation = await reserve(userId, id);
        const t1 = performance.now();
        if (!reservation) {
          refused++;
          continue;
        }
        await settle(reservation, delivered);
        const t2 = performance.now();
        committedBy.set(userId, committedBy.get(userId)! + delivered);
        if (t0 >= measuredFrom) {
          reservations++;
          reserveTimes.push(t1 - t0);
          settleTimes.push(t2 - t1);
          if (delivered) committed++;
          else refunded++;
        }
      } catch {
        errors++;
      }
    }
  };

  const started = performance.now();
  measuredFrom = started + args.warmupMs;
  const until = measuredFrom + args.durationMs;
  await Promise.all(users.map((u) => memberLoop(u, until)));
  const seconds = (performance.now() - measuredFrom) / 1000;

  const now = Date.now();
  let doubleCharged = 0;
  let underCharged = 0;
  let total = 0;
  for (const userId of users) {
    const used = (await storage.quota.usage(guildId, userId, now)).usedToday;
    const expected = committedBy.get(userId)!;
    total += expected;
    if (used > expected) doubleCharged++;
    if (used < expected) underCharged++;
  }
  const open = (await storage.quota.expiredReservations(Number.MAX_SAFE_INTEGER, 1_000_000)).filter((r) => r.guildId === guildId);
  return {
    reservations,
    reservationsPerSecond: round(reservations / seconds, 0),
    reserveMs: distribution(reserveTimes),
    settleMs: distribution(settleTimes),
    committed,
    refunded,
    refused,
    errors,
    doubleCharged,
    underCharged,
    serverTotalMatches: (await storage.quota.guildUsage(guildId, now)) === total,
    openReservationsLeft: open.length,
  };
}

async function run(args: CreditsRunArgs): Promise<CreditsStoreResult> {
  // Production logs at info to stdout; here the same lines go to a file.
  const logger = createLogger({ level: 'info', secrets: [], destination: pino.destination({ dest: args.logFile, sync: true }) });
  const storage = await openStorage(args.storeUrl, { logger, namespace: args.namespace });
  try {
    const policy = new UsagePolicy({
      settings: new GuildSettingsRepository(storage, logger.child({ component: 'settings' })),
      quota: storage.quota,
      defaults: { dailyCredits: LIMITS.dailyAllowance, cooldownSeconds: 0, guildDailyCap: 0, maxSamples: 4, maxSteps: 50 },
      clock: systemClock,
      storageTimeoutMs: 1_500,
      logger: logger.child({ component: 'policy' }),
      gate: new GenerationGate({ clock: systemClock, logger, failureThreshold: 5, openMs: 30_000, maxOpenMs: 300_000 }),
      metrics: new Metrics(),
    });
    const storeLevel = await runLevel('store', storage, policy, args);
    const policyLevel = await runLevel('policy', storage, policy, args);
    if (storage.kind === 'redis') await deleteNamespace(storage, args.namespace);
    return { kind: storage.kind, store: storeLevel, policy: policyLevel };
  } finally {
    await storage.close();
  }
}

/** The benchmark's Redis keys (`<namespace>:*` and keyv's `<namespace>::*`), removed after the run. */
async function deleteNamespace(storage: Storage, namespace: string): Promise<void> {
  const redis = storage.redis!;
  let cursor = '0';
  do {
    const [next, keys] = (await redis.sendCommand(['SCAN', cursor, 'MATCH', `${namespace}:*`, 'COUNT', '1000'])) as [string, string[]];
    cursor = next;
    if (keys.length > 0) await redis.sendCommand(['DEL', ...keys]);
  } while (cursor !== '0');
}

const telemetry = serveTelemetry({
  run: (args) => run(args as CreditsRunArgs),
  stop: () => {
    setImmediate(() => process.exit(0));
    return Promise.resolve();
  },
});
telemetry.announceReady({ pid: process.pid });
