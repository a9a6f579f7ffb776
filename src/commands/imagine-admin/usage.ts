/** `/imagine-admin usage`: the server's usage, or one member's credits and recent prompts. */
import { ApplicationCommandOptionType, GuildMember, PermissionFlagsBits, PermissionsBitField, escapeMarkdown } from 'discord.js';
import { z } from 'zod';
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

const REFUSAL_LABELS: Record<RefusalReason, string> = {
  paused: 'generation paused',
  blocked: 'blocked member',
  channel: 'channel not allowed',
  banned_word: 'banned word',
  nsfw: 'NSFW',
  limits: 'over server limits',
  cooldown: 'cooldown',
  allowance: 'out of credits',
  guild_cap: 'server budget used up',
  unavailable: 'storage unavailable',
  queue_full: 'too many waiting requests',
  restarting: 'bot restarting',
  segmind_down: 'Segmind outage',
  operator_pause: 'paused by operator',
  private: 'private results not allowed',
};
const refusalLabel = (reason: string) => REFUSAL_LABELS[reason as RefusalReason] ?? reason;

export function usageHandlers(deps: AdminDeps, { effective }: AdminTools): Record<PathOf<typeof usageSubcommand>, AdminHandler> {
  const { history, quota, policy, clock } = deps;

  return {
    usage: handler(z.object({ member: snowflake.optional() }), (context, { member }) =>
      member === undefined ? serverUsage(context) : memberUsage(context, member),
    ),
  };

  async function serverUsage({ guildId, settings }: AdminContext): Promise<string> {
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

    const lines = [
      `**/imagine usage in this server** (UTC days)`,
      `Images today: **${perDay[0]?.images ?? 0}** · last ${USAGE_DAYS} days: **${totals.get('images') ?? 0}**`,
      `Per day, newest first: ${perDay.map((stats) => stats.images ?? 0).join(' · ')}`,
      `Server budget today: ${cap > 0 ? `**${usedToday}** of ${cap} credits used` : `**${usedToday}** credits used (no cap)`}`,
      `Credits refunded (${USAGE_DAYS} days): **${totals.get('refunded') ?? 0}**`,
      `Top members (${USAGE_DAYS} days): ${top.length === 0 ? 'none' : top.map(([id, n]) => `${user(id)} ${n}`).join(' · ')}`,
      `Flagged images (image check): today **${perDay[0]?.flagged ?? 0}** · last ${USAGE_DAYS} days: **${totals.get('flagged') ?? 0}**${
        flaggedBy.length === 0 ? '' : ` — by member: ${flaggedBy.map(([id, n]) => `${user(id)} ${n}`).join(' · ')}`
      }`,
      `Refused requests (${USAGE_DAYS} days): ${
        refused.length === 0 ? 'none' : `**${refused.reduce((t, [, n]) => t + n, 0)}**\n${refused.map(([reason, n]) => `• ${refusalLabel(reason)}: ${n}`).join('\n')}`
      }`,
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
    const lines = [
      `**/imagine usage of ${user(memberId)}**`,
      `Today: **${view.remainingToday}** of ${view.allowance} credits left — resets ${relative(view.resetsAt)}`,
      `Allowance: ${view.allowance} per UTC day (${allowanceSource(settings, memberId, target.roleIds)})`,
      `Bonus: **${view.bonus}**`,
      `Cooldown: ${view.cooldownUntil === undefined ? 'none' : `ends ${relative(view.cooldownUntil)}`}`,
      `Flagged images (image check): today **${flagged[0] ?? 0}** · last ${USAGE_DAYS} days: **${flagged.reduce((t, n) => t + n, 0)}**`,
    ];
    const block = settings.blocked[memberId];
    if (block) lines.push(`⛔ Blocked by ${user(block.by)} ${relative(block.at)}${block.reason ? ` — ${escapeMarkdown(block.reason)}` : ''}`);
    if (!context.interaction.options.getMember('member'))
      lines.push('_Not a member of this server any more (or Discord did not send their roles): role overrides not shown._');
    const recent = [...entries].sort((a, b) => b.at - a.at);
    if (recent.length === 0) {
      lines.push('No prompts recorded.');
      return lines.join('\n');
    }
    lines.push(`**Recent prompts** (newest first)`);
    let content = lines.join('\n');
    for (const [i, entry] of recent.entries()) {
      const seeds = entry.seeds.map((seed) => code(String(seed))).join(', ');
      // 🔒: a private result, which only the member saw; the style is named, as its expansion is not the member's words.
      const marks = `${entry.private ? '🔒 private · ' : ''}${entry.style === undefined ? '' : `style ${escapeMarkdown(entry.style)} · `}`;
      const next = `\n${marks}${relative(entry.at)} in ${channel(entry.channelId)} · seed${entry.seeds.length === 1 ? '' : 's'} ${seeds}\n> ${escapeMarkdown(truncate(entry.prompt, 200))}`;
      const more = `\n… and ${recent.length - i} more`;
      if (content.length + next.length + more.length > MAX_REPLY - 50) return content + more;
      content += next;
    }
    return content;
  }
}

function allowanceSource(settings: GuildSettings, memberId: string, roleIds: readonly string[]): string {
  if (settings.memberAllowances[memberId] !== undefined) return 'personal allowance';
  const roles = roleIds.filter((id) => settings.roleOverrides[id]?.dailyCredits != null);
  if (roles.length > 0) return `role override: ${roles.map(roleMention).join(', ')}`;
  return settings.dailyCredits === null ? 'bot default' : 'server setting';
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
