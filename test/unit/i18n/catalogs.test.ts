import { describe, expect, it } from 'vitest';
import { resources, NAMESPACES } from '../../../src/i18n/catalog/index.js';
import type enUSCommon from '../../../src/i18n/catalog/en-US/common.js';
import { translator } from '../../../src/i18n/i18n.js';
import { SOURCE_LOCALE, SUPPORTED_LOCALES } from '../../../src/i18n/locales.js';
import type { Translation } from '../../../src/i18n/translation.js';

/**
 * Written over `resources` as a whole, so every key any namespace adds is checked in every locale without this file
 * changing. The typecheck already catches a missing or stray key; these checks are what it cannot see.
 */

type Tree = { readonly [key: string]: string | Tree };

const PLURAL = /^(.*)_(zero|one|two|few|many|other)$/;

/** Every string in a catalog file, by its dotted key. */
function flatten(tree: Tree, prefix = ''): Map<string, string> {
  const out = new Map<string, string>();
  for (const [key, value] of Object.entries(tree)) {
    const path = prefix ? `${prefix}.${key}` : key;
    if (typeof value === 'string') out.set(path, value);
    else for (const [k, v] of flatten(value, path)) out.set(k, v);
  }
  return out;
}

/** A key as the code writes it: a plural form counts as its family (`images_one` → `images`). */
const familyOf = (key: string) => PLURAL.exec(key)?.[1] ?? key;

/** `{{count}}`, `{{- mention}}`, `{{n, number}}`: each name with its escaping, since `{{- x}}` vs `{{x}}` changes what is safe. */
function placeholders(text: string): string[] {
  return [...text.matchAll(/\{\{\s*(-\s*)?([\w.]+)[^}]*\}\}/g)].map((m) => `${m[1] ? '- ' : ''}${m[2]}`).sort();
}

const pluralCategories = (locale: string) => new Intl.PluralRules(locale).resolvedOptions().pluralCategories.slice().sort();

/** Every way `locale`'s file for one namespace differs from en-US's, as readable lines (empty: none). */
function problems(locale: string, source: Tree, translation: Tree): string[] {
  const found: string[] = [];
  const en = flatten(source);
  const tr = flatten(translation);
  const families = (keys: Iterable<string>) => new Set([...keys].map(familyOf));
  const enFamilies = families(en.keys());
  const trFamilies = families(tr.keys());
  for (const key of enFamilies) if (!trFamilies.has(key)) found.push(`missing ${key}`);
  for (const key of trFamilies) if (!enFamilies.has(key)) found.push(`stray ${key}`);

  for (const [key, text] of tr) if (text.trim() === '') found.push(`empty ${key}`);

  const pluralFamilies = new Set([...en.keys()].filter((k) => PLURAL.test(k)).map(familyOf));
  const needed = pluralCategories(locale);
  for (const family of pluralFamilies) {
    const forms = [...tr.keys()].filter((k) => familyOf(k) === family && PLURAL.test(k)).map((k) => PLURAL.exec(k)![2]!).sort();
    if (forms.length > 0 && forms.join() !== needed.join())
      found.push(`${family} has forms ${forms.join('/')}, ${locale} needs ${needed.join('/')}`);
    if (tr.has(family)) found.push(`${family} is a plural in en-US, not in ${locale}`);
  }
  for (const key of tr.keys()) if (PLURAL.test(key) && !pluralFamilies.has(familyOf(key))) found.push(`${key} is a plural only in ${locale}`);

  for (const [key, text] of tr) {
    const family = familyOf(key);
    const reference = en.get(key) ?? en.get(`${family}_other`);
    if (reference === undefined) continue;
    const expected = placeholders(reference);
    let actual = placeholders(text);
    // "une image", "one image": a singular form may spell its count out instead of showing {{count}}.
    if (/_(zero|one|two)$/.test(key) && !actual.includes('count') && expected.includes('count'))
      actual = [...actual, 'count'].sort();
    if (actual.join() !== expected.join())
      found.push(`${key} has placeholders {${actual.join(', ')}}, en-US has {${expected.join(', ')}}`);
  }
  return found;
}

const catalogs = resources as unknown as Record<string, Record<string, Tree>>;

