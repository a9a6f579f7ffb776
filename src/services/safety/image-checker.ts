/**
 * The seam every image passes through before it is posted: the bot's composition root gives the pipeline a checker
 * (the local classifier in worker threads; a test injects its own).
 */

/** nsfwjs's classes; their probabilities sum to 1. */
export const IMAGE_CLASSES = ['Drawing', 'Hentai', 'Neutral', 'Porn', 'Sexy'] as const;
export type ImageClass = (typeof IMAGE_CLASSES)[number];

export interface ImageVerdict {
  /** True when the image must not be shown as is in a normal channel; also true when it could not be checked. */
  flagged: boolean;
  /** The class scores, when the classifier answered. */
  scores?: Record<ImageClass, number>;
  /** Set when the image could not be checked (it then counts as flagged: the safe side). */
  failure?: 'error' | 'timeout' | 'worker_died' | 'queue_full';
  /** Time from the request to the verdict, queue included. */
  durationMs: number;
}

export interface ImageChecker {
  /** Never rejects: a check that fails answers `{ flagged: true, failure }`. */
  check(image: Uint8Array): Promise<ImageVerdict>;
  close(): Promise<void>;
}
