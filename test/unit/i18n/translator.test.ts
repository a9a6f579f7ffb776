import { describe, expect, it } from 'vitest';
import { memberTranslator, translator } from '../../../src/i18n/i18n.js';
import { UserFacingError } from '../../../src/errors.js';
import { StorageUnavailableError } from '../../../src/services/usage/usage-policy.js';

/** `t` with any key and values: for what the typed `t` rightly refuses (values that are not in the text). */
const loose = (locale: Parameters<typeof translator>[0]) => translator(locale) as unknown as (key: string, vars?: object) => string;

describe('the translator', () => {
  it('speaks the locale it is asked for, and English for a text written without a namespace', () => {
    expect(translator('ja')('common:errors.buttonGone')).toBe('このボタンはもう使えません。');
    expect(translator('de')('errors.buttonGone')).toBe('Diese Schaltfläche funktioniert nicht mehr.');
    expect(translator('en-US')('common:errors.buttonGone')).toBe('This button does not work any more.');
  });

  // A text the catalogs do not have (`defaultValue`) goes through the real instance's interpolation all the same.
  const render = (text: string, vars: object) => loose('en-US')('common:test.only', { defaultValue: text, ...vars });

  it("escapes a member's text for Discord markdown, so it is shown as typed and never read as markup", () => {
    expect(render('You asked for: {{prompt}}', { prompt: '**cat** _in_ ~~a~~ `hat` ||spoiler|| [link](https://e.com)' })).toBe(
      'You asked for: \\*\\*cat\\*\\* \\_in\\_ \\~\\~a\\~\\~ \\`hat\\` \\|\\|spoiler\\|\\| \\[link](https://e.com)',
    );
    expect(render('{{name}} said', { name: '# heading' })).toBe('\\# heading said');
  });

  it('escapes a numbered list but leaves numbers and decimals as they are', () => {
    expect(render('{{a}} / {{b}} / {{c}} / {{d}}', { a: 3.5, b: '3.5', c: 1_000_000, d: '1. first' })).toBe('3.5 / 3.5 / 1000000 / 1\\. first');
    expect(render('{{list}}', { list: '- a\n* b\n2. c' })).toBe('\\- a\n\\* b\n2\\. c');
  });

  it('leaves a value that looks like a placeholder or a nested text as text', () => {
    expect(render('{{prompt}}', { prompt: '{{name}} $t(common:errors.buttonGone)', name: 'X' })).toBe('{{name}} $t(common:errors.buttonGone)');
  });

  it('does not escape `{{- value}}`, for what the code built itself (mentions, timestamps, code spans)', () => {
    expect(render('{{- who}} at {{- when}} in {{- code}}', { who: '<@123>', when: '<t:1700000000:R>', code: '`a_b`' })).toBe(
      '<@123> at <t:1700000000:R> in `a_b`',
    );
  });

  it('gives a remembered text exactly as the first time, and a text with other values anew', () => {
    const t = loose('en-US');
    for (let i = 0; i < 2; i++) {
      expect(t('imagine:result.steps', { count: 1 })).toBe('1 step');
      expect(t('imagine:result.steps', { count: 28 })).toBe('28 steps');
      expect(render('{{name}}!', { name: '*x*' })).toBe('\\*x\\*!');
      expect(render('{{name}}!', { name: '_y_' })).toBe('\\_y\\_!');
      expect(render('{{n}}?', { n: 5 })).toBe('5?');
      expect(render('{{n}}?', { n: '5' })).toBe('5?');
    }
    // the same key in another language is another text
    expect((translator('de') as unknown as (key: string, vars?: object) => string)('imagine:result.steps', { count: 1 })).not.toBe('1 step');
  });

  it("answers an interaction in the member's language, English for one we do not speak", () => {
    expect(memberTranslator({ locale: 'ko', guildLocale: 'de' })('common:cancel.tooLate')).toMatch(/^취소하기에는/);
    expect(memberTranslator({ locale: 'tr', guildLocale: 'de' })('common:cancel.tooLate')).toMatch(/^Too late to cancel/);
  });
});

describe('a UserFacingError', () => {
  it('keeps its English text as its message (for logs) and speaks any language to the member', () => {
    const error = new StorageUnavailableError();
    expect(error.message).toBe('The bot is having trouble on its side and cannot take requests right now. Nothing was charged — try again in a minute.');
    expect(error.text(translator('fr'))).toMatch(/^Le bot rencontre un problème/);
  });

  it('shows a plain-string message as written, whatever the language', () => {
    expect(new UserFacingError('Just this.').text(translator('ja'))).toBe('Just this.');
  });
});
