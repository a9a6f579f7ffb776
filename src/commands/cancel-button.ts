import { MessageFlags, type ButtonInteraction, type ModalSubmitInteraction, type StringSelectMenuInteraction } from 'discord.js';
import type { Logger } from '../logger.js';
import { memberTranslator } from '../i18n/i18n.js';
import type { ImaginePipeline } from '../services/generation/imagine-pipeline.js';
import { CANCEL_PREFIX } from '../services/generation/progress-reporter.js';

/** A press, a menu choice or a modal submission: every interaction that carries a custom_id. */
export type ComponentInteraction = ButtonInteraction | StringSelectMenuInteraction | ModalSubmitInteraction;

/** Handles the components whose custom_id starts with `prefix`. */
export interface ButtonHandler {
  readonly prefix: string;
  execute(interaction: ComponentInteraction, log: Logger): Promise<void>;
}

/** The Cancel button on a queued request's message. The pipeline writes the final "Cancelled" answer itself. */
export function createCancelButton(pipeline: ImaginePipeline): ButtonHandler {
  return {
    prefix: CANCEL_PREFIX,
    async execute(interaction) {
      const jobId = interaction.customId.slice(CANCEL_PREFIX.length);
      const result = pipeline.cancel(jobId, interaction.user.id);
      if (result === 'cancelled') {
        await interaction.deferUpdate();
        return;
      }
      const t = memberTranslator(interaction);
      await interaction.reply({
        content: result === 'not_yours' ? t('common:cancel.notYours') : t('common:cancel.tooLate'),
        flags: MessageFlags.Ephemeral,
      });
    },
  };
}
