import type { RESTPostAPIApplicationCommandsJSONBody } from 'discord.js';
import * as credits from './credits.js';
import * as generationInfo from './generation-info.js';
import * as imagineAdmin from './imagine-admin/index.js';
import * as imagine from './imagine.js';
import { localizeDefinition } from './localize-definitions.js';
import * as preferences from './preferences.js';
import type { Command } from './types.js';

/** Every command the bot registers, in the order Discord shows them, with their localizations. */
export const commandDefinitions: RESTPostAPIApplicationCommandsJSONBody[] = [
  imagine.definition,
  credits.definition,
  preferences.definition,
  imagineAdmin.definition,
  generationInfo.definition,
].map(localizeDefinition);

export type CommandDeps = imagine.ImagineDeps & imagineAdmin.AdminDeps & generationInfo.GenerationInfoDeps & preferences.PreferencesDeps;

export function createCommands(deps: CommandDeps): Map<string, Command> {
  const commands: Command[] = [
    imagine.createImagineCommand(deps),
    credits.createCreditsCommand(deps),
    preferences.createPreferencesCommand(deps),
    imagineAdmin.createImagineAdminCommand(deps),
    generationInfo.createGenerationInfoCommand(deps),
  ];
  return new Map(commands.map((command) => [command.definition.name, command]));
}
