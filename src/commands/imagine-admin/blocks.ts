/** `/imagine-admin block add|remove|list`: members who may not use /imagine. */
import { escapeMarkdown } from 'discord.js';
import { UserFacingError } from '../../errors.js';
import { fitList, relative, user } from './format.js';
import { handler, without, type AdminDeps, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
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
      if (member === context.actorId) throw new UserFacingError('You cannot block yourself.');
      await change(context, 'blocked a member', (settings) => {
        settings.blocked = { ...settings.blocked, [member]: { by: context.actorId, at: clock.now(), reason: reason ?? '' } };
        return reason ? `${user(member)} — ${reason}` : user(member);
      });
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
