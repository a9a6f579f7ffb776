import type {
  AutocompleteInteraction,
  ChatInputCommandInteraction,
  MessageContextMenuCommandInteraction,
  RESTPostAPIChatInputApplicationCommandsJSONBody,
  RESTPostAPIContextMenuApplicationCommandsJSONBody,
} from 'discord.js';
import type { Logger } from '../logger.js';

/** One slash command: its Discord definition and its handler live in one file. */
export interface SlashCommand {
  readonly definition: RESTPostAPIChatInputApplicationCommandsJSONBody;
  execute(interaction: ChatInputCommandInteraction, log: Logger): Promise<void>;
  /** Suggestions while an option declared with `autocomplete: true` is typed (answered within Discord's 3 s). */
  autocomplete?(interaction: AutocompleteInteraction, log: Logger): Promise<void>;
}

/** One message context-menu command (right-click a message → Apps), definition and handler in one file. */
export interface MessageCommand {
  readonly kind: 'message';
  readonly definition: RESTPostAPIContextMenuApplicationCommandsJSONBody;
  execute(interaction: MessageContextMenuCommandInteraction, log: Logger): Promise<void>;
}

export type Command = SlashCommand | MessageCommand;
