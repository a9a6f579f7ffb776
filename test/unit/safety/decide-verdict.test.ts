import { describe, expect, it } from 'vitest';
import { decideVerdict, sexualScore } from '../../../src/services/safety/decide-verdict.js';
import type { ImageClass } from '../../../src/services/safety/image-checker.js';

/** A score vector summing to 1: `porn` and `hentai` as given, the rest split between Neutral and Drawing. */
function scores(porn: number, hentai: number, sexy = 0): Record<ImageClass, number> {
  const rest = Math.max(0, 1 - porn - hentai - sexy);
  return { Porn: porn, Hentai: hentai, Sexy: sexy, Neutral: rest / 2, Drawing: rest / 2 };
}

describe('decideVerdict', () => {
  it('flags an image whose Porn + Hentai is exactly the threshold', () => {
    expect(decideVerdict(scores(0.35, 0.25), 0.6)).toBe(true);
    expect(decideVerdict(scores(0.6, 0), 0.6)).toBe(true);
    expect(decideVerdict(scores(0, 0.6), 0.6)).toBe(true);
  });

  it('flags a sum that float rounding puts a hair below the threshold (0.1 + 0.2 against 0.3)', () => {
    expect(0.1 + 0.2).not.toBe(0.3); // 0.30000000000000004: the sum itself is not exact
    expect(decideVerdict(scores(0.2, 0.1), 0.3)).toBe(true);
    expect(decideVerdict(scores(0.4, 0.2), 0.6)).toBe(true);
  });

  it('does not flag a sum just below the threshold', () => {
    expect(decideVerdict(scores(0.3, 0.299), 0.6)).toBe(false);
    expect(decideVerdict(scores(0.5999, 0), 0.6)).toBe(false);
  });

  it('flags a sum just above the threshold', () => {
    expect(decideVerdict(scores(0.3, 0.301), 0.6)).toBe(true);
    expect(decideVerdict(scores(0.9, 0.05), 0.6)).toBe(true);
  });

  it('adds Porn and Hentai: neither alone reaches 0.6, together they do', () => {
    expect(decideVerdict(scores(0.4, 0.25), 0.6)).toBe(true);
    expect(sexualScore(scores(0.4, 0.25))).toBeCloseTo(0.65, 12);
  });

  it('does not count Sexy (suggestive, not explicit), however high', () => {
    expect(decideVerdict(scores(0.05, 0.05, 0.9), 0.6)).toBe(false);
  });

  it('leaves a neutral image alone, as the model scores a plain colour', () => {
    expect(decideVerdict({ Drawing: 0.069, Hentai: 0.067, Neutral: 0.863, Porn: 0.0006, Sexy: 0.001 }, 0.6)).toBe(false);
  });

  it('flags everything at threshold 0 and only a certain image at threshold 1', () => {
    expect(decideVerdict(scores(0, 0), 0)).toBe(true);
    expect(decideVerdict(scores(0.5, 0.4999), 1)).toBe(false);
    expect(decideVerdict(scores(0.5, 0.5), 1)).toBe(true);
  });

  it('flags a score vector that is not probabilities (NaN, negative, above 1): the safe side', () => {
    expect(decideVerdict({ ...scores(0, 0), Porn: Number.NaN }, 0.6)).toBe(true);
    expect(decideVerdict({ ...scores(0, 0), Neutral: -0.1 }, 0.6)).toBe(true);
    expect(decideVerdict({ ...scores(0, 0), Drawing: 1.5 }, 0.6)).toBe(true);
    expect(decideVerdict({ ...scores(0, 0), Sexy: Number.POSITIVE_INFINITY }, 0.6)).toBe(true);
  });
});
