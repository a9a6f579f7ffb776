import { describe, expect, it } from 'vitest';
import { systemClock } from '../../src/clock.js';
import { createLogger } from '../../src/logger.js';
import { newGuildSettings, type GuildSettingsRepository } from '../../src/services/guild-settings.js';
import type { QuotaStore } from '../../src/services/quota/quota-store.js';
import { UsagePolicy } from '../../src/services/usage-policy.js';

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
