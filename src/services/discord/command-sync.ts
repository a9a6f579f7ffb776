import { Routes, type REST } from 'discord.js';
import type { RESTPostAPIApplicationCommandsJSONBody, RESTPutAPIApplicationCommandsJSONBody } from 'discord-api-types/v10';
import type { Logger } from '../../logger.js';

export type SyncResult = 'unchanged' | 'updated';

/**
 * Registers the commands only when what Discord has differs from our definitions: every bulk PUT counts against
 * the 200 command creations per day.
 */
export async function syncCommands(opts: {
  rest: REST;
  applicationId: string;
  guildId?: string | undefined;
  definitions: readonly RESTPostAPIApplicationCommandsJSONBody[];
  log: Logger;
}): Promise<SyncResult> {
  const { rest, applicationId, guildId, definitions, log } = opts;
  const route = guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId);
  // Without it Discord leaves the localization dictionaries out, and every start would look like a change.
  const registered = (await rest.get(route, { query: new URLSearchParams({ with_localizations: 'true' }) })) as unknown[];
  const scope = guildId ? `guild ${guildId}` : 'global';
  if (commandsMatch(definitions, registered)) {
    log.info({ scope, commands: definitions.length }, 'slash commands already up to date');
    return 'unchanged';
  }
  const body: Readonly<RESTPutAPIApplicationCommandsJSONBody> = definitions;
  await rest.put(route, { body });
  log.info({ scope, commands: definitions.map((d) => d.name) }, 'slash commands registered');
  return 'updated';
}

/** True when Discord's registered commands are exactly ours, ignoring the fields Discord adds. */
export function commandsMatch(desired: readonly object[], registered: readonly unknown[]): boolean {
  if (desired.length !== registered.length) return false;
  const byName = new Map<unknown, unknown>();
  for (const command of registered) {
    if (command && typeof command === 'object') byName.set((command as { name?: unknown }).name, command);
  }
  return desired.every((command) => {
    const other = byName.get((command as { name?: unknown }).name);
    return other !== undefined && sameShape(command, other);
  });
}

/** Values Discord treats as "not set": a missing field on one side equals one of these on the other. */
function isUnset(value: unknown): boolean {
  return value === undefined || value === null || value === false || (Array.isArray(value) && value.length === 0);
}

/** `name_localizations` / `description_localizations`: a locale added, changed or dropped on either side is a change. */
const LOCALIZATIONS = ['name_localizations', 'description_localizations'];

function sameLocalizations(desired: unknown, actual: unknown): boolean {
  const entries = (value: unknown) => (value && typeof value === 'object' ? Object.entries(value as Record<string, unknown>) : []);
  const ours = entries(desired);
  const theirs = new Map(entries(actual));
  return ours.length === theirs.size && ours.every(([locale, text]) => theirs.get(locale) === text);
}

function sameShape(desired: unknown, actual: unknown): boolean {
  if (Array.isArray(desired)) {
    return Array.isArray(actual) && desired.length === actual.length && desired.every((d, i) => sameShape(d, actual[i]));
  }
  if (desired && typeof desired === 'object') {
    if (!actual || typeof actual !== 'object') return false;
    const a = actual as Record<string, unknown>;
    const d = desired as Record<string, unknown>;
    return (
      LOCALIZATIONS.every((key) => sameLocalizations(d[key], a[key])) &&
      Object.entries(d).every(([key, value]) =>
        LOCALIZATIONS.includes(key) || (isUnset(value) ? isUnset(a[key]) : sameShape(value, a[key])),
      ) &&
      sameNestedKeys(d, a)
    );
  }
  // Discord returns permission bitfields as strings.
  return desired === actual || String(desired) === String(actual);
}

/** A nested list Discord has but we dropped (e.g. an option or choice we removed) must still count as a change. */
function sameNestedKeys(desired: Record<string, unknown>, actual: Record<string, unknown>): boolean {
  return ['options', 'choices'].every((key) => !(key in actual) || isUnset(actual[key]) || key in desired);
}
