import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  DAY_MS,
  dayOf,
  startOfNextDay,
  type QuotaLimits,
  type QuotaStore,
  type Reservation,
  type ReserveInput,
  type ReserveResult,
} from '../../src/services/storage/quota/quota-store.js';
import type { Storage } from '../../src/services/storage/storage.js';

/**
 * The behaviour every QuotaStore backend must have, run against each of them (quota-store.test.ts). Times are
 * injected: nothing here waits for a clock.
 */

export interface QuotaContractBackend {
  /** Opens a fresh, empty storage; the contract closes it after each test. */
  open(): Promise<Storage>;
}

/** Midday UTC, so "later today" and "tomorrow" are unambiguous. */
export const T0 = Date.UTC(2030, 0, 15, 12, 0, 0);
const EXPIRY = 15 * 60_000;

export function quotaLimits(overrides: Partial<QuotaLimits> = {}): QuotaLimits {
  return { dailyAllowance: 5, cooldownMs: 0, guildDailyCap: 0, ...overrides };
}

let sequence = 0;
export function reserveInput(overrides: Partial<ReserveInput> = {}): ReserveInput {
  sequence += 1;
  const now = overrides.now ?? T0;
  return {
    reservationId: `res-${sequence}`,
    guildId: 'g1',
    userId: 'u1',
    credits: 1,
    now,
    limits: quotaLimits(),
    expiresAt: now + EXPIRY,
    ...overrides,
  };
}

export function granted(result: ReserveResult): Reservation {
  if (!result.ok) throw new Error(`expected the reservation to be granted, got ${JSON.stringify(result)}`);
  return result.reservation;
}

