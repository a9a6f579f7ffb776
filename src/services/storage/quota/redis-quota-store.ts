import { z } from 'zod';
import type { Logger } from '../../../logger.js';
import {
  RESERVATION_RETENTION_MS,
  STATS_TTL_MS,
  validateId,
  validateInteger,
  validateReservationId,
  validateReserveInput,
  validateStatsDeltas,
  validateTime,
} from './quota-rules.js';
import {
  dayOf,
  startOfNextDay,
  type CancelResult,
  type QuotaStore,
  type ReserveInput,
  type ReserveResult,
  type SettleResult,
  type UsageSnapshot,
} from './quota-store.js';
import {
  ADJUST_BONUS,
  CANCEL,
  INCREMENT_STATS,
  RESERVE,
  RESET_USER,
  SETTLE,
  runLua,
  type LuaScript,
} from './redis-scripts.js';

/** The one thing this store needs from a node-redis client (the connection the Storage's keyv uses). */
export interface RedisCommandSender {
  sendCommand(args: string[]): Promise<unknown>;
}

/**
 * Redis keys, under the storage namespace. Everything about one server carries the hash tag `{g:<guildId>}` so a
 * script's keys share a Cluster slot.
 *
 * The open-reservation index is one global sorted set (score = expiresAt, member = JSON [guildId, id]). It sits in
 * its own slot, so it is never touched from inside a guild's script: reserve adds the entry BEFORE running its
 * script (so every open reservation is indexed) and takes it out again on a refusal; settle removes it AFTER its
 * script. An entry left behind by a crash or an outage is harmless: the sweeper's settle finds no reservation,
 * changes nothing, and removes the entry.
 */
export function redisQuotaKeys(prefix: string) {
  const tag = (guildId: string) => `${prefix}:{g:${guildId}}`;
  return {
    member: (guildId: string, userId: string) => `${tag(guildId)}:m:${userId}`,
    memberPrefix: (guildId: string) => `${tag(guildId)}:m:`,
    guild: (guildId: string) => `${tag(guildId)}:total`,
    reservation: (guildId: string, id: string) => `${tag(guildId)}:r:${id}`,
    stats: (guildId: string, day: number) => `${tag(guildId)}:stats:${day}`,
    openIndex: `${prefix}:quota:open`,
  };
}

/**
 * How long a cancelled reservation id stays refused: far longer than a reserve given up by its caller can stay on its
 * way to the server. One arriving even later is granted with an expiresAt already passed, and the sweeper refunds it.
 */
export const CANCEL_TOMBSTONE_TTL_MS = 15 * 60_000;

const int = z.coerce.number().int();
const reserveReply = z.union([
  z.tuple([z.literal('ok'), int, int, int, int]),
  z.tuple([z.literal('cooldown'), int]),
  z.tuple([z.literal('allowance'), int]),
  z.tuple([z.literal('guild_cap'), int]),
  z.tuple([z.literal('duplicate')]),
  z.tuple([z.literal('cancelled')]),
]);
const settleReply = z.tuple([int, int, int]);
const cancelReply = z.tuple([int, int]);
const hmgetReply = z.array(z.string().nullable());
const flatHashReply = z.array(z.string());
const stringList = z.array(z.string());
const indexMember = z.tuple([z.string(), z.string()]);

/** A missing or unreadable number counts as 0 / absent, as in the scripts. */
function num(value: string | null | undefined): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const n = Number(value);
  return Number.isFinite(n) ? n : undefined;
}

export class RedisQuotaStore implements QuotaStore {
  readonly #client: RedisCommandSender;
  readonly #keys: ReturnType<typeof redisQuotaKeys>;
  readonly #logger: Logger;

  constructor(deps: { client: RedisCommandSender; prefix: string; logger: Logger }) {
    this.#client = deps.client;
    this.#keys = redisQuotaKeys(deps.prefix);
    this.#logger = deps.logger;
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    validateReserveInput(input);
    const { guildId, userId, reservationId, now, credits, limits, expiresAt } = input;
    const entry = JSON.stringify([guildId, reservationId]);
    // Indexed first: a reservation can then never exist without its index entry (see redisQuotaKeys).
    await this.#client.sendCommand(['ZADD', this.#keys.openIndex, 'NX', String(expiresAt), entry]);
    const reply = reserveReply.parse(
      await this.#run(
        RESERVE,
        [this.#keys.member(guildId, userId), this.#keys.guild(guildId), this.#keys.reservation(guildId, reservationId)],
        [
          String(now),
          String(dayOf(now)),
          String(credits),
          String(limits.dailyAllowance),
          String(limits.cooldownMs),
          String(limits.guildDailyCap),
          String(expiresAt),
          userId,
          String(Math.max(0, expiresAt - now) + RESERVATION_RETENTION_MS),
          String(startOfNextDay(now) - now),
        ],
      ),
    );
    switch (reply[0]) {
      case 'ok': {
        const [, fromDaily, fromBonus, usedAfter, bonusAfter] = reply;
        return {
          ok: true,
          reservation: {
            id: reservationId,
            guildId,
            userId,
            credits,
            fromDaily,
            fromBonus,
            day: dayOf(now),
            createdAt: now,
            expiresAt,
          },
          remainingToday: Math.max(0, limits.dailyAllowance - usedAfter),
          bonus: bonusAfter,
        };
      }
      case 'duplicate':
        // The index entry belongs to the existing reservation: leave it.
        throw new Error(`Reservation ${reservationId} already exists in guild ${guildId}`);
      case 'cancelled':
        await this.#unindex(entry);
        throw new Error(`Reservation ${reservationId} was cancelled in guild ${guildId}`);
      case 'cooldown':
        await this.#unindex(entry);
        return { ok: false, reason: 'cooldown', retryAt: reply[1] };
      case 'allowance':
        await this.#unindex(entry);
        return { ok: false, reason: 'allowance', available: reply[1], retryAt: startOfNextDay(now) };
      case 'guild_cap':
        await this.#unindex(entry);
        return { ok: false, reason: 'guild_cap', available: reply[1], retryAt: startOfNextDay(now) };
    }
  }

