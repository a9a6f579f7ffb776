import type { Logger } from '../logger.js';
import type { Clock } from '../clock.js';
import { splitIntoSingleImageRequests } from './flux-params.js';
import type { GeneratedImage, SegmindClient } from './segmind-client.js';
import { SegmindError } from './segmind-errors.js';

export interface BatchImage extends GeneratedImage {
  /** 0-based position in the request: image `index` used seed `seed + index`. */
  index: number;
}

export interface BatchFailure {
  index: number;
  seed: number;
  error: SegmindError;
}

export interface BatchResult {
  images: BatchImage[];
  failures: BatchFailure[];
  durationMs: number;
}

/** Generates every image of a request, each as its own Segmind call, in parallel; one failure spoils no other. */
export class ImageGenerator {
  constructor(
    private readonly segmind: Pick<SegmindClient, 'generate'>,
    private readonly clock: Clock,
  ) {}

  async generate(
    params: Parameters<typeof splitIntoSingleImageRequests>[0],
    opts: { deadline?: number; signal?: AbortSignal; log: Logger },
  ): Promise<BatchResult> {
    const started = this.clock.now();
    const bodies = splitIntoSingleImageRequests(params);
    const settled = await Promise.allSettled(bodies.map((body) => this.segmind.generate(body, opts)));
    const images: BatchImage[] = [];
    const failures: BatchFailure[] = [];
    settled.forEach((outcome, index) => {
      const seed = bodies[index]!.seed;
      if (outcome.status === 'fulfilled') images.push({ ...outcome.value, index });
      else
        failures.push({
          index,
          seed,
          error:
            outcome.reason instanceof SegmindError
              ? outcome.reason
              : new SegmindError('connection', { cause: outcome.reason }),
        });
    });
    return { images, failures, durationMs: this.clock.now() - started };
  }
}
