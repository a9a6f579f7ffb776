import type Keyv from 'keyv';
import { z } from 'zod';
import type { Logger } from '../../logger.js';
import type { KeyedMutex } from '../storage/keyed-mutex.js';
import {
  RESERVATION_RETENTION_MS,
  STATS_TTL_MS,
  decideReserve,
  planRefund,
  validateId,
  validateInteger,
  validateReservationId,
  validateReserveInput,
  validateStatsDeltas,
  validateTime,
  type GuildState,
  type MemberState,
} from './quota-rules.js';
import {
  dayOf,
  type QuotaStore,
  type Reservation,
  type ReserveInput,
  type ReserveResult,
  type SettleResult,
  type UsageSnapshot,
} from './quota-store.js';

/**
 * QuotaStore on a keyv (memory or SQLite) for ONE process: every read-check-write runs under an in-process mutex
 * keyed by guild (the server cap spans its members). Two processes writing the same SQLite file would overspend:
 * use Redis for that.
 *
 * Records are versioned (`v`) and parsed with zod on the way out; one that does not parse (an older version, garbage)
 * is logged and treated as absent, i.e. reset.
 *
 * A crash half-way loses credits rather than minting them: reserve writes the member and server totals and the
 * reservation record in one commit (one statement on SQLite); settle's commit deletes the reservation record before
 * it gives anything back. Each operation waits for one commit while it holds its server's lock.
 */

const int = z.number().int();
const memberRecord = z.object({
  v: z.literal(1),
  day: int,
  used: int.nonnegative(),
  bonus: int.nonnegative(),
  lastAcceptedAt: z.number().nullable(),
});
const guildRecord = z.object({ v: z.literal(1), day: int, used: int.nonnegative() });
const reservationRecord = z.object({
  v: z.literal(1),
  id: z.string(),
  guildId: z.string(),
  userId: z.string(),
  credits: int.positive(),
  fromDaily: int.nonnegative(),
  fromBonus: int.nonnegative(),
  day: int,
  createdAt: z.number(),
  expiresAt: z.number(),
});
const openEntry = z.object({ guildId: z.string(), id: z.string(), expiresAt: z.number() });
const openIndexRecord = z.object({ v: z.literal(1), open: z.array(openEntry) });
const statsRecord = z.object({ v: z.literal(1), counts: z.record(z.string(), z.number()) });

type OpenEntry = z.infer<typeof openEntry>;

/** keyv keys (the keyv adds its namespace). Ids are validated: no ':' in guild or user ids. */
export const localQuotaKeys = {
  member: (guildId: string, userId: string) => `quota:member:${guildId}:${userId}`,
  guild: (guildId: string) => `quota:guild:${guildId}`,
  reservation: (guildId: string, id: string) => `quota:reservation:${guildId}:${id}`,
  /** Open reservations and their expiresAt, so the sweeper never scans the whole store. */
  openIndex: 'quota:open',
  stats: (guildId: string, day: number) => `quota:stats:${guildId}:${day}`,
} as const;

/** Lock names cannot collide with the keys callers pass to Storage.withLock. */
const locks = {
  guild: (guildId: string) => `\u0000quota:guild:${guildId}`,
  openIndex: '\u0000quota:open',
  stats: (guildId: string, day: number) => `\u0000quota:stats:${guildId}:${day}`,
} as const;

const OPEN_INDEX_SAVE_INTERVAL_MS = 250;

const openKey = (guildId: string, id: string) => `${guildId}/${id}`;

const NOTHING_SETTLED: SettleResult = { settled: false, committed: 0, refunded: 0 };

export class LocalQuotaStore implements QuotaStore {
  readonly #kv: Keyv;
  readonly #mutex: KeyedMutex;
  readonly #logger: Logger;
  /**
   * Open reservations, kept in memory (one process owns a local store) and persisted off the hot path: rewriting a
   * list of every open reservation inside each reserve and settle made SQLite the bottleneck.
   */
  #open: Map<string, OpenEntry> | undefined;
  #loadingOpen: Promise<Map<string, OpenEntry>> | undefined;
  #persisting: Promise<void> | undefined;
  #persistAgain = false;

