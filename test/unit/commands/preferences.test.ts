import { ApplicationCommandOptionType } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { definition as imagine } from '../../../src/commands/imagine.js';
import { definition, setSchema } from '../../../src/commands/preferences.js';
import { PREFERENCE_NAMES } from '../../../src/services/creative/preference-store.js';

const set = definition.options.find((o) => o.name === 'set')!;

describe('/preferences definition', () => {
  it('has a zod schema for set with exactly the options Discord is told about, each a stored preference', () => {
    expect(Object.keys(setSchema.shape)).toEqual(set.options.map((o) => o.name));
    expect(Object.keys(setSchema.shape)).toEqual(PREFERENCE_NAMES);
  });

  it('declares each preference as /imagine declares the option it stands for: type, range and choices', () => {
    const keys = ['type', 'min_value', 'max_value', 'min_length', 'max_length', 'choices', 'autocomplete'] as const;
    const shape = (option: object) => Object.fromEntries(keys.filter((k) => k in option).map((k) => [k, (option as Record<string, unknown>)[k]]));
    for (const option of set.options) {
      const same = imagine.options.find((o) => o.name === option.name);
      expect(shape(option), option.name).toEqual(shape(same!));
      expect('required' in option, option.name).toBe(false);
    }
  });

  it('stays within Discord’s limits: subcommands only, descriptions of 1–100 characters', () => {
    expect(definition.options.map((o) => [o.name, o.type])).toEqual([
      ['set', ApplicationCommandOptionType.Subcommand],
      ['view', ApplicationCommandOptionType.Subcommand],
      ['reset', ApplicationCommandOptionType.Subcommand],
    ]);
    for (const option of [definition, ...definition.options, ...set.options]) {
      expect(option.description.length, option.name).toBeGreaterThan(0);
      expect(option.description.length, option.name).toBeLessThanOrEqual(100);
    }
  });
});
