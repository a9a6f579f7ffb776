import { describe, expect, it } from 'vitest';
import { describeSettings, settingsAutocomplete } from '../../../src/commands/imagine-admin/settings.js';
import { describeStyles } from '../../../src/commands/imagine-admin/styles.js';
import { describeWordTest } from '../../../src/commands/imagine-admin/words.js';
import { translator } from '../../../src/i18n/i18n.js';
import { SUPPORTED_LOCALES } from '../../../src/i18n/locales.js';
import { MAX_STYLES, STYLE_NAME_MAX, DESCRIPTION_MAX, TEMPLATE_MAX, type ServerStyles } from '../../../src/services/creative/style-store.js';
import { newGuildSettings, type GuildSettings } from '../../../src/services/usage/guild-settings.js';

/** /imagine-admin answers and log-channel posts within Discord's limits in every locale, at their longest. */

const CONTENT_MAX = 2000;
const CHOICE_NAME_MAX = 100;
const at = Date.UTC(2030, 0, 1);
const id = (n: number) => String(100000000000000000n + BigInt(n));
const mention = `<@${id(1)}>`;
const channel = `<#${id(2)}>`;

/** Every setting at its longest: all lists full, every option set, paused with the longest reason (all markup). */
function longestSettings(): GuildSettings {
  const settings = newGuildSettings();
  const ids = Array.from({ length: 50 }, (_, i) => id(1000 + i));
  return {
    ...settings,
    dailyCredits: 100_000,
    cooldownSeconds: 86_400,
    guildDailyCap: 10_000_000,
    maxSamples: 4,
    maxSteps: 50,
    moderatorRoleId: id(3),
    logChannelId: id(4),
    generationLogChannelId: id(5),
    galleryChannelId: null,
    galleryStars: 1_000,
    nsfwPolicy: 'age_restricted',
    exemptModerators: false,
    imageCheck: 'block',
    logFlaggedImages: true,
    flagLimit: 1_000,
    allowPrivate: true,
    language: 'zh-CN',
    paused: { by: id(6), at, reason: '*_'.repeat(250) },
    allowedChannels: ids,
    roleOverrides: Object.fromEntries(ids.map((role) => [role, { dailyCredits: 100_000, cooldownSeconds: 86_400 }])),
    memberAllowances: Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [id(5000 + i), 100_000])),
    blocked: Object.fromEntries(Array.from({ length: 1_000 }, (_, i) => [id(9000 + i), { by: id(6), at, reason: '' }])),
    bannedWords: Array.from({ length: 500 }, (_, i) => `word${i}`),
    nsfwWords: Array.from({ length: 500 }, (_, i) => `nsfw${i}`),
  };
}

const limits = { dailyCredits: 100_000, cooldownSeconds: 86_400, guildDailyCap: 10_000_000, maxSamples: 4, maxSteps: 50, imageCheck: 'block' as const };

describe.each(SUPPORTED_LOCALES)('admin texts in %s', (locale) => {
  const t = translator(locale);

  it('settings view fits one message with every setting at its longest, the language line last and whole', () => {
    const text = describeSettings(t, longestSettings(), limits, limits, { dailyCredits: 100_000, guildDailyCap: 10_000_000 }, 'zh-CN');
    expect(text.length).toBeLessThanOrEqual(CONTENT_MAX);
    expect(text.split('\n').at(-1)).toBe(t('admin:settings.view.language', { value: t('admin:shown.languageFixed', { name: '简体中文', code: 'zh-CN' }), origin: t('admin:settings.view.serverSetting') }));
  });

  it('the word test fits one message with the longest prompt', () => {
    const settings = { ...newGuildSettings(), bannedWords: ['x'.repeat(100)], nsfwWords: ['y'.repeat(100)] };
    const text = describeWordTest(`${'x'.repeat(100)} ${'y'.repeat(100)} ${'*'.repeat(1800)}`, settings, t);
    expect(text.length).toBeLessThanOrEqual(CONTENT_MAX);
  });

  it('the style list fits one message with a hundred styles at their longest', () => {
    const styles: ServerStyles = {
      styles: Array.from({ length: MAX_STYLES }, (_, i) => ({
        name: `${i}`.padEnd(STYLE_NAME_MAX, 'W'),
        template: `{prompt}, ${'t'.repeat(TEMPLATE_MAX - 10)}`,
        description: 'd'.repeat(DESCRIPTION_MAX),
        aspect_ratio: '21:9',
        guidance: 10,
        steps: 50,
        createdBy: id(1),
        createdAt: at,
      })),
      serverDefault: '0'.padEnd(STYLE_NAME_MAX, 'W'),
      channelDefaults: Object.fromEntries(Array.from({ length: 50 }, (_, i) => [id(2000 + i), '0'.padEnd(STYLE_NAME_MAX, 'W')])),
    } as ServerStyles;
    expect(describeStyles(styles, t).length).toBeLessThanOrEqual(CONTENT_MAX);
  });

  it('log-channel posts and long refusals fit one message', () => {
    const posts = [
      t('admin:settings.set.testLogChannel', { user: mention }),
      t('admin:settings.set.testGenerationLog', { user: mention }),
      t('admin:settings.set.testGallery', { user: mention }),
      t('admin:notices.operatorPause', { cause: t('admin:notices.causeOutOfCredits') }),
      t('admin:notices.lowBalance', { amount: '$1,000,000.00' }),
      t('admin:settings.set.cannotPost', { channel }),
      t('admin:ceiling.guildDailyCap', { option: 'server_daily_cap', limit: '10000000' }),
      t('admin:styles.nsfwRefused', { word: `\`${'w'.repeat(100)}\`` }),
      `${t('admin:settings.set.changed', { details: 'x'.repeat(600) })}${t('admin:settings.set.noteCeiling', { n: '10000000' })} ${t('admin:settings.moderatorRoleNote')}${t('admin:settings.set.noteTestLine')}${t('admin:settings.set.noteStarboard')}`,
    ];
    for (const post of posts) expect(post.length).toBeLessThanOrEqual(CONTENT_MAX);
    // Every audit action reads as one short phrase (the post is cut at 2000 with its details).
    for (const key of Object.keys(translator('en-US')('admin:audit.actions', { returnObjects: true })))
      expect(t(`admin:audit.actions.${key as 'paused'}`).length).toBeLessThanOrEqual(60);
  });
});

describe('the language suggestions', () => {
  it('name each language within an autocomplete choice’s 100 characters', async () => {
    const suggest = settingsAutocomplete['settings/set']!;
    const choices = await suggest({ typed: '', settings: newGuildSettings(), interaction: undefined! });
    expect(choices.map((c) => c.value)).toEqual(['auto', ...SUPPORTED_LOCALES]);
    for (const choice of choices) expect(choice.name.length).toBeLessThanOrEqual(CHOICE_NAME_MAX);
  });
});
