import { z } from 'zod';

/**
 * Segmind flux-dev parameters: one source of truth for the slash command's definition, its zod schema and the
 * request body, so the three cannot drift apart.
 */
export const ASPECT_RATIOS = ['1:1', '16:9', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'] as const;
export const OUTPUT_FORMATS = ['webp', 'jpg', 'png'] as const;

export type AspectRatio = (typeof ASPECT_RATIOS)[number];
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const LIMITS = {
  promptMaxLength: 2000,
  guidance: { min: 0, max: 10 },
  steps: { min: 1, max: 50 },
  samples: { min: 1, max: 4 },
  seed: { min: 0, max: 2 ** 32 - 1 },
  outputQuality: { min: 0, max: 100 },
  promptStrength: { min: 0, max: 1 },
} as const;

export const DEFAULTS = {
  aspect_ratio: '1:1',
  guidance: 3.5,
  steps: 25,
  samples: 1,
  output_format: 'webp',
  output_quality: 80,
  prompt_strength: 0.8,
} as const satisfies Partial<FluxDevParams>;

/** Parameters read back from storage (journal, result records): checked, never trusted. */
export const fluxDevParamsSchema = z.object({
  prompt: z.string(),
  aspect_ratio: z.enum(ASPECT_RATIOS),
  guidance: z.number(),
  steps: z.number().int(),
  samples: z.number().int(),
  seed: z.number().int(),
  output_format: z.enum(OUTPUT_FORMATS),
  output_quality: z.number().int(),
  prompt_strength: z.number(),
});

/** What one `/imagine` asks for, defaults applied and seed chosen. */
export interface FluxDevParams {
  prompt: string;
  aspect_ratio: AspectRatio;
  guidance: number;
  steps: number;
  samples: number;
  seed: number;
  output_format: OutputFormat;
  output_quality: number;
  prompt_strength: number;
}

/** The body of one Segmind call: exactly the flux-dev parameters, one image per call. */
export type FluxDevRequestBody = FluxDevParams & { samples: 1 };

/**
 * Segmind's v1 endpoint answers with one image per response, so `samples: N` becomes N calls with seeds
 * seed, seed+1, … (each reproducible alone with `samples: 1`). Seeds wrap inside the 32-bit range.
 */
export function splitIntoSingleImageRequests(params: FluxDevParams): FluxDevRequestBody[] {
  return Array.from({ length: params.samples }, (_, i) => ({
    ...params,
    samples: 1 as const,
    seed: (params.seed + i) % (LIMITS.seed.max + 1),
  }));
}

export function randomSeed(random: () => number): number {
  return Math.floor(random() * (LIMITS.seed.max + 1));
}