describe('the catalogs', () => {
  const source = catalogs[SOURCE_LOCALE]!;

  it('has a file for every namespace in every locale', () => {
    for (const locale of SUPPORTED_LOCALES) expect(Object.keys(catalogs[locale]!).sort(), locale).toEqual([...NAMESPACES].sort());
  });

  describe.each(SUPPORTED_LOCALES)('%s', (locale) => {
    it.each(NAMESPACES)('%s: every en-US key, no stray one, same placeholders, the plural forms the language uses, no empty text', (ns) => {
      expect(problems(locale, source[ns]!, catalogs[locale]![ns]!)).toEqual([]);
    });
  });

  it('speaks each plural form i18next picks for a count (so a form the language needs is never missing at run time)', () => {
    const t = (locale: (typeof SUPPORTED_LOCALES)[number]) => translator(locale) as unknown as (key: string, vars: object) => string;
    for (const ns of NAMESPACES) {
      const families = new Set([...flatten(source[ns]!).keys()].filter((k) => PLURAL.test(k)).map(familyOf));
      for (const family of families) {
        for (const locale of SUPPORTED_LOCALES) {
          const forms = flatten(catalogs[locale]![ns]!);
          for (const count of [0, 1, 2, 5, 21, 1_000_000]) {
            const category = new Intl.PluralRules(locale).select(count);
            const form = forms.get(`${family}_${category}`);
            const text = t(locale)(`${ns}:${family}`, { ...sampleValues(form ?? ''), count });
            expect(form, `${locale} ${ns}:${family}_${category}`).toBeDefined();
            expect(text, `${locale} ${ns}:${family} for ${count}`).toBe(t(locale)(`${ns}:${family}_${category}`, { ...sampleValues(form ?? ''), count }));
          }
        }
      }
    }
  });
});

/** A value for each placeholder of a text, so `t` has all it asks for. */
function sampleValues(text: string): Record<string, string> {
  return Object.fromEntries(placeholders(text).map((p) => [p.replace(/^- /, ''), 'x']));
}

describe('the checks themselves', () => {
  const en: Tree = { a: 'A {{name}}', b: { c: 'C {{- mention}}' }, images_one: '{{count}} image', images_other: '{{count}} images' };

  it('accept a faithful translation, with a singular that spells its count out', () => {
    expect(problems('fr', en, { a: 'À {{name}}', b: { c: 'Ç {{- mention}}' }, images_one: 'une image', images_many: '{{count}} d’images', images_other: '{{count}} images' })).toEqual([]);
    expect(problems('ja', en, { a: 'あ {{name}}', b: { c: 'し {{- mention}}' }, images_other: '{{count}}枚' })).toEqual([]);
  });

  it('find a missing key, a stray one, an empty text, a changed or unescaped placeholder and wrong plural forms', () => {
    expect(problems('de', en, { a: ' ', b: { c: 'C {{mention}}', d: 'D' }, images_other: '{{n}} Bilder', images_many: 'x' })).toEqual([
      'stray b.d',
      'empty a',
      'images has forms many/other, de needs one/other',
      'a has placeholders {}, en-US has {name}',
      'b.c has placeholders {mention}, en-US has {- mention}',
      'images_other has placeholders {n}, en-US has {count}',
      'images_many has placeholders {}, en-US has {count}',
    ]);
    expect(problems('ja', en, { a: 'A {{name}}' })).toEqual(['missing b.c', 'missing images']);
  });
});

// The typecheck is the first check: each line below must stay an error (tsc fails on an unused @ts-expect-error).
export function typecheckContract(t: ReturnType<typeof translator>) {
  const common = { errors: { generic: 'x {{- ref}}', commandGone: 'x', buttonGone: 'x' }, cancel: { notYours: 'x', tooLate: 'x' } };
  // @ts-expect-error a translation without one of en-US's keys
  const missing: Translation<typeof enUSCommon> = common;
  // @ts-expect-error a translation with a key en-US does not have
  const stray: Translation<typeof enUSCommon> = { ...common, storage: { unavailable: 'x', down: 'x' } };
  // @ts-expect-error a misspelt key
  t('common:errors.genric', { ref: '1' });
  // @ts-expect-error a text's value left out
  t('common:errors.generic');
  return [missing, stray];
}
