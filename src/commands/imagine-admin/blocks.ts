/** `/imagine-admin block add|remove|list`: members who may not use /imagine. */
import type { Clock } from '../../clock.js';
import { UserFacingError } from '../../errors.js';
import { fitList, moreOf, relative, user } from './format.js';
import { handler, without, type AdminActor, type AdminDeps, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { group, member, memberOnly, none, optionalReason, reason, subcommand } from './options.js';

export const blockGroup = group('block', 'Members who may not use /imagine', [
  subcommand('add', 'Block a member', [member(), reason('Shown to the member')]),
  subcommand('remove', 'Unblock a member', [member()]),
  subcommand('list', 'Show blocked members'),
]);

export function blockHandlers(deps: AdminDeps, { change }: AdminTools): Record<PathOf<typeof blockGroup>, AdminHandler> {
  const { clock } = deps;

  return {
    'block/add': handler(memberOnly.extend(optionalReason.shape), async (context, { member, reason }) => {
      await blockMember({ change, clock }, context, member, reason);
      return reason ? context.t('admin:block.blockedWithReason', { member: user(member), reason }) : context.t('admin:block.blocked', { member: user(member) });
    }),

    'block/remove': handler(memberOnly, async (context, { member }) => {
      await change(context, 'unblocked', (settings) => {
        if (!(member in settings.blocked)) throw new UserFacingError((t) => t('admin:block.notBlocked', { member: user(member) }));
        settings.blocked = without(settings.blocked, member);
        return () => user(member);
      });
      return context.t('admin:block.unblocked', { member: user(member) });
    }),

    'block/list': handler(none, ({ t, settings }) => {
      const entries = Object.entries(settings.blocked).sort(([, a], [, b]) => b.at - a.at);
      if (entries.length === 0) return Promise.resolve(t('admin:block.nobody'));
      const lines = entries.map(([id, block]) => {
        const who = { member: user(id), by: user(block.by), when: relative(block.at) };
        return block.reason ? t('admin:block.entryWithReason', { ...who, reason: block.reason }) : t('admin:block.entry', who);
      });
      return Promise.resolve(`${t('admin:block.title', { n: String(entries.length) })}\n${fitList(lines, '\n', 1900, moreOf(t))}`);
    }),
  };
}

/**
 * Blocks a member from /imagine in the actor's server, recorded in the audit log: `block add` and the Block owner
 * button of Generation info both go through here.
 */
export async function blockMember(
  { change, clock }: { change: AdminTools['change']; clock: Clock },
  actor: AdminActor,
  member: string,
  reason?: string,
): Promise<void> {
  if (member === actor.actorId) throw new UserFacingError((t) => t('admin:block.notYourself'));
  await change(actor, 'blocked', (settings) => {
    settings.blocked = { ...settings.blocked, [member]: { by: actor.actorId, at: clock.now(), reason: reason ?? '' } };
    return () => (reason ? `${user(member)} — ${reason}` : user(member));
  });
}
