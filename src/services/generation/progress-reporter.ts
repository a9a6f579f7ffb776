import { ButtonStyle, ComponentType } from 'discord.js';
import { isDeadToken, type OutgoingMessage } from '../discord/discord-responder.js';
import type { JobProgress } from './fair-scheduler.js';
import type { Translator } from '../../i18n/i18n.js';

export const CANCEL_PREFIX = 'cancel:';

/** The job's place in the queue, or how far it is, in the member's language (`t`). */
export function progressMessage(progress: JobProgress, jobId: string, t: Translator): OutgoingMessage {
  if (progress.phase === 'running') {
    return { content: t('imagine:progress.generating', { finished: progress.finished, total: progress.total }), components: [] };
  }
  return {
    content: progress.imagesAhead === 0 ? t('imagine:progress.next') : t('imagine:progress.ahead', { count: progress.imagesAhead }),
    components: [
      {
        type: ComponentType.ActionRow,
        components: [{ type: ComponentType.Button, style: ButtonStyle.Secondary, label: t('imagine:progress.cancel'), custom_id: `${CANCEL_PREFIX}${jobId}` }],
      },
    ],
  };
}

/**
 * Shows a job's place in the queue on its deferred reply, at most one edit per `minIntervalMs` (Discord rate-limits
 * webhook edits), always converging on the latest state, and never after `close()` or once the token is dead.
 */
export class ProgressReporter {
  private latest: OutgoingMessage | undefined;
  private shownText: string | undefined;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private lastEditAt = 0;
  private closed = false;

  constructor(
    private readonly edit: (message: OutgoingMessage) => Promise<void>,
    private readonly opts: { firstEditDelayMs: number; minIntervalMs: number; now: () => number },
  ) {
    this.lastEditAt = opts.now() - opts.minIntervalMs + opts.firstEditDelayMs;
  }

  update(message: OutgoingMessage): void {
    if (this.closed) return;
    this.latest = message;
    this.schedule();
  }

  /** Stops further edits and waits for one already on its way, so the final answer is the last edit. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }

  private schedule(): void {
    if (this.timer || this.inFlight) return;
    const wait = Math.max(0, this.lastEditAt + this.opts.minIntervalMs - this.opts.now());
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.flush();
    }, wait);
    this.timer.unref();
  }

  private async flush(): Promise<void> {
    const message = this.latest;
    if (this.closed || !message || message.content === this.shownText) return;
    this.lastEditAt = this.opts.now();
    this.shownText = message.content;
    this.inFlight = this.edit(message).catch((error: unknown) => {
      // A dead token stays dead: every further edit would count toward Discord's invalid-request limit.
      if (isDeadToken(error)) this.closed = true;
    });
    await this.inFlight;
    this.inFlight = undefined;
    if (!this.closed && this.latest && this.latest.content !== this.shownText) this.schedule();
  }
}
