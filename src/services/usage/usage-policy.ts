import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.js';
import { UserFacingError, type LocalizedText } from '../../errors.js';
import type { Logger } from '../../logger.js';
import { translator, type Translator } from '../../i18n/i18n.js';
import type { Locale } from '../../i18n/locales.js';
import {
  allowanceUnderCeiling,
  effectiveSettings,
  type BotDefaults,
  type EffectiveSettings,
  type GuildSettings,
  type GuildSettingsRepository,
} from './guild-settings.js';
import type { GenerationGate } from '../generation/generation-gate.js';
import type { ImagineRequest } from '../generation/imagine-request.js';
import type { Metrics } from '../metrics.js';
import {
  dayOf,
  startOfNextDay,
  type QuotaLimits,
  type QuotaStore,
  type Reservation,
  type ReserveInput,
  type ReserveResult,
  type SettleResult,
} from '../storage/quota/quota-store.js';
import { findBrokenRule } from './word-filter.js';
import type { FluxDevParams } from '../segmind/flux-params.js';
import type { AuditLog } from './audit-log.js';
import { autoBlockReason, blockReasonIn, type ImageRules } from '../generation/flagged-images.js';
import type { FleetOpenRequests } from './open-requests.js';

/** Who is asking, where: what the policy needs from the interaction. */
export interface MemberContext {
  guildId: string;
  userId: string;
  channelId: string;
  /** The thread's parent channel, when asked inside a thread: threads of an allowed channel are allowed. */
  parentChannelId: string | null;
  roleIds: readonly string[];
  /** Has Manage Server (Discord-computed permissions for this member). */
  canManageGuild: boolean;
  /** The channel is marked age-restricted in Discord. */
  channelNsfw: boolean;
}

export type RefusalReason =
  | 'paused'
  | 'blocked'
  | 'channel'
  | 'banned_word'
  | 'nsfw'
  | 'limits'
  | 'cooldown'
  | 'allowance'
  | 'guild_cap'
  | 'unavailable'
  | 'queue_full'
  | 'restarting'
  | 'segmind_down'
  | 'operator_pause'
  | 'private';

/** A refused request: costs nothing, starts no cooldown, and is answered privately with this message. */
export class Refusal extends UserFacingError {
  constructor(
    readonly reason: RefusalReason,
    message: string | LocalizedText,
    readonly retryAt?: number,
  ) {
    super(message, `refused_${reason}`);
    this.name = 'Refusal';
  }

  /** The same refusal in the language the server's moderators fixed, whatever the member's own. */
  in(locale: Locale): Refusal {
    const t = translator(locale);
    const fixed = new Refusal(this.reason, () => this.text(t), this.retryAt);
    if (this.cause !== undefined) fixed.cause = this.cause;
    return fixed;
  }
}

export class StorageUnavailableError extends Refusal {
  constructor(cause?: unknown) {
    super('unavailable', (t) => t('common:storage.unavailable'));
    if (cause !== undefined) this.cause = cause;
  }
}

export interface Admission {
  reservation: Reservation;
  settings: GuildSettings;
  /** The request's parameters as admitted: a preference or style over the server's limits is cut to them. */
  params: FluxDevParams;
  /** What the member is told about the admission in their result (a cut), in order, in the language given. */
  notes: LocalizedText[];
  /** Ends this request's place in the member's count of open requests; call when the job is over. Idempotent. */
  readonly release: () => void;
}

export interface UsageView {
  allowance: number;
  remainingToday: number;
  bonus: number;
  resetsAt: number;
  cooldownUntil: number | undefined;
  guildCap: number;
  guildUsedToday: number;
}

const relative = (epochMs: number) => `<t:${Math.ceil(epochMs / 1000)}:R>`;

/** One open request counted by `openRequest`, and its place in the fleet-wide count (Redis), asked for at once. */
interface OpenSlot {
  readonly id: string;
  readonly fleet: Promise<boolean>;
}

const queueFullRefusal = (max: number) => new Refusal('queue_full', (t) => t('imagine:refusal.queueFull', { count: max }));

/** `n images` / `n credits` in the member's language, for texts that count two things at once. */
const images = (t: Translator, count: number) => t('imagine:units.images', { count });
const credits = (t: Translator, count: number) => t('imagine:units.credits', { count });

/** Pauses between attempts to cancel a failed reservation while storage is down: doubling, up to the cap. */
const CANCEL_RETRY_FIRST_MS = 1_000;
const CANCEL_RETRY_MAX_MS = 30_000;

