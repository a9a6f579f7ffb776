import { describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { translator } from '../../../src/i18n/i18n.js';
import { createLogger } from '../../../src/logger.js';
import type { GateBlock } from '../../../src/services/generation/generation-gate.js';
import { newGuildSettings, type GuildSettings, type GuildSettingsRepository } from '../../../src/services/usage/guild-settings.js';
import type { ImagineRequest } from '../../../src/services/generation/imagine-request.js';
import type { QuotaStore, ReserveInput, ReserveResult } from '../../../src/services/storage/quota/quota-store.js';
import { Refusal, UsagePolicy, type MemberContext } from '../../../src/services/usage/usage-policy.js';
import type { FleetOpenRequests } from '../../../src/services/usage/open-requests.js';
import { DEFAULTS } from '../../../src/services/segmind/flux-params.js';
import { openStorage } from '../../../src/services/storage/open-storage.js';

const policy = new UsagePolicy({
  settings: {} as GuildSettingsRepository,
  quota: {} as QuotaStore,
  defaults: { dailyCredits: 20, cooldownSeconds: 30, guildDailyCap: 0, maxSamples: 4, maxSteps: 50 },
  clock: systemClock,
  storageTimeoutMs: 1000,
  logger: createLogger({ level: 'silent', secrets: [] }),
});

const member = { userId: '1', roleIds: [] as string[], canManageGuild: false };

describe('resolving a member’s limits', () => {
  it('uses the bot defaults for a server that set nothing', () => {
    expect(policy.limitsFor(member, newGuildSettings())).toMatchObject({ dailyAllowance: 20, cooldownMs: 30_000, guildDailyCap: 0 });
  });

  it('lets the server’s own settings win over the defaults', () => {
    const settings = { ...newGuildSettings(), dailyCredits: 5, cooldownSeconds: 10, guildDailyCap: 100 };
    expect(policy.limitsFor(member, settings)).toMatchObject({ dailyAllowance: 5, cooldownMs: 10_000, guildDailyCap: 100 });
  });

  it('gives a member the most generous of their roles', () => {
    const settings = {
      ...newGuildSettings(),
      roleOverrides: {
        '10': { dailyCredits: 50, cooldownSeconds: 20 },
        '11': { dailyCredits: 80, cooldownSeconds: null },
        '12': { dailyCredits: null, cooldownSeconds: 5 },
        '13': { dailyCredits: 500, cooldownSeconds: 0 },
      },
    };
    expect(policy.limitsFor({ ...member, roleIds: ['10', '11', '12'] }, settings)).toMatchObject({
      dailyAllowance: 80,
      cooldownMs: 5_000,
    });
    // a role can also be stricter than the server default
    const strict = { ...newGuildSettings(), roleOverrides: { '20': { dailyCredits: 2, cooldownSeconds: 120 } } };
    expect(policy.limitsFor({ ...member, roleIds: ['20'] }, strict)).toMatchObject({ dailyAllowance: 2, cooldownMs: 120_000 });
  });

  it('lets a per-member allowance override roles', () => {
    const settings = {
      ...newGuildSettings(),
      roleOverrides: { '10': { dailyCredits: 50, cooldownSeconds: null } },
      memberAllowances: { '1': 3 },
    };
    expect(policy.limitsFor({ ...member, roleIds: ['10'] }, settings).dailyAllowance).toBe(3);
  });

  it('exempts moderators from the cooldown unless the server turned that off', () => {
    const settings = { ...newGuildSettings(), moderatorRoleId: '99' };
    expect(policy.limitsFor({ ...member, canManageGuild: true }, settings).cooldownMs).toBe(0);
    expect(policy.limitsFor({ ...member, roleIds: ['99'] }, settings).cooldownMs).toBe(0);
    expect(policy.limitsFor({ ...member, roleIds: ['99'] }, { ...settings, exemptModerators: false }).cooldownMs).toBe(30_000);
  });
});

describe('admitting a request in two steps: no storage before the acknowledgement, storage after it', () => {
  const asker: MemberContext = {
    guildId: '100',
    userId: '1',
    channelId: '200',
    parentChannelId: null,
    roleIds: [],
    canManageGuild: false,
    channelNsfw: false,
  };
  const request = (id: string): ImagineRequest => ({
    id,
    userId: asker.userId,
    guildId: asker.guildId,
    channelId: asker.channelId,
    params: { ...DEFAULTS, prompt: 'a lighthouse', seed: 1 },
    createdAt: 0,
    tokenExpiresAt: 900_000,
    attachmentSizeLimit: 10 * 1024 * 1024,
  });

  function setup(
    options: {
      block?: GateBlock;
      settings?: GuildSettings;
      reserve?: (input: ReserveInput) => Promise<ReserveResult>;
      fleetOpen?: FleetOpenRequests;
    } = {},
  ) {
    const storage = { settingsReads: 0, reserves: 0 };
    const stats: Array<Record<string, number>> = [];
    const metrics = { refused: vi.fn(), jobFinished: vi.fn(), setStorageUp: vi.fn() };
    const quota = {
      reserve: (input: ReserveInput) => {
        storage.reserves += 1;
        return (
          options.reserve?.(input) ??
          Promise.resolve<ReserveResult>({
            ok: true,
            reservation: { id: input.reservationId, guildId: input.guildId, userId: input.userId, credits: input.credits, fromDaily: input.credits, fromBonus: 0, day: 0, createdAt: input.now, expiresAt: input.expiresAt },
            remainingToday: 10,
            bonus: 0,
          })
        );
      },
      incrementStats: (_guild: string, _day: number, deltas: Record<string, number>) => {
        stats.push(deltas);
        return Promise.resolve();
      },
    } as unknown as QuotaStore;
    const settings = {
      get: () => {
        storage.settingsReads += 1;
        return Promise.resolve(options.settings ?? newGuildSettings());
      },
    } as unknown as GuildSettingsRepository;
    const policy = new UsagePolicy({
      settings,
      quota,
      defaults: { dailyCredits: 20, cooldownSeconds: 0, guildDailyCap: 0, maxSamples: 4, maxSteps: 50 },
      clock: systemClock,
      storageTimeoutMs: 1000,
      logger: createLogger({ level: 'silent', secrets: [] }),
      gate: { blockForNewRequest: () => options.block },
      maxOpenPerUser: 2,
      metrics,
      ...(options.fleetOpen ? { fleetOpen: options.fleetOpen } : {}),
    });
    return { policy, storage, stats, metrics };
  }

  it('refuses a restarting bot without touching storage, and counts the refusal once', () => {
    const { policy, storage, stats, metrics } = setup({ block: { reason: 'restarting' } });
    expect(() => policy.openRequest(asker)).toThrow(expect.objectContaining({ reason: 'restarting' }) as Refusal);
    expect(storage).toEqual({ settingsReads: 0, reserves: 0 });
    expect(metrics.refused.mock.calls).toEqual([['restarting']]);
    expect(metrics.jobFinished.mock.calls).toEqual([['refused']]);
    expect(stats).toEqual([{ 'refused:restarting': 1 }]);
  });

  it('counts open requests synchronously: a burst is held to the limit before any storage round trip', () => {
    const { policy, storage, metrics } = setup();
    const first = policy.openRequest(asker);
    policy.openRequest(asker);
    expect(() => policy.openRequest(asker)).toThrow(expect.objectContaining({ reason: 'queue_full' }) as Refusal);
    expect(storage).toEqual({ settingsReads: 0, reserves: 0 });
    expect(metrics.refused.mock.calls).toEqual([['queue_full']]);
    // another member has their own count; releasing (twice is harmless) frees exactly one place
    expect(() => policy.openRequest({ ...asker, userId: '2' })).not.toThrow();
    first();
    first();
    policy.openRequest(asker);
    expect(() => policy.openRequest(asker)).toThrow(Refusal);
  });

  it('checks the server’s rules and reserves in the second step, counting a refusal there once', async () => {
    const { policy, storage, stats, metrics } = setup({ settings: { ...newGuildSettings(), paused: { by: '9', at: 0, reason: 'later' } } });
    const release = policy.openRequest(asker);
    await expect(policy.reserve(request('10'), asker)).rejects.toMatchObject({ reason: 'paused' });
    expect(storage).toEqual({ settingsReads: 1, reserves: 0 });
    expect(metrics.refused.mock.calls).toEqual([['paused']]);
    expect(metrics.jobFinished.mock.calls).toEqual([['refused']]);
    expect(stats).toEqual([{ 'refused:paused': 1 }]);
    release();
  });

  it('turns a credit refusal from the store into a counted Refusal', async () => {
    const { policy, metrics } = setup({ reserve: () => Promise.resolve({ ok: false, reason: 'cooldown', retryAt: 60_000 }) });
    await expect(policy.reserve(request('11'), asker)).rejects.toMatchObject({ reason: 'cooldown', retryAt: 60_000 });
    expect(metrics.refused.mock.calls).toEqual([['cooldown']]);
  });

  it('reserves the request’s credits with the expiry it is given', async () => {
    const seen: ReserveInput[] = [];
    const { policy, metrics } = setup({
      reserve: (input) => {
        seen.push(input);
        return Promise.resolve({ ok: false, reason: 'allowance', available: 0, retryAt: 1 });
      },
    });
    await expect(policy.reserve(request('12'), asker, 3_600_000)).rejects.toBeInstanceOf(Refusal);
    expect(seen).toMatchObject([{ reservationId: '12', credits: 1, expiresAt: 3_600_000 }]);
    const admitted = setup();
    const { reservation } = await admitted.policy.reserve(request('13'), asker, 3_600_000);
    expect(reservation).toMatchObject({ id: '13', credits: 1, expiresAt: 3_600_000 });
    expect(admitted.metrics.refused).not.toHaveBeenCalled();
    expect(metrics.refused.mock.calls).toEqual([['allowance']]);
  });

  it('refuses a private request where the server has not allowed private results, before reserving anything', async () => {
    const { policy, storage, metrics } = setup();
    await expect(policy.reserve({ ...request('20'), private: true }, asker)).rejects.toMatchObject({
      reason: 'private',
      message: expect.stringContaining('allow_private') as string,
    });
    expect(storage.reserves).toBe(0);
    expect(metrics.refused.mock.calls).toEqual([['private']]);
    const allowed = setup({ settings: { ...newGuildSettings(), allowPrivate: true } });
    await expect(allowed.policy.reserve({ ...request('21'), private: true }, asker)).resolves.toMatchObject({ reservation: { id: '21' } });
  });

  it('cuts samples and steps the member did not type to the server’s limits, says so, and reserves what is made', async () => {
    const seen: ReserveInput[] = [];
    const strict = { ...newGuildSettings(), maxSamples: 2, maxSteps: 20 };
    const { policy } = setup({
      settings: strict,
      reserve: (input) => {
        seen.push(input);
        return Promise.resolve({ ok: true, reservation: { id: input.reservationId, guildId: '100', userId: '1', credits: input.credits, fromDaily: input.credits, fromBonus: 0, day: 0, createdAt: 0, expiresAt: 1 }, remainingToday: 1, bonus: 0 });
      },
    });
    const preferred = { ...request('30'), params: { ...request('30').params, samples: 4, steps: 40 }, adjustable: ['samples', 'steps'] as const };
    const admitted = await policy.reserve(preferred, asker);
    expect(admitted.params).toMatchObject({ samples: 2, steps: 20 });
    expect(seen.map((input) => input.credits)).toEqual([2]);
    expect(admitted.notes.map((note) => note(translator('en-US')))).toEqual([
      "ℹ️ `samples` 4 (your preference or the style) is over this server's limit: 2 images made.",
      "ℹ️ `steps` 40 (your preference or the style) is over this server's limit: 20 used.",
    ]);
    // the same values typed by the member are refused, not cut
    await expect(policy.reserve({ ...preferred, id: '31', adjustable: [] }, asker)).rejects.toMatchObject({ reason: 'limits' });
    // within the limits nothing changes and nothing is said
    const fits = { ...request('32').params, samples: 2, steps: 20 };
    const within = await policy.reserve({ ...request('32'), params: fits, adjustable: ['samples', 'steps'] }, asker);
    expect(within.notes).toEqual([]);
    expect(within.params).toEqual(fits);
  });

  /** The places every process holds, as Redis would count them; `down` makes every call fail. */
  function fleet() {
    const places = new Map<string, Set<string>>();
    const released: string[] = [];
    const state = { down: false };
    const fleetOpen: FleetOpenRequests = {
      hold: (userId, slotId, max) => {
        if (state.down) return Promise.reject(new Error('Redis is down'));
        const held = places.get(userId) ?? new Set<string>();
        places.set(userId, held);
        if (held.size >= max) return Promise.resolve(false);
        held.add(slotId);
        return Promise.resolve(true);
      },
      release: (userId, slotId) => {
        released.push(slotId);
        places.get(userId)?.delete(slotId);
        return Promise.resolve();
      },
      close: () => undefined,
    };
    return { fleetOpen, places, released, state };
  }

  it('counts the member’s open requests on every process: asked in the first step, checked in the second, before any credit is reserved', async () => {
    const { fleetOpen, places, released } = fleet();
    const { policy, storage, metrics } = setup({ fleetOpen });
    places.set(asker.userId, new Set(['other-process-1', 'other-process-2'])); // at the limit elsewhere
    const refusedRelease = policy.openRequest(asker); // this process alone has room
    await expect(policy.reserve(request('30'), asker)).rejects.toMatchObject({
      reason: 'queue_full',
      message: 'You already have 2 requests waiting or generating. Wait for one to finish (or cancel it) — nothing was charged.',
    });
    expect(storage.reserves).toBe(0);
    expect(metrics.refused.mock.calls).toEqual([['queue_full']]);
    refusedRelease();
    await Promise.resolve();
    expect(released).toEqual([]); // it held no place

    places.get(asker.userId)!.delete('other-process-2');
    const release = policy.openRequest(asker);
    // asked at once, while the interaction is being acknowledged: reserve() finds the answer waiting
    expect(places.get(asker.userId)!.size).toBe(2);
    await policy.reserve(request('31'), asker);
    expect(places.get(asker.userId)!.size).toBe(2);
    release();
    release();
    await vi.waitFor(() => expect(released).toHaveLength(1));
    expect(places.get(asker.userId)).toEqual(new Set(['other-process-1']));
  });

  it('fails closed when the fleet-wide count cannot be reached, and still gives back a place it may have taken', async () => {
    const { fleetOpen, released, state } = fleet();
    const { policy, storage } = setup({ fleetOpen });
    state.down = true;
    const release = policy.openRequest(asker);
    await expect(policy.reserve(request('32'), asker)).rejects.toMatchObject({ reason: 'unavailable' });
    expect(storage.reserves).toBe(0);
    release();
    await vi.waitFor(() => expect(released).toHaveLength(1));
  });

  it('admit does both steps and gives the slot back when refused', async () => {
    const { policy } = setup({ reserve: () => Promise.resolve({ ok: false, reason: 'cooldown', retryAt: 1 }) });
    for (let i = 0; i < 3; i++) await expect(policy.admit(request(`2${i}`), asker)).rejects.toMatchObject({ reason: 'cooldown' });
    // three refusals held no slot: two may still be opened
    policy.openRequest(asker);
    expect(() => policy.openRequest(asker)).not.toThrow();
  });
});

describe('a reservation the member was told failed is undone completely', () => {
  const asker: MemberContext = {
    guildId: '100',
    userId: '1',
    channelId: '200',
    parentChannelId: null,
    roleIds: [],
    canManageGuild: false,
    channelNsfw: false,
  };
  const request = (id: string): ImagineRequest => ({
    id,
    userId: asker.userId,
    guildId: asker.guildId,
    channelId: asker.channelId,
    params: { ...DEFAULTS, prompt: 'a lighthouse', seed: 1 },
    createdAt: Date.now(),
    tokenExpiresAt: Date.now() + 900_000,
    attachmentSizeLimit: 10 * 1024 * 1024,
  });
  const settings = { get: () => Promise.resolve(newGuildSettings()) } as unknown as GuildSettingsRepository;
  const defaults = { dailyCredits: 5, cooldownSeconds: 60, guildDailyCap: 0, maxSamples: 4, maxSteps: 50 };
  const silent = createLogger({ level: 'silent', secrets: [] });

  /** Polls until `fn` stops throwing, or the deadline passes (then its last error is thrown). */
  async function eventually(fn: () => Promise<void>, timeoutMs = 5_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        return await fn();
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }

  it('gives back the credits and the cooldown when the store answers after STORAGE_TIMEOUT_MS', async () => {
    const storage = await openStorage('memory://', { logger: silent });
    try {
      const { quota } = storage;
      const reserve = quota.reserve.bind(quota);
      let answer!: () => void;
      const held = new Promise<void>((resolve) => (answer = resolve));
      // The store takes the credits at once but its answer comes late.
      vi.spyOn(quota, 'reserve').mockImplementationOnce(async (input) => {
        const result = await reserve(input);
        await held;
        return result;
      });
      const policy = new UsagePolicy({ settings, quota, defaults, clock: systemClock, storageTimeoutMs: 50, logger: silent });

      await expect(policy.reserve(request('late'), asker)).rejects.toMatchObject({
        reason: 'unavailable',
        message: expect.stringContaining('Nothing was charged') as string,
      });
      answer();
      await eventually(async () => {
        expect(await quota.usage(asker.guildId, asker.userId, Date.now())).toMatchObject({ usedToday: 0, lastAcceptedAt: undefined });
        expect(await quota.guildUsage(asker.guildId, Date.now())).toBe(0);
      });

      // The member's next request is neither on cooldown nor short of credits.
      await expect(policy.reserve(request('next'), asker)).resolves.toMatchObject({ reservation: { id: 'next' } });
      expect(await quota.usage(asker.guildId, asker.userId, Date.now())).toMatchObject({ usedToday: 1 });
    } finally {
      await storage.close();
    }
  });

  it('keeps trying to cancel while storage is down, waiting longer each time, and stops once it worked', async () => {
    const sleeps: number[] = [];
    let now = 1_000_000;
    const clock = {
      now: () => now,
      sleep: (ms: number) => {
        sleeps.push(ms);
        now += ms;
        return Promise.resolve();
      },
    };
    const cancels: Array<[string, string]> = [];
    let cancelled!: () => void;
    const done = new Promise<void>((resolve) => (cancelled = resolve));
    const quota = {
      reserve: () => Promise.reject(new Error('connection lost')),
      cancel: (guildId: string, id: string) => {
        cancels.push([guildId, id]);
        if (cancels.length < 4) return Promise.reject(new Error('connection lost'));
        cancelled();
        return Promise.resolve({ cancelled: true, refunded: 1 });
      },
      incrementStats: () => Promise.resolve(),
    } as unknown as QuotaStore;
    const policy = new UsagePolicy({ settings, quota, defaults, clock, storageTimeoutMs: 1000, logger: silent });

    await expect(policy.reserve(request('down'), asker)).rejects.toMatchObject({ reason: 'unavailable' });
    await done;
    expect(cancels).toEqual(Array.from({ length: 4 }, () => [asker.guildId, 'down']));
    expect(sleeps).toHaveLength(3);
    expect(sleeps[1]).toBeGreaterThan(sleeps[0]!);
    expect(sleeps[2]).toBeGreaterThan(sleeps[1]!);
  });
});
