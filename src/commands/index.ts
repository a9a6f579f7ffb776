import type { RESTPostAPIChatInputApplicationCommandsJSONBody } from 'discord.js';
import * as imagine from './imagine.js';
import type { SlashCommand } from './types.js';

/** Every command the bot registers, in the order Discord shows them. */
export const commandDefinitions: RESTPostAPIChatInputApplicationCommandsJSONBody[] = [imagine.definition];

export type CommandDeps = imagine.ImagineDeps;

export function createCommands(deps: CommandDeps): Map<string, SlashCommand> {
  const commands = [imagine.createImagineCommand(deps)];
  return new Map(commands.map((command) => [command.definition.name, command]));
}
