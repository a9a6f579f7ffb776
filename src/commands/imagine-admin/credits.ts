/** `/imagine-admin credits give|take|reset|allowance|clear-allowance`: the credits of one member. */
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { plural, user } from './format.js';
import { handler, without, type AdminDeps, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { MAX_CREDITS, count, group, integer, member, memberOnly, snowflake, subcommand } from './options.js';

const MAX_MEMBER_ALLOWANCES = 1_000;

export const creditsGroup = group('credits', 'Credits of one member', [
  subcommand('give', 'Give bonus credits (they never expire)', [member(), count('amount', 'Credits to give', 1, MAX_CREDITS, true)]),
  subcommand('take', 'Take bonus credits away', [member(), count('amount', 'Credits to take', 1, MAX_CREDITS, true)]),
  subcommand('reset', "Clear today's usage and the cooldown", [member()]),
  subcommand('allowance', 'Set a personal daily allowance', [member(), count('amount', 'Credits per UTC day', 0, MAX_CREDITS, true)]),
  subcommand('clear-allowance', 'Remove a personal daily allowance', [member()]),
]);

const memberAmount = z.object({ member: snowflake, amount: integer(1, MAX_CREDITS) });

export function creditsHandlers(deps: AdminDeps, { change, record, requireUnderCeiling }: AdminTools): Record<PathOf<typeof creditsGroup>, AdminHandler> {
  const { quota, clock } = deps;

  return {
    'credits/give': handler(memberAmount, async (context, { member, amount }) => {
      const balance = await quota.adjustBonus(context.guildId, member, amount);
      await record(context, 'gave bonus credits', `${user(member)} +${amount} (bonus now ${balance})`);
      return `✅ Gave ${user(member)} ${plural(amount, 'bonus credit')}. Their bonus balance is now **${balance}**.`;
    }),

    'credits/take': handler(memberAmount, async (context, { member, amount }) => {
      const balance = await quota.adjustBonus(context.guildId, member, -amount);
      await record(context, 'took bonus credits', `${user(member)} −${amount} (bonus now ${balance})`);
      return `✅ Took up to ${plural(amount, 'bonus credit')} from ${user(member)}. Their bonus balance is now **${balance}**.`;
    }),

    'credits/reset': handler(memberOnly, async (context, { member }) => {
      await quota.resetUser(context.guildId, member, clock.now());
      await record(context, "reset a member's usage", `${user(member)}: today's usage and cooldown cleared`);
      return `✅ Cleared today's usage and the cooldown of ${user(member)}.`;
    }),

    'credits/allowance': handler(
      z.object({ member: snowflake, amount: integer(0, MAX_CREDITS) }),
      async (context, { member, amount }) => {
        requireUnderCeiling('amount', amount, 'dailyCredits');
        await change(context, 'set a personal allowance', (settings) => {
          if (!(member in settings.memberAllowances) && Object.keys(settings.memberAllowances).length >= MAX_MEMBER_ALLOWANCES)
            throw new UserFacingError(`At most ${MAX_MEMBER_ALLOWANCES} members can have a personal allowance.`);
          settings.memberAllowances = { ...settings.memberAllowances, [member]: amount };
          return `${user(member)}: ${plural(amount, 'credit')} per day`;
        });
        return `✅ ${user(member)} now has a personal allowance of **${amount}** per UTC day (it replaces role and server allowances).`;
      },
    ),

    'credits/clear-allowance': handler(memberOnly, async (context, { member }) => {
      await change(context, 'cleared a personal allowance', (settings) => {
        if (!(member in settings.memberAllowances)) throw new UserFacingError(`${user(member)} has no personal allowance.`);
        settings.memberAllowances = without(settings.memberAllowances, member);
        return user(member);
      });
      return `✅ ${user(member)} follows the role and server allowances again.`;
    }),
  };
}