  constructor(deps: { kv: Keyv; mutex: KeyedMutex; logger: Logger }) {
    this.#kv = deps.kv;
    this.#mutex = deps.mutex;
    this.#logger = deps.logger;
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    validateReserveInput(input);
    const { guildId, userId, reservationId, now, credits, expiresAt } = input;
    return this.#mutex.run(locks.guild(guildId), async () => {
      const reservationKey = localQuotaKeys.reservation(guildId, reservationId);
      // Every unsettled reservation is in the open index (kept in memory): no read of the store for this check.
      const [open, member, guild] = await Promise.all([
        this.#openMap(),
        this.#readMember(guildId, userId),
        this.#readGuild(guildId),
      ]);
      if (open.has(openKey(guildId, reservationId))) {
        throw new Error(`Reservation ${reservationId} already exists in guild ${guildId}`);
      }
      const decision = decideReserve(member, guild, input);
      if (!decision.ok) return decision.result;

      const reservation: Reservation = {
        id: reservationId,
        guildId,
        userId,
        credits,
        fromDaily: decision.fromDaily,
        fromBonus: decision.fromBonus,
        day: dayOf(now),
        createdAt: now,
        expiresAt,
      };
      open.set(openKey(guildId, reservationId), { guildId, id: reservationId, expiresAt });
      this.#persistOpen();
      // One round trip for the three writes: the guild lock already keeps them from interleaving with others.
      await Promise.all([
        this.#writeMember(guildId, userId, decision.member),
        this.#writeGuild(guildId, decision.guild),
        this.#kv.set(
          reservationKey,
          { v: 1, ...reservation } satisfies z.infer<typeof reservationRecord>,
          Math.max(0, expiresAt - now) + RESERVATION_RETENTION_MS,
        ),
      ]);
      return {
        ok: true,
        reservation,
        remainingToday: Math.max(0, input.limits.dailyAllowance - decision.member.used),
        bonus: decision.member.bonus,
      };
    });
  }

  async settle(guildId: string, reservationId: string, delivered: number, now: number): Promise<SettleResult> {
    validateId(guildId, 'guild id');
    validateReservationId(reservationId);
    validateInteger(delivered, 'delivered credits');
    validateTime(now);
    return this.#mutex.run(locks.guild(guildId), async () => {
      const result = await this.#settleLocked(guildId, reservationId, delivered, now);
      // Always, so an index entry left behind by a crash is cleaned up by the sweeper's settle.
      if ((await this.#openMap()).delete(openKey(guildId, reservationId))) this.#persistOpen();
      return result;
    });
  }

  async #settleLocked(guildId: string, reservationId: string, delivered: number, now: number): Promise<SettleResult> {
    const key = localQuotaKeys.reservation(guildId, reservationId);
    const raw: unknown = await this.#kv.get(key);
    if (raw === undefined) return NOTHING_SETTLED;
    const parsed = reservationRecord.safeParse(raw);
    if (!parsed.success) {
      await this.#kv.delete(key);
      this.#logger.warn({ key, issues: parsed.error.issues }, 'dropped an unreadable quota reservation record');
      return NOTHING_SETTLED;
    }
    const reservation = parsed.data;
    const plan = planRefund(reservation, delivered, now);
    const writes: Array<Promise<unknown>> = [];
    if (plan.refunded > 0) {
      const [member, guild] = await Promise.all([this.#readMember(guildId, reservation.userId), this.#readGuild(guildId)]);
      const current = member ?? { day: reservation.day, used: 0, bonus: 0, lastAcceptedAt: undefined };
      const dailyBack = plan.sameDay && current.day === reservation.day ? plan.toDaily : 0;
      writes.push(
        this.#writeMember(guildId, reservation.userId, {
          ...current,
          used: Math.max(0, current.used - dailyBack),
          bonus: current.bonus + plan.toBonus,
        }),
      );
      if (plan.sameDay && guild !== undefined && guild.day === reservation.day) {
        writes.push(this.#writeGuild(guildId, { day: guild.day, used: Math.max(0, guild.used - plan.refunded) }));
      }
    }
    // One commit: the SQLite store runs the delete before the updates, so a crash between them loses the refund
    // instead of ever giving it twice.
    await Promise.all([this.#kv.delete(key), ...writes]);
    return { settled: true, committed: plan.committed, refunded: plan.refunded };
  }

  async usage(guildId: string, userId: string, now: number): Promise<UsageSnapshot> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateTime(now);
    const today = dayOf(now);
    const member = await this.#readMember(guildId, userId);
    return {
      day: today,
      usedToday: member !== undefined && member.day === today ? member.used : 0,
      bonus: member?.bonus ?? 0,
      lastAcceptedAt: member?.lastAcceptedAt,
    };
  }

  async guildUsage(guildId: string, now: number): Promise<number> {
    validateId(guildId, 'guild id');
    validateTime(now);
    const guild = await this.#readGuild(guildId);
    return guild !== undefined && guild.day === dayOf(now) ? guild.used : 0;
  }

  async adjustBonus(guildId: string, userId: string, delta: number): Promise<number> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateInteger(delta, 'bonus delta');
    return this.#mutex.run(locks.guild(guildId), async () => {
      const member = (await this.#readMember(guildId, userId)) ?? { day: 0, used: 0, bonus: 0, lastAcceptedAt: undefined };
      const bonus = Math.max(0, member.bonus + delta);
      await this.#writeMember(guildId, userId, { ...member, bonus });
      return bonus;
    });
  }

  async resetUser(guildId: string, userId: string, now: number): Promise<void> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateTime(now);
    await this.#mutex.run(locks.guild(guildId), async () => {
      const member = await this.#readMember(guildId, userId);
      await this.#writeMember(guildId, userId, {
        day: dayOf(now),
        used: 0,
        bonus: member?.bonus ?? 0,
        lastAcceptedAt: undefined,
      });
    });
  }

  async expiredReservations(now: number, limit: number): Promise<Array<{ guildId: string; id: string }>> {
    validateTime(now);
    validateInteger(limit, 'limit');
    if (limit <= 0) return [];
    const open = await this.#readOpenIndex();
    return open
      .filter((e) => e.expiresAt < now)
      .sort((a, b) => a.expiresAt - b.expiresAt)
      .slice(0, limit)
      .map(({ guildId, id }) => ({ guildId, id }));
  }

  async incrementStats(guildId: string, day: number, deltas: Record<string, number>): Promise<void> {
    validateId(guildId, 'guild id');
    validateInteger(day, 'day');
    validateStatsDeltas(deltas);
    if (Object.keys(deltas).length === 0) return;
    const key = localQuotaKeys.stats(guildId, day);
    await this.#mutex.run(locks.stats(guildId, day), async () => {
      const counts = await this.#readStats(key);
      for (const [name, delta] of Object.entries(deltas)) counts[name] = (counts[name] ?? 0) + delta;
      await this.#kv.set(key, { v: 1, counts } satisfies z.infer<typeof statsRecord>, STATS_TTL_MS);
    });
  }

  async stats(guildId: string, day: number): Promise<Record<string, number>> {
    validateId(guildId, 'guild id');
    validateInteger(day, 'day');
    return this.#readStats(localQuotaKeys.stats(guildId, day));
  }

  /** Reads and validates one record; anything unreadable is logged and treated as absent (reset). */
  async #read<T>(key: string, schema: z.ZodType<T>): Promise<T | undefined> {
    const raw: unknown = await this.#kv.get(key);
    if (raw === undefined) return undefined;
    const parsed = schema.safeParse(raw);
    if (parsed.success) return parsed.data;
    this.#logger.warn({ key, issues: parsed.error.issues }, 'reset an unreadable quota record');
    return undefined;
  }

  async #readMember(guildId: string, userId: string): Promise<MemberState | undefined> {
    const record = await this.#read(localQuotaKeys.member(guildId, userId), memberRecord);
    if (record === undefined) return undefined;
    return { day: record.day, used: record.used, bonus: record.bonus, lastAcceptedAt: record.lastAcceptedAt ?? undefined };
  }

  async #writeMember(guildId: string, userId: string, state: MemberState): Promise<void> {
    const record: z.infer<typeof memberRecord> = {
      v: 1,
      day: state.day,
      used: state.used,
      bonus: state.bonus,
      lastAcceptedAt: state.lastAcceptedAt ?? null,
    };
    await this.#kv.set(localQuotaKeys.member(guildId, userId), record);
  }

  async #readGuild(guildId: string): Promise<GuildState | undefined> {
    const record = await this.#read(localQuotaKeys.guild(guildId), guildRecord);
    return record === undefined ? undefined : { day: record.day, used: record.used };
  }

  async #writeGuild(guildId: string, state: GuildState): Promise<void> {
    await this.#kv.set(localQuotaKeys.guild(guildId), { v: 1, ...state } satisfies z.infer<typeof guildRecord>);
  }

  async #readOpenIndex(): Promise<OpenEntry[]> {
    return [...(await this.#openMap()).values()];
  }

  async #openMap(): Promise<Map<string, OpenEntry>> {
    if (this.#open) return this.#open;
    this.#loadingOpen ??= this.#read(localQuotaKeys.openIndex, openIndexRecord).then((record) => {
      this.#open = new Map((record?.open ?? []).map((e) => [openKey(e.guildId, e.id), e]));
      return this.#open;
    });
    return this.#loadingOpen;
  }

  /**
   * Writes the index in the background, at most once per OPEN_INDEX_SAVE_INTERVAL_MS, coalescing changes made
   * meanwhile: the list is rewritten whole, so saving it after every change cost more than the reservations did.
   * It is only a safety net: a job's reservation is also in the journal, which recovery settles first.
   */
  #persistOpen(): void {
    if (this.#persisting) {
      this.#persistAgain = true;
      return;
    }
    const open = [...(this.#open?.values() ?? [])];
    this.#persisting = this.#kv
      .set(localQuotaKeys.openIndex, { v: 1, open } satisfies z.infer<typeof openIndexRecord>)
      .then(
        () => undefined,
        (error: unknown) => this.#logger.warn({ err: error }, 'could not save the index of open reservations'),
      )
      .then(() => new Promise<void>((resolve) => setTimeout(resolve, OPEN_INDEX_SAVE_INTERVAL_MS).unref()))
      .finally(() => {
        this.#persisting = undefined;
        if (this.#persistAgain) {
          this.#persistAgain = false;
          this.#persistOpen();
        }
      });
  }

  async #readStats(key: string): Promise<Record<string, number>> {
    return { ...(await this.#read(key, statsRecord))?.counts };
  }
}
