import { ApplicationCommandType } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { commandDefinitions } from '../../../src/commands/index.js';
import { COMMAND_LOCALES } from '../../../src/commands/localize-definitions.js';
import { resources } from '../../../src/i18n/catalog/index.js';

interface Choice {
  name: string;
  value: string | number;
  name_localizations?: Record<string, string>;
}
interface Node {
  name: string;
  description?: string;
  description_localizations?: Record<string, string>;
  options?: Node[];
  choices?: Choice[];
}

const chatInput = commandDefinitions.filter((c) => c.type === undefined || c.type === ApplicationCommandType.ChatInput) as unknown as Node[];

/** Every command, group, subcommand and option with its path as typed, depth first. */
function nodes(): Array<{ path: string; node: Node }> {
  const out: Array<{ path: string; node: Node }> = [];
  const walk = (node: Node, path: string) => {
    out.push({ path, node });
    for (const option of node.options ?? []) walk(option, `${path} ${option.name}`);
  };
  for (const command of chatInput) walk(command, command.name);
  return out;
}

const locales = COMMAND_LOCALES.map(([discordLocale]) => discordLocale);
const english = resources['en-US'].commands;

describe('command localizations', () => {
  it('cover every description and every choice in every locale, 1–100 characters each', () => {
    for (const { path, node } of nodes()) {
      expect(Object.keys(node.description_localizations ?? {}), path).toEqual(locales);
      for (const text of Object.values(node.description_localizations ?? {})) expect(text.length, `${path}: ${text}`).toBeGreaterThanOrEqual(1);
      for (const text of Object.values(node.description_localizations ?? {})) expect(text.length, `${path}: ${text}`).toBeLessThanOrEqual(100);
      for (const choice of node.choices ?? []) {
        expect(Object.keys(choice.name_localizations ?? {}), `${path} ${choice.value}`).toEqual(locales);
        for (const text of Object.values(choice.name_localizations ?? {})) expect(text.length, `${path} ${choice.value}: ${text}`).toBeGreaterThanOrEqual(1);
        for (const text of Object.values(choice.name_localizations ?? {})) expect(text.length, `${path} ${choice.value}: ${text}`).toBeLessThanOrEqual(100);
      }
    }
  });

  it('leave names English and the message command alone', () => {
    for (const { node } of nodes()) expect(Object.keys(node)).not.toContain('name_localizations');
    const menu = commandDefinitions.find((c) => c.type === ApplicationCommandType.Message)!;
    expect(menu).not.toHaveProperty('description_localizations');
    expect(menu).not.toHaveProperty('name_localizations');
  });

  it('keep the en-US catalog equal to the English in the definitions, with no key for a path that is gone', () => {
    const paths = new Map(nodes().map(({ path, node }) => [path, node.description]));
    expect(Object.keys(english.description).sort()).toEqual([...paths.keys()].sort());
    for (const [path, description] of paths) expect(english.description[path as keyof typeof english.description], path).toBe(description);

    const choices = new Map<string, string>();
    for (const { node } of nodes()) for (const choice of node.choices ?? []) choices.set(`${node.name} ${choice.value}`, choice.name);
    for (const [key, name] of Object.entries(english.choice)) expect(choices.get(key), key).toBe(name);
  });

  it('keep every number of the English (limits, defaults) in each translation', () => {
    const numbers = (text: string) => text.match(/\d+/g) ?? [];
    for (const [, locale] of COMMAND_LOCALES) {
      const translated: Record<string, string> = resources[locale].commands.description;
      for (const [path, text] of Object.entries(english.description)) {
        const theirs = numbers(translated[path]!);
        for (const n of numbers(text)) expect(theirs, `${locale} ${path}: ${translated[path]}`).toContain(n);
      }
    }
  });

  /**
   * Discord counts the name, description and value of a command, its options and choices together, and with
   * localizations only the longest text of each field: 8000 characters since February 2024 (discord-api-docs #6668;
   * the English alone is held under the old 4000 in imagine-admin.test.ts).
   */
  it('keep every command within Discord’s combined size limit, counting the longest localization of each field', () => {
    const longest = (text: string, localized: Record<string, string> | undefined) =>
      Math.max(text.length, ...Object.values(localized ?? {}).map((t) => t.length));
    const size = (node: Node): number =>
      longest(node.name, undefined) +
      longest(node.description ?? '', node.description_localizations) +
      (node.choices ?? []).reduce((t, c) => t + longest(c.name, c.name_localizations) + String(c.value).length, 0) +
      (node.options ?? []).reduce((t, o) => t + size(o), 0);
    const sizes = Object.fromEntries(chatInput.map((c) => [c.name, size(c)]));
    for (const [name, total] of Object.entries(sizes)) expect(total, name).toBeLessThanOrEqual(8000);
  });
});
