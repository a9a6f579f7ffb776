import type { ChatInputCommandInteraction } from 'discord.js';
import type { z } from 'zod';
import { UserFacingError } from '../errors.js';

/**
 * Reads the options Discord sent and validates them again: the client enforces the declared limits, Discord's
 * server does not guarantee them.
 */
export function parseOptions<S extends z.ZodType>(schema: S, interaction: ChatInputCommandInteraction): z.output<S> {
  const raw = Object.fromEntries(interaction.options.data.map((option) => [option.name, option.value]));
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const name = issue.path.join('.');
    return name ? `• \`${name}\`: ${issue.message}` : `• ${issue.message}`;
  });
  throw new UserFacingError(`Some options are not valid:\n${lines.join('\n')}`, 'invalid_options');
}
