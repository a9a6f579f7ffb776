import type Keyv from 'keyv';
import { z } from 'zod';
import type { Logger } from '../../../logger.js';
import type { KeyedMutex } from '../keyed-mutex.js';
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
 * Nothing is half-stored: reserve writes the member and server totals and the reservation record in one commit (one
 * transaction on SQLite), and settle deletes the reservation record in the same commit as the refund. The reservation
 * records are the index of open reservations: read once by one scan when the store is first used, then kept in
 * memory, so a reservation stored before a crash is found by the next start's refund sweep.
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
const statsRecord = z.object({ v: z.literal(1), counts: z.record(z.string(), z.number()) });

interface OpenEntry {
  guildId: string;
  id: string;
  expiresAt: number;
}

/**
 * The live (not expired) records whose key, without the keyv namespace, starts with `prefix`: their stored values,
 * read in one pass over that key range rather than one read per key.
 */
export type ListRecords = (prefix: string) => Promise<unknown[]>;

/** keyv keys (the keyv adds its namespace). Ids are validated: no ':' in guild or user ids. */
export const localQuotaKeys = {
  member: (guildId: string, userId: string) => `quota:member:${guildId}:${userId}`,
  guild: (guildId: string) => `quota:guild:${guildId}`,
  reservation: (guildId: string, id: string) => `quota:reservation:${guildId}:${id}`,
  /** Every reservation record's key starts with this: the scan that finds the open ones at start-up. */
  reservations: 'quota:reservation:',
  stats: (guildId: string, day: number) => `quota:stats:${guildId}:${day}`,
} as const;

/** Lock names cannot collide with the keys callers pass to Storage.withLock. */
const locks = {
  guild: (guildId: string) => `\u0000quota:guild:${guildId}`,
} as const;

/** Where versions before the reservation scan kept a list of open reservations; deleted when the scan first runs. */
const LEGACY_OPEN_INDEX_KEY = 'quota:open';
const STATS_SAVE_INTERVAL_MS = 1_000;

const openKey = (guildId: string, id: string) => `${guildId}/${id}`;
const memberKey = (guildId: string, userId: string) => `${guildId}/${userId}`;
/** Records kept in memory at most; the least recently used without a write under way are dropped first. */
const MAX_CACHED_RECORDS = 50_000;

/**
 * Records this process owns, in memory once read or written. A read of a record not in memory loads it once, and a
 * load never overwrites what a write put there meanwhile.
 */
class RecordCache<T> {
  readonly #records = new Map<string, T | undefined>();
  readonly #loading = new Map<string, Promise<T | undefined>>();
  readonly #writes = new Map<string, number>();

  get(key: string): T | undefined {
    return this.#records.get(key);
  }

  has(key: string): boolean {
    return this.#records.has(key);
  }