export function runQuotaStoreContract(name: string, backend: QuotaContractBackend): void {
  describe(`QuotaStore contract: ${name}`, () => {
    let storage: Storage;
    let quota: QuotaStore;

    beforeEach(async () => {
      storage = await backend.open();
      quota = storage.quota;
    });

    afterEach(async () => {
      await storage.close();
    });

    it('reserves credits, counts them at once, and commits them on delivery', async () => {
      const result = await quota.reserve(reserveInput({ reservationId: 'basic', credits: 2 }));
      expect(result).toEqual({
        ok: true,
        remainingToday: 3,
        bonus: 0,
        reservation: {
          id: 'basic',
          guildId: 'g1',
          userId: 'u1',
          credits: 2,
          fromDaily: 2,
          fromBonus: 0,
          day: dayOf(T0),
          createdAt: T0,
          expiresAt: T0 + EXPIRY,
        },
      });
      expect(await quota.usage('g1', 'u1', T0)).toEqual({ day: dayOf(T0), usedToday: 2, bonus: 0, lastAcceptedAt: T0 });
      expect(await quota.guildUsage('g1', T0)).toBe(2);

      expect(await quota.settle('g1', 'basic', 2, T0 + 1000)).toEqual({ settled: true, committed: 2, refunded: 0 });
      expect(await quota.usage('g1', 'u1', T0 + 1000)).toMatchObject({ usedToday: 2, bonus: 0 });
      expect(await quota.guildUsage('g1', T0 + 1000)).toBe(2);
    });

    it('refuses credits beyond what remains, and a refusal changes nothing', async () => {
      granted(await quota.reserve(reserveInput({ credits: 4 })));
      const refused = await quota.reserve(reserveInput({ credits: 2, now: T0 + 1000 }));
      expect(refused).toEqual({ ok: false, reason: 'allowance', available: 1, retryAt: startOfNextDay(T0) });
      expect(await quota.usage('g1', 'u1', T0 + 1000)).toEqual({
        day: dayOf(T0),
        usedToday: 4,
        bonus: 0,
        lastAcceptedAt: T0,
      });
      expect(await quota.guildUsage('g1', T0 + 1000)).toBe(4);
      expect(await quota.expiredReservations(T0 + 2 * EXPIRY, 10)).toHaveLength(1);
    });

    it('grants exactly the 3 remaining credits to 10 concurrent requests; the other 7 are refused for allowance', async () => {
      granted(await quota.reserve(reserveInput({ credits: 2 })));
      const results = await Promise.all(
        Array.from({ length: 10 }, (_, i) => quota.reserve(reserveInput({ reservationId: `burst-${i}`, now: T0 + i }))),
      );
      const ok = results.filter((r) => r.ok);
      expect(ok).toHaveLength(3);
      expect(ok.map((r) => r.remainingToday).sort()).toEqual([0, 1, 2]);
      const refused = results.filter((r) => !r.ok);
      expect(refused).toHaveLength(7);
      for (const r of refused) expect(r).toMatchObject({ ok: false, reason: 'allowance', available: 0 });
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 5 });
      expect(await quota.guildUsage('g1', T0)).toBe(5);
    });

    it('refuses during the cooldown and allows again once the injected time has passed', async () => {
      const limits = quotaLimits({ cooldownMs: 60_000 });
      granted(await quota.reserve(reserveInput({ limits })));
      expect(await quota.reserve(reserveInput({ limits, now: T0 + 1000 }))).toEqual({
        ok: false,
        reason: 'cooldown',
        retryAt: T0 + 60_000,
      });
      expect(await quota.reserve(reserveInput({ limits, now: T0 + 59_999 }))).toMatchObject({ ok: false, reason: 'cooldown' });
      granted(await quota.reserve(reserveInput({ limits, now: T0 + 60_000 })));
      expect(await quota.usage('g1', 'u1', T0 + 60_000)).toMatchObject({ usedToday: 2, lastAcceptedAt: T0 + 60_000 });
    });

    it('checks the cooldown before the allowance', async () => {
      const limits = quotaLimits({ dailyAllowance: 1, cooldownMs: 60_000 });
      granted(await quota.reserve(reserveInput({ limits })));
      expect(await quota.reserve(reserveInput({ limits, now: T0 + 1000 }))).toMatchObject({ reason: 'cooldown' });
      expect(await quota.reserve(reserveInput({ limits, now: T0 + 60_000 }))).toMatchObject({ reason: 'allowance' });
    });

    it('records the last accepted request even without a cooldown', async () => {
      granted(await quota.reserve(reserveInput()));
      granted(await quota.reserve(reserveInput({ now: T0 + 1 })));
      expect(await quota.usage('g1', 'u1', T0 + 1)).toMatchObject({ usedToday: 2, lastAcceptedAt: T0 + 1 });
    });

    it('spends the daily allowance first, then bonus credits', async () => {
      expect(await quota.adjustBonus('g1', 'u1', 3)).toBe(3);
      const limits = quotaLimits({ dailyAllowance: 2 });
      const result = await quota.reserve(reserveInput({ limits, credits: 4 }));
      expect(result).toMatchObject({ ok: true, remainingToday: 0, bonus: 1, reservation: { fromDaily: 2, fromBonus: 2 } });
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2, bonus: 1 });
      expect(await quota.reserve(reserveInput({ limits, credits: 2 }))).toMatchObject({
        ok: false,
        reason: 'allowance',
        available: 1,
      });
      expect(await quota.guildUsage('g1', T0)).toBe(4);
    });

    it('refunds bonus credits first, then daily ones', async () => {
      await quota.adjustBonus('g1', 'u1', 3);
      const limits = quotaLimits({ dailyAllowance: 2 });
      const reservation = granted(await quota.reserve(reserveInput({ limits, credits: 4 })));
      // 1 delivered, 3 refunded: the 2 bonus credits go back to the bonus, 1 to today's allowance.
      expect(await quota.settle('g1', reservation.id, 1, T0 + 1000)).toEqual({ settled: true, committed: 1, refunded: 3 });
      expect(await quota.usage('g1', 'u1', T0 + 1000)).toMatchObject({ usedToday: 1, bonus: 3 });
      expect(await quota.guildUsage('g1', T0 + 1000)).toBe(1);
    });

    it('refunds once: a second settle changes nothing', async () => {
      const reservation = granted(await quota.reserve(reserveInput({ credits: 2 })));
      expect(await quota.settle('g1', reservation.id, 0, T0)).toEqual({ settled: true, committed: 0, refunded: 2 });
      expect(await quota.settle('g1', reservation.id, 0, T0)).toEqual({ settled: false, committed: 0, refunded: 0 });
      expect(await quota.settle('g1', reservation.id, 2, T0)).toEqual({ settled: false, committed: 0, refunded: 0 });
      expect(await quota.settle('g1', 'never-reserved', 0, T0)).toEqual({ settled: false, committed: 0, refunded: 0 });
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 0, bonus: 0 });
      expect(await quota.guildUsage('g1', T0)).toBe(0);
    });

    it('refunds once when several settles race', async () => {
      await quota.adjustBonus('g1', 'u1', 2);
      const limits = quotaLimits({ dailyAllowance: 1 });
      const reservation = granted(await quota.reserve(reserveInput({ limits, credits: 3 })));
      const results = await Promise.all(Array.from({ length: 8 }, () => quota.settle('g1', reservation.id, 0, T0)));
      expect(results.filter((r) => r.settled)).toEqual([{ settled: true, committed: 0, refunded: 3 }]);
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 0, bonus: 2 });
      expect(await quota.guildUsage('g1', T0)).toBe(0);
    });

    it('commits what was delivered and refunds the rest (reserve 4, deliver 3)', async () => {
      const reservation = granted(await quota.reserve(reserveInput({ credits: 4 })));
      expect(await quota.settle('g1', reservation.id, 3, T0)).toEqual({ settled: true, committed: 3, refunded: 1 });
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 3 });
      expect(await quota.guildUsage('g1', T0)).toBe(3);
    });

    it('clamps delivered credits to what was reserved', async () => {
      const a = granted(await quota.reserve(reserveInput({ credits: 2 })));
      expect(await quota.settle('g1', a.id, 10, T0)).toEqual({ settled: true, committed: 2, refunded: 0 });
      const b = granted(await quota.reserve(reserveInput({ credits: 2 })));
      expect(await quota.settle('g1', b.id, -3, T0)).toEqual({ settled: true, committed: 0, refunded: 2 });
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2 });
    });

    it('holds the server cap across members, and a refund frees server credits', async () => {
      const limits = quotaLimits({ dailyAllowance: 10, guildDailyCap: 5 });
      const first = granted(await quota.reserve(reserveInput({ userId: 'u1', limits, credits: 3 })));
      expect(await quota.reserve(reserveInput({ userId: 'u2', limits, credits: 3 }))).toEqual({
        ok: false,
        reason: 'guild_cap',
        available: 2,
        retryAt: startOfNextDay(T0),
      });
      expect(await quota.usage('g1', 'u2', T0)).toMatchObject({ usedToday: 0, lastAcceptedAt: undefined });
      granted(await quota.reserve(reserveInput({ userId: 'u2', limits, credits: 2 })));
      expect(await quota.reserve(reserveInput({ userId: 'u3', limits }))).toMatchObject({
        ok: false,
        reason: 'guild_cap',
        available: 0,
      });
      // Other servers are not affected.
      granted(await quota.reserve(reserveInput({ guildId: 'g2', userId: 'u3', limits, credits: 5 })));

      await quota.settle('g1', first.id, 0, T0);
      expect(await quota.guildUsage('g1', T0)).toBe(2);
      granted(await quota.reserve(reserveInput({ userId: 'u3', limits, credits: 3 })));
      expect(await quota.guildUsage('g1', T0)).toBe(5);
    });

    it('grants exactly the server cap to concurrent requests from many members', async () => {
      const limits = quotaLimits({ dailyAllowance: 10, guildDailyCap: 4 });
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, i) => quota.reserve(reserveInput({ userId: `m${i}`, limits }))),
      );
      expect(results.filter((r) => r.ok)).toHaveLength(4);
      expect(results.filter((r) => !r.ok && r.reason === 'guild_cap')).toHaveLength(8);
      expect(await quota.guildUsage('g1', T0)).toBe(4);
    });

    it('starts a fresh allowance each UTC day; a late refund of yesterday restores the bonus only', async () => {
      await quota.adjustBonus('g1', 'u1', 2);
      const limits = quotaLimits({ dailyAllowance: 2 });
      const yesterday = granted(await quota.reserve(reserveInput({ limits, credits: 4 })));
      expect(yesterday).toMatchObject({ fromDaily: 2, fromBonus: 2 });

      const T1 = T0 + DAY_MS;
      expect(await quota.usage('g1', 'u1', T1)).toEqual({
        day: dayOf(T1),
        usedToday: 0,
        bonus: 0,
        lastAcceptedAt: T0,
      });
      expect(await quota.guildUsage('g1', T1)).toBe(0);
      expect(await quota.reserve(reserveInput({ limits, credits: 1, now: T1 }))).toMatchObject({
        ok: true,
        remainingToday: 1,
        reservation: { day: dayOf(T1), fromDaily: 1 },
      });

      expect(await quota.settle('g1', yesterday.id, 0, T1)).toEqual({ settled: true, committed: 0, refunded: 4 });
      expect(await quota.usage('g1', 'u1', T1)).toMatchObject({ usedToday: 1, bonus: 2 });
      expect(await quota.guildUsage('g1', T1)).toBe(1);
    });

    it('lists only expired reservations that are still open', async () => {
      const a = granted(await quota.reserve(reserveInput({ reservationId: 'exp-a', expiresAt: T0 + 1000 })));
      granted(await quota.reserve(reserveInput({ reservationId: 'exp-b', guildId: 'g2', expiresAt: T0 + 5000 })));
      const settled = granted(await quota.reserve(reserveInput({ reservationId: 'exp-c', expiresAt: T0 + 1000 })));
      granted(await quota.reserve(reserveInput({ reservationId: 'exp-d', expiresAt: T0 + 60_000 })));
      await quota.settle('g1', settled.id, 1, T0 + 500);

      expect(await quota.expiredReservations(T0 + 999, 10)).toEqual([]);
      expect(await quota.expiredReservations(T0 + 2000, 10)).toEqual([{ guildId: 'g1', id: 'exp-a' }]);
      expect(await quota.expiredReservations(T0 + 10_000, 10)).toEqual([
        { guildId: 'g1', id: 'exp-a' },
        { guildId: 'g2', id: 'exp-b' },
      ]);
      expect(await quota.expiredReservations(T0 + 10_000, 1)).toEqual([{ guildId: 'g1', id: 'exp-a' }]);

      // What the sweeper does: refund, after which the reservation is no longer listed.
      expect(await quota.settle('g1', a.id, 0, T0 + 10_000)).toMatchObject({ settled: true, refunded: 1 });
      expect(await quota.expiredReservations(T0 + 10_000, 10)).toEqual([{ guildId: 'g2', id: 'exp-b' }]);
    });

    it('counts stats atomically under concurrency', async () => {
      const day = dayOf(T0);
      await Promise.all(
        Array.from({ length: 50 }, () => quota.incrementStats('g1', day, { images: 1, 'images:u1': 1 })),
      );
      await quota.incrementStats('g1', day, { 'refused:cooldown': 2, images: -1 });
      await quota.incrementStats('g1', day, {});
      expect(await quota.stats('g1', day)).toEqual({ images: 49, 'images:u1': 50, 'refused:cooldown': 2 });
      expect(await quota.stats('g1', day + 1)).toEqual({});
      expect(await quota.stats('g2', day)).toEqual({});
    });

    it('adjusts bonus credits, never below zero', async () => {
      expect(await quota.adjustBonus('g1', 'u1', 5)).toBe(5);
      expect(await quota.adjustBonus('g1', 'u1', -3)).toBe(2);
      expect(await quota.adjustBonus('g1', 'u1', -10)).toBe(0);
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ bonus: 0 });
      const concurrent = await Promise.all(Array.from({ length: 20 }, () => quota.adjustBonus('g1', 'u1', 1)));
      expect(Math.max(...concurrent)).toBe(20);
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ bonus: 20 });
    });

    it("resets a member's usage and cooldown but keeps the bonus", async () => {
      await quota.adjustBonus('g1', 'u1', 1);
      const limits = quotaLimits({ dailyAllowance: 3, cooldownMs: 60_000 });
      granted(await quota.reserve(reserveInput({ limits, credits: 3 })));
      await quota.resetUser('g1', 'u1', T0 + 1000);
      expect(await quota.usage('g1', 'u1', T0 + 1000)).toEqual({
        day: dayOf(T0),
        usedToday: 0,
        bonus: 1,
        lastAcceptedAt: undefined,
      });
      expect(await quota.reserve(reserveInput({ limits, credits: 3, now: T0 + 2000 }))).toMatchObject({
        ok: true,
        remainingToday: 0,
        bonus: 1,
      });
    });

    it('rejects malformed input with an error', async () => {
      for (const credits of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
        await expect(quota.reserve(reserveInput({ credits }))).rejects.toThrow(/credits/);
      }
      await expect(quota.reserve(reserveInput({ guildId: '' }))).rejects.toThrow(/guildId/);
      await expect(quota.reserve(reserveInput({ userId: 'a:b' }))).rejects.toThrow(/userId/);
      await expect(quota.reserve(reserveInput({ limits: quotaLimits({ dailyAllowance: -1 }) }))).rejects.toThrow();
      await expect(quota.settle('g1', 'x', Number.NaN, T0)).rejects.toThrow(/delivered/);
      await expect(quota.adjustBonus('g1', 'u1', 0.5)).rejects.toThrow(/bonus/);
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 0, lastAcceptedAt: undefined });
    });

    it('refuses to reuse the id of an open reservation', async () => {
      granted(await quota.reserve(reserveInput({ reservationId: 'dup', credits: 2 })));
      await expect(quota.reserve(reserveInput({ reservationId: 'dup', credits: 1 }))).rejects.toThrow(/already exists/);
      expect(await quota.usage('g1', 'u1', T0)).toMatchObject({ usedToday: 2 });
      expect(await quota.settle('g1', 'dup', 0, T0)).toEqual({ settled: true, committed: 0, refunded: 2 });
      expect(await quota.expiredReservations(T0 + 2 * EXPIRY, 10)).toEqual([]);
    });

    it('fails closed: once the storage is closed, reserve rejects instead of granting', async () => {
      granted(await quota.reserve(reserveInput()));
      await storage.close();
      await expect(quota.reserve(reserveInput({ now: T0 + 1 }))).rejects.toThrow();
      await expect(quota.usage('g1', 'u1', T0)).rejects.toThrow();
      await expect(storage.kv.get('anything')).rejects.toThrow();
      await expect(storage.ping()).rejects.toThrow();
    });
  });

  // Cancelling a reservation whose requester was told it failed (issue #9, defect 7).
  describe(`QuotaStore contract, cancel: ${name}`, () => {
    let storage: Storage;
    let quota: QuotaStore;

    beforeEach(async () => {
      storage = await backend.open();
      quota = storage.quota;
    });

    afterEach(async () => {
      await storage.close();
    });

    it('gives back every credit and the server total, and ends the cooldown the reservation started', async () => {
      await quota.adjustBonus('g1', 'u1', 1);
      const limits = quotaLimits({ dailyAllowance: 2, cooldownMs: 60_000 });
      const reservation = granted(await quota.reserve(reserveInput({ limits, credits: 3 })));
      expect(await quota.cancel('g1', reservation.id, T0 + 1000)).toEqual({ cancelled: true, refunded: 3 });
      expect(await quota.usage('g1', 'u1', T0 + 1000)).toEqual({
        day: dayOf(T0),
        usedToday: 0,
        bonus: 1,
        lastAcceptedAt: undefined,
      });
      expect(await quota.guildUsage('g1', T0 + 1000)).toBe(0);
      expect(await quota.expiredReservations(T0 + 2 * EXPIRY, 10)).toEqual([]);
      // The member may ask again at once, with everything they had.
      expect(await quota.reserve(reserveInput({ limits, credits: 3, now: T0 + 2000 }))).toMatchObject({ ok: true, bonus: 0 });
    });

    it('leaves the cooldown a later reservation started', async () => {
      const first = granted(await quota.reserve(reserveInput()));
      granted(await quota.reserve(reserveInput({ now: T0 + 1 })));
      await quota.cancel('g1', first.id, T0 + 2);
      expect(await quota.usage('g1', 'u1', T0 + 2)).toMatchObject({ usedToday: 1, lastAcceptedAt: T0 + 1 });
      expect(await quota.guildUsage('g1', T0 + 2)).toBe(1);
    });

    it('undoes once: a second cancel, or one of a settled or unknown reservation, changes nothing', async () => {
      const cancelled = granted(await quota.reserve(reserveInput({ credits: 2 })));
      await quota.cancel('g1', cancelled.id, T0);
      expect(await quota.cancel('g1', cancelled.id, T0)).toEqual({ cancelled: false, refunded: 0 });
      expect(await quota.settle('g1', cancelled.id, 0, T0)).toEqual({ settled: false, committed: 0, refunded: 0 });

      const settled = granted(await quota.reserve(reserveInput({ credits: 2, now: T0 + 1 })));
      await quota.settle('g1', settled.id, 2, T0 + 1);
      expect(await quota.cancel('g1', settled.id, T0 + 1)).toEqual({ cancelled: false, refunded: 0 });
      expect(await quota.cancel('g1', 'never-reserved', T0 + 1)).toEqual({ cancelled: false, refunded: 0 });
      expect(await quota.usage('g1', 'u1', T0 + 1)).toMatchObject({ usedToday: 2, lastAcceptedAt: T0 + 1 });
      expect(await quota.guildUsage('g1', T0 + 1)).toBe(2);
    });

    it('gives back only the bonus part of a reservation made on a day that has passed', async () => {
      await quota.adjustBonus('g1', 'u1', 2);
      const limits = quotaLimits({ dailyAllowance: 2 });
      const yesterday = granted(await quota.reserve(reserveInput({ limits, credits: 4 })));
      const T1 = T0 + DAY_MS;
      granted(await quota.reserve(reserveInput({ limits, credits: 1, now: T1 })));
      expect(await quota.cancel('g1', yesterday.id, T1)).toEqual({ cancelled: true, refunded: 4 });
      expect(await quota.usage('g1', 'u1', T1)).toMatchObject({ usedToday: 1, bonus: 2, lastAcceptedAt: T1 });
      expect(await quota.guildUsage('g1', T1)).toBe(1);
    });

    it('rejects malformed input with an error', async () => {
      await expect(quota.cancel('', 'x', T0)).rejects.toThrow(/guild id/);
      await expect(quota.cancel('g1', '', T0)).rejects.toThrow(/reservation id/);
      await expect(quota.cancel('g1', 'x', -1)).rejects.toThrow(/time/);
    });
  });
}