/**
 * Decides whether a request may run, and what it costs, in two steps: `openRequest` (no storage: bot-wide gate and
 * the member's open-request limit, before the acknowledgement) and `reserve` (blocks, channels, words, limits, then
 * the atomic credit reservation, after it). Credits are committed or refunded through `settle` once the outcome is
 * known.
 */
export class UsagePolicy {
  /** Requests admitted and not finished, per member: counted before the first await, so a burst cannot slip past. */
  private readonly open = new Map<string, number>();
  /** Slots whose fleet-wide answer no `reserve` has checked yet, per member, oldest first. */
  private readonly unchecked = new Map<string, OpenSlot[]>();

  constructor(
    private readonly deps: {
      settings: GuildSettingsRepository;
      quota: QuotaStore;
      defaults: BotDefaults;
      clock: Clock;
      /** Storage must answer within this, or the request is refused (fail closed) well inside Discord's 3 s. */
      storageTimeoutMs: number;
      logger: Logger;
      /** Bot-wide state: shutting down, Segmind breaker open, operator pause. */
      gate?: Pick<GenerationGate, 'blockForNewRequest'>;
      /** How many requests a member may have admitted and not yet finished (waiting or generating). */
      maxOpenPerUser?: number;
      /** With Redis: counts a member's open requests on every process (checked in `reserve`, after the acknowledgement). */
      fleetOpen?: FleetOpenRequests;
      metrics?: Pick<Metrics, 'refused' | 'setStorageUp' | 'jobFinished'>;
      /** Where an automatic block (`flag_limit`) is recorded, like a moderator's. */
      audit?: Pick<AuditLog, 'record'>;
    },
  ) {}

  /** The operator's ceilings (MAX_DAILY_CREDITS, MAX_GUILD_DAILY_CREDITS), over anything moderators set; 0 = none. */
  get ceilings(): { dailyCredits: number; guildDailyCap: number } {
    return { dailyCredits: this.deps.defaults.maxDailyCredits ?? 0, guildDailyCap: this.deps.defaults.maxGuildDailyCredits ?? 0 };
  }

  isModerator(member: Pick<MemberContext, 'roleIds' | 'canManageGuild'>, settings: GuildSettings): boolean {
    return member.canManageGuild || (settings.moderatorRoleId !== null && member.roleIds.includes(settings.moderatorRoleId));
  }

  /** Resolves what applies to this member: a per-member allowance, else the most generous of their roles, else the server's. */
  limitsFor(member: Pick<MemberContext, 'userId' | 'roleIds' | 'canManageGuild'>, settings: GuildSettings): QuotaLimits & EffectiveSettings {
    const effective = effectiveSettings(settings, this.deps.defaults);
    const overrides = member.roleIds.map((id) => settings.roleOverrides[id]).filter((o) => o !== undefined);
    const roleAllowances = overrides.map((o) => o.dailyCredits).filter((v) => v !== null);
    const roleCooldowns = overrides.map((o) => o.cooldownSeconds).filter((v) => v !== null);
    const dailyAllowance = allowanceUnderCeiling(
      settings.memberAllowances[member.userId] ?? (roleAllowances.length > 0 ? Math.max(...roleAllowances) : effective.dailyCredits),
      this.ceilings.dailyCredits,
    );
    const cooldownSeconds =
      settings.exemptModerators && this.isModerator(member, settings)
        ? 0
        : roleCooldowns.length > 0
          ? Math.min(...roleCooldowns)
          : effective.cooldownSeconds;
    return {
      ...effective,
      dailyCredits: dailyAllowance,
      cooldownSeconds,
      dailyAllowance,
      cooldownMs: cooldownSeconds * 1000,
      guildDailyCap: effective.guildDailyCap,
    };
  }

  /**
   * The checks that need no storage — bot-wide gate (restarting, breaker open, operator pause) and the member's
   * open-request limit — answered synchronously, before the interaction is even acknowledged. Takes the member's
   * slot in the same synchronous step as the check, so a burst cannot slip past, and returns what releases it
   * (idempotent; call when the job is over or refused). A refusal is counted here, once, and thrown. With a fleet-wide
   * count (Redis) it also asks for the member's place there, without waiting: `reserve` checks the answer.
   */
  openRequest(member: MemberContext): () => void {
    this.checkBotWide(member);
    return this.holdOpenSlot(member.userId);
  }

