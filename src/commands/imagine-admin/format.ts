/** Formatting shared by the `/imagine-admin` subjects: mentions, code spans, counts, and fitting Discord's 2000 characters. */
import type { Translator } from '../../i18n/i18n.js';
import type { GuildSettings } from '../../services/usage/guild-settings.js';

/** Discord caps a reply at 2000 characters. */
export const MAX_REPLY = 2000;

export const user = (id: string) => `<@${id}>`;
export const roleMention = (id: string) => `<@&${id}>`;
export const channel = (id: string) => `<#${id}>`;
export const relative = (epochMs: number) => `<t:${Math.floor(epochMs / 1000)}:R>`;
export const code = (value: string) => `\`${value.replace(/`/g, 'ˋ')}\``;
export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

const englishMore = (count: number) => `… and ${count} more`;
/** `… and 3 more` in the reader's language. */
export const moreOf = (t: Translator) => (count: number) => t('admin:list.more', { n: String(count) });

/** Joins as many items as fit in `budget` characters, then says how many were left out. */
export function fitList(items: readonly string[], separator: string, budget: number, more: (count: number) => string = englishMore): string {
  let out = '';
  for (const [i, item] of items.entries()) {
    const next = out === '' ? item : `${out}${separator}${item}`;
    const rest = items.length - i - 1;
    const tail = rest > 0 ? `${separator}${more(rest)}` : '';
    if (next.length + tail.length > budget) return out === '' ? more(items.length) : `${out}${separator}${more(items.length - i)}`;
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

export function describeOverride(t: Translator, override: { dailyCredits: number | null; cooldownSeconds: number | null }): string {
  const parts = [
    override.dailyCredits === null ? t('admin:shown.overrideServerAllowance') : t('admin:shown.overrideCredits', { count: override.dailyCredits }),
    override.cooldownSeconds === null ? t('admin:shown.overrideServerCooldown') : t('admin:shown.overrideCooldown', { n: String(override.cooldownSeconds) }),
  ];
  return parts.join(', ');
}

export function describeNsfwPolicy(t: Translator, settings: GuildSettings): string {
  return settings.nsfwPolicy === 'age_restricted' ? t('admin:shown.nsfwAgeRestricted') : t('admin:shown.nsfwOff');
}
