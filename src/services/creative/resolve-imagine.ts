import { UserFacingError, type LocalizedText } from '../../errors.js';
import { codeSpan, expandWithinLimit } from './expand-style.js';
import type { AppliedStyle } from '../results/result-store.js';
import { DEFAULTS, randomSeed, type AspectRatio, type FluxDevParams, type OutputFormat } from '../segmind/flux-params.js';
import type { Preferences } from './preference-store.js';
import { findStyle, NO_STYLE, sameName, type ServerStyles, type Style } from './style-store.js';

/** What the member typed in `/imagine`, and only that: an option left out is undefined, never a default. */
export interface TypedImagineOptions {
  prompt: string;
  aspect_ratio?: AspectRatio | undefined;
  guidance?: number | undefined;
  steps?: number | undefined;
  samples?: number | undefined;
  seed?: number | undefined;
  output_format?: OutputFormat | undefined;
  output_quality?: number | undefined;
  prompt_strength?: number | undefined;
  style?: string | undefined;
}

export interface ResolveContext {
  typed: TypedImagineOptions;
  preferences: Preferences;
  styles: ServerStyles;
  channelId: string;
  /** A thread's parent channel: a thread takes its parent's default style. */
  parentChannelId?: string | null | undefined;
  random: () => number;
}

/** Where the applied style came from, strongest first. */
export type StyleSource = 'typed' | 'preference' | 'channel' | 'server';

export interface ResolvedImagine {
  /** What Segmind gets: `prompt` is the expansion when a style applies. */
  params: FluxDevParams;
  style?: AppliedStyle | undefined;
  styleSource?: StyleSource | undefined;
  /** samples and steps the member did not type: the server's limits cut them instead of refusing. */
  adjustable: Array<'samples' | 'steps'>;
  /** Lines for the result, in the language it is shown in. */
  notes: LocalizedText[];
}

/**
 * How one `/imagine` becomes Segmind's parameters. The style: the one typed (`none`: no style at all) > the member's
 * preferred one > the channel's default (a thread's parent's) > the server's. Each parameter: typed > the member's
 * preference > the style's own value > the bot's defaults. Pure: storage is read by the caller.
 */
export function resolveImagine({ typed, preferences, styles, channelId, parentChannelId, random }: ResolveContext): ResolvedImagine {
  const notes: LocalizedText[] = [];
  const { style, source } = chooseStyle(typed, preferences, styles, channelId, parentChannelId, notes);
  const pick = <K extends 'aspect_ratio' | 'guidance' | 'steps'>(name: K) => typed[name] ?? preferences[name] ?? style?.[name] ?? DEFAULTS[name];
  const params: FluxDevParams = {
    prompt: style ? expand(style, typed.prompt) : typed.prompt,
    aspect_ratio: pick('aspect_ratio'),
    guidance: pick('guidance'),
    steps: pick('steps'),
    samples: typed.samples ?? preferences.samples ?? DEFAULTS.samples,
    seed: typed.seed ?? randomSeed(random),
    output_format: typed.output_format ?? preferences.output_format ?? DEFAULTS.output_format,
    output_quality: typed.output_quality ?? preferences.output_quality ?? DEFAULTS.output_quality,
    prompt_strength: typed.prompt_strength ?? DEFAULTS.prompt_strength,
  };
  const adjustable = (['samples', 'steps'] as const).filter((name) => typed[name] === undefined);
  return {
    params,
    ...(style ? { style: { name: style.name, template: style.template, memberPrompt: typed.prompt }, styleSource: source } : {}),
    adjustable,
    notes,
  };
}

function expand(style: Style, prompt: string): string {
  return expandWithinLimit(style, prompt, true);
}

function chooseStyle(
  typed: TypedImagineOptions,
  preferences: Preferences,
  styles: ServerStyles,
  channelId: string,
  parentChannelId: string | null | undefined,
  notes: LocalizedText[],
): { style?: Style | undefined; source?: StyleSource | undefined } {
  if (typed.style !== undefined) {
    if (sameName(typed.style, NO_STYLE)) return {};
    const style = findStyle(styles, typed.style);
    const name = codeSpan(typed.style);
    if (!style) throw new UserFacingError((t) => t('imagine:refusal.unknownStyle', { style: name }), 'unknown_style');
    return { style, source: 'typed' };
  }
  if (preferences.style !== undefined) {
    if (sameName(preferences.style, NO_STYLE)) return {};
    const style = findStyle(styles, preferences.style);
    if (style) return { style, source: 'preference' };
    const name = codeSpan(preferences.style);
    notes.push((t) => t('imagine:notes.preferredStyleGone', { style: name }));
  }
  const channelDefault = styles.channelDefaults[channelId] ?? (parentChannelId ? styles.channelDefaults[parentChannelId] : undefined);
  // A default naming a style that is gone (removing a style clears its defaults; an older record may not have) is no default.
  const forChannel = channelDefault === undefined ? undefined : findStyle(styles, channelDefault);
  if (forChannel) return { style: forChannel, source: 'channel' };
  const forServer = styles.serverDefault === null ? undefined : findStyle(styles, styles.serverDefault);
  return forServer ? { style: forServer, source: 'server' } : {};
}