  /**
   * The storage part, after the acknowledgement: settings, the server's rules (paused, blocked, channel, words,
   * NSFW, limits), then the atomic credit reservation, each storage call bounded by `storageTimeoutMs`. A refusal is
   * counted here, once, and thrown; the caller keeps (and releases) the slot from `openRequest`.
   */
  async reserve(
    request: ImagineRequest,
    member: MemberContext,
    reservationExpiresAt = request.tokenExpiresAt,
  ): Promise<Omit<Admission, 'release'>> {
    try {
      return await this.reserveCredits(request, member, reservationExpiresAt);
    } catch (error) {
      if (error instanceof Refusal) this.countRefusal(member.guildId, error.reason);
      throw error;
    }
  }

  /** `openRequest` then `reserve` in one call, for callers with no acknowledgement in between. */
  async admit(request: ImagineRequest, member: MemberContext, reservationExpiresAt = request.tokenExpiresAt): Promise<Admission> {
    const release = this.openRequest(member);
    try {
      const admission = await this.reserve(request, member, reservationExpiresAt);
      return { ...admission, release };
    } catch (error) {
      release();
      throw error;
    }
  }

  private async reserveCredits(
    request: ImagineRequest,
    member: MemberContext,
    reservationExpiresAt: number,
  ): Promise<Omit<Admission, 'release'>> {
    const { clock, quota } = this.deps;
    const [settings] = await Promise.all([
      this.withStorageTimeout(this.deps.settings.get(member.guildId)),
      this.checkFleetPlace(member.userId),
    ]);
    let fitted: { params: FluxDevParams; notes: LocalizedText[] };
    try {
      if (request.private && !settings.allowPrivate) throw new Refusal('private', (t) => t('imagine:refusal.private'));
      fitted = this.fitToLimits(request, settings);
      this.checkRules({ ...request, params: fitted.params }, member, settings);
    } catch (error) {
      // Known from here on: a language the moderators fixed answers every member in it.
      throw error instanceof Refusal && settings.language !== 'auto' ? error.in(settings.language) : error;
    }
    const { params, notes } = fitted;
    const input: ReserveInput = {
      reservationId: request.id,
      guildId: member.guildId,
      userId: member.userId,
      credits: params.samples,
      now: clock.now(),
      limits: this.limitsFor(member, settings),
      expiresAt: reservationExpiresAt,
    };
    const pending = quota.reserve(input);
    let result: ReserveResult;
    try {
      result = await this.withStorageTimeout(pending);
    } catch (error) {
      // The member is told nothing was charged, yet the store may have granted it (late, or with the answer lost).
      this.cancelFailedReservation(input, pending);
      throw error;
    }
    if (!result.ok) {
      const refusal = this.refusalFor(result, params.samples);
      throw settings.language !== 'auto' ? refusal.in(settings.language) : refusal;
    }
    return { reservation: result.reservation, settings, params, notes };
  }

  /**
   * A value the member typed over a server limit is refused (checkRules says which); one they left to a preference or
   * a style is cut to the limit, and they are told in the result.
   */
  private fitToLimits(request: ImagineRequest, settings: GuildSettings): { params: FluxDevParams; notes: LocalizedText[] } {
    const adjustable = request.adjustable ?? [];
    if (adjustable.length === 0) return { params: request.params, notes: [] };
    const limits = effectiveSettings(settings, this.deps.defaults);
    const params = { ...request.params };
    const notes: LocalizedText[] = [];
    if (adjustable.includes('samples') && params.samples > limits.maxSamples) {
      const asked = params.samples;
      notes.push((t) => t('imagine:notes.samplesCut', { asked, count: limits.maxSamples }));
      params.samples = limits.maxSamples;
    }
    if (adjustable.includes('steps') && params.steps > limits.maxSteps) {
      const asked = params.steps;
      notes.push((t) => t('imagine:notes.stepsCut', { asked, max: limits.maxSteps }));
      params.steps = limits.maxSteps;
    }
    return { params, notes };
  }

