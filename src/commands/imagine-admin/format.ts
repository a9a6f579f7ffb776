/** Formatting shared by the `/imagine-admin` subjects: mentions, code spans, counts, and fitting Discord's 2000 characters. */
import type { GuildSettings } from '../../services/usage/guild-settings.js';

/** Discord caps a reply at 2000 characters. */
export const MAX_REPLY = 2000;

export const user = (id: string) => `<@${id}>`;
export const roleMention = (id: string) => `<@&${id}>`;
export const channel = (id: string) => `<#${id}>`;
export const relative = (epochMs: number) => `<t:${Math.floor(epochMs / 1000)}:R>`;
export const code = (value: string) => `\`${value.replace(/`/g, 'ˋ')}\``;
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** Joins as many items as fit in `budget` characters, then says how many were left out. */
export function fitList(items: readonly string[], separator: string, budget: number): string {
  let out = '';
  for (const [i, item] of items.entries()) {
    const next = out === '' ? item : `${out}${separator}${item}`;
    const rest = items.length - i - 1;
    const tail = rest > 0 ? `${separator}… and ${rest} more` : '';
    if (next.length + tail.length > budget) return `${out}${separator}… and ${items.length - i} more`;
    out = next;
  }
  return out;
}

/** Never more than Discord's 2000 characters. */
export function fitReply(content: string): string {
  return content.length <= MAX_REPLY ? content : `${content.slice(0, MAX_REPLY - 1)}…`;
}

export function truncate(value: string, max: number): string {
  return value.length > max ? `${value.slice(0, max - 1)}…` : value;
}

export function describeOverride(override: { dailyCredits: number | null; cooldownSeconds: number | null }): string {
  const parts = [
    override.dailyCredits === null ? 'server allowance' : `${plural(override.dailyCredits, 'credit')}/day`,
    override.cooldownSeconds === null ? 'server cooldown' : `cooldown ${override.cooldownSeconds} s`,
  ];
  return parts.join(', ');
}

export function describeNsfwPolicy(settings: GuildSettings): string {
  return settings.nsfwPolicy === 'age_restricted' ? 'allowed only in age-restricted channels' : 'refused everywhere';
}
