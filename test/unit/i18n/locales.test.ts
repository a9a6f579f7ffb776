import { describe, expect, it } from 'vitest';
import { localeFor, resolveLocale, SUPPORTED_LOCALES } from '../../../src/i18n/locales.js';

describe('resolveLocale: which of our languages a Discord locale is', () => {
  it.each(SUPPORTED_LOCALES)('keeps a supported locale as it is (%s)', (locale) => {
    expect(resolveLocale(locale)).toBe(locale);
  });

  it('reads Latin-American Spanish as Spanish and British English as English', () => {
    expect(resolveLocale('es-419')).toBe('es-ES');
    expect(resolveLocale('en-GB')).toBe('en-US');
  });

  it.each(['tr', 'zh-TW', 'pt-PT', 'fr-CA', 'EN-us', 'ja-JP', ''])('answers %j in English: no guessing from a prefix', (locale) => {
    expect(resolveLocale(locale)).toBe('en-US');
  });

  it('answers in English when Discord sends no locale', () => {
    expect(resolveLocale(null)).toBe('en-US');
    expect(resolveLocale(undefined)).toBe('en-US');
  });
});

describe('localeFor: whose language a text is in', () => {
  const member = { memberLocale: 'ja', guildLocale: 'de' };

  it("answers a member's interaction in the member's language", () => {
    expect(localeFor({ ...member, serverLanguage: 'auto' }, 'member')).toBe('ja');
  });

  it("posts in the channel, when nobody interacted, in the server's language", () => {
    expect(localeFor({ ...member, serverLanguage: 'auto' }, 'channel')).toBe('de');
  });

  it('speaks the language moderators fixed to everyone, in replies and channel posts alike', () => {
    expect(localeFor({ ...member, serverLanguage: 'pt-BR' }, 'member')).toBe('pt-BR');
    expect(localeFor({ ...member, serverLanguage: 'pt-BR' }, 'channel')).toBe('pt-BR');
  });

  it('treats an unknown server language (settings not read) as auto', () => {
    expect(localeFor(member, 'member')).toBe('ja');
    expect(localeFor({ ...member, serverLanguage: null }, 'channel')).toBe('de');
  });

  it('falls back to English for an unsupported member or server locale', () => {
    expect(localeFor({ memberLocale: 'tr', guildLocale: 'zh-TW' }, 'member')).toBe('en-US');
    expect(localeFor({ memberLocale: 'tr', guildLocale: 'zh-TW' }, 'channel')).toBe('en-US');
    expect(localeFor({}, 'channel')).toBe('en-US');
  });
});
