/** `/imagine-admin role set|clear|list`: allowances and cooldowns for members with a role. */
import { ApplicationCommandOptionType } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { describeOverride, fitList, moreOf, roleMention } from './format.js';
import { handler, without, type AdminHandler, type AdminTools, type Autocompleter, type PathOf } from './handler.js';
import {
  MAX_COOLDOWN_SECONDS,
  MAX_CREDITS,
  count,
  group,
  integer,
  none,
  resolveStored,
  snowflake,
  storedChoices,
  storedId,
  storedIdOption,
  subcommand,
  type BasicOption,
} from './options.js';

const MAX_ROLE_OVERRIDES = 50;

const role = (): BasicOption => ({ type: ApplicationCommandOptionType.Role, name: 'role', description: 'The role', required: true });

export const roleGroup = group('role', 'Allowances for members with a role', [
  subcommand('set', 'Set the allowance and/or cooldown for a role', [
    role(),
    count('daily_credits', 'Images per member per UTC day', 0, MAX_CREDITS),
    count('cooldown_seconds', 'Seconds between two requests', 0, MAX_COOLDOWN_SECONDS),
  ]),
  // A string with suggestions, not a role option: the override of a deleted role can still be picked and removed.
  subcommand('clear', 'Remove the override of a role', [storedIdOption('role', 'A role with an override (deleted ones too)')]),
  subcommand('list', 'Show the role overrides'),
]);

/** `role clear`: the roles with an override, by name while they exist, by id once deleted. */
export const roleAutocomplete: Partial<Record<PathOf<typeof roleGroup>, Autocompleter>> = {
  'role/clear': ({ interaction, settings, typed }) =>
    storedChoices(Object.keys(settings.roleOverrides), (id) => interaction.guild?.roles.cache.get(id)?.name, '@', typed),
};

export function roleHandlers({ change, requireUnderCeiling }: AdminTools): Record<PathOf<typeof roleGroup>, AdminHandler> {
  return {
    'role/set': handler(
      z.object({
        role: snowflake,
        daily_credits: integer(0, MAX_CREDITS).optional(),
        cooldown_seconds: integer(0, MAX_COOLDOWN_SECONDS).optional(),
      }),
      async (context, options) => {
        if (options.daily_credits === undefined && options.cooldown_seconds === undefined)
          throw new UserFacingError((t) => t('admin:role.giveSomething'), 'invalid_options');
        if (options.role === context.guildId) throw new UserFacingError((t) => t('admin:role.everyone'), 'invalid_options');
        requireUnderCeiling('daily_credits', options.daily_credits, 'dailyCredits');
        const details = await change(context, 'setRoleOverride', (settings) => {
          const current = settings.roleOverrides[options.role];
          if (!current && Object.keys(settings.roleOverrides).length >= MAX_ROLE_OVERRIDES)
            throw new UserFacingError((t) => t('admin:role.tooMany', { n: String(MAX_ROLE_OVERRIDES) }));
          const next = {
            dailyCredits: options.daily_credits ?? current?.dailyCredits ?? null,
            cooldownSeconds: options.cooldown_seconds ?? current?.cooldownSeconds ?? null,
          };
          settings.roleOverrides = { ...settings.roleOverrides, [options.role]: next };
          return (t) => `${roleMention(options.role)}: ${describeOverride(t, next)}`;
        });
        return context.t('admin:role.set', { details: details(context.t) });
      },
    ),

    'role/clear': handler(z.object({ role: storedId }), async (context, { role: typed }) => {
      const role = resolveStored(typed, Object.keys(context.settings.roleOverrides), (id) => context.interaction.guild?.roles.cache.get(id)?.name, 'role');
      await change(context, 'clearedRoleOverride', (settings) => {
        if (!(role in settings.roleOverrides)) throw new UserFacingError((t) => t('admin:role.noOverride', { role: roleMention(role) }));
        settings.roleOverrides = without(settings.roleOverrides, role);
        return () => roleMention(role);
      });
      return context.t('admin:role.cleared', { role: roleMention(role) });
    }),

    'role/list': handler(none, ({ t, settings }) => {
      const entries = Object.entries(settings.roleOverrides);
      if (entries.length === 0) return Promise.resolve(t('admin:role.none'));
      const lines = entries.map(([id, override]) => `• ${roleMention(id)}: ${describeOverride(t, override)}`);
      return Promise.resolve(`${t('admin:role.title', { n: String(entries.length) })}\n${fitList(lines, '\n', 1900, moreOf(t))}`);
    }),
  };
}
