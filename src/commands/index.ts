import type { RESTPostAPIChatInputApplicationCommandsJSONBody } from 'discord.js';
import * as credits from './credits.js';
import * as imagineAdmin from './imagine-admin/index.js';
import * as imagine from './imagine.js';
import type { SlashCommand } from './types.js';

/** Every command the bot registers, in the order Discord shows them. */
export const commandDefinitions: RESTPostAPIChatInputApplicationCommandsJSONBody[] = [
  imagine.definition,
  credits.definition,
  imagineAdmin.definition,
];

export type CommandDeps = imagine.ImagineDeps & imagineAdmin.AdminDeps;

export function createCommands(deps: CommandDeps): Map<string, SlashCommand> {
  const commands = [
    imagine.createImagineCommand(deps),
    credits.createCreditsCommand(deps),
    imagineAdmin.createImagineAdminCommand(deps),
  ];
  return new Map(commands.map((command) => [command.definition.name, command]));
}
