import { z } from 'zod';
import { DAY_MS, dayOf, startOfNextDay, type ReserveInput, type ReserveResult, type Reservation } from './quota-store.js';

/**
 * The quota rules as pure functions, shared by every backend that runs them in TypeScript (memory, SQLite), plus the
 * input checks every backend applies. The Redis backend runs the same rules in Lua (redis-scripts.ts); the contract
 * test suite holds both to the same behaviour.
 */

/** Per-server-per-day stats are kept this long, then expire. */
export const STATS_TTL_MS = 10 * DAY_MS;
/** A reservation record outlives its expiresAt by this much, for the sweeper to refund it; then it may vanish. */
export const RESERVATION_RETENTION_MS = 10 * DAY_MS;

/**
 * Guild and user ids become parts of storage keys (and the Redis hash tag), so they may not contain separators or
 * braces. Discord snowflakes are digits.
 */
const idSchema = z.string().regex(/^[\w.-]{1,100}$/, 'must be 1-100 letters, digits, "_", "-" or "."');
const reservationIdSchema = z.string().min(1).max(200);
const epochMs = z.number().int().nonnegative();
const count = z.number().int().nonnegative();
// Built once: building a zod schema costs far more than running it, and these run on every reservation.
const safeInteger = z.number().int().min(Number.MIN_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const statsDeltasSchema = z.record(z.string().min(1).max(200), z.number().int().min(-1e12).max(1e12));

const reserveInputSchema = z.object({
  reservationId: reservationIdSchema,
  guildId: idSchema,
  userId: idSchema,
  credits: z.number().int().positive(),
  now: epochMs,
  limits: z.object({ dailyAllowance: count, cooldownMs: count, guildDailyCap: count }),
  expiresAt: epochMs,
});

function check<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) throw new Error(`Invalid ${what}: ${z.prettifyError(result.error).replaceAll('\n', ' ')}`);
  return result.data;
}

export function validateReserveInput(input: ReserveInput): void {
  check(reserveInputSchema, input, 'quota reservation');
}

export function validateId(value: string, what: string): void {
  check(idSchema, value, what);
}

export function validateReservationId(value: string): void {
  check(reservationIdSchema, value, 'reservation id');
}

export function validateTime(value: number, what = 'time'): void {
  check(epochMs, value, what);
}

export function validateInteger(value: number, what: string): void {
  check(safeInteger, value, what);
}

export function validateStatsDeltas(deltas: Record<string, number>): void {
  check(statsDeltasSchema, deltas, 'stats deltas');
}

export interface MemberState {
  /** The UTC day `used` counts for. */
  day: number;
  used: number;
  bonus: number;
  lastAcceptedAt: number | undefined;
}

export interface GuildState {
  day: number;
  used: number;
}

export type ReserveDecision =
  | { ok: false; result: Extract<ReserveResult, { ok: false }> }
  | { ok: true; fromDaily: number; fromBonus: number; member: MemberState; guild: GuildState };

/** What QuotaStore.reserve decides, given the member's and the server's current records (absent = fresh). */
export function decideReserve(
  member: MemberState | undefined,
  guild: GuildState | undefined,
  input: ReserveInput,
): ReserveDecision {
  const { now, credits, limits } = input;
  const today = dayOf(now);
  const usedToday = member !== undefined && member.day === today ? member.used : 0;
  const bonus = member?.bonus ?? 0;
  const last = member?.lastAcceptedAt;

  if (limits.cooldownMs > 0 && last !== undefined && last + limits.cooldownMs > now) {
    return { ok: false, result: { ok: false, reason: 'cooldown', retryAt: last + limits.cooldownMs } };
  }
  const dailyLeft = Math.max(0, limits.dailyAllowance - usedToday);
  const available = dailyLeft + bonus;
  if (credits > available) {
    return { ok: false, result: { ok: false, reason: 'allowance', available, retryAt: startOfNextDay(now) } };
  }
  const guildUsed = guild !== undefined && guild.day === today ? guild.used : 0;
  if (limits.guildDailyCap > 0 && guildUsed + credits > limits.guildDailyCap) {
    return {
      ok: false,
      result: {
        ok: false,
        reason: 'guild_cap',
        available: Math.max(0, limits.guildDailyCap - guildUsed),
        retryAt: startOfNextDay(now),
      },
    };
  }
  const fromDaily = Math.min(credits, dailyLeft);
  const fromBonus = credits - fromDaily;
  return {
    ok: true,
    fromDaily,
    fromBonus,
    member: { day: today, used: usedToday + fromDaily, bonus: bonus - fromBonus, lastAcceptedAt: now },
    guild: { day: today, used: guildUsed + credits },
  };
}

export interface RefundPlan {
  committed: number;
  refunded: number;
  /** Goes back to the member's bonus balance (always). */
  toBonus: number;
  /** Comes off the member's usage for the reservation's day, if that day is still today. */
  toDaily: number;
  /** Whether the reservation's day is still today (else the daily and server-total parts are dropped). */
  sameDay: boolean;
}

/** Committed credits count as daily (they were spent daily-first), so a refund restores bonus first. */
export function planRefund(reservation: Reservation, delivered: number, now: number): RefundPlan {
  const committed = Math.min(Math.max(delivered, 0), reservation.credits);
  const refunded = reservation.credits - committed;
  const toBonus = Math.min(refunded, reservation.fromBonus);
  return { committed, refunded, toBonus, toDaily: refunded - toBonus, sameDay: reservation.day === dayOf(now) };
}
