import { ApplicationCommandOptionType } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { fitList, fitReply } from '../../../src/commands/imagine-admin/format.js';
import {
  createAdminHandlers,
  definition,
  parseSubcommandOptions,
  selectedSubcommand,
  type AdminDeps,
} from '../../../src/commands/imagine-admin/index.js';
import { describeWordTest } from '../../../src/commands/imagine-admin/words.js';
import { UserFacingError } from '../../../src/errors.js';
import { newGuildSettings } from '../../../src/services/usage/guild-settings.js';

interface Option {
  type: number;
  name: string;
  description: string;
  required?: boolean;
  choices?: ReadonlyArray<{ name: string; value: string | number }>;
  options?: readonly Option[];
}

const NAME = /^[-_a-z0-9]{1,32}$/;
const top = definition.options as readonly Option[];
const isGroup = (o: Option) => o.type === Number(ApplicationCommandOptionType.SubcommandGroup);
const isSubcommand = (o: Option) => o.type === Number(ApplicationCommandOptionType.Subcommand);

/** Every subcommand with its path (`group/sub` or `sub`) and its own options. */
const subcommands: Array<{ path: string; options: readonly Option[] }> = top.flatMap((o) =>
  isGroup(o)
    ? (o.options ?? []).map((sub) => ({ path: `${o.name}/${sub.name}`, options: sub.options ?? [] }))
    : [{ path: o.name, options: o.options ?? [] }],
);

function everyOption(options: readonly Option[]): Option[] {
  return options.flatMap((o) => [o, ...everyOption(o.options ?? [])]);
}

// The handlers only touch their collaborators when they run.
const handlers = createAdminHandlers({} as AdminDeps);

describe('/imagine-admin definition', () => {
  it('respects Discord’s naming and description limits everywhere', () => {
    expect(definition.name).toMatch(NAME);
    expect(definition.description.length).toBeGreaterThan(0);
    expect(definition.description.length).toBeLessThanOrEqual(100);
    for (const option of everyOption(top)) {
      expect(option.name, option.name).toMatch(NAME);
      expect(option.description.length, option.name).toBeGreaterThan(0);
      expect(option.description.length, option.name).toBeLessThanOrEqual(100);
      for (const choice of option.choices ?? []) {
        expect(choice.name.length).toBeGreaterThan(0);
        expect(choice.name.length).toBeLessThanOrEqual(100);
      }
      expect((option.choices ?? []).length).toBeLessThanOrEqual(25);
    }
  });

  it('stays within the counts Discord allows', () => {
    expect(top.length).toBeLessThanOrEqual(25);
    for (const option of top) {
      expect(isGroup(option) || isSubcommand(option), option.name).toBe(true);
      if (isGroup(option)) {
        expect(option.options?.length ?? 0, option.name).toBeGreaterThan(0);
        expect(option.options?.length ?? 0, option.name).toBeLessThanOrEqual(25);
        for (const sub of option.options ?? []) expect(isSubcommand(sub), `${option.name}/${sub.name}`).toBe(true);
      }
    }
    for (const { path, options } of subcommands) {
      expect(options.length, path).toBeLessThanOrEqual(25);
      // Discord refuses a definition where a required option follows an optional one.
      const firstOptional = options.findIndex((o) => !o.required);
      if (firstOptional >= 0) expect(options.slice(firstOptional).some((o) => o.required), path).toBe(false);
    }
  });

  it('has unique names at every level', () => {
    const unique = (names: string[]) => new Set(names).size === names.length;
    expect(unique(top.map((o) => o.name))).toBe(true);
    for (const group of top.filter(isGroup)) expect(unique((group.options ?? []).map((o) => o.name)), group.name).toBe(true);
    for (const { path, options } of subcommands) expect(unique(options.map((o) => o.name)), path).toBe(true);
  });

  it('keeps the whole command under Discord’s 4000-character budget', () => {
    const size = (o: Option): number =>
      o.name.length +
      o.description.length +
      (o.choices ?? []).reduce((t, c) => t + c.name.length + String(c.value).length, 0) +
      (o.options ?? []).reduce((t, x) => t + size(x), 0);
    expect(definition.name.length + definition.description.length + top.reduce((t, o) => t + size(o), 0)).toBeLessThan(4000);
  });

  it('is hidden from members without Manage Server by default and works in servers only', () => {
    expect(definition.default_member_permissions).toBe(String(1 << 5));
    expect(definition.contexts).toEqual([0]);
  });

  it('covers what moderators need', () => {
    expect(subcommands.map((s) => s.path)).toEqual(
      expect.arrayContaining([
        'settings/view',
        'settings/set',
        'settings/reset',
        'credits/give',
        'credits/take',
        'credits/reset',
        'credits/allowance',
        'role/set',
        'role/clear',
        'role/list',
        'block/add',
        'block/remove',
        'block/list',
        'channels/add',
        'channels/remove',
        'channels/list',
        'channels/clear',
        'words/add',
        'words/remove',
        'words/list',
        'words/test',
        'pause',
        'resume',
        'usage',
      ]),
    );
  });
});

