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
import type { PreferenceStore } from '../services/creative/preference-store.js';
import { resolveImagine } from '../services/creative/resolve-imagine.js';
import { styleChoices } from '../services/creative/style-choices.js';
import { STYLE_NAME_MAX, type StyleStore } from '../services/creative/style-store.js';
import { parseOptions } from './options.js';
import { OPTION_MESSAGES } from './option-messages.js';
import { memberContextOf } from './member-context.js';
import { submitImagine, type ImagineInput, type SubmitDeps } from './submit-imagine.js';
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
    {
      type: ApplicationCommandOptionType.String,
      name: 'style',
      description: "One of this server's styles, or none (default: your preference, the channel's or the server's)",
      autocomplete: true,
      min_length: 1,
      max_length: STYLE_NAME_MAX,
    },
    {
      type: ApplicationCommandOptionType.Boolean,
      name: 'private',
      description: 'Only you see the result, where the server allows it (default: your preference, else no)',
    },
  ],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

const number = (min: number, max: number) => {
  const range = OPTION_MESSAGES.between(min, max);
  return z.number({ error: OPTION_MESSAGES.number }).min(min, range).max(max, range);
};
const integer = (min: number, max: number) => number(min, max).int(OPTION_MESSAGES.whole);

// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

/** Each option's validation, shared by the full set (remix) and the typed-only set (/imagine) and /preferences. */
export const imagineFields = {
  prompt: z
    .string({ error: OPTION_MESSAGES.required })
    .trim()
    .min(1, OPTION_MESSAGES.empty)
    .max(LIMITS.promptMaxLength, OPTION_MESSAGES.tooLong(LIMITS.promptMaxLength))
    .refine((prompt) => !CONTROL_CHARACTERS.test(prompt), OPTION_MESSAGES.control),
  aspect_ratio: z.enum(ASPECT_RATIOS, { error: OPTION_MESSAGES.oneOf(ASPECT_RATIOS) }),
  guidance: number(LIMITS.guidance.min, LIMITS.guidance.max),
  steps: integer(LIMITS.steps.min, LIMITS.steps.max),
  samples: integer(LIMITS.samples.min, LIMITS.samples.max),
  seed: integer(LIMITS.seed.min, LIMITS.seed.max),
  output_format: z.enum(OUTPUT_FORMATS, { error: OPTION_MESSAGES.oneOf(OUTPUT_FORMATS) }),
  output_quality: integer(LIMITS.outputQuality.min, LIMITS.outputQuality.max),
  prompt_strength: number(LIMITS.promptStrength.min, LIMITS.promptStrength.max),
  style: z
    .string({ error: OPTION_MESSAGES.text })
    .trim()
    .min(1, OPTION_MESSAGES.empty)
    .max(STYLE_NAME_MAX, OPTION_MESSAGES.tooLong(STYLE_NAME_MAX)),
  private: z.boolean({ error: OPTION_MESSAGES.boolean }),
};

/** The options exactly as Segmind names them; defaults are Segmind's example values (a remix's full set). */
export const optionsSchema = z.object({
  prompt: imagineFields.prompt,
  aspect_ratio: imagineFields.aspect_ratio.default(DEFAULTS.aspect_ratio),
  guidance: imagineFields.guidance.default(DEFAULTS.guidance),
  steps: imagineFields.steps.default(DEFAULTS.steps),
  samples: imagineFields.samples.default(DEFAULTS.samples),
  seed: imagineFields.seed.optional(),
  output_format: imagineFields.output_format.default(DEFAULTS.output_format),
  output_quality: imagineFields.output_quality.default(DEFAULTS.output_quality),
  prompt_strength: imagineFields.prompt_strength.default(DEFAULTS.prompt_strength),
});

/**
 * What `/imagine` was sent, without defaults: an option left out may be filled by a preference or a style, so the
 * resolver must know what was typed.
 */
export const typedOptionsSchema = z.object({
  prompt: imagineFields.prompt,
  aspect_ratio: imagineFields.aspect_ratio.optional(),
  guidance: imagineFields.guidance.optional(),
  steps: imagineFields.steps.optional(),
  samples: imagineFields.samples.optional(),
  seed: imagineFields.seed.optional(),
  output_format: imagineFields.output_format.optional(),
  output_quality: imagineFields.output_quality.optional(),
  prompt_strength: imagineFields.prompt_strength.optional(),
  style: imagineFields.style.optional(),
  private: imagineFields.private.optional(),
});

export type ImagineOptions = z.output<typeof optionsSchema>;

/** Applies the one default zod cannot: a fresh random seed, which is then always reported. */
export function toFluxParams(options: ImagineOptions, random: () => number): FluxDevParams {
  return { ...options, seed: options.seed ?? randomSeed(random) };
}

export interface ImagineDeps extends SubmitDeps {
  random: () => number;
  styles: StyleStore;
  preferences: PreferenceStore;
}

/**
 * How long `/imagine` waits for a member's preferences before its deferral, when `private` was not typed: the deferral
 * must be ephemeral or public from the start, and Discord's 3 s must hold.
 */
export const PREFERENCE_READ_BEFORE_DEFER_MS = 1_000;
/** After the deferral there is time, but a storage that never answers must not leave "thinking…" forever. */
const READ_AFTER_DEFER_MS = 10_000;

export function createImagineCommand(deps: ImagineDeps): SlashCommand {
  return {
    definition,
    async autocomplete(interaction) {
      if (!interaction.inGuild()) return interaction.respond([]);
      const styles = await deps.styles.cached(interaction.guildId);
      await interaction.respond(styleChoices(styles, String(interaction.options.getFocused())));
    },
    async execute(interaction, log) {
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('imagine:serversOnly'));
      // Validation needs no storage and answers privately at once; storage is asked only after the defer
      // (Discord's 3 s rule), see submitImagine, except the one preference the deferral itself depends on.
      const { private: typedPrivate, ...typed } = parseOptions(typedOptionsSchema, interaction);
      const { guildId } = interaction;
      const userId = interaction.user.id;
      const readPreferences = () => deps.preferences.get(guildId, userId);
      let preferencesBeforeDefer: Awaited<ReturnType<typeof readPreferences>> | undefined;
      const privacy =
        typedPrivate ??
        (async () => {
          preferencesBeforeDefer = await deps.policy.withStorageTimeout(readPreferences(), PREFERENCE_READ_BEFORE_DEFER_MS);
          return preferencesBeforeDefer.private ?? false;
        });
      const resolve = async (): Promise<ImagineInput> => {
        const [preferences, styles] = await Promise.all([
          preferencesBeforeDefer ?? deps.policy.withStorageTimeout(readPreferences(), READ_AFTER_DEFER_MS),
          deps.policy.withStorageTimeout(deps.styles.get(guildId), READ_AFTER_DEFER_MS),
        ]);
        const { parentChannelId } = memberContextOf(interaction);
        return resolveImagine({ typed, preferences, styles, channelId: interaction.channelId ?? '', parentChannelId, random: deps.random });
      };
      await submitImagine(interaction, resolve, deps, log, { private: privacy });
    },
  };
}
