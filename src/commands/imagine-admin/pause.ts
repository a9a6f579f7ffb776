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
      await change(context, 'paused', (settings) => {
        settings.paused = { by: context.actorId, at: clock.now(), reason: reason ?? '' };
        // The reason is the moderator's own words: kept as typed (the audit is read by moderators, who wrote it).
        return (t) => reason ?? t('admin:pause.noReason');
      });
      return reason ? context.t('admin:pause.pausedWithReason', { reason }) : context.t('admin:pause.paused');
    }),

    resume: handler(none, async (context) => {
      await change(context, 'resumed', (settings) => {
        if (!settings.paused) throw new UserFacingError((t) => t('admin:pause.notPaused'));
        const since = settings.paused.at;
        settings.paused = null;
        return (t) => t('admin:pause.pausedSince', { when: relative(since) });
      });
      return context.t('admin:pause.resumed');
    }),
  };
}
