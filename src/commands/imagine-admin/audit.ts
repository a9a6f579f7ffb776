/** `/imagine-admin audit`: the recent moderator actions. */
import { z } from 'zod';
import { auditActionKey } from '../../services/usage/audit-log.js';
import { fitList, moreOf, relative, user } from './format.js';
import { handler, type AdminDeps, type AdminHandler, type PathOf } from './handler.js';
import { count, integer, subcommand } from './options.js';

export const auditSubcommand = subcommand('audit', 'Recent moderator actions', [count('count', 'How many (default 10)', 1, 25)]);

export function auditHandlers(deps: AdminDeps): Record<PathOf<typeof auditSubcommand>, AdminHandler> {
  const { audit } = deps;

  return {
    audit: handler(z.object({ count: integer(1, 25).optional() }), async ({ t, guildId }, options) => {
      const entries = (await audit.list(guildId)).slice(0, options.count ?? 10);
      if (entries.length === 0) return t('admin:audit.empty');
      // The audit keeps each entry in English: its action is put into the reader's language, its details stay as kept.
      const lines = entries.map((e) => {
        const key = auditActionKey(e.action);
        const action = key === undefined ? e.action : t(`admin:audit.actions.${key}`);
        return t('admin:audit.entry', { when: relative(e.at), actor: user(e.actorId), action, details: e.details });
      });
      return `${t('admin:audit.title')}\n${fitList(lines, '\n', 1900, moreOf(t))}`;
    }),
  };
}
