/** `/imagine-admin pause|resume`: stopping /imagine for everyone in the server, and starting it again. */
import { UserFacingError } from '../../errors.js';
import { relative } from './format.js';
import { handler, type AdminDeps, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { none, optionalReason, reason, subcommand } from './options.js';

export const pauseSubcommands = [
  subcommand('pause', 'Pause /imagine for everyone in this server', [reason('Shown to members')]),
  subcommand('resume', 'Resume /imagine'),
] as const;

export function pauseHandlers(deps: AdminDeps, { change }: AdminTools): Record<PathOf<(typeof pauseSubcommands)[number]>, AdminHandler> {
  const { clock } = deps;

  return {
    pause: handler(optionalReason, async (context, { reason }) => {
      await change(context, 'paused /imagine', (settings) => {
        settings.paused = { by: context.actorId, at: clock.now(), reason: reason ?? '' };
        return reason ?? 'no reason given';
      });
      return `⏸️ \`/imagine\` is paused in this server.${reason ? ` Members will see: “${reason}”.` : ''} Use \`/imagine-admin resume\` to resume.`;
    }),

    resume: handler(none, async (context) => {
      await change(context, 'resumed /imagine', (settings) => {
        if (!settings.paused) throw new UserFacingError('`/imagine` is not paused.');
        const since = settings.paused.at;
        settings.paused = null;
        return `paused since ${relative(since)}`;
      });
      return '▶️ `/imagine` works again in this server.';
    }),
  };
}
