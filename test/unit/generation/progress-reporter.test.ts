import { DiscordAPIError } from 'discord.js';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { OutgoingMessage } from '../../../src/services/discord/discord-responder.js';
import { ProgressReporter } from '../../../src/services/generation/progress-reporter.js';

const OPTS = { firstEditDelayMs: 0, minIntervalMs: 1_000, now: () => Date.now() };
const text = (content: string): OutgoingMessage => ({ content, components: [] });

/** What discord.js throws when the interaction token is no longer valid (15 minutes are over). */
const invalidToken = () =>
  new DiscordAPIError({ code: 50027, message: 'Invalid Webhook Token' }, 50027, 401, 'PATCH', 'http://discord/webhooks/app/token/messages/@original', {
    body: undefined,
    files: undefined,
  });

describe('ProgressReporter', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('edits the reply with the latest state, at most once per interval', async () => {
    const edits: string[] = [];
    const reporter = new ProgressReporter((message) => {
      edits.push(message.content);
      return Promise.resolve();
    }, OPTS);
    reporter.update(text('⏳ Queued — 2 images ahead of you.'));
    await vi.advanceTimersByTimeAsync(0);
    reporter.update(text('⏳ Queued — 1 image ahead of you.'));
    reporter.update(text("⏳ Queued — you're next."));
    await vi.advanceTimersByTimeAsync(999);
    expect(edits).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(edits).toEqual(['⏳ Queued — 2 images ahead of you.', "⏳ Queued — you're next."]);
    await reporter.close();
  });

  it('stops editing for good once an edit finds the token dead: exactly one attempt', async () => {
    const edit = vi.fn((_message: OutgoingMessage) => Promise.reject(invalidToken()));
    const reporter = new ProgressReporter(edit, OPTS);
    reporter.update(text('⏳ Queued — 1 image ahead of you.'));
    await vi.advanceTimersByTimeAsync(0);
    expect(edit).toHaveBeenCalledTimes(1);

    reporter.update(text("⏳ Queued — you're next."));
    reporter.update(text('🎨 Generating 0/1…'));
    await vi.advanceTimersByTimeAsync(60_000);
    expect(edit).toHaveBeenCalledTimes(1);
    await reporter.close();
  });

  it('keeps trying after an edit fails for another reason (the token still works)', async () => {
    const edit = vi.fn((_message: OutgoingMessage) => Promise.resolve());
    edit.mockRejectedValueOnce(new Error('socket hang up'));
    const reporter = new ProgressReporter(edit, OPTS);
    reporter.update(text('⏳ Queued — 1 image ahead of you.'));
    await vi.advanceTimersByTimeAsync(0);
    reporter.update(text("⏳ Queued — you're next."));
    await vi.advanceTimersByTimeAsync(1_000);
    expect(edit.mock.calls.map(([m]) => m.content)).toEqual(['⏳ Queued — 1 image ahead of you.', "⏳ Queued — you're next."]);
    await reporter.close();
  });
});
