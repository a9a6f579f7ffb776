import { describe, expect, it } from 'vitest';
import { UserFacingError } from '../../../src/errors.js';
import { translator } from '../../../src/i18n/i18n.js';
import { resolveImagine, type ResolveContext } from '../../../src/services/creative/resolve-imagine.js';
import { expandStyle as expandTemplate } from '../../../src/services/creative/expand-style.js';
import { styleChoices } from '../../../src/services/creative/style-choices.js';
import { emptyStyles, type ServerStyles, type Style } from '../../../src/services/creative/style-store.js';
import { DEFAULTS } from '../../../src/services/segmind/flux-params.js';

const CHANNEL = '100';
const THREAD = '101';
const OTHER_CHANNEL = '200';

const style = (name: string, template: string, extra: Partial<Style> = {}): Style => ({ name, template, createdBy: '1', createdAt: 0, ...extra });

function serverStyles(change: Partial<ServerStyles> = {}): ServerStyles {
  return {
    ...emptyStyles(),
    styles: [
      style('anime', '{prompt}, anime key visual, cel shading', { aspect_ratio: '2:3', steps: 30, guidance: 5 }),
      style('Noir', 'film noir photograph of {prompt}, high contrast'),
      style('watercolor', 'soft watercolor painting'),
    ],
    ...change,
  };
}

function resolve(context: Partial<ResolveContext> & { prompt?: string } = {}) {
  const { prompt = 'a fox', typed, ...rest } = context;
  return resolveImagine({
    typed: { prompt, ...typed },
    preferences: {},
    styles: emptyStyles(),
    channelId: CHANNEL,
    random: () => 0.5,
    ...rest,
  });
}

describe('resolving /imagine: which style applies', () => {
  it('applies no style and the bot defaults when nothing is typed, preferred or set for the server', () => {
    const resolved = resolve();
    expect(resolved.params).toEqual({ ...DEFAULTS, prompt: 'a fox', seed: 2 ** 31 });
    expect(resolved.style).toBeUndefined();
    expect(resolved.adjustable).toEqual(['samples', 'steps']);
    expect(resolved.notes.map((note) => note(translator('en-US')))).toEqual([]);
  });

  it('applies the typed style, matched case-insensitively, with the member prompt kept beside the expansion', () => {
    const resolved = resolve({ typed: { prompt: 'a fox', style: 'ANIME' }, styles: serverStyles() });
    expect(resolved.params.prompt).toBe('a fox, anime key visual, cel shading');
    expect(resolved.style).toEqual({ name: 'anime', template: '{prompt}, anime key visual, cel shading', memberPrompt: 'a fox' });
    expect(resolved.styleSource).toBe('typed');
  });

  it('ranks typed > preference > channel default > server default', () => {
    const styles = serverStyles({ serverDefault: 'watercolor', channelDefaults: { [CHANNEL]: 'noir' } });
    expect(resolve({ styles }).style?.name).toBe('Noir');
    expect(resolve({ styles }).styleSource).toBe('channel');
    expect(resolve({ styles, channelId: OTHER_CHANNEL }).style?.name).toBe('watercolor');
    expect(resolve({ styles, channelId: OTHER_CHANNEL }).styleSource).toBe('server');
    expect(resolve({ styles, preferences: { style: 'anime' } }).styleSource).toBe('preference');
    expect(resolve({ styles, preferences: { style: 'anime' }, typed: { prompt: 'a fox', style: 'watercolor' } }).style?.name).toBe('watercolor');
  });

  it('gives a thread its parent channel’s default', () => {
    const styles = serverStyles({ serverDefault: 'watercolor', channelDefaults: { [CHANNEL]: 'noir' } });
    expect(resolve({ styles, channelId: THREAD, parentChannelId: CHANNEL }).style?.name).toBe('Noir');
  });

  it('opts out of every default with `none`, typed or preferred', () => {
    const styles = serverStyles({ serverDefault: 'watercolor', channelDefaults: { [CHANNEL]: 'noir' } });
    expect(resolve({ styles, typed: { prompt: 'a fox', style: 'none' } }).params.prompt).toBe('a fox');
    expect(resolve({ styles, preferences: { style: 'None' } }).style).toBeUndefined();
  });

  it('refuses a typed style the server does not have, pointing to the list', () => {
    expect(() => resolve({ styles: serverStyles(), typed: { prompt: 'a fox', style: 'vaporwave' } })).toThrow(
      expect.objectContaining({
        name: 'UserFacingError',
        message:
          'This server has no style named `vaporwave`. Pick one from the suggestions (or `none` for no style); moderators see them all with `/imagine-admin styles list`. Nothing was charged.',
        code: 'unknown_style',
      }),
    );
  });

  it('ignores a preferred style that no longer exists, with a note, and falls back to the defaults', () => {
    const resolved = resolve({ styles: serverStyles({ serverDefault: 'watercolor' }), preferences: { style: 'deleted' } });
    expect(resolved.style?.name).toBe('watercolor');
    expect(resolved.notes.map((note) => note(translator('en-US')))).toEqual([
      'ℹ️ Your preferred style `deleted` no longer exists in this server, so it was left out (`/preferences set style` to pick another).',
    ]);
  });

  it('treats a default naming a missing style as no default', () => {
    expect(resolve({ styles: serverStyles({ channelDefaults: { [CHANNEL]: 'gone' }, serverDefault: 'anime' }) }).style?.name).toBe('anime');
    expect(resolve({ styles: serverStyles({ serverDefault: 'gone' }) }).style).toBeUndefined();
  });
});

