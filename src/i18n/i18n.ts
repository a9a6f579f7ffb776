import { escapeMarkdown } from 'discord.js';
import { createInstance, type TFunction } from 'i18next';
import { NAMESPACES, resources, type Catalog } from './catalog/index.js';
import { SOURCE_LOCALE, SUPPORTED_LOCALES, localeFor, type Locale } from './locales.js';

declare module 'i18next' {
  interface CustomTypeOptions {
    defaultNS: 'common';
    resources: Catalog;
    returnNull: false;
    // A misspelt key, or a `{{value}}` the call does not pass, fails the typecheck.
    strictKeyChecks: true;
    strictInterpolationChecks: true;
  }
}

/** A `t` bound to one locale: `t('common:errors.buttonGone')`, `t('imagine:…', { count, prompt })`. */
export type Translator = TFunction<typeof NAMESPACES>;

/**
 * A value as Discord shows it literally: everything it reads as markup is escaped, headings, lists and masked links
 * included (which `escapeMarkdown` leaves alone by default). A number is never markup. Numbered lists are escaped here
 * rather than by `escapeMarkdown`, whose rule also takes a decimal ("3.5" → "3\.5"); a list needs "1. " with a space.
 */
function escapeForDiscord(value: unknown): string {
  if (typeof value !== 'string') return String(value);
  return escapeMarkdown(value, { heading: true, bulletedList: true, maskedLink: true }).replaceAll(/^( *\d+)\.(?= )/gm, '$1\\.');
}

const i18n = createInstance();
// Synchronous: every catalog is in `resources`, so `init` has nothing to wait for and `t` works on the next line.
void i18n.init({
  initAsync: false,
  resources,
  ns: NAMESPACES,
  defaultNS: 'common',
  supportedLngs: SUPPORTED_LOCALES,
  // The exact locale, then en-US: no `pt` for `pt-BR` nor `zh` for `zh-CN` to look in (there are no such catalogs).
  load: 'currentOnly',
  lng: SOURCE_LOCALE,
  fallbackLng: SOURCE_LOCALE,
  returnNull: false,
  returnEmptyString: false,
  interpolation: {
    // Every value a text is given is escaped for Discord markdown, so a member's prompt or name is shown as typed and
    // never read as bold, a link or a heading. `{{- value}}` opts out, for values the code built (mentions, <t:…:R>).
    escapeValue: true,
    escape: escapeForDiscord,
    useRawValueToEscape: true,
    // A value that itself looks like `{{x}}` or `$t(…)` is left as text, not interpolated or nested.
    skipOnVariables: true,
  },
});

// Typed by `Translator` below; the keys were checked where `t` was called.
const lookup = i18n.t.bind(i18n) as unknown as (key: string | string[], options: Record<string, unknown>) => string;

/**
 * One `t` per locale, made once: `translator()` is a map lookup on the interaction hot path. It calls `i18n.t` with
 * the locale rather than using `getFixedT`'s function, which copies every i18next option on each call (measured on
 * Node 20 with these catalogs: 4 instead of 8 µs a text, 10 instead of 16 µs with one value, 19 instead of 30 with an
 * escaped one).
 */
function fixedTranslator(lng: Locale): Translator {
  // A text is a function of its key and values, and the catalogs are fixed at start-up: a result's labels, step counts,
  // guidance and queue positions repeat, and i18next takes 10–40 µs a text (plural rules, interpolation, escaping), so
  // texts without values or with a few short ones are remembered. Members' own texts (prompts, reasons) are long and
  // never repeat: looked up each time. Bounded: emptied when full.
  const remembered = new Map<string, string>();
  const t = (key: string | string[], options?: string | Record<string, unknown>) => {
    const memo = typeof key === 'string' ? memoKey(key, options) : undefined;
    if (memo === undefined) return lookup(key, typeof options === 'string' ? { defaultValue: options, lng } : { ...options, lng });
    let text = remembered.get(memo);
    if (text === undefined) {
      text = lookup(key, { ...(options as Record<string, unknown> | undefined), lng });
      if (remembered.size >= MAX_REMEMBERED_TEXTS) remembered.clear();
      remembered.set(memo, text);
    }
    return text;
  };
  return t as unknown as Translator;
}

const MAX_REMEMBERED_TEXTS = 5_000;

/** The cache key of a text worth remembering (no values, or at most four numbers and short strings), else undefined. */
function memoKey(key: string, options: string | Record<string, unknown> | undefined): string | undefined {
  if (options === undefined) return key;
  if (typeof options === 'string') return undefined;
  let memo = key;
  let values = 0;
  for (const name in options) {
    const value = options[name];
    if (++values > 4) return undefined;
    if (typeof value === 'number') memo += `\u0000${name}=${value}`;
    else if (typeof value === 'string' && value.length <= 24) memo += `\u0000${name}:${value}`;
    else return undefined;
  }
  return memo;
}
const translators = new Map<Locale, Translator>(SUPPORTED_LOCALES.map((locale) => [locale, fixedTranslator(locale)]));

/** The `t` for `locale` (see locales.ts `localeFor` for which locale to ask for). Cheap: call it per interaction. */
export function translator(locale: Locale): Translator {
  return translators.get(locale) ?? (translators.get(SOURCE_LOCALE) as Translator);
}

/**
 * The `t` for what answers a member's interaction, when the server's fixed language is not at hand (it is in the
 * server's settings: with them, use `translator(localeFor({ …, serverLanguage }, 'member'))`).
 */
export function memberTranslator(interaction: { locale: string; guildLocale: string | null }): Translator {
  return translator(localeFor({ memberLocale: interaction.locale, guildLocale: interaction.guildLocale }, 'member'));
}
