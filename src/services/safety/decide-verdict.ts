import type { ImageClass } from './image-checker.js';

/**
 * Scores come from float32 tensors (about 7 significant digits) and are added in float64, so two vectors that are "at"
 * the threshold on paper can land a hair either side of it; this much below still counts as reaching it.
 */
const AT_THRESHOLD = 1e-9;

/** The sexual-content score: the two classes that show sexual acts or nudity (`Sexy` is suggestive, not explicit). */
export function sexualScore(scores: Readonly<Record<ImageClass, number>>): number {
  return scores.Porn + scores.Hentai;
}

/**
 * Flagged when Porn + Hentai reaches `threshold`. A score vector that is not a set of numbers in [0, 1] (a broken
 * model, a bug) is flagged too: when in doubt, the image is not shown as is.
 */
export function decideVerdict(scores: Readonly<Record<ImageClass, number>>, threshold: number): boolean {
  const values = Object.values(scores);
  if (values.some((v) => !Number.isFinite(v) || v < 0 || v > 1)) return true;
  return sexualScore(scores) >= threshold - AT_THRESHOLD;
}