  /**
   * Undoes, in the background, a reservation the member was told failed: credits, server total and the cooldown it
   * started. Waits for the store's own answer first (after it, this process's reserve can change nothing more; Redis
   * refuses one still on its way), then retries with growing pauses while storage is down, until the reservation
   * would have expired: the sweeper refunds it after that.
   */
  private cancelFailedReservation(input: ReserveInput, pending: Promise<ReserveResult>): void {
    const { quota, clock, logger } = this.deps;
    const { guildId, reservationId, expiresAt } = input;
    const cancel = async () => {
      for (let pause = CANCEL_RETRY_FIRST_MS; ; pause = Math.min(pause * 2, CANCEL_RETRY_MAX_MS)) {
        try {
          const result = await quota.cancel(guildId, reservationId, clock.now());
          if (result.cancelled) logger.info({ reservationId, guildId, ...result }, 'failed reservation cancelled');
          return;
        } catch (error) {
          if (clock.now() + pause >= expiresAt) {
            logger.error({ err: error, reservationId }, 'could not cancel a failed reservation; the sweeper will refund it');
            return;
          }
          logger.warn({ err: error, reservationId, retryInMs: pause }, 'could not cancel a failed reservation yet; retrying');
          await clock.sleep(pause);
        }
      }
    };
    void pending.then(cancel, cancel);
  }

