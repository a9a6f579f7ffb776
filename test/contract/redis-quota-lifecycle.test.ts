import { createClient } from '@keyv/redis';
import { pino } from 'pino';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Clock } from '../../src/clock.js';
import { DEFAULTS } from '../../src/services/segmind/flux-params.js';
import { newGuildSettings, type GuildSettingsRepository } from '../../src/services/usage/guild-settings.js';
import type { ImagineRequest } from '../../src/services/generation/imagine-request.js';
import { DAY_MS, startOfNextDay } from '../../src/services/storage/quota/quota-store.js';
import {
  CANCEL_TOMBSTONE_TTL_MS,
  RedisQuotaStore,
  redisQuotaKeys,
  type RedisCommandSender,
} from '../../src/services/storage/quota/redis-quota-store.js';
import { RESERVE } from '../../src/services/storage/quota/redis-scripts.js';
import { RedisTimeoutError } from '../../src/services/storage/redis-connection.js';
import { UsagePolicy, type MemberContext } from '../../src/services/usage/usage-policy.js';
import { REDIS_URL, deleteRedisKeys, describeWithRedis, redisTestNamespace, type TestRedisClient } from '../support/redis.js';
import { T0, granted, quotaLimits, reserveInput } from './quota-store.contract.js';

/**
 * What only the Redis quota store has to get right: a reserve script can still run after its call was given up (the
 * connection guard rejects, the command was already sent), and its hashes live in a server that keeps keys until they
 * expire. Real Redis on 127.0.0.1:6379, under this run's own key prefix.
 */

const silent = pino({ level: 'silent' });

