import { describe, expect, it } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/logger.js';
import type { ImagineRequest } from '../../../src/services/generation/imagine-request.js';
import { DEFAULTS } from '../../../src/services/segmind/flux-params.js';
import { openStorage } from '../../../src/services/storage/open-storage.js';
import {
  allowanceUnderCeiling,
  newGuildSettings,
  serverCapUnderCeiling,
  type GuildSettings,
  type GuildSettingsRepository,
} from '../../../src/services/usage/guild-settings.js';
import type { QuotaStore } from '../../../src/services/storage/quota/quota-store.js';
import { UsagePolicy, type MemberContext } from '../../../src/services/usage/usage-policy.js';

const silent = createLogger({ level: 'silent', secrets: [] });
const base = { dailyCredits: 20, cooldownSeconds: 0, guildDailyCap: 0, maxSamples: 4, maxSteps: 50 };
const member = { userId: '1', roleIds: ['10'] as string[], canManageGuild: false };

function policyWith(ceilings: { maxDailyCredits?: number; maxGuildDailyCredits?: number }, settings?: GuildSettings) {
  const repository = { get: () => Promise.resolve(settings ?? newGuildSettings()) } as unknown as GuildSettingsRepository;
  return (quota: QuotaStore = {} as QuotaStore) =>
    new UsagePolicy({ settings: repository, quota, defaults: { ...base, ...ceilings }, clock: systemClock, storageTimeoutMs: 1000, logger: silent });
}

describe('the operator’s ceilings', () => {
  it('hold an allowance at MAX_DAILY_CREDITS, and change nothing when it is 0', () => {
    expect(allowanceUnderCeiling(50, 10)).toBe(10);
    expect(allowanceUnderCeiling(3, 10)).toBe(3);
    expect(allowanceUnderCeiling(50, 0)).toBe(50);
  });

  it('hold a server cap at MAX_GUILD_DAILY_CREDITS, where a cap of 0 ("no cap") means the ceiling', () => {
    expect(serverCapUnderCeiling(0, 100)).toBe(100);
    expect(serverCapUnderCeiling(500, 100)).toBe(100);
    expect(serverCapUnderCeiling(40, 100)).toBe(40);
    expect(serverCapUnderCeiling(0, 0)).toBe(0);
    expect(serverCapUnderCeiling(500, 0)).toBe(500);
  });

  it('cap every way moderators give credits: server setting, role override, personal allowance', () => {
    const policy = policyWith({ maxDailyCredits: 10, maxGuildDailyCredits: 100 })();
    const server = { ...newGuildSettings(), dailyCredits: 50, guildDailyCap: 0 };
    expect(policy.limitsFor({ ...member, roleIds: [] }, server)).toMatchObject({ dailyAllowance: 10, dailyCredits: 10, guildDailyCap: 100 });
    const role = { ...newGuildSettings(), roleOverrides: { '10': { dailyCredits: 500, cooldownSeconds: null } } };
    expect(policy.limitsFor(member, role).dailyAllowance).toBe(10);
    const personal = { ...newGuildSettings(), memberAllowances: { '1': 99 } };
    expect(policy.limitsFor(member, personal).dailyAllowance).toBe(10);
    // below the ceiling, the moderators' choice stands
    expect(policy.limitsFor(member, { ...newGuildSettings(), memberAllowances: { '1': 4 }, guildDailyCap: 30 })).toMatchObject({
      dailyAllowance: 4,
      guildDailyCap: 30,
    });
    expect(policy.ceilings).toEqual({ dailyCredits: 10, guildDailyCap: 100 });
  });

  it('also cap the bot defaults, and leave everything as set when no ceiling is configured', () => {
    expect(policyWith({ maxDailyCredits: 5 })().limitsFor(member, newGuildSettings()).dailyAllowance).toBe(5);
    const open = policyWith({})();
    expect(open.limitsFor(member, { ...newGuildSettings(), memberAllowances: { '1': 99 }, guildDailyCap: 0 })).toMatchObject({
      dailyAllowance: 99,
      guildDailyCap: 0,
    });
    expect(open.ceilings).toEqual({ dailyCredits: 0, guildDailyCap: 0 });
  });

  describe('at reserve time, against a real store', () => {
    const asker: MemberContext = {
      guildId: '100',
      userId: '1',
      channelId: '200',
      parentChannelId: null,
      roleIds: [],
      canManageGuild: false,
      channelNsfw: false,
    };
    const request = (id: string, samples: number): ImagineRequest => ({
      id,
      userId: asker.userId,
      guildId: asker.guildId,
      channelId: asker.channelId,
      params: { ...DEFAULTS, prompt: 'a lighthouse', seed: 1, samples },
      createdAt: Date.now(),
      tokenExpiresAt: Date.now() + 900_000,
      attachmentSizeLimit: 10 * 1024 * 1024,
    });

    it('refuses past MAX_DAILY_CREDITS a personal allowance stored before the ceiling was set', async () => {
      const storage = await openStorage('memory://', { logger: silent });
      try {
        const policy = policyWith({ maxDailyCredits: 3 }, { ...newGuildSettings(), memberAllowances: { '1': 50 } })(storage.quota);
        await expect(policy.reserve(request('a', 3), asker)).resolves.toMatchObject({ reservation: { id: 'a' } });
        await expect(policy.reserve(request('b', 1), asker)).rejects.toMatchObject({ reason: 'allowance' });
        expect(await storage.quota.usage(asker.guildId, asker.userId, Date.now())).toMatchObject({ usedToday: 3 });
      } finally {
        await storage.close();
      }
    });

    it('refuses past MAX_GUILD_DAILY_CREDITS in a server whose moderators set "no cap"', async () => {
      const storage = await openStorage('memory://', { logger: silent });
      try {
        const policy = policyWith({ maxGuildDailyCredits: 4 }, { ...newGuildSettings(), guildDailyCap: 0 })(storage.quota);
        await expect(policy.reserve(request('a', 4), asker)).resolves.toMatchObject({ reservation: { id: 'a' } });
        await expect(policy.reserve(request('b', 1), { ...asker, userId: '2' })).rejects.toMatchObject({ reason: 'guild_cap' });
        expect(await storage.quota.guildUsage(asker.guildId, Date.now())).toBe(4);
      } finally {
        await storage.close();
      }
    });
  });
});