  private holdOpenSlot(userId: string): () => void {
    this.open.set(userId, (this.open.get(userId) ?? 0) + 1);
    const { fleetOpen, maxOpenPerUser: max } = this.deps;
    let slot: OpenSlot | undefined;
    if (fleetOpen && max !== undefined) {
      // Asked now, answered while the interaction is being acknowledged: `reserve` finds the answer waiting, so the
      // fleet-wide count adds no round trip on the way to Segmind.
      const id = randomUUID();
      slot = { id, fleet: fleetOpen.hold(userId, id, max) };
      slot.fleet.catch(() => undefined); // checked (and reported) by `reserve`, or given back by the release
      this.unchecked.set(userId, [...(this.unchecked.get(userId) ?? []), slot]);
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.open.get(userId) ?? 1) - 1;
      if (left > 0) this.open.set(userId, left);
      else this.open.delete(userId);
      if (!fleetOpen || !slot) return;
      const { id, fleet } = slot;
      this.takeUnchecked(userId, slot);
      // Given back even when the hold failed or timed out: it may have been taken all the same.
      const giveBack = () => fleetOpen.release(userId, id);
      void fleet.then((held) => (held ? giveBack() : undefined), giveBack);
    };
  }

  /**
   * The fleet-wide count (Redis) for one of the member's slots from `openRequest`: any one, since a place only counts.
   * Refuses when the member already had their maximum open on all processes together.
   */
  private async checkFleetPlace(userId: string): Promise<void> {
    const max = this.deps.maxOpenPerUser;
    const slot = this.takeUnchecked(userId);
    if (!slot || max === undefined) return;
    if (!(await this.withStorageTimeout(slot.fleet))) throw queueFullRefusal(max);
  }

  /** Removes `slot` (default: the member's oldest) from those not checked yet, and returns it. */
  private takeUnchecked(userId: string, slot?: OpenSlot): OpenSlot | undefined {
    const slots = this.unchecked.get(userId);
    if (!slots) return undefined;
    const at = slot === undefined ? 0 : slots.indexOf(slot);
    const [taken] = at < 0 ? [] : slots.splice(at, 1);
    if (slots.length === 0) this.unchecked.delete(userId);
    return taken;
  }

  /** Commits what was delivered, refunds the rest, and counts it. Never throws: an open reservation is swept later. */
  async settle(reservation: Reservation, delivered: number): Promise<SettleResult | undefined> {
    const { quota, clock, logger } = this.deps;
    try {
      const result = await quota.settle(reservation.guildId, reservation.id, delivered, clock.now());
      if (result.settled) {
        const deltas: Record<string, number> = { images: result.committed, refunded: result.refunded };
        if (result.committed > 0) deltas[`user:${reservation.userId}`] = result.committed;
        await quota.incrementStats(reservation.guildId, dayOf(clock.now()), deltas).catch(() => undefined);
      }
      logger.info(
        { reservationId: reservation.id, guildId: reservation.guildId, userId: reservation.userId, ...result },
        'credits settled',
      );
      return result;
    } catch (error) {
      logger.error({ err: error, reservationId: reservation.id }, 'could not settle credits; the sweeper will refund them');
      return undefined;
    }
  }

  /** The server's rules for images its image check flags (bounded like every storage read here). */
  async imageRules(guildId: string): Promise<ImageRules> {
    const settings = await this.withStorageTimeout(this.deps.settings.get(guildId));
    return {
      action: effectiveSettings(settings, this.deps.defaults).imageCheck,
      nsfwPolicy: settings.nsfwPolicy,
      logChannelId: settings.logChannelId,
      logFlaggedImages: settings.logFlaggedImages,
      flagLimit: settings.flagLimit,
    };
  }

  /**
   * Counts a member's flagged images for the server's day (`flagged`, `flagged:<userId>`, which `/imagine-admin usage`
   * shows) and blocks the member once they reach `flagLimit` that day (0 = never), recorded in the audit log as a
   * moderator's block is, with `blockedBy` (the bot) as the actor. A member already blocked is left as they are.
   */
  async recordFlagged(flag: { guildId: string; userId: string; images: number; flagLimit: number; blockedBy: string }): Promise<{ blocked: boolean }> {
    const { quota, clock, settings, logger } = this.deps;
    const { guildId, userId, images, flagLimit, blockedBy } = flag;
    const day = dayOf(clock.now());
    await quota.incrementStats(guildId, day, { flagged: images, [`flagged:${userId}`]: images });
    if (flagLimit <= 0) return { blocked: false };
    const today = (await quota.stats(guildId, day))[`flagged:${userId}`] ?? 0;
    if (today < flagLimit) return { blocked: false };
    const reason = autoBlockReason(flagLimit);
    let blocked = false;
    const updated = await settings.update(guildId, (current) => {
      // A limit lowered or lifted meanwhile, or a moderator's block already there, wins.
      if (current.flagLimit <= 0 || today < current.flagLimit || current.blocked[userId]) return;
      current.blocked = { ...current.blocked, [userId]: { by: blockedBy, at: clock.now(), reason } };
      blocked = true;
    });
    if (!blocked) return { blocked: false };
    logger.info({ guildId, userId, flaggedToday: today, flagLimit }, 'member blocked automatically: flag limit reached');
    await this.deps.audit
      ?.record(guildId, updated.logChannelId, { actorId: blockedBy, action: 'blocked a member', details: `<@${userId}> — ${reason}` })
      .catch((error: unknown) => logger.warn({ err: error, guildId }, 'could not record the automatic block in the audit log'));
    return { blocked: true };
  }

  async usageView(member: MemberContext): Promise<UsageView> {
    const { quota, clock } = this.deps;
    const now = clock.now();
    const settings = await this.withStorageTimeout(this.deps.settings.get(member.guildId));
    const limits = this.limitsFor(member, settings);
    const [usage, guildUsed] = await this.withStorageTimeout(
      Promise.all([quota.usage(member.guildId, member.userId, now), quota.guildUsage(member.guildId, now)]),
    );
    const cooldownUntil =
      usage.lastAcceptedAt !== undefined && usage.lastAcceptedAt + limits.cooldownMs > now
        ? usage.lastAcceptedAt + limits.cooldownMs
        : undefined;
    return {
      allowance: limits.dailyAllowance,
      remainingToday: Math.max(0, limits.dailyAllowance - usage.usedToday),
      bonus: usage.bonus,
      resetsAt: startOfNextDay(now),
      cooldownUntil,
      guildCap: limits.guildDailyCap,
      guildUsedToday: guildUsed,
    };
  }

  /** Checks that need no storage: answered instantly, counted like any refusal. */
  private checkBotWide(member: MemberContext): void {
    const refusal = this.botWideRefusal(member);
    if (refusal) {
      this.countRefusal(member.guildId, refusal.reason);
      throw refusal;
    }
  }

  private botWideRefusal(member: MemberContext): Refusal | undefined {
    const block = this.deps.gate?.blockForNewRequest();
    if (block?.reason === 'restarting') return new Refusal('restarting', (t) => t('imagine:refusal.restarting'));
    if (block?.reason === 'operator_pause')
      return new Refusal('operator_pause', (t) =>
        block.kind === 'out_of_credits' ? t('imagine:refusal.outOfCredits') : t('imagine:refusal.accountBroken'),
      );
    if (block?.reason === 'breaker_open') {
      const retry = relative(block.retryAt);
      return new Refusal('segmind_down', (t) => t('imagine:refusal.segmindDown', { retry }), block.retryAt);
    }
    const max = this.deps.maxOpenPerUser;
    if (max !== undefined && (this.open.get(member.userId) ?? 0) >= max) return queueFullRefusal(max);
    return undefined;
  }

  private checkRules(request: ImagineRequest, member: MemberContext, settings: GuildSettings): void {
    const { params } = request;
    if (settings.paused) {
      const { reason } = settings.paused;
      throw new Refusal('paused', (t) => (reason ? t('imagine:refusal.pausedReason', { reason }) : t('imagine:refusal.paused')));
    }
    const block = settings.blocked[member.userId];
    if (block) {
      const { reason } = block;
      throw new Refusal('blocked', (t) => (reason ? t('imagine:refusal.blockedReason', { reason: blockReasonIn(reason, t) }) : t('imagine:refusal.blocked')));
    }
    const inAllowedChannel =
      settings.allowedChannels.includes(member.channelId) ||
      (member.parentChannelId !== null && settings.allowedChannels.includes(member.parentChannelId));
    if (settings.allowedChannels.length > 0 && !inAllowedChannel) {
      const channels = settings.allowedChannels.slice(0, 10).map((id) => `<#${id}>`).join(', ');
      throw new Refusal('channel', (t) => t('imagine:refusal.channel', { channels }));
    }
    // The words are checked in the expansion, what Segmind gets: a style's template may be where the word is.
    const style = request.style?.name;
    const banned = findBrokenRule(params.prompt, settings.bannedWords);
    if (banned !== undefined)
      throw new Refusal('banned_word', (t) =>
        style === undefined ? t('imagine:refusal.bannedWord', { word: banned }) : t('imagine:refusal.bannedWordStyled', { word: banned, style }),
      );
    const nsfw = findBrokenRule(params.prompt, settings.nsfwWords);
    if (nsfw !== undefined && !(settings.nsfwPolicy === 'age_restricted' && member.channelNsfw)) {
      const ageRestricted = settings.nsfwPolicy === 'age_restricted';
      throw new Refusal('nsfw', (t) =>
        ageRestricted ? t('imagine:refusal.nsfwAgeRestricted', { word: nsfw }) : t('imagine:refusal.nsfw', { word: nsfw }),
      );
    }
    const limits = effectiveSettings(settings, this.deps.defaults);
    if (params.samples > limits.maxSamples) throw new Refusal('limits', (t) => t('imagine:refusal.maxSamples', { count: limits.maxSamples }));
    if (params.steps > limits.maxSteps) throw new Refusal('limits', (t) => t('imagine:refusal.maxSteps', { max: limits.maxSteps }));
  }

  private refusalFor(result: Exclude<Awaited<ReturnType<QuotaStore['reserve']>>, { ok: true }>, asked: number): Refusal {
    const retry = relative(result.retryAt);
    const available = result.reason === 'cooldown' ? 0 : result.available;
    switch (result.reason) {
      case 'cooldown':
        return new Refusal('cooldown', (t) => t('imagine:refusal.cooldown', { retry }), result.retryAt);
      case 'allowance':
        return new Refusal(
          'allowance',
          (t) =>
            available > 0
              ? t('imagine:refusal.allowanceSome', { asked: images(t, asked), available: credits(t, available), retry })
              : t('imagine:refusal.allowanceNone', { retry }),
          result.retryAt,
        );
      case 'guild_cap':
        return new Refusal(
          'guild_cap',
          (t) => (available > 0 ? t('imagine:refusal.guildCapSome', { count: available, retry }) : t('imagine:refusal.guildCapNone', { retry })),
          result.retryAt,
        );
    }
  }

  private countRefusal(guildId: string, reason: RefusalReason): void {
    const { quota, clock, logger } = this.deps;
    this.deps.metrics?.refused(reason);
    this.deps.metrics?.jobFinished('refused');
    quota
      .incrementStats(guildId, dayOf(clock.now()), { [`refused:${reason}`]: 1 })
      .catch((error: unknown) => logger.debug({ err: error }, 'could not count a refusal'));
  }

  /**
   * Storage that does not answer within `ms` (STORAGE_TIMEOUT_MS unless a caller must answer sooner, as before a
   * deferral), or fails, counts as down: fail closed, the request refused with nothing charged.
   */
  async withStorageTimeout<T>(promise: Promise<T>, ms = this.deps.storageTimeoutMs): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new StorageUnavailableError(new Error(`storage did not answer within ${ms} ms`)));
      }, ms);
    });
    // An answer after the timeout is the caller's business (see cancelFailedReservation); never an unhandled rejection.
    promise.catch(() => undefined);
    try {
      const value = await Promise.race([promise, timeout]);
      this.deps.metrics?.setStorageUp(true);
      return value;
    } catch (error) {
      if (error instanceof StorageUnavailableError || !(error instanceof Refusal)) this.deps.metrics?.setStorageUp(false);
      if (error instanceof Refusal) throw error;
      this.deps.logger.error({ err: error }, 'storage operation failed; refusing the request');
      throw new StorageUnavailableError(error);
    } finally {
      clearTimeout(timer);
    }
  }
}
