/** `/imagine-admin audit`: the recent moderator actions. */
import { z } from 'zod';
import { fitList, relative, user } from './format.js';
import { handler, type AdminDeps, type AdminHandler, type PathOf } from './handler.js';
import { count, integer, subcommand } from './options.js';

export const auditSubcommand = subcommand('audit', 'Recent moderator actions', [count('count', 'How many (default 10)', 1, 25)]);

export function auditHandlers(deps: AdminDeps): Record<PathOf<typeof auditSubcommand>, AdminHandler> {
  const { audit } = deps;

  return {
    audit: handler(z.object({ count: integer(1, 25).optional() }), async (context, options) => {
      const entries = (await audit.list(context.guildId)).slice(0, options.count ?? 10);
      if (entries.length === 0) return 'No moderator actions recorded yet.';
      const lines = entries.map((e) => `• ${relative(e.at)} ${user(e.actorId)} ${e.action}: ${e.details}`);
      return `**Recent moderator actions** (newest first)\n${fitList(lines, '\n', 1900)}`;
    }),
  };
}
