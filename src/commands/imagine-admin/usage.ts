/** `/imagine-admin usage`: the server's usage, or one member's credits and recent prompts. */
import { ApplicationCommandOptionType, GuildMember, PermissionFlagsBits, PermissionsBitField, escapeMarkdown } from 'discord.js';
import { z } from 'zod';
import type { Translator } from '../../i18n/i18n.js';
import type { GuildSettings } from '../../services/usage/guild-settings.js';
import { dayOf } from '../../services/storage/quota/quota-store.js';
import type { MemberContext, RefusalReason } from '../../services/usage/usage-policy.js';
import { MAX_REPLY, channel, code, relative, roleMention, truncate, user } from './format.js';
import { handler, type AdminContext, type AdminDeps, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { snowflake, subcommand } from './options.js';

const USAGE_DAYS = 7;
const TOP_USERS = 5;

export const usageSubcommand = subcommand('usage', 'Server usage, or one member’s credits and prompts', [
  { type: ApplicationCommandOptionType.User, name: 'member', description: 'The member (default: whole server)' },
]);

const REFUSAL_LABELS = {
  paused: 'admin:usage.refusals.paused',
  blocked: 'admin:usage.refusals.blocked',
  channel: 'admin:usage.refusals.channel',
  banned_word: 'admin:usage.refusals.bannedWord',
  nsfw: 'admin:usage.refusals.nsfw',
  limits: 'admin:usage.refusals.limits',
  cooldown: 'admin:usage.refusals.cooldown',
  allowance: 'admin:usage.refusals.allowance',
  guild_cap: 'admin:usage.refusals.guildCap',
  unavailable: 'admin:usage.refusals.unavailable',
  queue_full: 'admin:usage.refusals.queueFull',
  restarting: 'admin:usage.refusals.restarting',
  segmind_down: 'admin:usage.refusals.segmindDown',
  operator_pause: 'admin:usage.refusals.operatorPause',
  private: 'admin:usage.refusals.private',
} as const satisfies Record<RefusalReason, string>;
const refusalLabel = (t: Translator, reason: string) => {
  const key = (REFUSAL_LABELS as Partial<Record<string, (typeof REFUSAL_LABELS)[RefusalReason]>>)[reason];
  return key === undefined ? reason : t(key);
};

export function usageHandlers(deps: AdminDeps, { effective }: AdminTools): Record<PathOf<typeof usageSubcommand>, AdminHandler> {
  const { history, quota, policy, clock } = deps;

  return {
    usage: handler(z.object({ member: snowflake.optional() }), (context, { member }) =>
      member === undefined ? serverUsage(context) : memberUsage(context, member),
    ),
  };

  async function serverUsage({ t, guildId, settings }: AdminContext): Promise<string> {
    const now = clock.now();
    const today = dayOf(now);
    const days = Array.from({ length: USAGE_DAYS }, (_, i) => today - i);
    const [perDay, usedToday] = await Promise.all([Promise.all(days.map((day) => quota.stats(guildId, day))), quota.guildUsage(guildId, now)]);
    const totals = new Map<string, number>();
    for (const stats of perDay) for (const [key, value] of Object.entries(stats)) totals.set(key, (totals.get(key) ?? 0) + value);
    const withPrefix = (prefix: string) =>
      [...totals]
        .filter(([key, value]) => key.startsWith(prefix) && value > 0)
        .map(([key, value]) => [key.slice(prefix.length), value] as const)
        .sort((a, b) => b[1] - a[1]);
    const top = withPrefix('user:').slice(0, TOP_USERS);
    const flaggedBy = withPrefix('flagged:').slice(0, TOP_USERS);
    const refused = withPrefix('refused:');
    const cap = effective(settings).guildDailyCap;

    const days7 = String(USAGE_DAYS);
    const perMember = (entries: ReadonlyArray<readonly [string, number]>) => entries.map(([id, n]) => `${user(id)} ${n}`).join(' · ');
    const refusedTotal = refused.reduce((total, [, n]) => total + n, 0);
    const lines = [
      t('admin:usage.server.title'),
      t('admin:usage.server.images', { today: String(perDay[0]?.images ?? 0), days: days7, total: String(totals.get('images') ?? 0) }),
      t('admin:usage.server.perDay', { list: perDay.map((stats) => stats.images ?? 0).join(' · ') }),
      cap > 0 ? t('admin:usage.server.budget', { used: String(usedToday), cap: String(cap) }) : t('admin:usage.server.budgetNoCap', { used: String(usedToday) }),
      t('admin:usage.server.refunded', { days: days7, n: String(totals.get('refunded') ?? 0) }),
      top.length === 0 ? t('admin:usage.server.topNone', { days: days7 }) : t('admin:usage.server.top', { days: days7, list: perMember(top) }),
      t(flaggedBy.length === 0 ? 'admin:usage.server.flagged' : 'admin:usage.server.flaggedBy', {
        today: String(perDay[0]?.flagged ?? 0),
        days: days7,
        total: String(totals.get('flagged') ?? 0),
        list: perMember(flaggedBy),
      }),
      refused.length === 0
        ? t('admin:usage.server.refusedNone', { days: days7 })
        : `${t('admin:usage.server.refused', { days: days7, n: String(refusedTotal) })}\n${refused.map(([reason, n]) => `• ${refusalLabel(t, reason)}: ${n}`).join('\n')}`,
    ];
    return lines.join('\n');
  }

  async function memberUsage(context: AdminContext, memberId: string): Promise<string> {
    const { guildId, settings } = context;
    const target = targetMemberContext(context, memberId);
    const today = dayOf(clock.now());
    const [view, entries, perDay] = await Promise.all([
      policy.usageView(target),
      history.list(guildId, memberId),
      Promise.all(Array.from({ length: USAGE_DAYS }, (_, i) => quota.stats(guildId, today - i))),
    ]);
    const flagged = perDay.map((stats) => stats[`flagged:${memberId}`] ?? 0);
    const { t } = context;
    const lines: string[] = [
      t('admin:usage.member.title', { member: user(memberId) }),
      t('admin:usage.member.today', { left: String(view.remainingToday), allowance: String(view.allowance), resets: relative(view.resetsAt) }),
      t('admin:usage.member.allowance', { allowance: String(view.allowance), source: allowanceSource(t, settings, memberId, target.roleIds) }),
      t('admin:usage.member.bonus', { n: String(view.bonus) }),
      view.cooldownUntil === undefined ? t('admin:usage.member.cooldownNone') : t('admin:usage.member.cooldown', { ends: relative(view.cooldownUntil) }),
      t('admin:usage.member.flagged', { today: String(flagged[0] ?? 0), days: String(USAGE_DAYS), total: String(flagged.reduce((total, n) => total + n, 0)) }),
    ];
    const block = settings.blocked[memberId];
    if (block) {
      const who = { by: user(block.by), when: relative(block.at) };
      lines.push(block.reason ? t('admin:usage.member.blockedWithReason', { ...who, reason: block.reason }) : t('admin:usage.member.blocked', who));
    }
    if (!context.interaction.options.getMember('member')) lines.push(t('admin:usage.member.notMember'));
    const recent = [...entries].sort((a, b) => b.at - a.at);
    if (recent.length === 0) {
      lines.push(t('admin:usage.member.noPrompts'));
      return lines.join('\n');
    }
    lines.push(t('admin:usage.member.recent'));
    let content = lines.join('\n');
    for (const [i, entry] of recent.entries()) {
      const seeds = entry.seeds.map((seed) => code(String(seed))).join(', ');
      // 🔒: a private result, which only the member saw; the style is named, as its expansion is not the member's words.
      const marks = `${entry.private ? t('admin:usage.member.private') : ''}${entry.style === undefined ? '' : t('admin:usage.member.style', { style: entry.style })}`;
      const where = t('admin:usage.member.entry', { when: relative(entry.at), channel: channel(entry.channelId), count: entry.seeds.length, seeds });
      const next = `\n${marks}${where}\n> ${escapeMarkdown(truncate(entry.prompt, 200))}`;
      const more = `\n${t('admin:list.more', { n: String(recent.length - i) })}`;
      if (content.length + next.length + more.length > MAX_REPLY - 50) return content + more;
      content += next;
    }
    return content;
  }
}

function allowanceSource(t: Translator, settings: GuildSettings, memberId: string, roleIds: readonly string[]): string {
  if (settings.memberAllowances[memberId] !== undefined) return t('admin:usage.member.sourcePersonal');
  const roles = roleIds.filter((id) => settings.roleOverrides[id]?.dailyCredits != null);
  if (roles.length > 0) return t('admin:usage.member.sourceRoles', { roles: roles.map(roleMention).join(', ') });
  return settings.dailyCredits === null ? t('admin:usage.member.sourceDefault') : t('admin:usage.member.sourceServer');
}

/** The member named in `member:` as the policy sees them: roles and permissions from what Discord resolved. */
function targetMemberContext(context: AdminContext, memberId: string): MemberContext {
  const resolved = context.interaction.options.getMember('member');
  let roleIds: string[] = [];
  let canManageGuild = false;
  if (resolved instanceof GuildMember) {
    roleIds = [...resolved.roles.cache.keys()];
    canManageGuild = resolved.permissions.has(PermissionFlagsBits.ManageGuild);
  } else if (resolved) {
    roleIds = resolved.roles;
    canManageGuild = new PermissionsBitField(BigInt(resolved.permissions)).has(PermissionFlagsBits.ManageGuild);
  }
  return {
    guildId: context.guildId,
    userId: memberId,
    channelId: context.interaction.channelId,
    parentChannelId: null,
    roleIds,
    canManageGuild,
    channelNsfw: false,
  };
}
