import { MessageFlags, type ChatInputCommandInteraction, type Interaction } from 'discord.js';
import type { ButtonHandler, ComponentInteraction } from '../commands/cancel-button.js';
import { UserFacingError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { SlashCommand } from '../commands/types.js';

/** Routes interactions to their command or button and owns every error reply (one central error handler). */
export function createInteractionRouter(
  commands: ReadonlyMap<string, SlashCommand>,
  buttons: readonly ButtonHandler[],
  logger: Logger,
) {
  return async function onInteraction(interaction: Interaction): Promise<void> {
    if (interaction.isButton() || interaction.isStringSelectMenu() || interaction.isModalSubmit())
      return routeComponent(interaction);
    if (!interaction.isChatInputCommand()) return;
    const log = logger.child({
      interactionId: interaction.id,
      command: interaction.commandName,
      guildId: interaction.guildId,
      channelId: interaction.channelId,
      userId: interaction.user.id,
    });
    const command = commands.get(interaction.commandName);
    if (!command) {
      log.warn('unknown command');
      await replyWithError(interaction, new UserFacingError('This command is not available any more.'), log);
      return;
    }
    try {
      await command.execute(interaction, log);
    } catch (error) {
      await replyWithError(interaction, error, log);
    }
  };

  async function routeComponent(interaction: ComponentInteraction): Promise<void> {
    const log = logger.child({
      interactionId: interaction.id,
      button: interaction.customId,
      guildId: interaction.guildId,
      userId: interaction.user.id,
    });
    const handler = buttons.find((b) => interaction.customId.startsWith(b.prefix));
    try {
      if (!handler) throw new UserFacingError('This button does not work any more.');
      await handler.execute(interaction, log);
    } catch (error) {
      await replyWithError(interaction, error, log);
    }
  }
}

export async function replyWithError(
  interaction: ChatInputCommandInteraction | ComponentInteraction,
  error: unknown,
  log: Logger,
): Promise<void> {
  let text: string;
  if (error instanceof UserFacingError) {
    log.info({ code: error.code, reason: error.message }, 'request refused');
    text = error.message;
  } else {
    log.error({ err: error }, 'command failed');
    text = `Something went wrong on the bot's side. Nothing was generated. (ref \`${interaction.id}\`)`;
  }
  try {
    if (interaction.deferred || interaction.replied) {
      await interaction.editReply({ content: `❌ ${text}`, embeds: [], files: [], attachments: [], allowedMentions: { parse: [] } });
    } else {
      await interaction.reply({ content: `❌ ${text}`, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    }
  } catch (replyError) {
    log.warn({ err: replyError }, 'could not send the error reply');
  }
}
