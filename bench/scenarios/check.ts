/**
 * The image check alone: the bot's classifier (createImageChecker, production defaults: IMAGE_CHECK_THREADS and
 * IMAGE_CHECK_THRESHOLD from loadConfig) on the very images the burst and sustained fakes serve, one image at a time,
 * nothing else running. What one image costs a free worker, and so how many images per second one thread can judge;
 * the burst and sustained figures add the queue in front of it.
 */
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/logger.js';
import { createImageChecker } from '../../src/services/safety/classifier-pool.js';
import { renderImage } from '../../test/fakes/images.js';
import { BENCH_DISCORD_TOKEN, BENCH_SEGMIND_KEY, type ImageSpec } from '../lib/load.js';
import { distribution, round, type Distribution } from '../lib/stats.js';

export interface CheckAloneOptions {
  images: Array<{ label: string; image: ImageSpec }>;
  /** Measured checks per image kind (after a few unmeasured ones). */
  checks: number;
}

export interface CheckAloneImage {
  label: string;
  image: ImageSpec;
  bytes: number;
  /** Request to verdict, as the pool reports it (no queue here: one image at a time). */
  checkMs: Distribution;
  /** 1000 / mean: what one thread can judge per second, back to back. */
  imagesPerSecondPerThread: number;
  flagged: number;
  failed: number;
}

export interface CheckAloneResult {
  threads: number;
  threshold: number;
  /** createImageChecker until its workers have loaded the model. */
  loadMs: number;
  images: CheckAloneImage[];
}

const WARMUP_CHECKS = 3;

export async function runCheckAlone(opts: CheckAloneOptions): Promise<CheckAloneResult> {
  const config = loadConfig({ DISCORD_TOKEN: BENCH_DISCORD_TOKEN, SEGMIND_API_KEY: BENCH_SEGMIND_KEY });
  // A failed check still answers (flagged, with a failure) and is counted below; its log line is not needed here.
  const logger = createLogger({ level: 'silent', secrets: [] });
  const started = performance.now();
  const checker = await createImageChecker({ threads: config.IMAGE_CHECK_THREADS, threshold: config.IMAGE_CHECK_THRESHOLD, logger });
  const loadMs = round(performance.now() - started);
  const images: CheckAloneImage[] = [];
  try {
    for (const { label, image } of opts.images) {
      const times: number[] = [];
      let flagged = 0;
      let failed = 0;
      let bytes = 0;
      for (let i = 0; i < WARMUP_CHECKS + opts.checks; i++) {
        // A new seed each time: new pixels, as every Segmind answer brings.
        const data = await renderImage({ format: image.format, width: image.longSide, height: image.longSide, seed: i + 1, noise: image.noise });
        bytes = data.length;
        const verdict = await checker.check(data);
        if (i < WARMUP_CHECKS) continue;
        times.push(verdict.durationMs);
        if (verdict.failure !== undefined) failed++;
        else if (verdict.flagged) flagged++;
      }
      const checkMs = distribution(times);
      images.push({ label, image, bytes, checkMs, imagesPerSecondPerThread: round(1000 / checkMs.mean, 1), flagged, failed });
    }
  } finally {
    await checker.close();
  }
  return { threads: config.IMAGE_CHECK_THREADS, threshold: config.IMAGE_CHECK_THRESHOLD, loadMs, images };
}
