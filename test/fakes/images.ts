/**
 * Real image bytes for tests and benchmarks, made with sharp.
 *
 * Rendered images are cached by their arguments (and shared: never mutate a returned Buffer), so a fake serving
 * hundreds of requests per second does the encoding work once per distinct image.
 */
import { createCipheriv, createHash } from 'node:crypto';
import sharp from 'sharp';

export type ImageFormat = 'png' | 'jpg' | 'webp';

export interface RenderImageOptions {
  format: ImageFormat;
  width: number;
  height: number;
  /** Colour (or noise stream) is derived from the seed; default 0. */
  seed?: number;
  /** Encoder quality 1–100 for jpg/webp (sharp's default 80 when omitted); ignored for png. */
  quality?: number;
  /** Incompressible random pixels seeded from `seed` instead of a solid colour, so large images are large. */
  noise?: boolean;
}

/** All aspect ratios flux-dev accepts (docs/segmind.md). */
export const ASPECT_RATIOS = ['1:1', '16:9', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'] as const;
export type AspectRatio = (typeof ASPECT_RATIOS)[number];

/** Cache entries are promises so concurrent first requests share one render; capped, oldest evicted first. */
const MAX_CACHE_ENTRIES = 512;
const cache = new Map<string, Promise<Buffer>>();

/** Number of images currently cached (for tests of the cache itself). */
export function imageCacheSize(): number {
  return cache.size;
}

export function clearImageCache(): void {
  cache.clear();
}

/** Deterministic RGB colour from a seed (integer hash, so seeds 1 and 2 look clearly different). */
export function colourForSeed(seed: number): { r: number; g: number; b: number } {
  let h = Math.imul(Math.trunc(seed) ^ 0x9e3779b9, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return { r: h & 0xff, g: (h >>> 8) & 0xff, b: (h >>> 16) & 0xff };
}

/** `n` pseudo-random bytes from a seed: AES-CTR keystream, fast (GB/s) and reproducible. */
function noiseBytes(seed: number, n: number): Buffer {
  const key = createHash('sha256').update(`fake-segmind-noise:${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16));
  return cipher.update(Buffer.alloc(n));
}

function checkDimension(name: string, v: number): void {
  if (!Number.isInteger(v) || v < 1 || v > 8192) throw new RangeError(`renderImage: ${name} must be an integer 1..8192, got ${v}`);
}

async function encode(opts: RenderImageOptions): Promise<Buffer> {
  const { format, width, height, seed = 0, quality, noise = false } = opts;
  const img = noise
    ? sharp(noiseBytes(seed, width * height * 3), { raw: { width, height, channels: 3 } })
    : sharp({ create: { width, height, channels: 3, background: colourForSeed(seed) } });
  switch (format) {
    case 'png':
      // Noise does not compress anyway: the fastest zlib level gives the same size much sooner.
      return img.png(noise ? { compressionLevel: 1 } : {}).toBuffer();
    case 'jpg':
      return img.jpeg(quality === undefined ? {} : { quality }).toBuffer();
    case 'webp':
      return img.webp(quality === undefined ? {} : { quality }).toBuffer();
    default: {
      const never: never = format;
      throw new Error(`renderImage: unknown format ${String(never)}`);
    }
  }
}

/** Encode (or fetch from cache) an image. The returned Buffer is shared: do not mutate it. */
export function renderImage(opts: RenderImageOptions): Promise<Buffer> {
  checkDimension('width', opts.width);
  checkDimension('height', opts.height);
  const seed = opts.seed ?? 0;
  const noise = opts.noise ?? false;
  // png is lossless: quality does not change the bytes, so it must not split the cache either.
  const quality = opts.format === 'png' || opts.quality === undefined ? undefined : Math.min(100, Math.max(1, Math.round(opts.quality)));
  const key = `${opts.format}|${opts.width}x${opts.height}|${seed}|${quality ?? '-'}|${noise ? 'n' : 's'}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const p = encode({ format: opts.format, width: opts.width, height: opts.height, seed, quality, noise });
  p.catch(() => cache.delete(key)); // do not cache failures
  cache.set(key, p);
  if (cache.size > MAX_CACHE_ENTRIES) {
    const oldest = cache.keys().next();
    if (!oldest.done) cache.delete(oldest.value);
  }
  return p;
}

/**
 * Pixel size for an aspect ratio 'W:H': the long side is `longSide`, the other is rounded.
 * '16:9' → {width: 64, height: 36}; '9:16' → {width: 36, height: 64}. Throws on malformed ratios.
 */
export function dimensionsFor(aspectRatio: string, longSide = 64): { width: number; height: number } {
  const m = /^\s*(\d+(?:\.\d+)?)\s*:\s*(\d+(?:\.\d+)?)\s*$/.exec(aspectRatio);
  const w = m ? Number(m[1]) : NaN;
  const h = m ? Number(m[2]) : NaN;
  if (!(w > 0) || !(h > 0)) throw new RangeError(`dimensionsFor: not an aspect ratio: ${JSON.stringify(aspectRatio)}`);
  if (!Number.isInteger(longSide) || longSide < 1) throw new RangeError(`dimensionsFor: bad longSide ${longSide}`);
  return w >= h
    ? { width: longSide, height: Math.max(1, Math.round((longSide * h) / w)) }
    : { width: Math.max(1, Math.round((longSide * w) / h)), height: longSide };
}

/**
 * Fully decode image bytes with sharp (not just the header), so truncated or fake bytes are rejected.
 * Throws for anything that is not a complete png, jpeg or webp image.
 */
export async function describeImage(bytes: Buffer | Uint8Array): Promise<{ format: ImageFormat; width: number; height: number }> {
  const meta = await sharp(bytes).metadata();
  let format: ImageFormat;
  switch (meta.format) {
    case 'png':
      format = 'png';
      break;
    case 'jpeg':
      format = 'jpg';
      break;
    case 'webp':
      format = 'webp';
      break;
    default:
      throw new Error(`describeImage: unsupported image format ${String(meta.format)}`);
  }
  // failOn 'warning' (sharp's default, made explicit) rejects truncated data during the full decode.
  const { info } = await sharp(bytes, { failOn: 'warning' }).raw().toBuffer({ resolveWithObject: true });
  return { format, width: info.width, height: info.height };
}

/** Format from magic bytes without decoding (cheap; for assertions on large volumes). */
export function sniffFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (bytes.length >= 8 && bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return 'png';
  if (bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff) return 'jpg';
  if (
    bytes.length >= 12 &&
    Buffer.from(bytes.subarray(0, 4)).toString('latin1') === 'RIFF' &&
    Buffer.from(bytes.subarray(8, 12)).toString('latin1') === 'WEBP'
  )
    return 'webp';
  return undefined;
}

/** MIME type Segmind uses for each output_format. */
export function mimeFor(format: ImageFormat): string {
  return format === 'jpg' ? 'image/jpeg' : `image/${format}`;
}
