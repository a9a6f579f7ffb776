import { describe, expect, it } from 'vitest';
import { definition, optionsSchema, toFluxParams } from '../../src/commands/imagine.js';
import { ASPECT_RATIOS, OUTPUT_FORMATS } from '../../src/services/flux-params.js';

describe('/imagine options', () => {
  it('has a zod schema with exactly the options Discord is told about', () => {
    expect(Object.keys(optionsSchema.shape).sort()).toEqual(definition.options.map((o) => o.name).sort());
  });

  it('names every option exactly as the Segmind flux-dev parameter', () => {
    expect(definition.options.map((o) => o.name)).toEqual([
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