  async settle(guildId: string, reservationId: string, delivered: number, now: number): Promise<SettleResult> {
    validateId(guildId, 'guild id');
    validateReservationId(reservationId);
    validateInteger(delivered, 'delivered credits');
    validateTime(now);
    const [settled, committed, refunded] = settleReply.parse(
      await this.#run(
        SETTLE,
        [this.#keys.reservation(guildId, reservationId), this.#keys.guild(guildId)],
        [this.#keys.memberPrefix(guildId), String(delivered), String(dayOf(now))],
      ),
    );
    await this.#unindex(JSON.stringify([guildId, reservationId]));
    return { settled: settled === 1, committed, refunded };
  }

  async cancel(guildId: string, reservationId: string, now: number): Promise<CancelResult> {
    validateId(guildId, 'guild id');
    validateReservationId(reservationId);
    validateTime(now);
    const [cancelled, refunded] = cancelReply.parse(
      await this.#run(
        CANCEL,
        [this.#keys.reservation(guildId, reservationId), this.#keys.guild(guildId)],
        [this.#keys.memberPrefix(guildId), String(dayOf(now)), String(CANCEL_TOMBSTONE_TTL_MS)],
      ),
    );
    await this.#unindex(JSON.stringify([guildId, reservationId]));
    return { cancelled: cancelled === 1, refunded };
  }

  async usage(guildId: string, userId: string, now: number): Promise<UsageSnapshot> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateTime(now);
    const [day, used, bonus, last] = hmgetReply.parse(
      await this.#client.sendCommand(['HMGET', this.#keys.member(guildId, userId), 'day', 'used', 'bonus', 'last']),
    );
    const today = dayOf(now);
    return {
      day: today,
      usedToday: num(day) === today ? Math.max(0, num(used) ?? 0) : 0,
      bonus: Math.max(0, num(bonus) ?? 0),
      lastAcceptedAt: num(last),
    };
  }

  async guildUsage(guildId: string, now: number): Promise<number> {
    validateId(guildId, 'guild id');
    validateTime(now);
    const [day, used] = hmgetReply.parse(await this.#client.sendCommand(['HMGET', this.#keys.guild(guildId), 'day', 'used']));
    return num(day) === dayOf(now) ? Math.max(0, num(used) ?? 0) : 0;
  }

  async adjustBonus(guildId: string, userId: string, delta: number): Promise<number> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateInteger(delta, 'bonus delta');
    return int.parse(await this.#run(ADJUST_BONUS, [this.#keys.member(guildId, userId)], [String(delta)]));
  }

  async resetUser(guildId: string, userId: string, now: number): Promise<void> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateTime(now);
    await this.#run(RESET_USER, [this.#keys.member(guildId, userId)], [String(dayOf(now))]);
  }

  async expiredReservations(now: number, limit: number): Promise<Array<{ guildId: string; id: string }>> {
    validateTime(now);
    validateInteger(limit, 'limit');
    if (limit <= 0) return [];
    const members = stringList.parse(
      await this.#client.sendCommand([
        'ZRANGE',
        this.#keys.openIndex,
        '-inf',
        `(${now}`,
        'BYSCORE',
        'LIMIT',
        '0',
        String(limit),
      ]),
    );
    const expired: Array<{ guildId: string; id: string }> = [];
    for (const member of members) {
      const parsed = indexMember.safeParse(safeJson(member));
      if (parsed.success) {
        expired.push({ guildId: parsed.data[0], id: parsed.data[1] });
      } else {
        this.#logger.warn({ member }, 'removed an unreadable entry from the open-reservation index');
        await this.#unindex(member);
      }
    }
    return expired;
  }

  async incrementStats(guildId: string, day: number, deltas: Record<string, number>): Promise<void> {
    validateId(guildId, 'guild id');
    validateInteger(day, 'day');
    validateStatsDeltas(deltas);
    const pairs = Object.entries(deltas).flatMap(([field, delta]) => [field, String(delta)]);
    if (pairs.length === 0) return;
    await this.#run(INCREMENT_STATS, [this.#keys.stats(guildId, day)], [String(STATS_TTL_MS), ...pairs]);
  }

  async stats(guildId: string, day: number): Promise<Record<string, number>> {
    validateId(guildId, 'guild id');
    validateInteger(day, 'day');
    const flat = flatHashReply.parse(await this.#client.sendCommand(['HGETALL', this.#keys.stats(guildId, day)]));
    const counts: Record<string, number> = {};
    for (let i = 0; i + 1 < flat.length; i += 2) {
      const value = num(flat[i + 1]);
      const field = flat[i];
      if (field !== undefined && value !== undefined) counts[field] = value;
    }
    return counts;
  }

  #run(script: LuaScript, keys: string[], args: string[]): Promise<unknown> {
    return runLua(this.#client, script, keys, args);
  }

  /** Best effort: a leftover entry is cleaned up by the sweeper, so a failure here must not fail the operation. */
  async #unindex(entry: string): Promise<void> {
    try {
      await this.#client.sendCommand(['ZREM', this.#keys.openIndex, entry]);
    } catch (error) {
      this.#logger.warn({ err: error, entry }, 'could not remove an entry from the open-reservation index');
    }
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}