/** Polls until `fn` stops throwing, or the deadline passes (then its last error is thrown). */
async function eventually<T>(fn: () => Promise<T>, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

describeWithRedis('redis quota store: late answers and key lifetimes', () => {
  let client: TestRedisClient;
  let namespace: string;
  let keys: ReturnType<typeof redisQuotaKeys>;
  /** The next reserve script runs, but its reply is lost the way the connection guard loses it. */
  let loseNextReserveReply = false;
  let quota: RedisQuotaStore;

  beforeEach(async () => {
    client = createClient({ url: REDIS_URL });
    client.on('error', () => undefined);
    await client.connect();
    namespace = redisTestNamespace();
    keys = redisQuotaKeys(namespace);
    loseNextReserveReply = false;
    const sender: RedisCommandSender = {
      sendCommand: async (args) => {
        const reply = await client.sendCommand(args);
        const isReserve =
          (args[0] === 'EVALSHA' && args[1] === RESERVE.sha1) || (args[0] === 'EVAL' && args[1] === RESERVE.source);
        if (isReserve && loseNextReserveReply) {
          loseNextReserveReply = false;
          throw new RedisTimeoutError('127.0.0.1:6379', 2_000);
        }
        return reply;
      },
    };
    quota = new RedisQuotaStore({ client: sender, prefix: namespace, logger: silent });
  });

  afterEach(() => {
    client.destroy();
  });

  afterAll(async () => {
    await deleteRedisKeys();
  });

  describe('a reserve whose answer never reaches the bot', () => {
    const asker: MemberContext = {
      guildId: 'g1',
      userId: 'u1',
      channelId: 'c1',
      parentChannelId: null,
      roleIds: [],
      canManageGuild: false,
      channelNsfw: false,
    };
    const request = (id: string, now: number): ImagineRequest => ({
      id,
      userId: asker.userId,
      guildId: asker.guildId,
      channelId: asker.channelId,
      params: { ...DEFAULTS, prompt: 'a lighthouse', seed: 1 },
      createdAt: now,
      tokenExpiresAt: now + 15 * 60_000,
      attachmentSizeLimit: 10 * 1024 * 1024,
    });

    function policyAt(clock: Clock) {
      const settings = { get: () => Promise.resolve(newGuildSettings()) } as unknown as GuildSettingsRepository;
      return new UsagePolicy({
        settings,
        quota,
        defaults: { dailyCredits: 5, cooldownSeconds: 60, guildDailyCap: 0, maxSamples: 4, maxSteps: 50 },
        clock,
        storageTimeoutMs: 1_000,
        logger: silent,
      });
    }

    it('gives back the credits, the server total and the cooldown without waiting for the sweeper', async () => {
      let now = T0;
      const clock: Clock = { now: () => now, sleep: () => Promise.resolve() };
      const policy = policyAt(clock);
      // An earlier request, delivered: its cooldown is over by the time of the next one.
      const earlier = await policy.reserve(request('earlier', now), asker);
      await policy.settle(earlier.reservation, 1);

      now = T0 + 120_000;
      loseNextReserveReply = true;
      await expect(policy.reserve(request('lost', now), asker)).rejects.toMatchObject({ reason: 'unavailable' });

      await eventually(async () => {
        expect(await quota.usage('g1', 'u1', now)).toMatchObject({ usedToday: 1, lastAcceptedAt: T0 });
        expect(await quota.guildUsage('g1', now)).toBe(1);
      });
      now += 1_000;
      await expect(policy.reserve(request('next', now), asker)).resolves.toMatchObject({ reservation: { id: 'next' } });
      expect(await quota.usage('g1', 'u1', now)).toMatchObject({ usedToday: 2, lastAcceptedAt: now });
    });
  });

  describe('cancel', () => {
    it('puts back the last accepted time the reservation replaced, or none', async () => {
      const limits = quotaLimits({ cooldownMs: 60_000 });
      granted(await quota.reserve(reserveInput({ limits })));
      const second = granted(await quota.reserve(reserveInput({ limits, now: T0 + 60_000 })));
      expect(await quota.cancel('g1', second.id, T0 + 61_000)).toEqual({ cancelled: true, refunded: 1 });
      expect(await quota.usage('g1', 'u1', T0 + 61_000)).toMatchObject({ usedToday: 1, lastAcceptedAt: T0 });

      const first = granted(await quota.reserve(reserveInput({ userId: 'u2', limits })));
      await quota.cancel('g1', first.id, T0 + 1);
      expect(await quota.usage('g1', 'u2', T0 + 1)).toMatchObject({ usedToday: 0, lastAcceptedAt: undefined });
    });

    it('refuses a reserve that arrives after the cancel of its id, and charges nothing for it', async () => {
      const input = reserveInput({ reservationId: 'in-flight', credits: 2 });
      expect(await quota.cancel('g1', 'in-flight', T0)).toEqual({ cancelled: false, refunded: 0 });
      await expect(quota.reserve(input)).rejects.toThrow(/cancelled/);
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 0, lastAcceptedAt: undefined });
      expect(await quota.guildUsage('g1', T0)).toBe(0);
      expect(await quota.expiredReservations(input.expiresAt + 1, 10)).toEqual([]);
      // The refusal lasts a while, then the id is forgotten.
      const tombstoneTtl = await client.pTTL(keys.reservation('g1', 'in-flight'));
      expect(tombstoneTtl).toBeGreaterThan(0);
      expect(tombstoneTtl).toBeLessThanOrEqual(CANCEL_TOMBSTONE_TTL_MS);
      // A settle of the cancelled id finds nothing to settle.
      expect(await quota.settle('g1', 'in-flight', 0, T0)).toEqual({ settled: false, committed: 0, refunded: 0 });
    });
  });

  describe('key lifetimes', () => {
    const memberTtl = () => client.pTTL(keys.member('g1', 'u1'));

    it('expires a server total at the end of its day, and a member without bonus a day after its last request', async () => {
      const reservation = granted(await quota.reserve(reserveInput({ credits: 2 })));
      const totalTtl = await client.pTTL(keys.guild('g1'));
      expect(totalTtl).toBeGreaterThan(startOfNextDay(T0) - T0 - 60_000);
      expect(totalTtl).toBeLessThanOrEqual(startOfNextDay(T0) - T0);
      // Today's usage matters until midnight, and a cooldown (a day at most) until a day after the request.
      expect(await memberTtl()).toBeGreaterThan(DAY_MS - 60_000);
      expect(await memberTtl()).toBeLessThanOrEqual(DAY_MS);

      await quota.settle('g1', reservation.id, 1, T0 + 1_000);
      expect(await memberTtl()).toBeGreaterThan(DAY_MS - 60_000);
      await quota.resetUser('g1', 'u1', T0 + 2_000);
      expect(await memberTtl()).toBeGreaterThan(DAY_MS - 60_000);
    });

    it('never expires a member holding bonus credits, and expires them again once the bonus is gone', async () => {
      await quota.adjustBonus('g1', 'u1', 3);
      expect(await memberTtl()).toBe(-1);
      const limits = quotaLimits({ dailyAllowance: 1 });
      // Spending the allowance, or some bonus, keeps what is left of the bonus.
      granted(await quota.reserve(reserveInput({ limits })));
      expect(await memberTtl()).toBe(-1);
      const fromBonus = granted(await quota.reserve(reserveInput({ limits, credits: 2, now: T0 + 1 })));
      expect(await memberTtl()).toBe(-1);
      await quota.resetUser('g1', 'u1', T0 + 2);
      expect(await memberTtl()).toBe(-1);

      const spent = granted(await quota.reserve(reserveInput({ limits, credits: 2, now: T0 + 3 })));
      expect(spent.fromBonus).toBe(1);
      expect(await quota.usage('g1', 'u1', T0 + 3)).toMatchObject({ bonus: 0 });
      expect(await memberTtl()).toBeGreaterThan(0);

      // A refund to the bonus keeps the member again; taking the bonus away lets it expire.
      await quota.settle('g1', fromBonus.id, 0, T0 + 4);
      expect(await quota.usage('g1', 'u1', T0 + 4)).toMatchObject({ bonus: 2 });
      expect(await memberTtl()).toBe(-1);
      await quota.adjustBonus('g1', 'u1', -2);
      expect(await memberTtl()).toBeGreaterThan(DAY_MS - 60_000);

      await quota.adjustBonus('g1', 'u1', 1);
      const cancelled = granted(await quota.reserve(reserveInput({ limits, credits: 1, now: T0 + 5 })));
      expect(await memberTtl()).toBeGreaterThan(0);
      await quota.cancel('g1', cancelled.id, T0 + 6);
      expect(await quota.usage('g1', 'u1', T0 + 6)).toMatchObject({ bonus: 1 });
      expect(await memberTtl()).toBe(-1);
    });
  });
});
