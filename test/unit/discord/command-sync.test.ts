import { describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../../src/commands/index.js';
import { commandsMatch } from '../../../src/services/discord/command-sync.js';

/** What Discord answers for a command we registered: our fields plus ids, versions and defaults. */
function asRegistered(command: object, extra: Record<string, unknown> = {}) {
  const withDefaults = JSON.parse(JSON.stringify(command)) as Record<string, unknown> & { options?: Array<Record<string, unknown>> };
  withDefaults.options = withDefaults.options?.map((o) => ({ ...o, required: o.required ?? false, name_localizations: null, description_localized: o.description }));
  return {
    id: '1234567890123456789',
    application_id: '1111111111111111111',
    version: '1234567890123456790',
    default_member_permissions: null,
    type: 1,
    nsfw: false,
    name_localizations: null,
    description_localizations: null,
    ...withDefaults,
    ...extra,
  };
}

describe('command sync comparison', () => {
  it('sees our definitions as equal to what Discord returns for them', () => {
    expect(commandsMatch(commandDefinitions, commandDefinitions.map((c) => asRegistered(c)))).toBe(true);
  });

  it('notices a changed description, a new option, a removed choice and a missing command', () => {
    const registered = commandDefinitions.map((c) => asRegistered(c));
    expect(commandsMatch(commandDefinitions, [asRegistered(commandDefinitions[0]!, { description: 'old' })])).toBe(false);
    expect(commandsMatch(commandDefinitions, [])).toBe(false);
    expect(commandsMatch(commandDefinitions, [...registered, asRegistered({ name: 'old-command', description: 'x' })])).toBe(false);

    const fewerOptions = asRegistered(commandDefinitions[0]!);
    fewerOptions.options = fewerOptions.options!.slice(0, 3);
    expect(commandsMatch(commandDefinitions, [fewerOptions])).toBe(false);

    const fewerChoices = asRegistered(commandDefinitions[0]!);
    const aspect = fewerChoices.options!.find((o) => o.name === 'aspect_ratio')!;
    aspect.choices = (aspect.choices as unknown[]).slice(1);
    expect(commandsMatch(commandDefinitions, [fewerChoices])).toBe(false);
  });

  it('notices a changed numeric limit', () => {
    const registered = asRegistered(commandDefinitions[0]!);
    registered.options!.find((o) => o.name === 'steps')!.max_value = 100;
    expect(commandsMatch(commandDefinitions, [registered])).toBe(false);
  });

  describe('localizations', () => {
    const localized = {
      name: 'credits',
      description: 'How many images you can still generate today',
      description_localizations: { fr: 'Combien d’images tu peux encore générer aujourd’hui', ja: '今日あと何枚生成できるか' },
      options: [
        {
          type: 3,
          name: 'list',
          description: 'Which word list',
          description_localizations: { fr: 'Quelle liste de mots' },
          choices: [{ name: 'banned', value: 'banned', name_localizations: { fr: 'interdits' } }],
        },
      ],
    };
    const copy = () => JSON.parse(JSON.stringify(asRegistered(localized))) as typeof localized;

    it('sees the same localizations as equal', () => {
      expect(commandsMatch([localized], [asRegistered(localized)])).toBe(true);
    });

    it('notices a localization Discord does not have, a changed one and one Discord has that we dropped', () => {
      const missing = copy() as Partial<typeof localized>;
      delete missing.description_localizations;
      expect(commandsMatch([localized], [missing])).toBe(false);

      const changed = copy();
      changed.options[0]!.choices[0]!.name_localizations.fr = 'bannis';
      expect(commandsMatch([localized], [changed])).toBe(false);

      const extra = copy();
      (extra.options[0]!.description_localizations as Record<string, string>).de = 'Welche Wortliste';
      expect(commandsMatch([localized], [extra])).toBe(false);

      const { description_localizations: _dropped, ...unlocalized } = localized;
      expect(commandsMatch([unlocalized], [asRegistered(localized)])).toBe(false);
    });
  });
});
