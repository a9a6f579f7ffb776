/** The languages the bot speaks. Adding one: its catalog folder, one line here (and in catalog/index.ts: tsc points there). */
export const SUPPORTED_LOCALES = ['en-US', 'es-ES', 'pt-BR', 'fr', 'de', 'ja', 'ko', 'zh-CN'] as const;
export type Locale = (typeof SUPPORTED_LOCALES)[number];

/** The catalog every other locale is checked against, and what anything unsupported falls back to. */
export const SOURCE_LOCALE: Locale = 'en-US';

/** What moderators may fix a server's language to; `auto` follows each member (and the server's Discord locale). */
export const SERVER_LANGUAGES = ['auto', ...SUPPORTED_LOCALES] as const;
export type ServerLanguage = (typeof SERVER_LANGUAGES)[number];

const SUPPORTED: ReadonlySet<string> = new Set(SUPPORTED_LOCALES);

/**
 * Discord locales that are close enough to one we have. Only regional variants of the same written language: a
 * Taiwanese member reads Traditional Chinese, and zh-CN's Simplified text would be a worse guess than English.
 */
const NEAREST: Readonly<Record<string, Locale>> = { 'es-419': 'es-ES', 'en-GB': 'en-US' };

export function isLocale(value: string): value is Locale {
  return SUPPORTED.has(value);
}

/** The supported locale for a Discord locale (`interaction.locale`, `guild_locale`); anything else is English. */
export function resolveLocale(discordLocale: string | null | undefined): Locale {
  if (!discordLocale) return SOURCE_LOCALE;
  if (isLocale(discordLocale)) return discordLocale;
  return NEAREST[discordLocale] ?? SOURCE_LOCALE;
}

export interface LocaleSources {
  /** `interaction.locale`: the member's Discord language. */
  memberLocale?: string | null | undefined;
  /** `interaction.guildLocale` / the guild's `preferred_locale`. */
  guildLocale?: string | null | undefined;
  /** The server's `language` setting; `auto` when not known (e.g. before settings are read). */
  serverLanguage?: ServerLanguage | null | undefined;
}

/**
 * Which language to speak. A language moderators fixed wins; otherwise a text that answers a member's interaction
 * (or only they see) is in their language, and a channel post nobody interacted with is in the server's.
 */
export function localeFor(sources: LocaleSources, audience: 'member' | 'channel'): Locale {
  const { memberLocale, guildLocale, serverLanguage } = sources;
  if (serverLanguage && serverLanguage !== 'auto') return serverLanguage;
  return resolveLocale(audience === 'member' ? memberLocale : guildLocale);
}