describe('/imagine-admin handlers', () => {
  it('has a handler for every subcommand, and no handler without one', () => {
    expect(Object.keys(handlers).sort()).toEqual(subcommands.map((s) => s.path).sort());
  });

  it.each(subcommands)('validates exactly the options of $path', ({ path, options }) => {
    const handler = handlers[path as keyof typeof handlers];
    expect(Object.keys(handler.schema.shape).sort()).toEqual(options.map((o) => o.name).sort());
  });
});

describe('/imagine-admin option reading', () => {
  it('finds the subcommand inside its group and its options', () => {
    const data = [
      {
        name: 'credits',
        type: ApplicationCommandOptionType.SubcommandGroup,
        options: [
          {
            name: 'give',
            type: ApplicationCommandOptionType.Subcommand,
            options: [
              { name: 'member', type: ApplicationCommandOptionType.User, value: '123456789012345678' },
              { name: 'amount', type: ApplicationCommandOptionType.Integer, value: 3 },
            ],
          },
        ],
      },
    ];
    const { path, options } = selectedSubcommand(data);
    expect(path).toBe('credits/give');
    expect(parseSubcommandOptions(handlers['credits/give'].schema, options)).toEqual({ member: '123456789012345678', amount: 3 });
  });

  it('finds a top-level subcommand', () => {
    const { path, options } = selectedSubcommand([{ name: 'resume', type: ApplicationCommandOptionType.Subcommand, options: [] }]);
    expect(path).toBe('resume');
    expect(options).toEqual([]);
  });

  it('refuses values Discord’s client should have stopped', () => {
    const options = [
      { name: 'member', type: ApplicationCommandOptionType.User, value: 'not-an-id' },
      { name: 'amount', type: ApplicationCommandOptionType.Integer, value: -2 },
    ];
    expect(() => parseSubcommandOptions(handlers['credits/give'].schema, options)).toThrow(UserFacingError);
    expect(() => parseSubcommandOptions(handlers['credits/give'].schema, options)).toThrow(/`member`: must be a Discord id\n• `amount`: must be between 1 and 100000/);
    expect(() => parseSubcommandOptions(handlers['settings/set'].schema, [{ name: 'max_samples', type: 4, value: 9 }])).toThrow(
      /`max_samples`: must be between 1 and 4/,
    );
    expect(() => parseSubcommandOptions(handlers['words/add'].schema, [{ name: 'phrase', type: 3, value: 'a\nb' }, { name: 'list', type: 3, value: 'banned' }])).toThrow(
      /control characters/,
    );
  });

  it('refuses an interaction without a subcommand', () => {
    expect(() => selectedSubcommand([])).toThrow(UserFacingError);
  });
});

describe('/imagine-admin replies', () => {
  it('cuts long lists and says how many are left out', () => {
    const items = Array.from({ length: 100 }, (_, i) => `item-${i}`);
    const text = fitList(items, ', ', 100);
    expect(text.length).toBeLessThanOrEqual(100);
    expect(text).toMatch(/… and \d+ more$/);
    expect(fitList(['a', 'b'], ', ', 100)).toBe('a, b');
  });

  it('never sends more than 2000 characters', () => {
    expect(fitReply('x'.repeat(5000))).toHaveLength(2000);
  });

  it('explains which rule a prompt breaks and where it would be allowed', () => {
    const settings = { ...newGuildSettings(), bannedWords: ['gore'] };
    expect(describeWordTest('a calm lake', settings)).toContain('passes the word lists');
    expect(describeWordTest('some g0re', settings)).toContain('Banned list: breaks `gore`');
    expect(describeWordTest('an n.s.f.w scene', settings)).toContain('NSFW list: breaks `nsfw` → refused everywhere');
    expect(describeWordTest('an n.s.f.w scene', { ...settings, nsfwPolicy: 'age_restricted' })).toContain(
      'allowed only in age-restricted channels',
    );
  });
});
