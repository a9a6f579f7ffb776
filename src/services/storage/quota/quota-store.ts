/**
 * Credits and cooldowns: the only state that many requests change at once. Every backend implements this with a
 * real atomic section (an in-process keyed mutex for memory/SQLite, one Lua script for Redis), and one contract
 * test suite holds them all to the same behaviour.
 */

export const DAY_MS = 86_400_000;

/** Fixed UTC days: easy to explain ("resets at midnight UTC"), no per-user windows to track. */
export function dayOf(epochMs: number): number {
  return Math.floor(epochMs / DAY_MS);
}

export function startOfNextDay(epochMs: number): number {
  return (dayOf(epochMs) + 1) * DAY_MS;
}

/** What applies to this member right now, resolved by the policy from server settings, roles and overrides. */
export interface QuotaLimits {
  /** Credits per UTC day from the allowance (bonus credits come on top). */
  dailyAllowance: number;
  /** Minimum time between two accepted requests; 0 = no cooldown (e.g. exempt moderators). */
  cooldownMs: number;
  /** Credits the whole server may spend per UTC day; 0 = no cap. */
  guildDailyCap: number;
}

export interface ReserveInput {
  /** Unique per request (the interaction id): makes settle/refund idempotent. */
  reservationId: string;
  guildId: string;
  userId: string;
  credits: number;
  now: number;
  limits: QuotaLimits;
  /** After this the request can no longer be delivered: the sweeper refunds a reservation still open then. */
  expiresAt: number;
}

export interface Reservation {
  id: string;
  guildId: string;
  userId: string;
  credits: number;
  /** How the credits were taken, so a refund puts each back where it came from. */
  fromDaily: number;
  fromBonus: number;
  day: number;
  createdAt: number;
  expiresAt: number;
}

export type ReserveResult =
  | { ok: true; reservation: Reservation; remainingToday: number; bonus: number }
  | { ok: false; reason: 'cooldown'; retryAt: number }
  | { ok: false; reason: 'allowance'; available: number; retryAt: number }
  | { ok: false; reason: 'guild_cap'; available: number; retryAt: number };

export interface SettleResult {
  /** false when the reservation was already settled (or never existed): nothing changed. */
  settled: boolean;
  committed: number;
  refunded: number;
}

export interface CancelResult {
  /** false when there was nothing to undo (never made, already settled or cancelled): nothing changed. */
  cancelled: boolean;
  refunded: number;
}

export interface UsageSnapshot {
  day: number;
  /** Daily-allowance credits used today (bonus spending not included). */
  usedToday: number;
  bonus: number;
  /** When the current cooldown started (last accepted request), if any. */
  lastAcceptedAt: number | undefined;
}

export interface QuotaStore {
  /**
   * Atomically: refuse if in cooldown, if `credits` exceed what remains (daily allowance left today + bonus), or if
   * the server cap would be passed; otherwise take the credits (daily allowance first, then bonus), start the
   * cooldown, add to the server's daily total, and record the reservation. Refusals change nothing.
   */
  reserve(input: ReserveInput): Promise<ReserveResult>;
  /**
   * Commits `delivered` credits of the reservation and refunds the rest. Credits were spent daily-first, so the
   * committed ones count as daily and a refund restores bonus first (up to fromBonus), then daily. The daily part of
   * a refund for a day that has passed is dropped (the new day has a fresh allowance), and so is the server total's;
   * bonus is always restored. Idempotent: the reservation is removed first, so a second call changes nothing.
   */
  settle(guildId: string, reservationId: string, delivered: number, now: number): Promise<SettleResult>;
  /**
   * Undoes a reservation whose requester was told it failed (the store answered too late, or with an error): all its
   * credits back as in a settle delivering nothing, and the cooldown it started ended, unless a later reservation of
   * the member has started one since. Call it once the reserve call has settled (a reserve of this process cannot
   * change anything after that). Idempotent. On Redis, where a reserve given up by its caller can still reach the
   * server, a reserve with this id that arrives afterwards is refused for a while.
   */
  cancel(guildId: string, reservationId: string, now: number): Promise<CancelResult>;
  usage(guildId: string, userId: string, now: number): Promise<UsageSnapshot>;
  /** Server-wide credits spent today (committed + reserved). */
  guildUsage(guildId: string, now: number): Promise<number>;
  /** Adds (or with a negative delta, removes) bonus credits; never below 0. Returns the new balance. */
  adjustBonus(guildId: string, userId: string, delta: number): Promise<number>;
  /** Clears today's usage and the cooldown of one member. */
  resetUser(guildId: string, userId: string, now: number): Promise<void>;
  /** Reservations whose expiresAt has passed and are still open (for the refund sweeper). */
  expiredReservations(now: number, limit: number): Promise<Array<{ guildId: string; id: string }>>;
  /** Atomic counters per server per UTC day (images, refusals by reason, refunds, per-user images). */
  incrementStats(guildId: string, day: number, deltas: Record<string, number>): Promise<void>;
  stats(guildId: string, day: number): Promise<Record<string, number>>;
}
