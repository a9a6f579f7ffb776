import { ComponentType } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { translator } from '../../../src/i18n/i18n.js';
import { SUPPORTED_LOCALES } from '../../../src/i18n/locales.js';
import { STYLE_NAME_MAX } from '../../../src/services/creative/style-store.js';
import { progressMessage } from '../../../src/services/generation/progress-reporter.js';
import { buildResultMessage, MAX_CONTENT_LENGTH } from '../../../src/services/results/result-message.js';
import { resultComponents } from '../../../src/services/results/result-components.js';
import { galleryContent } from '../../../src/services/results/gallery.js';
import { DEFAULTS, LIMITS } from '../../../src/services/segmind/flux-params.js';
import { SegmindError } from '../../../src/services/segmind/segmind-errors.js';

/** Discord's limits on what the generation path sends, checked in every language with the longest values it sees. */
const LABEL = 80;
const MODAL_TITLE = 45;
const TEXT_INPUT_LABEL = 45;
const PLACEHOLDER = 150;
const OPTION_LABEL = 100;
const FOOTER = 2048;

const MAX_SEED = LIMITS.seed.max;
const ID = '123456789012345678';
const longStyle = 'w'.repeat(STYLE_NAME_MAX);
const longReason = 'r'.repeat(500); // guild-settings keeps at most 500 characters
const tenChannels = Array.from({ length: 10 }, (_, i) => `<#${ID}${i}>`).join(', ');
const timestamp = '<t:1799999999:R>';

interface Button {
  type: ComponentType;
  label?: string;
  placeholder?: string;
  options?: Array<{ label: string }>;
}

describe.each(SUPPORTED_LOCALES)('the generation path in %s stays within Discord’s limits', (locale) => {
  const t = translator(locale);

  it('result buttons, the remix menu and the queue’s Cancel button', () => {
    const images = Array.from({ length: LIMITS.samples.max }, (_, index) => ({ index, seed: MAX_SEED - index }));
    const rows = [
      ...resultComponents(ID, images, { share: true, t }),
      ...resultComponents(ID, images, { private: true, t }),
      ...(progressMessage({ phase: 'queued', imagesAhead: 999 }, ID, t).components ?? []),
    ] as Array<{ components: Button[] }>;
    for (const component of rows.flatMap((row) => row.components)) {
      if (component.type === ComponentType.Button) expect(component.label!.length, component.label).toBeLessThanOrEqual(LABEL);
      if (component.type === ComponentType.StringSelect) {
        expect(component.placeholder!.length).toBeLessThanOrEqual(PLACEHOLDER);
        for (const option of component.options!) expect(option.label.length, option.label).toBeLessThanOrEqual(OPTION_LABEL);
      }
    }
  });

  it('the remix form: its title with the most images or the largest seed, and every field label', () => {
    for (const title of [t('imagine:remix.title', { count: LIMITS.samples.max }), t('imagine:remix.titleSeed', { seed: MAX_SEED })])
      expect(title.length, title).toBeLessThanOrEqual(MODAL_TITLE);
    const labels = [
      t('imagine:remix.prompt'),
      t('imagine:remix.promptStyled', { style: 'anime' }),
      t('imagine:remix.aspectRatio'),
      t('imagine:remix.steps'),
      t('imagine:remix.guidance'),
      t('imagine:remix.seed'),
    ];
    for (const label of labels) expect(label.length, label).toBeLessThanOrEqual(TEXT_INPUT_LABEL);
  });

  it('a result: its footer with the longest style name, its content with the longest prompt and every note', () => {
    const params = { ...DEFAULTS, prompt: `**${'a'.repeat(LIMITS.promptMaxLength - 4)}**`, seed: MAX_SEED - 3, samples: LIMITS.samples.max };
    const failures = [1, 2, 3].map((index) => ({
      index,
      seed: params.seed + index,
      error: new SegmindError('invalid_parameters', { reason: 'x'.repeat(300) }),
    }));
    const message = buildResultMessage(
      params,
      { images: [{ index: 0, seed: params.seed, bytes: Buffer.alloc(10), format: 'webp', status: 200, attempts: 1, durationMs: 1 } as never], failures, durationMs: 999_999 },
      8 * 1024 * 1024,
      { ownerId: ID, style: { name: longStyle, memberPrompt: params.prompt }, extraNotes: [t('imagine:job.notGeneratedRestart', { count: 3 })], t },
    );
    expect(message.embeds[0]!.footer!.text.length).toBeLessThanOrEqual(FOOTER);
    expect(message.content.length).toBeLessThanOrEqual(MAX_CONTENT_LENGTH);
    // the late post's mention and sentence fit in the room the content leaves for them
    const late = `<@${ID}> ${t('imagine:job.late', { count: LIMITS.samples.max })}\n${message.content}`;
    expect(late.length).toBeLessThanOrEqual(MAX_CONTENT_LENGTH);
  });

  it('refusals and notices with the longest values members and moderators can give', () => {
    const texts = [
      t('imagine:refusal.pausedReason', { reason: longReason }),
      t('imagine:refusal.blockedReason', { reason: longReason }),
      t('imagine:refusal.channel', { channels: tenChannels }),
      t('imagine:refusal.bannedWordStyled', { style: longStyle, word: 'w'.repeat(100) }),
      t('imagine:refusal.allowanceSome', { asked: t('imagine:units.images', { count: 4 }), available: t('imagine:units.credits', { count: 3 }), retry: timestamp }),
      t('imagine:refusal.promptTooLongDropStyle', { style: longStyle, length: 99_999, max: 2000 }),
      t('imagine:job.nowBlocked', { reason: t('imagine:flagged.autoBlock', { count: 999 }) }),
      t('imagine:job.about', { channel: `<#${ID}>`, content: t('imagine:job.privateNotDelivered', { count: 4 }) }),
      t('imagine:share.cannotPost', { channel: `<#${ID}>` }),
      galleryContent({ ownerId: ID, params: { ...DEFAULTS, prompt: 'p'.repeat(LIMITS.promptMaxLength), seed: 1 }, style: { name: longStyle, template: '{prompt}', memberPrompt: 'p'.repeat(LIMITS.promptMaxLength) } }, `https://discord.com/channels/${ID}/${ID}/${ID}`, { kind: 'stars', count: 999 }, t),
    ];
    for (const text of texts) expect(text.length, text.slice(0, 80)).toBeLessThanOrEqual(MAX_CONTENT_LENGTH);
  });

  it('keeps the <t:…:R> timestamp and mentions exactly as the code built them', () => {
    expect(t('imagine:refusal.cooldown', { retry: timestamp })).toContain(timestamp);
    expect(t('imagine:refusal.channel', { channels: tenChannels })).toContain(tenChannels);
  });
});
