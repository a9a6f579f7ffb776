/** `/imagine-admin credits give|take|reset|allowance|clear-allowance`: the credits of one member. */
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { user } from './format.js';
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
      await record(context, 'gaveBonus', (t) => t('admin:credits.gaveDetails', { member: user(member), amount: String(amount), balance: String(balance) }));
      return context.t('admin:credits.gave', { member: user(member), count: amount, balance: String(balance) });
    }),

    'credits/take': handler(memberAmount, async (context, { member, amount }) => {
      const balance = await quota.adjustBonus(context.guildId, member, -amount);
      await record(context, 'tookBonus', (t) => t('admin:credits.tookDetails', { member: user(member), amount: String(amount), balance: String(balance) }));
      return context.t('admin:credits.took', { member: user(member), count: amount, balance: String(balance) });
    }),

    'credits/reset': handler(memberOnly, async (context, { member }) => {
      await quota.resetUser(context.guildId, member, clock.now());
      await record(context, 'resetUsage', (t) => t('admin:credits.resetDetails', { member: user(member) }));
      return context.t('admin:credits.reset', { member: user(member) });
    }),

    'credits/allowance': handler(
      z.object({ member: snowflake, amount: integer(0, MAX_CREDITS) }),
      async (context, { member, amount }) => {
        requireUnderCeiling('amount', amount, 'dailyCredits');
        await change(context, 'setAllowance', (settings) => {
          if (!(member in settings.memberAllowances) && Object.keys(settings.memberAllowances).length >= MAX_MEMBER_ALLOWANCES)
            throw new UserFacingError((t) => t('admin:credits.tooManyAllowances', { n: String(MAX_MEMBER_ALLOWANCES) }));
          settings.memberAllowances = { ...settings.memberAllowances, [member]: amount };
          return (t) => t('admin:credits.allowanceDetails', { member: user(member), count: amount });
        });
        return context.t('admin:credits.allowance', { member: user(member), amount: String(amount) });
      },
    ),

    'credits/clear-allowance': handler(memberOnly, async (context, { member }) => {
      await change(context, 'clearedAllowance', (settings) => {
        if (!(member in settings.memberAllowances)) throw new UserFacingError((t) => t('admin:credits.noAllowance', { member: user(member) }));
        settings.memberAllowances = without(settings.memberAllowances, member);
        return () => user(member);
      });
      return context.t('admin:credits.clearedAllowance', { member: user(member) });
    }),
  };
}