describe('resolving /imagine: each parameter', () => {
  const styles = serverStyles();
  const anime = { prompt: 'a fox', style: 'anime' };

  it('ranks typed > preference > the style’s own value > the bot defaults', () => {
    expect(resolve({ styles, typed: anime }).params).toMatchObject({ aspect_ratio: '2:3', steps: 30, guidance: 5, samples: 1 });
    const preferences = { aspect_ratio: '16:9', steps: 20, samples: 2, output_format: 'png', output_quality: 90 } as const;
    expect(resolve({ styles, typed: anime, preferences }).params).toMatchObject({ ...preferences, guidance: 5 });
    const typed = { ...anime, aspect_ratio: '1:1', steps: 10, guidance: 2, samples: 3, output_format: 'jpg', output_quality: 50 } as const;
    const { style: _style, ...values } = typed;
    expect(resolve({ styles, typed, preferences }).params).toMatchObject({ ...values, prompt: 'a fox, anime key visual, cel shading' });
  });

  it('keeps a typed seed, or draws one', () => {
    expect(resolve({ typed: { prompt: 'a fox', seed: 7 } }).params.seed).toBe(7);
    expect(resolve({ random: () => 0 }).params.seed).toBe(0);
  });

  it('lets the server’s limits cut only the samples and steps the member did not type', () => {
    expect(resolve({ typed: { prompt: 'a fox', samples: 2 } }).adjustable).toEqual(['steps']);
    expect(resolve({ typed: { prompt: 'a fox', samples: 2, steps: 10 } }).adjustable).toEqual([]);
  });
});

describe('expanding a template', () => {
  it('puts the prompt at every {prompt}', () => {
    expect(expandTemplate('{prompt} and again {prompt}', 'a fox')).toBe('a fox and again a fox');
  });

  it('appends the prompt after a comma when the template has no {prompt}', () => {
    expect(expandTemplate('soft watercolor painting', 'a fox')).toBe('soft watercolor painting, a fox');
  });

  it('keeps a prompt’s $ sequences as text', () => {
    expect(expandTemplate('x {prompt} y', "$& $' $1")).toBe("x $& $' $1 y");
  });

  it('refuses an expansion over 2000 characters, saying what to do', () => {
    const long = { styles: serverStyles(), typed: { prompt: 'a'.repeat(1990), style: 'anime' } };
    expect(() => resolve(long)).toThrow(UserFacingError);
    expect(() => resolve(long)).toThrow(
      'With the style `anime` your prompt becomes 2021 characters, over the 2000 the image service takes. Shorten your prompt, or use `style:none`. Nothing was charged.',
    );
    expect(resolve({ styles: serverStyles(), typed: { prompt: 'a'.repeat(1969), style: 'anime' } }).params.prompt).toHaveLength(2000);
  });
});

describe('style suggestions', () => {
  it('offers none first, then the styles whose name contains what is typed', () => {
    const styles = serverStyles({ styles: [style('anime', 'x', { description: 'Anime key visual' }), style('noir', 'y')] });
    expect(styleChoices(styles, '')).toEqual([
      { name: "none — no style, not even the channel's default", value: 'none' },
      { name: 'anime — Anime key visual', value: 'anime' },
      { name: 'noir', value: 'noir' },
    ]);
    expect(styleChoices(styles, 'NI').map((c) => c.value)).toEqual(['anime']);
    expect(styleChoices(styles, 'no').map((c) => c.value)).toEqual(['none', 'noir']);
  });

  it('stays within Discord’s 25 choices of at most 100 characters', () => {
    const many = Array.from({ length: 40 }, (_, i) => style(`style-${i}`, 'x', { description: 'd'.repeat(100) }));
    const choices = styleChoices(serverStyles({ styles: many }), 'style');
    expect(choices).toHaveLength(25);
    for (const choice of choices) expect(choice.name.length).toBeLessThanOrEqual(100);
  });
});