  async read(key: string, load: () => Promise<T | undefined>): Promise<T | undefined> {
    if (this.#records.has(key)) return this.#records.get(key);
    let loading = this.#loading.get(key);
    if (loading === undefined) {
      loading = load().finally(() => this.#loading.delete(key));
      this.#loading.set(key, loading);
    }
    const loaded = await loading;
    if (!this.#records.has(key)) this.#remember(key, loaded);
    return this.#records.get(key);
  }

  set(key: string, value: T | undefined): void {
    this.#remember(key, value);
  }

  /** Keeps the key in memory until its write is over. */
  writing(key: string, write: Promise<unknown>): Promise<void> {
    this.#writes.set(key, (this.#writes.get(key) ?? 0) + 1);
    return write.then(
      () => this.#written(key),
      (error: unknown) => {
        this.#written(key);
        throw error;
      },
    );
  }

  #written(key: string): void {
    const left = (this.#writes.get(key) ?? 1) - 1;
    if (left > 0) this.#writes.set(key, left);
    else this.#writes.delete(key);
  }

  #remember(key: string, value: T | undefined): void {
    this.#records.delete(key);
    this.#records.set(key, value);
    if (this.#records.size <= MAX_CACHED_RECORDS) return;
    for (const old of this.#records.keys()) {
      if (this.#records.size <= MAX_CACHED_RECORDS) break;
      if (!this.#writes.has(old)) this.#records.delete(old);
    }
  }
}

const NOTHING_SETTLED: SettleResult = { settled: false, committed: 0, refunded: 0 };

export class LocalQuotaStore implements QuotaStore {
  readonly #kv: Keyv;
  readonly #mutex: KeyedMutex;
  readonly #logger: Logger;
  readonly #listRecords: ListRecords;
  /**
   * Open reservations, kept in memory (one process owns a local store): loaded from the reservation records the first
   * time they are needed, then changed with each reserve and settle. Nothing else is stored for them: a list rewritten
   * with every reservation made SQLite the bottleneck, and one saved later lost those made just before a crash.
   */
  #open: Map<string, OpenEntry> | undefined;
  #loadingOpen: Promise<Map<string, OpenEntry>> | undefined;
  /** Statistics counted and not stored yet, and those being stored now, by stats key. */
  #pendingStats = new Map<string, Record<string, number>>();
  #savingStats = new Map<string, Record<string, number>>();
  #statsTimer: NodeJS.Timeout | undefined;
  #statsSave: Promise<void> | undefined;
  #closing = false;
  /**
   * Member and server totals as this process last wrote them (the truth: one process owns a local store). A
   * reservation decides and updates them under its server's lock, then waits for the store outside the lock, so a
   * burst in one server is not one storage round trip per member in a row. A failed write is undone here.
   */
  readonly #members = new RecordCache<MemberState>();
  readonly #guilds = new RecordCache<GuildState>();
  /**
   * Per member, reservations granted in memory and not yet stored, with the lastAcceptedAt each replaced: undoing one
   * that failed must not leave its time, or another failed one's, as the start of the member's cooldown.
   */
  readonly #unstored = new Map<string, Map<string, { at: number; before: number | undefined }>>();

  constructor(deps: { kv: Keyv; mutex: KeyedMutex; logger: Logger; listRecords: ListRecords }) {
    this.#kv = deps.kv;
    this.#mutex = deps.mutex;
    this.#logger = deps.logger;
    this.#listRecords = deps.listRecords;
  }

  async reserve(input: ReserveInput): Promise<ReserveResult> {
    validateReserveInput(input);
    const { guildId, userId, reservationId, now, credits, expiresAt } = input;
    const lock = locks.guild(guildId);
    // Loaded before taking the lock: a member's first request reads the store, and the server's other members must
    // not queue behind that read. Inside the lock these are memory reads (a load never overwrites a newer write).
    await Promise.all([this.#openMap(), this.#readMember(guildId, userId), this.#readGuild(guildId)]);
    const applied = await this.#mutex.run(lock, async () => {
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
      if (!decision.ok) return { result: decision.result };

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
      // One commit for the three writes (the record is also the index entry); memory already holds them for whoever
      // takes the lock next.
      const written = Promise.all([
        this.#writeMember(guildId, userId, decision.member),
        this.#writeGuild(guildId, decision.guild),
        this.#kv.set(
          localQuotaKeys.reservation(guildId, reservationId),
          { v: 1, ...reservation } satisfies z.infer<typeof reservationRecord>,
          Math.max(0, expiresAt - now) + RESERVATION_RETENTION_MS,
        ),
      ]);
      const result: ReserveResult = {
        ok: true,
        reservation,
        remainingToday: Math.max(0, input.limits.dailyAllowance - decision.member.used),
        bonus: decision.member.bonus,
      };
      const mk = memberKey(guildId, userId);
      const unstored = this.#unstored.get(mk) ?? new Map<string, { at: number; before: number | undefined }>();
      unstored.set(reservationId, { at: now, before: member?.lastAcceptedAt });
      this.#unstored.set(mk, unstored);
      return { result, written };
    });
    if (applied.written === undefined || !applied.result.ok) return applied.result;
    const { reservation } = applied.result;
    try {
      await applied.written;
    } catch (error) {
      await this.#undoReserve(reservation);
      throw error;
    }
    this.#forgetUnstored(reservation, false);
    return applied.result;
  }

  /**
   * Removes the reservation from its member's unstored ones, and returns what it replaced. When it failed, a later
   * one that replaced its time now replaces what it replaced; when it was stored, its time stands.
   */
  #forgetUnstored(reservation: Reservation, failed: boolean): { at: number; before: number | undefined } | undefined {
    const mk = memberKey(reservation.guildId, reservation.userId);
    const unstored = this.#unstored.get(mk);
    const entry = unstored?.get(reservation.id);
    unstored?.delete(reservation.id);
    if (unstored?.size === 0) this.#unstored.delete(mk);
    if (failed && entry !== undefined && unstored !== undefined) {
      for (const other of unstored.values()) if (other.before === entry.at) other.before = entry.before;
    }
    return entry;
  }

  /** A reservation whose writes failed was never granted: give back what memory took, and try to store that. */
  async #undoReserve(reservation: Reservation): Promise<void> {
    const { guildId, userId, id } = reservation;
    await this.#mutex.run(locks.guild(guildId), async () => {
      const replaced = this.#forgetUnstored(reservation, true);
      (await this.#openMap()).delete(openKey(guildId, id));
      const writes: Array<Promise<unknown>> = [this.#kv.delete(localQuotaKeys.reservation(guildId, id))];
      const member = this.#members.get(memberKey(guildId, userId));
      if (member !== undefined && member.day === reservation.day) {
        writes.push(
          this.#writeMember(guildId, userId, {
            ...member,
            used: Math.max(0, member.used - reservation.fromDaily),
            bonus: member.bonus + reservation.fromBonus,
            lastAcceptedAt: member.lastAcceptedAt === reservation.createdAt ? replaced?.before : member.lastAcceptedAt,
          }),
        );
      }
      const guild = this.#guilds.get(guildId);
      if (guild !== undefined && guild.day === reservation.day) {
        writes.push(this.#writeGuild(guildId, { day: guild.day, used: Math.max(0, guild.used - reservation.credits) }));
      }
      // Storage is failing: these may fail too; memory is right either way and the next write carries it.
      void Promise.all(writes).catch((error: unknown) =>
        this.#logger.warn({ err: error, reservationId: id }, 'could not store the undoing of a failed reservation'),
      );
    });
  }

  async settle(guildId: string, reservationId: string, delivered: number, now: number): Promise<SettleResult> {
    validateId(guildId, 'guild id');
    validateReservationId(reservationId);
    validateInteger(delivered, 'delivered credits');
    validateTime(now);
    const applied = await this.#mutex.run(locks.guild(guildId), async () => {
      const outcome = await this.#settleLocked(guildId, reservationId, delivered, now);
      // No record to settle: an index entry without one (a reservation undone meanwhile) goes too.
      if (outcome.written === undefined) (await this.#openMap()).delete(openKey(guildId, reservationId));
      return outcome;
    });
    if (applied.written === undefined) return applied.result;
    try {
      await applied.written;
    } catch (error) {
      // Not stored: the reservation record is still there, so the refund must not stay in memory either (the
      // sweeper would give it a second time).
      await this.#mutex.run(locks.guild(guildId), () => {
        applied.undo?.();
        return Promise.resolve();
      });
      throw error;
    }
    // Only once the record's deletion is stored: until then the sweeper must still find the reservation.
    (await this.#openMap()).delete(openKey(guildId, reservationId));
    return applied.result;
  }

  /**
   * See QuotaStore.cancel. One process owns this store and calls this once its reserve has settled, so no reserve with
   * this id can come later (no tombstone); one still being stored is refused, to be cancelled again later. The record
   * does not keep the lastAcceptedAt the reservation replaced: when its time still starts the member's cooldown, the
   * cooldown is cleared (the one before had ended when this reservation was granted, or it would have been refused).
   */
  async cancel(guildId: string, reservationId: string, now: number): Promise<{ cancelled: boolean; refunded: number }> {
    validateId(guildId, 'guild id');
    validateReservationId(reservationId);
    validateTime(now);
    const applied = await this.#mutex.run(locks.guild(guildId), async () => {
      const record = reservationRecord.safeParse(await this.#kv.get(localQuotaKeys.reservation(guildId, reservationId)));
      let restoreCooldown: (() => void) | undefined;
      if (record.success) {
        const { userId, createdAt } = record.data;
        const key = memberKey(guildId, userId);
        if (this.#unstored.get(key)?.has(reservationId)) {
          throw new Error(`Reservation ${reservationId} is still being stored: cancel it once its reserve has settled`);
        }
        const member = await this.#readMember(guildId, userId);
        if (member?.lastAcceptedAt === createdAt) {
          // Set before the refund, which writes the member as memory holds it: one write for both.
          this.#members.set(key, { ...member, lastAcceptedAt: undefined });
          restoreCooldown = () => {
            const current = this.#members.get(key);
            if (current !== undefined && current.lastAcceptedAt === undefined)
              this.#members.set(key, { ...current, lastAcceptedAt: createdAt });
          };
        }
      }
      try {
        const outcome = await this.#settleLocked(guildId, reservationId, 0, now);
        if (outcome.written === undefined) (await this.#openMap()).delete(openKey(guildId, reservationId));
        return { ...outcome, restoreCooldown };
      } catch (error) {
        restoreCooldown?.();
        throw error;
      }
    });
    const { result, written } = applied;
    if (written === undefined) return { cancelled: false, refunded: 0 };
    try {
      await written;
    } catch (error) {
      // Not stored: memory goes back to what the store holds (as in settle).
      await this.#mutex.run(locks.guild(guildId), () => {
        applied.undo?.();
        applied.restoreCooldown?.();
        return Promise.resolve();
      });
      throw error;
    }
    (await this.#openMap()).delete(openKey(guildId, reservationId));
    return { cancelled: result.settled, refunded: result.refunded };
  }

  async #settleLocked(
    guildId: string,
    reservationId: string,
    delivered: number,
    now: number,
  ): Promise<{ result: SettleResult; written?: Promise<unknown>; undo?: () => void }> {
    const key = localQuotaKeys.reservation(guildId, reservationId);
    const raw: unknown = await this.#kv.get(key);
    if (raw === undefined) return { result: NOTHING_SETTLED };
    const parsed = reservationRecord.safeParse(raw);
    if (!parsed.success) {
      await this.#kv.delete(key);
      this.#logger.warn({ key, issues: parsed.error.issues }, 'dropped an unreadable quota reservation record');
      return { result: NOTHING_SETTLED };
    }
    const reservation = parsed.data;
    const plan = planRefund(reservation, delivered, now);
    const writes: Array<Promise<unknown>> = [];
    const undo: Array<() => void> = [];
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
      undo.push(() => {
        const now = this.#members.get(memberKey(guildId, reservation.userId));
        if (now !== undefined)
          this.#members.set(memberKey(guildId, reservation.userId), {
            ...now,
            used: now.used + dailyBack,
            bonus: Math.max(0, now.bonus - plan.toBonus),
          });
      });
      if (plan.sameDay && guild !== undefined && guild.day === reservation.day) {
        const back = Math.min(guild.used, plan.refunded);
        writes.push(this.#writeGuild(guildId, { day: guild.day, used: guild.used - back }));
        undo.push(() => {
          const now = this.#guilds.get(guildId);
          if (now !== undefined && now.day === guild.day) this.#guilds.set(guildId, { ...now, used: now.used + back });
        });
      }
    }
    // One commit (one transaction on SQLite): the record goes together with the refund, or neither is stored.
    return {
      result: { settled: true, committed: plan.committed, refunded: plan.refunded },
      written: Promise.all([this.#kv.delete(key), ...writes]),
      undo: () => {
        for (const step of undo) step();
      },
    };
  }

  async usage(guildId: string, userId: string, now: number): Promise<UsageSnapshot> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateTime(now);
    const today = dayOf(now);
    // Asks the store even when memory knows the answer: a store that is down must fail this too (fail closed).
    const stored = await this.#loadMember(guildId, userId);
    const key = memberKey(guildId, userId);
    const member = this.#members.has(key) ? this.#members.get(key) : stored;
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
    const stored = await this.#loadGuild(guildId);
    const guild = this.#guilds.has(guildId) ? this.#guilds.get(guildId) : stored;
    return guild !== undefined && guild.day === dayOf(now) ? guild.used : 0;
  }

  async adjustBonus(guildId: string, userId: string, delta: number): Promise<number> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateInteger(delta, 'bonus delta');
    return this.#mutex.run(locks.guild(guildId), async () => {
      const before = await this.#readMember(guildId, userId);
      const member = before ?? { day: 0, used: 0, bonus: 0, lastAcceptedAt: undefined };
      const bonus = Math.max(0, member.bonus + delta);
      await this.#replaceMember(guildId, userId, before, { ...member, bonus });
      return bonus;
    });
  }

  async resetUser(guildId: string, userId: string, now: number): Promise<void> {
    validateId(guildId, 'guild id');
    validateId(userId, 'user id');
    validateTime(now);
    await this.#mutex.run(locks.guild(guildId), async () => {
      const member = await this.#readMember(guildId, userId);
      await this.#replaceMember(guildId, userId, member, {
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

  /**
   * Counted in memory and added to the stored record at most once per STATS_SAVE_INTERVAL_MS (and when the store
   * closes): the record holds a count per member of the server, so rewriting it for every image grew with the
   * server. A killed process loses at most that interval of statistics, never credits.
   */
  async incrementStats(guildId: string, day: number, deltas: Record<string, number>): Promise<void> {
    validateId(guildId, 'guild id');
    validateInteger(day, 'day');
    validateStatsDeltas(deltas);
    if (Object.keys(deltas).length === 0) return;
    const key = localQuotaKeys.stats(guildId, day);
    const pending = this.#pendingStats.get(key) ?? {};
    for (const [name, delta] of Object.entries(deltas)) pending[name] = (pending[name] ?? 0) + delta;
    this.#pendingStats.set(key, pending);
    this.#statsTimer ??= setTimeout(() => {
      this.#statsTimer = undefined;
      void this.#saveStats();
    }, STATS_SAVE_INTERVAL_MS).unref();
    return Promise.resolve();
  }

  async stats(guildId: string, day: number): Promise<Record<string, number>> {
    validateId(guildId, 'guild id');
    validateInteger(day, 'day');
    const key = localQuotaKeys.stats(guildId, day);
    const counts = await this.#readStats(key);
    // What is not stored yet (pending, or being written now) counts too.
    for (const unsaved of [this.#savingStats.get(key), this.#pendingStats.get(key)]) {
      for (const [name, delta] of Object.entries(unsaved ?? {})) counts[name] = (counts[name] ?? 0) + delta;
    }
    return counts;
  }

  /** One save at a time (it is the only writer of the statistics records): a second call shares the one under way. */
  #saveStats(): Promise<void> {
    this.#statsSave ??= this.#saveStatsNow().finally(() => {
      this.#statsSave = undefined;
    });
    return this.#statsSave;
  }

  /** Adds the counted deltas to the stored records; a failed write keeps its deltas for the next save. */
  async #saveStatsNow(): Promise<void> {
    const batch = this.#pendingStats;
    this.#pendingStats = new Map();
    this.#savingStats = batch;
    await Promise.all(
      [...batch].map(async ([key, deltas]) => {
        try {
          const counts = await this.#readStats(key);
          for (const [name, delta] of Object.entries(deltas)) counts[name] = (counts[name] ?? 0) + delta;
          await this.#kv.set(key, { v: 1, counts } satisfies z.infer<typeof statsRecord>, STATS_TTL_MS);
        } catch (error) {
          this.#logger.warn({ err: error, key }, 'could not save usage statistics; keeping them for the next try');
          const pending = this.#pendingStats.get(key) ?? {};
          for (const [name, delta] of Object.entries(deltas)) pending[name] = (pending[name] ?? 0) + delta;
          this.#pendingStats.set(key, pending);
        }
      }),
    );
    this.#savingStats = new Map();
    if (this.#pendingStats.size > 0 && !this.#closing) {
      this.#statsTimer ??= setTimeout(() => {
        this.#statsTimer = undefined;
        void this.#saveStats();
      }, STATS_SAVE_INTERVAL_MS).unref();
    }
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
    return this.#members.read(memberKey(guildId, userId), () => this.#loadMember(guildId, userId));
  }

  async #loadMember(guildId: string, userId: string): Promise<MemberState | undefined> {
    const record = await this.#read(localQuotaKeys.member(guildId, userId), memberRecord);
    if (record === undefined) return undefined;
    return { day: record.day, used: record.used, bonus: record.bonus, lastAcceptedAt: record.lastAcceptedAt ?? undefined };
  }

  /** Memory at once; the returned promise is the store's write. */
  #writeMember(guildId: string, userId: string, state: MemberState): Promise<void> {
    const key = memberKey(guildId, userId);
    this.#members.set(key, state);
    const record: z.infer<typeof memberRecord> = {
      v: 1,
      day: state.day,
      used: state.used,
      bonus: state.bonus,
      lastAcceptedAt: state.lastAcceptedAt ?? null,
    };
    return this.#members.writing(key, this.#kv.set(localQuotaKeys.member(guildId, userId), record));
  }

  /** For a caller holding the server's lock throughout: a failed write leaves memory as it was. */
  async #replaceMember(guildId: string, userId: string, before: MemberState | undefined, after: MemberState): Promise<void> {
    try {
      await this.#writeMember(guildId, userId, after);
    } catch (error) {
      this.#members.set(memberKey(guildId, userId), before);
      throw error;
    }
  }

  async #readGuild(guildId: string): Promise<GuildState | undefined> {
    return this.#guilds.read(guildId, () => this.#loadGuild(guildId));
  }

  async #loadGuild(guildId: string): Promise<GuildState | undefined> {
    const record = await this.#read(localQuotaKeys.guild(guildId), guildRecord);
    return record === undefined ? undefined : { day: record.day, used: record.used };
  }

  #writeGuild(guildId: string, state: GuildState): Promise<void> {
    this.#guilds.set(guildId, state);
    return this.#guilds.writing(
      guildId,
      this.#kv.set(localQuotaKeys.guild(guildId), { v: 1, ...state } satisfies z.infer<typeof guildRecord>),
    );
  }

  async #readOpenIndex(): Promise<OpenEntry[]> {
    return [...(await this.#openMap()).values()];
  }

  async #openMap(): Promise<Map<string, OpenEntry>> {
    if (this.#open) return this.#open;
    if (this.#loadingOpen) return this.#loadingOpen;
    const loading = this.#listRecords(localQuotaKeys.reservations).then((records) => {
      const open = new Map<string, OpenEntry>();
      let unreadable = 0;
      for (const record of records) {
        const parsed = reservationRecord.safeParse(record);
        if (!parsed.success) {
          unreadable += 1;
          continue;
        }
        const { guildId, id, expiresAt } = parsed.data;
        open.set(openKey(guildId, id), { guildId, id, expiresAt });
      }
      if (unreadable > 0) this.#logger.warn({ unreadable }, 'ignored unreadable quota reservation records');
      this.#open = open;
      // Older versions kept a list of open reservations there; nothing reads it any more.
      void this.#kv
        .delete(LEGACY_OPEN_INDEX_KEY)
        .catch((error: unknown) => this.#logger.debug({ err: error }, 'could not delete the old open-reservation list'));
      return open;
    });
    this.#loadingOpen = loading;
    // A failed load (SQLITE_BUSY, an I/O error) is tried again by the next call instead of failing every call after.
    loading.catch(() => {
      if (this.#loadingOpen === loading) this.#loadingOpen = undefined;
    });
    return loading;
  }

  /** Saves the statistics counted and not stored yet: called before the store closes. */
  async flush(): Promise<void> {
    this.#closing = true;
    clearTimeout(this.#statsTimer);
    this.#statsTimer = undefined;
    await this.#statsSave; // one under way, then what was counted meanwhile
    await this.#saveStats();
  }

  async #readStats(key: string): Promise<Record<string, number>> {
    return { ...(await this.#read(key, statsRecord))?.counts };
  }
}
