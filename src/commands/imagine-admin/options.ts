/** Option builders and zod pieces shared by the `/imagine-admin` subjects. */
import { OPTION_MESSAGES } from '../option-messages.js';
import {
  ApplicationCommandOptionType,
  type APIApplicationCommandBasicOption,
  type APIApplicationCommandOptionChoice,
  type ChannelType,
  type CommandInteractionOption,
} from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { channel } from './format.js';

// ---------------------------------------------------------------------------------------------------------------------
// Limits shared by several subjects (each subject keeps its own); the lists are capped so a settings record stays small.

export const MAX_CREDITS = 100_000;
export const MAX_COOLDOWN_SECONDS = 86_400;
export const MAX_REASON_LENGTH = 500;

// ---------------------------------------------------------------------------------------------------------------------
// Definition

export type BasicOption = APIApplicationCommandBasicOption;
export const choicesOf = (values: readonly string[]): APIApplicationCommandOptionChoice<string>[] =>
  values.map((value) => ({ name: value, value }));

export const member = (description = 'The member'): BasicOption => ({
  type: ApplicationCommandOptionType.User,
  name: 'member',
  description,
  required: true,
});
export const count = (name: string, description: string, min: number, max: number, required = false): BasicOption => ({
  type: ApplicationCommandOptionType.Integer,
  name,
  description,
  min_value: min,
  max_value: max,
  required,
});
export const text = (name: string, description: string, maxLength: number, required = false): BasicOption => ({
  type: ApplicationCommandOptionType.String,
  name,
  description,
  min_length: 1,
  max_length: maxLength,
  required,
});
export const reason = (description: string) => text('reason', description, MAX_REASON_LENGTH);

export function subcommand<const N extends string>(name: N, description: string, options: BasicOption[] = []) {
  return { type: ApplicationCommandOptionType.Subcommand, name, description, options } as const;
}
export function group<const N extends string, const S extends ReturnType<typeof subcommand>[]>(name: N, description: string, subcommands: S) {
  return { type: ApplicationCommandOptionType.SubcommandGroup, name, description, options: subcommands } as const;
}

// ---------------------------------------------------------------------------------------------------------------------
// Option schemas (validated again: Discord's client enforces the declared limits, its server does not)

export const snowflake = z.string({ error: 'is required' }).regex(/^\d{17,20}$/, OPTION_MESSAGES.discordId);
export const integer = (min: number, max: number) => {
  const range = `must be between ${min} and ${max}`;
  return z.number({ error: 'must be a number' }).int('must be a whole number').min(min, range).max(max, range);
};
// eslint-disable-next-line no-control-regex
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;
export const line = (max: number) =>
  z
    .string({ error: 'must be text' })
    .trim()
    .min(1, 'is empty')
    .max(max, `is longer than ${max} characters`)
    .refine((value) => !CONTROL_CHARACTERS.test(value), 'contains control characters (line breaks, tabs…)');
export const none = z.object({});
export const memberOnly = z.object({ member: snowflake });
export const optionalReason = z.object({ reason: line(MAX_REASON_LENGTH).optional() });

/** Discord's client only offers the declared channel types; check again when the resolved channel is known. */
export function requireChannelType(options: readonly CommandInteractionOption[], name: string, allowed: readonly ChannelType[]): void {
  const resolved = options.find((option) => option.name === name)?.channel;
  if (resolved && !allowed.includes(resolved.type))
    throw new UserFacingError((t) => t('admin:options.wrongChannel', { channel: channel(resolved.id) }), 'invalid_options');
}

// ---------------------------------------------------------------------------------------------------------------------
// Values stored in the settings that Discord may no longer know (a deleted channel or role)

/**
 * A string option with suggestions from the settings: a channel or role option cannot name a deleted one, so the
 * member could never remove it.
 */
export const storedIdOption = (name: string, description: string): BasicOption => ({
  type: ApplicationCommandOptionType.String,
  name,
  description,
  autocomplete: true,
  min_length: 1,
  max_length: 100,
  required: true,
});
export const storedId = line(100);

/** Suggestions for stored ids: `#name` (or `@name`) while Discord knows it, `<id> (deleted)` otherwise. */
export function storedChoices(
  ids: readonly string[],
  nameOf: (id: string) => string | undefined,
  sigil: string,
  typed: string,
): Array<{ name: string; value: string }> {
  const needle = typed.trim().replace(/^[#@]/, '').toLowerCase();
  return ids
    .map((id) => {
      const name = nameOf(id);
      return { name: (name === undefined ? `${id} (deleted)` : `${sigil}${name}`).slice(0, 100), value: id };
    })
    .filter((choice) => needle === '' || choice.name.toLowerCase().includes(needle) || choice.value.includes(needle))
    .slice(0, 25);
}

/**
 * What the moderator picked or typed, as a stored id: a suggestion's id, a mention, or the name of a stored one that
 * Discord still knows. Anything else is refused with how to pick.
 */
export function resolveStored(typed: string, stored: readonly string[], nameOf: (id: string) => string | undefined, kind: 'channel' | 'role'): string {
  const id = /^(?:<(?:#|@&))?(\d{17,20})>?$/.exec(typed)?.[1];
  if (id !== undefined) return id;
  const name = typed.replace(/^[#@]/, '').toLowerCase();
  const matches = stored.filter((candidate) => nameOf(candidate)?.toLowerCase() === name);
  if (matches.length === 1) return matches[0]!;
  throw new UserFacingError((t) => (kind === 'channel' ? t('admin:options.pickChannel') : t('admin:options.pickRole')), 'invalid_options');
}
