import {
  ApplicationCommandOptionType,
  ApplicationIntegrationType,
  InteractionContextType,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { z } from 'zod';
import {
  ASPECT_RATIOS,
  DEFAULTS,
  LIMITS,
  OUTPUT_FORMATS,
  randomSeed,
  type FluxDevParams,
} from '../services/segmind/flux-params.js';
import { UserFacingError } from '../errors.js';
import { parseOptions } from './options.js';
import { submitImagine, type SubmitDeps } from './submit-imagine.js';
import type { SlashCommand } from './types.js';

export const definition = {
  name: 'imagine',
  description: 'Generate images with FLUX.1 [dev]',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
  options: [
    {
      type: ApplicationCommandOptionType.String,
      name: 'prompt',
      description: 'What to draw',
      required: true,
      min_length: 1,
      max_length: LIMITS.promptMaxLength,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'aspect_ratio',
      description: `Width:height (default ${DEFAULTS.aspect_ratio})`,
      choices: ASPECT_RATIOS.map((ratio) => ({ name: ratio, value: ratio })),
    },
    {
      type: ApplicationCommandOptionType.Number,
      name: 'guidance',
      description: `How closely to follow the prompt, ${LIMITS.guidance.min}–${LIMITS.guidance.max} (default ${DEFAULTS.guidance})`,
      min_value: LIMITS.guidance.min,
      max_value: LIMITS.guidance.max,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'steps',
      description: `Denoising steps, ${LIMITS.steps.min}–${LIMITS.steps.max} (default ${DEFAULTS.steps})`,
      min_value: LIMITS.steps.min,
      max_value: LIMITS.steps.max,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'samples',
      description: `Number of images, ${LIMITS.samples.min}–${LIMITS.samples.max} (default ${DEFAULTS.samples})`,
      min_value: LIMITS.samples.min,
      max_value: LIMITS.samples.max,
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'seed',
      description: 'Seed for a reproducible image (default: random, always shown)',
      min_value: LIMITS.seed.min,
      max_value: LIMITS.seed.max,
    },
    {
      type: ApplicationCommandOptionType.String,
      name: 'output_format',
      description: `Image format (default ${DEFAULTS.output_format})`,
      choices: OUTPUT_FORMATS.map((format) => ({ name: format, value: format })),
    },
    {
      type: ApplicationCommandOptionType.Integer,
      name: 'output_quality',
      description: `Quality of webp/jpg, ${LIMITS.outputQuality.min}–${LIMITS.outputQuality.max} (default ${DEFAULTS.output_quality})`,
      min_value: LIMITS.outputQuality.min,
      max_value: LIMITS.outputQuality.max,
    },
    {
      type: ApplicationCommandOptionType.Number,
      name: 'prompt_strength',
      // Segmind's flux-dev takes no input image, and prompt strength weighs the prompt against one: say so plainly.
      description: `No visible effect: it weighs an input image, which this command never sends (${LIMITS.promptStrength.min}–${LIMITS.promptStrength.max}, default ${DEFAULTS.prompt_strength})`,
      min_value: LIMITS.promptStrength.min,
      max_value: LIMITS.promptStrength.max,
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

const number = (min: number, max: number) => {
  const range = `must be between ${min} and ${max}`;
  return z.number({ error: 'must be a number' }).min(min, range).max(max, range);
};
const integer = (min: number, max: number) => number(min, max).int('must be a whole number');

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** The options exactly as Segmind names them; defaults are Segmind's example values. */
export const optionsSchema = z.object({
  prompt: z
    .string({ error: 'is required' })
    .trim()
    .min(1, 'is empty')
    .max(LIMITS.promptMaxLength, `is longer than ${LIMITS.promptMaxLength} characters`)
    .refine((prompt) => !CONTROL_CHARACTERS.test(prompt), 'contains control characters (line breaks, tabs…)'),
  aspect_ratio: z.enum(ASPECT_RATIOS, { error: `must be one of ${ASPECT_RATIOS.join(', ')}` }).default(DEFAULTS.aspect_ratio),
  guidance: number(LIMITS.guidance.min, LIMITS.guidance.max).default(DEFAULTS.guidance),
  steps: integer(LIMITS.steps.min, LIMITS.steps.max).default(DEFAULTS.steps),
  samples: integer(LIMITS.samples.min, LIMITS.samples.max).default(DEFAULTS.samples),
  seed: integer(LIMITS.seed.min, LIMITS.seed.max).optional(),
  output_format: z.enum(OUTPUT_FORMATS, { error: `must be one of ${OUTPUT_FORMATS.join(', ')}` }).default(DEFAULTS.output_format),
  output_quality: integer(LIMITS.outputQuality.min, LIMITS.outputQuality.max).default(DEFAULTS.output_quality),
  prompt_strength: number(LIMITS.promptStrength.min, LIMITS.promptStrength.max).default(DEFAULTS.prompt_strength),
});

export type ImagineOptions = z.output<typeof optionsSchema>;

/** Applies the one default zod cannot: a fresh random seed, which is then always reported. */
export function toFluxParams(options: ImagineOptions, random: () => number): FluxDevParams {
  return { ...options, seed: options.seed ?? randomSeed(random) };
}

export interface ImagineDeps extends SubmitDeps {
  random: () => number;
}

export function createImagineCommand(deps: ImagineDeps): SlashCommand {
  return {
    definition,
    async execute(interaction, log) {
      if (!interaction.inGuild()) throw new UserFacingError('`/imagine` works in servers only.');
      // Validation needs no storage and answers privately at once; storage is asked only after the defer
      // (Discord's 3 s rule), see submitImagine.
      const params = toFluxParams(parseOptions(optionsSchema, interaction), deps.random);
      await submitImagine(interaction, { params }, deps, log);
    },
  };
}
