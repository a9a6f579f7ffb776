import type { APIEmbed } from 'discord.js';
import { escapeMarkdown } from 'discord.js';
import type { FluxDevParams } from '../segmind/flux-params.js';
import type { GeneratedImage } from '../segmind/segmind-client.js';
import type { SegmindError } from '../segmind/segmind-errors.js';
import { translator, type Translator } from '../../i18n/i18n.js';

const en = translator('en-US');

export interface BatchImage extends GeneratedImage {
  /** 0-based position in the request: image `index` used seed `seed + index`. */
  index: number;
  /** Flagged by the image check in a server that spoilers: posted as a `SPOILER_` file, never shown by an embed. */
  spoiler?: boolean;
}

/** An image generated but withheld (the server blocks what its image check flags): not posted, not charged. */
export interface WithheldImage {
  index: number;
  seed: number;
}

export interface BatchFailure {
  index: number;
  seed: number;
  error: SegmindError;
}

/** Every image of one request: those generated, those that failed, and how long generation took. */
export interface BatchResult {
  images: BatchImage[];
  failures: BatchFailure[];
  durationMs: number;
  withheld?: WithheldImage[];
}

export interface ResultFile {
  name: string;
  data: Buffer;
}

/** Who the result is for, and notes the caller adds under the image notes (e.g. images never started). */
export interface ResultContext {
  /** The member who asked: named in the content by a mention, which the message's allowed_mentions keep from pinging. */
  ownerId: string;
  extraNotes?: readonly string[];
  /**
   * A server style applied: its name (named under the first image) and the member's own prompt, shown instead of the
   * expansion (which Details shows).
   */
  style?: { name: string; memberPrompt: string } | undefined;
  /** The language of every word the result says (the member's, or the server's for a late channel post). */
  t?: Translator | undefined;
}

export interface ResultMessage {
  /** The prompt and its author, the settings line, then the notes: everything a member reads. */
  content: string;
  /** Only the notes (failures, spoilers, sizes, extra notes), '' when there are none. */
  notes: string;
  embeds: APIEmbed[];
  files: ResultFile[];
  /** Images generated but not posted because Discord would refuse the file. */
  oversized: BatchImage[];
}

/**
 * Embeds sharing one `url` render as a single gallery post in Discord clients. Not shown (the embeds have no title),
 * so any stable page will do: the model's own.
 */
const GALLERY_URL = 'https://huggingface.co/black-forest-labs/FLUX.1-dev';
const EMBED_COLOR = 0x5865f2;
/** Named once per result, under the first image. */
const MODEL_NAME = 'FLUX.1 [dev]';
/** Discord refuses a message whose files add up to more than 25 MiB; keep room for the JSON payload. */
export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024 - 256 * 1024;
/** Discord's limit on a message's content. */
export const MAX_CONTENT_LENGTH = 2000;
/** Kept free for what a late channel post puts before the content: a mention and one short sentence. */
export const LATE_POST_ROOM = 120;

export function fileNameFor(image: Pick<BatchImage, 'seed' | 'format'>): string {
  return `flux-${image.seed}.${image.format}`;
}

/** Discord blurs a file whose name starts with `SPOILER_` until it is clicked. */
export function spoilerFileNameFor(image: Pick<BatchImage, 'seed' | 'format'>): string {
  return `SPOILER_${fileNameFor(image)}`;
}

/**
 * Builds the final reply. The content names the prompt (escaped, shortened to fit) and its author, then one line of
 * settings, then notes on what went wrong; the images are attachments shown through `attachment://` embeds sharing
 * one url (a gallery). Format, quality and prompt strength are in Details. A spoilered image is attached under a
 * `SPOILER_` name and kept out of every embed: an embed would show it unblurred.
 */
export function buildResultMessage(
  params: FluxDevParams,
  result: BatchResult,
  attachmentSizeLimit: number,
  context: ResultContext,
): ResultMessage {
  // Each file must fit the interaction's limit, and all of them one request (Discord: 25 MiB in all).
  const fits: BatchImage[] = [];
  const oversized: BatchImage[] = [];
  let total = 0;
  for (const image of result.images) {
    if (image.bytes.length <= attachmentSizeLimit && total + image.bytes.length <= MAX_UPLOAD_BYTES) {
      fits.push(image);
      total += image.bytes.length;
    } else oversized.push(image);
  }
  const files = fits.map((image) => ({ name: image.spoiler ? spoilerFileNameFor(image) : fileNameFor(image), data: image.bytes }));

  const t = context.t ?? en;
  // A footer shows no markdown: the style's name goes in as it is.
  const footer = context.style ? t('imagine:result.footerStyle', { model: MODEL_NAME, style: context.style.name }) : MODEL_NAME;
  const main: APIEmbed = { url: GALLERY_URL, color: EMBED_COLOR, footer: { text: footer } };
  const shown = files.filter((file) => !file.name.startsWith('SPOILER_'));
  const embeds: APIEmbed[] = shown.map((file, i) =>
    i === 0 ? { ...main, image: { url: `attachment://${file.name}` } } : { url: GALLERY_URL, image: { url: `attachment://${file.name}` } },
  );
  if (embeds.length === 0) embeds.push(main);

  const notes = [
    spoilerNote(params.samples, fits.filter((image) => image.spoiler), t),
    describeProblems(params.samples, result.failures, oversized, attachmentSizeLimit, t),
    ...(context.extraNotes ?? []),
  ]
    .filter((line) => line !== '')
    .join('\n');
  const content = resultContent(context.style?.memberPrompt ?? params.prompt, context.ownerId, settingsLine(params, result.durationMs, t), notes);
  return { content, notes, embeds, files, oversized };
}

