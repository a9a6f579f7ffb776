/**
 * Discord's localizations for our command definitions, from the `commands` catalog: `description_localizations` on
 * every command, subcommand group, subcommand and option, `name_localizations` on every choice. Names stay English
 * (they are what members type and what the README documents); the English texts stay in the definitions.
 */
import { ApplicationCommandType, type LocalizationMap, type RESTPostAPIApplicationCommandsJSONBody } from 'discord.js';
import { resources } from '../i18n/catalog/index.js';
import { SOURCE_LOCALE, SUPPORTED_LOCALES, type Locale } from '../i18n/locales.js';

/**
 * The Discord locales that get each catalog: every one we translate, plus Latin American Spanish, whose members are
 * answered in es-ES (locales.ts) and should find the commands in the same Spanish.
 */
export const COMMAND_LOCALES: ReadonlyArray<readonly [string, Locale]> = SUPPORTED_LOCALES.filter(
  (locale) => locale !== SOURCE_LOCALE,
).flatMap((locale): Array<[string, Locale]> => (locale === 'es-ES' ? [[locale, locale], ['es-419', locale]] : [[locale, locale]]));

type Texts = Readonly<Record<string, string>>;
type Node = Record<string, unknown>;

/** The definition with its localizations; a text the catalog lacks stays English (the catalog test keeps none missing). */
export function localizeDefinition<T extends RESTPostAPIApplicationCommandsJSONBody>(definition: T): T {
  // Context-menu commands have no description and their name is what the menu shows: nothing to localize.
  if (definition.type !== undefined && definition.type !== ApplicationCommandType.ChatInput) return definition;
  return localizeNode(definition as unknown as Node, definition.name) as unknown as T;
}

function localizeNode(node: Node, path: string): Node {
  const out: Node = {};
  for (const [key, value] of Object.entries(node)) {
    if (key === 'options' && Array.isArray(value)) {
      out.options = (value as Node[]).map((option) => localizeNode(option, `${path} ${String(option.name)}`));
    } else if (key === 'choices' && Array.isArray(value)) {
      out.choices = (value as Node[]).map((choice) => localizeChoice(choice, String(node.name)));
    } else {
      out[key] = value;
      if (key === 'description') out.description_localizations = localizations((catalog) => catalog.description[path]);
    }
  }
  return out;
}

function localizeChoice(choice: Node, optionName: string): Node {
  const english = String(choice.name);
  const key = `${optionName} ${String(choice.value)}`;
  const out: Node = {};
  for (const [field, value] of Object.entries(choice)) {
    out[field] = value;
    // A name that is the value itself (a ratio, a format, a setting's option name) reads the same in every language.
    if (field === 'name') out.name_localizations = localizations((catalog) => catalog.choice[key], english);
  }
  return out;
}

function localizations(pick: (catalog: { description: Texts; choice: Texts }) => string | undefined, fallback?: string): LocalizationMap | undefined {
  const entries = COMMAND_LOCALES.flatMap(([discordLocale, locale]) => {
    const text = pick(resources[locale].commands) ?? fallback;
    return text === undefined ? [] : [[discordLocale, text] as const];
  });
  return entries.length === 0 ? undefined : Object.fromEntries(entries);
}
