/**
 * The messages between the classifier pool (main thread) and a classifier worker. Both sides are ours, but a worker is
 * a boundary like any other: what comes back is parsed, so a malformed answer becomes a failed check, not a crash.
 */
import { z } from 'zod';
import { IMAGE_CLASSES, type ImageClass } from './image-checker.js';

export const scoresSchema = z.object(
  Object.fromEntries(IMAGE_CLASSES.map((c) => [c, z.number()])) as Record<ImageClass, z.ZodNumber>,
);

/** Worker → pool. */
export const workerMessageSchema = z.discriminatedUnion('type', [
  /** The model is loaded and warmed up; `loadMs` from the worker's start to here. */
  z.object({ type: z.literal('ready'), loadMs: z.number() }),
  /** The model could not be loaded: the worker exits after sending this. */
  z.object({ type: z.literal('load_failed'), message: z.string() }),
  z.object({ type: z.literal('scores'), id: z.number(), scores: scoresSchema }),
  /** This one image could not be classified (not decodable, …); the worker goes on with the next. */
  z.object({ type: z.literal('error'), id: z.number(), message: z.string() }),
]);
export type WorkerMessage = z.infer<typeof workerMessageSchema>;

/** Pool → worker: one image to classify (the bytes are copied, never transferred: the caller still owns them). */
export interface ClassifyRequest {
  type: 'classify';
  id: number;
  image: Uint8Array;
}

/** The model nsfwjs loads from inside its package (its weights ship as JS modules); 224×224 RGB input. */
export const MODEL_NAME = 'MobileNetV2Mid';
export const MODEL_INPUT_SIZE = 224;
