import { describe, expect, it } from 'vitest';
import { invalidOptionLines, OPTION_MESSAGES, optionMessageIn } from '../../../src/commands/option-messages.js';
import { imagineFields } from '../../../src/commands/imagine.js';
import { translator } from '../../../src/i18n/i18n.js';
import { SUPPORTED_LOCALES } from '../../../src/i18n/locales.js';

const english = [
  OPTION_MESSAGES.number,
  OPTION_MESSAGES.between(0, 3.5),
  OPTION_MESSAGES.whole,
  OPTION_MESSAGES.required,
  OPTION_MESSAGES.empty,
  OPTION_MESSAGES.tooLong(2000),
  OPTION_MESSAGES.control,
  OPTION_MESSAGES.oneOf(['1:1', '16:9']),
  OPTION_MESSAGES.text,
  OPTION_MESSAGES.boolean,
];

describe('what an option check says, in the member’s language', () => {
  it('says in en-US exactly what the schemas say', () => {
    for (const message of english) expect(optionMessageIn(message, translator('en-US'))).toBe(message);
  });

  it.each(SUPPORTED_LOCALES.filter((locale) => locale !== 'en-US'))('translates every message the schemas give into %s, values kept', (locale) => {
    const t = translator(locale);
    for (const message of english) expect(optionMessageIn(message, t), message).not.toBe(message);
    expect(optionMessageIn(OPTION_MESSAGES.between(0, 3.5), t)).toMatch(/0[^\d]+3\.5/);
  });

  it('passes a message it does not know through as it is (another command’s own rule)', () => {
    expect(optionMessageIn('must rhyme with orange', translator('ja'))).toBe('must rhyme with orange');
  });

  it('speaks the moderators’ own rules too (an id, a setting’s name, the reserved style name)', () => {
    expect(optionMessageIn('`none` is reserved: it means no style', translator('ja'))).toBe('`none` は予約語です（スタイルなしを意味します）');
    expect(optionMessageIn('must be a Discord id', translator('de'))).toBe('muss eine Discord-ID sein');
    expect(optionMessageIn('is not a setting', translator('fr'))).toBe("n'est pas un réglage");
  });

  it('lists what /imagine’s own schemas refuse, one line per option', () => {
    const steps = imagineFields.steps.safeParse(99);
    const prompt = imagineFields.prompt.safeParse('a\nb');
    const issues = [...steps.error!.issues.map((i) => ({ ...i, path: ['steps'] })), ...prompt.error!.issues.map((i) => ({ ...i, path: ['prompt'] }))];
    expect(invalidOptionLines(issues, translator('en-US'))).toBe('• `steps`: must be between 1 and 50\n• `prompt`: contains control characters (line breaks, tabs…)');
    expect(invalidOptionLines(issues, translator('de'))).toBe('• `steps`: muss zwischen 1 und 50 liegen\n• `prompt`: enthält Steuerzeichen (Zeilenumbrüche, Tabs…)');
  });
});
