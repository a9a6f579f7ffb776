import { describe, expect, it } from 'vitest';
import { describeUsage } from '../../../src/commands/credits.js';
import { describeResult } from '../../../src/commands/generation-info.js';
import { translator } from '../../../src/i18n/i18n.js';
import { SUPPORTED_LOCALES } from '../../../src/i18n/locales.js';
import { PREFERENCE_NAMES } from '../../../src/services/creative/preference-store.js';
import { STYLE_NAME_MAX } from '../../../src/services/creative/style-store.js';
import type { ResultRecord } from '../../../src/services/results/result-store.js';
import { DEFAULTS, LIMITS } from '../../../src/services/segmind/flux-params.js';

/** /credits, /preferences and Generation info within Discord's limits in every locale, at their longest. */

const CONTENT_MAX = 2000;
const BUTTON_LABEL_MAX = 80;
const at = Date.UTC(2030, 0, 1);

describe.each(SUPPORTED_LOCALES)('member texts in %s', (locale) => {
  const t = translator(locale);

  it('/credits fits one message with the largest numbers and every line present', () => {
    const text = describeUsage(
      { allowance: 100_000, remainingToday: 99_999, bonus: 1_000_000, resetsAt: at, cooldownUntil: at, guildCap: 1_000_000, guildUsedToday: 999_999 },
      t,
    );
    expect(text.split('\n')).toHaveLength(7);
    expect(text.length).toBeLessThanOrEqual(CONTENT_MAX);
    expect(text).toContain(`<t:${at / 1000}:R>`);
  });

  it('Generation info fits one message with the longest prompt and four seeds, and its buttons fit their labels', () => {
    const record: ResultRecord = {
      v: 1,
      id: '1234567890123456789',
      guildId: '111111111111111111',
      channelId: '222222222222222222',
      ownerId: '333333333333333333',
      params: { ...DEFAULTS, prompt: `${'*bold* '.repeat(285)}end`, seed: 4294967295, samples: 4, output_format: 'webp', output_quality: 100 },
      images: [0, 1, 2, 3].map((index) => ({ index, seed: 4294967295 })),
      createdAt: at,
    };
    const text = describeResult(record, true, t);
    expect(text.length).toBeLessThanOrEqual(CONTENT_MAX);
    expect(text).toContain(`<t:${at / 1000}:f>`);
    expect(text).toContain('<@333333333333333333>');
    for (const label of [t('member:info.deleteButton'), t('member:info.blockButton')]) expect(label.length).toBeLessThanOrEqual(BUTTON_LABEL_MAX);
  });

  it('/preferences view and set fit one message with every preference at its longest', () => {
    const style = 'W'.repeat(STYLE_NAME_MAX);
    const longest = (...texts: string[]) => texts.reduce((a, b) => (b.length > a.length ? b : a));
    // Only a style can be gone and only privacy refused; the other values are numbers, a ratio or a format.
    const item = (name: string) =>
      name === 'style'
        ? `${longest(`\`${style}\``, t('member:preferences.styleNone'))}${t('member:preferences.styleGone')}`
        : name === 'private'
          ? `${longest(t('member:preferences.yes'), t('member:preferences.no'))}${t('member:preferences.privateRefused')}`
          : '**100**';
    const source = longest(t('member:preferences.source.preference'), t('member:preferences.source.channel'), t('member:preferences.source.server'));
    const summary = [
      t('member:preferences.style', { name: style, source }),
      '21:9',
      t('member:preferences.guidance', { value: 10 }),
      t('member:preferences.steps', { count: LIMITS.steps.max }),
      t('member:preferences.images', { count: LIMITS.samples.max }),
      t('member:preferences.quality', { format: 'webp', quality: 100 }),
      longest(t('member:preferences.private'), t('member:preferences.public')),
    ].join(' · ');
    const lines = [
      t('member:preferences.title'),
      ...PREFERENCE_NAMES.map((name) => `• \`${name}\`: ${item(name)}`),
      longest(t('member:preferences.samplesCut', { count: 1, value: 4 }), t('member:preferences.samplesCut', { count: 3, value: 4 })),
      t('member:preferences.stepsCut', { max: 49, value: 50 }),
      t('member:preferences.effective', { summary }),
    ];
    expect(lines.join('\n').length).toBeLessThanOrEqual(CONTENT_MAX);
    const saved = PREFERENCE_NAMES.map((name) => `\`${name}\` ${item(name)}`).join(t('member:preferences.listSeparator'));
    expect(t('member:preferences.saved', { saved }).length).toBeLessThanOrEqual(CONTENT_MAX);
  });
});
