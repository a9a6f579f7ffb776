/** `/imagine-admin block add|remove|list`: members who may not use /imagine. */
import { escapeMarkdown } from 'discord.js';
import type { Clock } from '../../clock.js';
import { UserFacingError } from '../../errors.js';
import { fitList, relative, user } from './format.js';
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
      return `✅ Blocked ${user(member)} from \`/imagine\` in this server.${reason ? ` They will see: “${reason}”.` : ''}`;
    }),

    'block/remove': handler(memberOnly, async (context, { member }) => {
      await change(context, 'unblocked a member', (settings) => {
        if (!(member in settings.blocked)) throw new UserFacingError(`${user(member)} is not blocked.`);
        settings.blocked = without(settings.blocked, member);
        return user(member);
      });
      return `✅ ${user(member)} can use \`/imagine\` again.`;
    }),

    'block/list': handler(none, ({ settings }) => {
      const entries = Object.entries(settings.blocked).sort(([, a], [, b]) => b.at - a.at);
      if (entries.length === 0) return Promise.resolve('Nobody is blocked.');
      const lines = entries.map(
        ([id, block]) => `• ${user(id)} by ${user(block.by)} ${relative(block.at)}${block.reason ? ` — ${escapeMarkdown(block.reason)}` : ''}`,
      );
      return Promise.resolve(`**Blocked members** (${entries.length})\n${fitList(lines, '\n', 1900)}`);
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
  if (member === actor.actorId) throw new UserFacingError('You cannot block yourself.');
  await change(actor, 'blocked a member', (settings) => {
    settings.blocked = { ...settings.blocked, [member]: { by: actor.actorId, at: clock.now(), reason: reason ?? '' } };
    return reason ? `${user(member)} — ${reason}` : user(member);
  });
}
