/**
 * A test image checker for the bot's `ImageChecker` seam, keyed on the fake image's tag: the fake Segmind paints each
 * image in one colour derived from its request's seed (images.ts), so this checker decodes the image, finds the seed
 * (among those the fake Segmind was asked for) whose colour is nearest, and answers what the test set for that seed.
 * Seeds it was told nothing about are clean.
 */
import sharp from 'sharp';
import type { ImageChecker, ImageVerdict } from '../../src/services/safety/image-checker.js';
import { colourForSeed } from './images.js';

export type FakeCheckOutcome = 'flagged' | NonNullable<ImageVerdict['failure']>;

/** Scores a classifier might give a clearly sexual image, and a harmless one. */
export const FLAGGED_SCORES = { Porn: 0.91, Hentai: 0.03, Sexy: 0.04, Drawing: 0.01, Neutral: 0.01 };
export const CLEAN_SCORES = { Porn: 0.01, Hentai: 0.01, Sexy: 0.02, Drawing: 0.06, Neutral: 0.9 };

export class FakeImageChecker implements ImageChecker {
  private readonly outcomes = new Map<number, FakeCheckOutcome>();
  /** Every check, in order: which seed the image was recognised as, and the verdict given. */
  readonly checks: Array<{ seed: number | undefined; verdict: ImageVerdict }> = [];

  /** `candidates`: the seeds the images may come from (the fake Segmind's recorded requests). */
  constructor(private readonly candidates: () => number[]) {}

  /** Images of these seeds get `outcome` (flagged with scores, or a check that could not be made). */
  set(outcome: FakeCheckOutcome, ...seeds: number[]): void {
    for (const seed of seeds) this.outcomes.set(seed, outcome);
  }

  reset(): void {
    this.outcomes.clear();
    this.checks.length = 0;
  }

  async check(image: Uint8Array): Promise<ImageVerdict> {
    const seed = await this.recognise(image);
    const outcome = seed === undefined ? undefined : this.outcomes.get(seed);
    const verdict: ImageVerdict =
      outcome === undefined
        ? { flagged: false, scores: { ...CLEAN_SCORES }, durationMs: 3 }
        : outcome === 'flagged'
          ? { flagged: true, scores: { ...FLAGGED_SCORES }, durationMs: 3 }
          : { flagged: true, failure: outcome, durationMs: outcome === 'timeout' ? 15_000 : 3 };
    this.checks.push({ seed, verdict });
    return verdict;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private async recognise(image: Uint8Array): Promise<number | undefined> {
    const { data } = await sharp(image).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const [r = 0, g = 0, b = 0] = data;
    let best: { seed: number; distance: number } | undefined;
    for (const seed of new Set(this.candidates())) {
      const c = colourForSeed(seed);
      const distance = Math.abs(c.r - r) + Math.abs(c.g - g) + Math.abs(c.b - b);
      if (best === undefined || distance < best.distance) best = { seed, distance };
    }
    return best?.seed;
  }
}
