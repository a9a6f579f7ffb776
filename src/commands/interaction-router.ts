import {
  MessageFlags,
  type AutocompleteInteraction,
  type ChatInputCommandInteraction,
  type Interaction,
  type MessageContextMenuCommandInteraction,
} from 'discord.js';
import type { ButtonHandler, ComponentInteraction } from './cancel-button.js';
import { UserFacingError } from '../errors.js';
import { memberTranslator } from '../i18n/i18n.js';
import type { Logger } from '../logger.js';
import type { Command } from './types.js';

/** Routes interactions to their command or button and owns every error reply (one central error handler). */
export function createInteractionRouter(
  commands: ReadonlyMap<string, Command>,
  buttons: readonly ButtonHandler[],
  logger: Logger,
) {
  return async function onInteraction(interaction: Interaction): Promise<void> {
    if (interaction.isButton() || interaction.isStringSelectMenu() || interaction.isModalSubmit())
      return routeComponent(interaction);
    if (interaction.isAutocomplete()) return routeAutocomplete(interaction);
    if (!interaction.isChatInputCommand() && !interaction.isMessageContextMenuCommand()) return;
    const log = logger.child({
      interactionId: interaction.id,
      command: interaction.commandName,
      guildId: interaction.guildId,
      channelId: interaction.channelId,
      userId: interaction.user.id,
    });
    const command = commands.get(interaction.commandName);
    // A slash command and a context-menu command may share a name: each runs only for its own kind of interaction.
    const isMessageCommand = command !== undefined && 'kind' in command;
    if (!command || isMessageCommand !== interaction.isMessageContextMenuCommand()) {
      log.warn('unknown command');
      await replyWithError(interaction, new UserFacingError((t) => t('common:errors.commandGone')), log);
      return;
    }
    try {
      if ('kind' in command) {
        if (interaction.isMessageContextMenuCommand()) await command.execute(interaction, log);
      } else if (interaction.isChatInputCommand()) await command.execute(interaction, log);
    } catch (error) {
      await replyWithError(interaction, error, log);
    }
  };

  /** Suggestions have no error message of their own: a failure shows no choices, and is logged. */
  async function routeAutocomplete(interaction: AutocompleteInteraction): Promise<void> {
    const log = logger.child({ interactionId: interaction.id, command: interaction.commandName, guildId: interaction.guildId, userId: interaction.user.id });
    const command = commands.get(interaction.commandName);
    try {
      if (command && !('kind' in command) && command.autocomplete) await command.autocomplete(interaction, log);
      else await interaction.respond([]);
    } catch (error) {
      log.warn({ err: error }, 'autocomplete failed');
      if (!interaction.responded) await interaction.respond([]).catch(() => undefined);
    }
  }

  async function routeComponent(interaction: ComponentInteraction): Promise<void> {
    const log = logger.child({
      interactionId: interaction.id,
      button: interaction.customId,
      guildId: interaction.guildId,
      userId: interaction.user.id,
    });
    const handler = buttons.find((b) => interaction.customId.startsWith(b.prefix));
    try {
      if (!handler) throw new UserFacingError((t) => t('common:errors.buttonGone'));
      await handler.execute(interaction, log);
    } catch (error) {
      await replyWithError(interaction, error, log);
    }
  }
}

export async function replyWithError(
  interaction: ChatInputCommandInteraction | MessageContextMenuCommandInteraction | ComponentInteraction,
  error: unknown,
  log: Logger,
): Promise<void> {
  // The server's fixed language is not known here (it is in its settings, which the error may be about): commands
  // that read the settings throw their refusals in it already.
  const t = memberTranslator(interaction);
  let text: string;
  if (error instanceof UserFacingError) {
    log.info({ code: error.code, reason: error.message }, 'request refused');
    text = error.text(t);
  } else {
    log.error({ err: error }, 'command failed');
    text = t('common:errors.generic', { ref: interaction.id });
  }
  const content = `❌ ${text}`;
  try {
    if (!interaction.deferred && !interaction.replied) {
      await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    } else if (interaction.deferred && !interaction.replied && !interaction.ephemeral) {
      await replacePublicDeferral(interaction, content, log);
    } else {
      // An ephemeral deferral, or a reply already written: edit it, as it is the member's own view.
      await interaction.editReply({ content, embeds: [], files: [], attachments: [], allowedMentions: { parse: [] } });
    }
  } catch (replyError) {
    log.warn({ err: replyError }, 'could not send the error reply');
  }
}

/**
 * A public "thinking…" message with nothing delivered in it (requests are acknowledged before storage is asked):
 * the refusal or error is the member's business only, so the public message is deleted and the text sent as an
 * ephemeral follow-up. Deleting first matters: Discord turns the first follow-up after a deferral into the deferred
 * message itself, public. If the delete fails, the text is written into the public message instead.
 */
async function replacePublicDeferral(
  interaction: ChatInputCommandInteraction | MessageContextMenuCommandInteraction | ComponentInteraction,
  content: string,
  log: Logger,
): Promise<void> {
  try {
    await interaction.deleteReply();
  } catch (deleteError) {
    log.warn({ err: deleteError }, 'could not delete the deferred reply; answering in it instead');
    await interaction.editReply({ content, embeds: [], files: [], attachments: [], allowedMentions: { parse: [] } });
    return;
  }
  await interaction.followUp({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
}
