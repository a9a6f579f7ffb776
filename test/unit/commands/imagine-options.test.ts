import { ApplicationCommandOptionType } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { definition, optionsSchema, toFluxParams, typedOptionsSchema } from '../../../src/commands/imagine.js';
import { ASPECT_RATIOS, OUTPUT_FORMATS } from '../../../src/services/segmind/flux-params.js';

describe('/imagine options', () => {
  it('has a zod schema with exactly the options Discord is told about', () => {
    expect(Object.keys(typedOptionsSchema.shape)).toEqual(definition.options.map((o) => o.name));
  });

  it('has no defaults in the typed-only schema: a preference or a style fills what was not typed', () => {
    expect(typedOptionsSchema.parse({ prompt: 'x' })).toEqual({ prompt: 'x' });
  });

  it('names every option exactly as the Segmind flux-dev parameter, then style and private', () => {
    expect(definition.options.map((o) => o.name)).toEqual([...Object.keys(optionsSchema.shape), 'style', 'private']);
    expect(Object.keys(optionsSchema.shape)).toEqual([
      'prompt',
      'aspect_ratio',
      'guidance',
      'steps',
      'samples',
      'seed',
      'output_format',
      'output_quality',
      'prompt_strength',
    ]);
  });

  it('declares the limits on Discord’s side too', () => {
    const byName = Object.fromEntries(definition.options.map((o) => [o.name, o]));
    expect(byName.prompt).toMatchObject({ required: true, max_length: 2000 });
    expect(byName.steps).toMatchObject({ min_value: 1, max_value: 50 });
    expect(byName.seed).toMatchObject({ min_value: 0, max_value: 4294967295 });
    expect(byName.aspect_ratio).toMatchObject({ choices: ASPECT_RATIOS.map((r) => ({ name: r, value: r })) });
    expect(byName.output_format).toMatchObject({ choices: OUTPUT_FORMATS.map((f) => ({ name: f, value: f })) });
  });

  it('declares every option to Discord with its type, range, length and choices', () => {
    const { String: STRING, Number: NUMBER, Integer: INTEGER } = ApplicationCommandOptionType;
    const ratios = ['1:1', '16:9', '21:9', '2:3', '3:2', '4:5', '5:4', '9:16', '9:21'];
    const formats = ['webp', 'jpg', 'png'];
    const expected: Record<string, Record<string, unknown>> = {
      prompt: { type: STRING, required: true, min_length: 1, max_length: 2000 },
      aspect_ratio: { type: STRING, choices: ratios.map((r) => ({ name: r, value: r })) },
      guidance: { type: NUMBER, min_value: 0, max_value: 10 },
      steps: { type: INTEGER, min_value: 1, max_value: 50 },
      samples: { type: INTEGER, min_value: 1, max_value: 4 },
      seed: { type: INTEGER, min_value: 0, max_value: 4294967295 },
      output_format: { type: STRING, choices: formats.map((f) => ({ name: f, value: f })) },
      output_quality: { type: INTEGER, min_value: 0, max_value: 100 },
      prompt_strength: { type: NUMBER, min_value: 0, max_value: 1 },
      style: { type: STRING, min_length: 1, max_length: 32 },
      private: { type: ApplicationCommandOptionType.Boolean },
    };
    const keys = ['type', 'required', 'min_length', 'max_length', 'min_value', 'max_value', 'choices'] as const;
    const declared = Object.fromEntries(
      definition.options.map((option) => {
        const record = option as Record<string, unknown>;
        return [option.name, Object.fromEntries(keys.filter((k) => record[k] !== undefined).map((k) => [k, record[k]]))];
      }),
    );
    // exactly these fields: no option is required, limited or restricted to choices beyond what is listed here
    expect(declared).toEqual(expected);
    // the zod schema has exactly these keys, in the same order
    expect(Object.keys(typedOptionsSchema.shape)).toEqual(Object.keys(expected));
    expect(definition.options.map((o) => o.name)).toEqual(Object.keys(expected));
    for (const option of definition.options) {
      expect(option.description.length, option.name).toBeGreaterThan(0);
      expect(option.description.length, option.name).toBeLessThanOrEqual(100);
    }
  });

  it('agrees with the zod schema at every declared bound', () => {
    for (const option of definition.options) {
      if (!('min_value' in option)) continue;
      const base = { prompt: 'x' };
      expect(optionsSchema.safeParse({ ...base, [option.name]: option.min_value }).success, `${option.name} min`).toBe(true);
      expect(optionsSchema.safeParse({ ...base, [option.name]: option.max_value }).success, `${option.name} max`).toBe(true);
      const step = option.type === ApplicationCommandOptionType.Integer ? 1 : 0.01;
      expect(optionsSchema.safeParse({ ...base, [option.name]: option.min_value - step }).success, `${option.name} below`).toBe(false);
      expect(optionsSchema.safeParse({ ...base, [option.name]: option.max_value + step }).success, `${option.name} above`).toBe(false);
    }
    for (const option of definition.options) {
      if (!('choices' in option)) continue;
      for (const choice of option.choices) expect(optionsSchema.safeParse({ prompt: 'x', [option.name]: choice.value }).success).toBe(true);
    }
  });

  it('fills the defaults for omitted options and picks a random seed', () => {
    const params = toFluxParams(optionsSchema.parse({ prompt: '  a red fox  ' }), () => 0.5);
    expect(params).toEqual({
      prompt: 'a red fox',
      aspect_ratio: '1:1',
      guidance: 3.5,
      steps: 25,
      samples: 1,
      seed: 2 ** 31,
      output_format: 'webp',
      output_quality: 80,
      prompt_strength: 0.8,
    });
  });

  it('keeps a given seed, including 0', () => {
    expect(toFluxParams(optionsSchema.parse({ prompt: 'x', seed: 0 }), () => 0.9).seed).toBe(0);
  });

  it.each([
    [{ prompt: '   ' }, 'prompt', 'is empty'],
    [{ prompt: 'x'.repeat(2001) }, 'prompt', 'longer than 2000'],
    [{ prompt: 'a\u0007bell' }, 'prompt', 'control characters'],
    [{ prompt: 'line\nbreak' }, 'prompt', 'control characters'],
    [{ prompt: 'x', steps: 51 }, 'steps', 'between 1 and 50'],
    [{ prompt: 'x', steps: 2.5 }, 'steps', 'whole number'],
    [{ prompt: 'x', guidance: -1 }, 'guidance', 'between 0 and 10'],
    [{ prompt: 'x', samples: 5 }, 'samples', 'between 1 and 4'],
    [{ prompt: 'x', seed: 2 ** 32 }, 'seed', 'between 0 and 4294967295'],
    [{ prompt: 'x', aspect_ratio: '4:3' }, 'aspect_ratio', 'must be one of'],
    [{ prompt: 'x', output_format: 'gif' }, 'output_format', 'must be one of'],
    [{ prompt: 'x', output_quality: 101 }, 'output_quality', 'between 0 and 100'],
    [{ prompt: 'x', prompt_strength: 1.5 }, 'prompt_strength', 'between 0 and 1'],
    [{ prompt: 'x', guidance: '3' }, 'guidance', 'must be a number'],
  ])('rejects %j', (input, path, message) => {
    const result = optionsSchema.safeParse(input);
    expect(result.success).toBe(false);
    const issue = result.error?.issues[0];
    expect(issue?.path).toEqual([path]);
    expect(issue?.message).toContain(message);
  });

  it('accepts a prompt of exactly 2000 characters and the limits themselves', () => {
    const ok = optionsSchema.safeParse({
      prompt: 'y'.repeat(2000),
      guidance: 10,
      steps: 1,
      samples: 4,
      seed: 4294967295,
      output_quality: 0,
      prompt_strength: 1,
    });
    expect(ok.success).toBe(true);
  });
});
