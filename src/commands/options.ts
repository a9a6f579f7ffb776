import type { ChatInputCommandInteraction, CommandInteractionOption } from 'discord.js';
import type { z } from 'zod';
import { UserFacingError } from '../errors.js';
import { invalidOptionLines } from './option-messages.js';

/**
 * Reads the options Discord sent and validates them again: the client enforces the declared limits, Discord's
 * server does not guarantee them.
 */
export function parseOptions<S extends z.ZodType>(schema: S, interaction: ChatInputCommandInteraction): z.output<S> {
  return parseOptionList(schema, interaction.options.data);
}

/** The same for a list of options (a subcommand's). */
export function parseOptionList<S extends z.ZodType>(schema: S, options: readonly CommandInteractionOption[]): z.output<S> {
  const raw = Object.fromEntries(options.map((option) => [option.name, option.value]));
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const { issues } = result.error;
  throw new UserFacingError((t) => t('imagine:validation.options', { lines: invalidOptionLines(issues, t) }), 'invalid_options');
}