/** "seed 42 · 16:9 · 28 steps · guidance 3.5 · 6.1 s"; several images show their seeds' range. */
export function settingsLine(params: FluxDevParams, durationMs: number, t: Translator = en): string {
  const seeds = Array.from({ length: params.samples }, (_, i) => (params.seed + i) % 2 ** 32);
  const first = seeds[0]!;
  const last = seeds.at(-1)!;
  const seedText =
    seeds.length === 1
      ? t('imagine:result.seed', { seed: first })
      : last > first
        ? t('imagine:result.seedRange', { first, last })
        : t('imagine:result.seedList', { seeds: seeds.join(', ') });
  return [
    seedText,
    params.aspect_ratio,
    t('imagine:result.steps', { count: params.steps }),
    t('imagine:result.guidance', { guidance: params.guidance }),
    formatSeconds(durationMs, t),
  ].join(' · ');
}

/**
 * `**prompt** — @author`, the settings line, the notes, within Discord's 2000 characters less the room a late post
 * needs: the prompt gives way (shortened with "…"), then, only if the notes alone are too long, the notes.
 */
function resultContent(shownPrompt: string, ownerId: string, settings: string, notes: string): string {
  const max = MAX_CONTENT_LENGTH - LATE_POST_ROOM;
  const author = ` — <@${ownerId}>`;
  const fixed = 4 + author.length + 1 + settings.length;
  const keptNotes = notes === '' ? '' : shorten(notes, max - fixed - 40 - 1);
  const budget = max - fixed - (keptNotes === '' ? 0 : keptNotes.length + 1);
  const prompt = escapedPrefix(shownPrompt.replace(/\s+/g, ' ').trim(), budget);
  return [`**${prompt}**${author}`, settings, keptNotes].filter((line) => line !== '').join('\n');
}

/** The prompt escaped for markdown, cut (whole characters, then "…") so the escaped text is at most `max` long. */
export function escapedPrefix(prompt: string, max: number): string {
  const full = escapeMarkdown(prompt);
  if (full.length <= max) return full;
  const characters = Array.from(prompt);
  // Escaping is per character, so every prefix escapes to a prefix: find the longest that fits with its "…".
  let low = 0;
  let high = characters.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (escapeMarkdown(characters.slice(0, mid).join('')).length + 1 <= max) low = mid;
    else high = mid - 1;
  }
  return `${escapeMarkdown(characters.slice(0, low).join('').trimEnd())}…`;
}

function shorten(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, Math.max(0, max - 1))}…`;
}

/** The short content note above spoilered images. */
function spoilerNote(total: number, spoilered: BatchImage[], t: Translator): string {
  if (spoilered.length === 0) return '';
  if (total === 1) return t('imagine:result.spoilerOne');
  if (spoilered.length === 1) return t('imagine:result.spoilerImage', { n: spoilered[0]!.index + 1, total, seed: spoilered[0]!.seed });
  const list = spoilered.map((image) => t('imagine:result.spoilerItem', { n: image.index + 1, seed: image.seed })).join(', ');
  return t('imagine:result.spoilerImages', { list, total });
}

/** Why an image failed, in the member's language: by kind (Segmind's own words are quoted only for bad parameters). */
export function segmindErrorText(error: SegmindError, t: Translator = en): string {
  const said = error.detail.reason;
  return error.kind === 'invalid_parameters' && said ? t('imagine:segmind.invalid_parametersSaid', { reason: said }) : t(`imagine:segmind.${error.kind}`);
}

function describeProblems(total: number, failures: BatchFailure[], oversized: BatchImage[], limit: number, t: Translator): string {
  const lines: string[] = [];
  for (const failure of failures)
    lines.push(t('imagine:result.failed', { n: failure.index + 1, total, seed: failure.seed, reason: segmindErrorText(failure.error, t) }));
  for (const image of oversized.filter((i) => i.bytes.length <= limit))
    lines.push(t('imagine:result.tooBigTogether', { n: image.index + 1, total, seed: image.seed }));
  for (const image of oversized.filter((i) => i.bytes.length > limit))
    lines.push(t('imagine:result.overLimit', { n: image.index + 1, total, seed: image.seed, size: formatMiB(image.bytes.length), limit: formatMiB(limit) }));
  return lines.join('\n');
}

export function formatSeconds(ms: number, t: Translator = en): string {
  return t('imagine:result.seconds', { seconds: (ms / 1000).toFixed(1) });
}

function formatMiB(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
