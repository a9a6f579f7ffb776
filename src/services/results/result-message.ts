import type { APIEmbed } from 'discord.js';
import { escapeMarkdown } from 'discord.js';
import type { FluxDevParams } from '../segmind/flux-params.js';
import type { GeneratedImage } from '../segmind/segmind-client.js';
import type { SegmindError } from '../segmind/segmind-errors.js';

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

export interface ResultMessage {
  content: string;
  embeds: APIEmbed[];
  files: ResultFile[];
  /** Images generated but not posted because Discord would refuse the file. */
  oversized: BatchImage[];
}

/** Embeds sharing one `url` render as a single gallery post in Discord clients. */
const GALLERY_URL = 'https://www.segmind.com/models/flux-dev';
const EMBED_COLOR = 0x5865f2;
/** Discord refuses a message whose files add up to more than 25 MiB; keep room for the JSON payload. */
export const MAX_UPLOAD_BYTES = 25 * 1024 * 1024 - 256 * 1024;

export function fileNameFor(image: Pick<BatchImage, 'seed' | 'format'>): string {
  return `flux-${image.seed}.${image.format}`;
}

/** Discord blurs a file whose name starts with `SPOILER_` until it is clicked. */
export function spoilerFileNameFor(image: Pick<BatchImage, 'seed' | 'format'>): string {
  return `SPOILER_${fileNameFor(image)}`;
}

/**
 * Builds the final reply: the images as attachments, shown through `attachment://` embeds with every parameter. A
 * spoilered image is attached under a `SPOILER_` name and kept out of every embed: an embed would show it unblurred.
 */
export function buildResultMessage(
  params: FluxDevParams,
  result: BatchResult,
  attachmentSizeLimit: number,
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

  const seeds = Array.from({ length: params.samples }, (_, i) => (params.seed + i) % 2 ** 32);
  const posted = new Set(fits.map((image) => image.index));
  const spoilered = new Set(fits.filter((image) => image.spoiler).map((image) => image.index));
  const withheld = new Set((result.withheld ?? []).map((image) => image.index));
  const mark = (i: number) => (spoilered.has(i) ? ' (spoiler)' : posted.has(i) ? '' : withheld.has(i) ? ' (withheld)' : ' (failed)');
  const seedText = seeds.map((seed, i) => (params.samples > 1 ? `${i + 1}: \`${seed}\`` : `\`${seed}\``) + mark(i)).join('\n');

  const main: APIEmbed = {
    title: 'FLUX.1 [dev]',
    url: GALLERY_URL,
    color: EMBED_COLOR,
    description: escapeMarkdown(params.prompt),
    fields: [
      { name: params.samples > 1 ? 'Seeds' : 'Seed', value: seedText, inline: true },
      { name: 'Steps', value: String(params.steps), inline: true },
      { name: 'Guidance', value: String(params.guidance), inline: true },
      { name: 'Aspect ratio', value: params.aspect_ratio, inline: true },
      {
        name: 'Format',
        value: params.output_format === 'png' ? 'png' : `${params.output_format} (quality ${params.output_quality})`,
        inline: true,
      },
      { name: 'Prompt strength', value: String(params.prompt_strength), inline: true },
      { name: 'Time', value: formatSeconds(result.durationMs), inline: true },
    ],
    footer: { text: 'Generated with FLUX.1 [dev] on Segmind' },
  };
  const shown = files.filter((file) => !file.name.startsWith('SPOILER_'));
  const embeds: APIEmbed[] = shown.map((file, i) =>
    i === 0 ? { ...main, image: { url: `attachment://${file.name}` } } : { url: GALLERY_URL, image: { url: `attachment://${file.name}` } },
  );
  if (embeds.length === 0) embeds.push(main);

  const problems = describeProblems(params.samples, result.failures, oversized, attachmentSizeLimit);
  const note = spoilerNote(params.samples, fits.filter((image) => image.spoiler));
  return { content: [note, problems].filter((line) => line !== '').join('\n'), embeds, files, oversized };
}

/** The short content note above spoilered images. */
function spoilerNote(total: number, spoilered: BatchImage[]): string {
  if (spoilered.length === 0) return '';
  const which =
    total === 1
      ? 'This image'
      : spoilered.length === 1
        ? `Image ${spoilered[0]!.index + 1} of ${total} (seed ${spoilered[0]!.seed})`
        : `Images ${spoilered.map((image) => `${image.index + 1} (seed ${image.seed})`).join(', ')} of ${total}`;
  return `⚠️ ${which} may show sensitive content, so ${spoilered.length === 1 || total === 1 ? 'it is' : 'they are'} hidden behind a spoiler: click to show.`;
}

function describeProblems(
  total: number,
  failures: BatchFailure[],
  oversized: BatchImage[],
  limit: number,
): string {
  const lines: string[] = [];
  for (const failure of failures)
    lines.push(`⚠️ Image ${failure.index + 1} of ${total} (seed ${failure.seed}) failed: ${failure.error.message}`);
  for (const image of oversized.filter((i) => i.bytes.length <= limit))
    lines.push(`⚠️ Image ${image.index + 1} of ${total} (seed ${image.seed}) did not fit in one message with the others (Discord takes 25 MiB per message): reproduce it alone with its seed.`);
  for (const image of oversized.filter((i) => i.bytes.length > limit))
    lines.push(
      `⚠️ Image ${image.index + 1} of ${total} (seed ${image.seed}) is ${formatMiB(image.bytes.length)}, over this server's ${formatMiB(limit)} upload limit: try \`output_format: webp\` or a lower \`output_quality\`.`,
    );
  return lines.join('\n');
}

export function formatSeconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

function formatMiB(bytes: number): string {
  return bytes < 1024 * 1024 ? `${Math.round(bytes / 1024)} KiB` : `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}
