import { expect } from 'vitest';
import type { RecordedRequest, SentInteraction } from '../fakes/fake-discord.js';
import { messageOf } from './imagine.js';

const EPHEMERAL = 64;
const CHANNEL_MESSAGE = 4;
const DEFERRED_CHANNEL_MESSAGE = 5;

const isOriginal = (r: RecordedRequest) => r.path.endsWith('/messages/@original');
const isFollowUp = (r: RecordedRequest) => r.method === 'POST' && r.path.startsWith('/webhooks/') && r.path.split('/').length === 4;

/**
 * A refusal found without storage (restarting, breaker open, operator pause, too many open requests), or an invalid
 * option: the acknowledgement itself is the private answer (a type 4 callback with the ephemeral flag), and nothing
 * else is sent. Returns its text.
 */
export async function immediateRefusal(sent: SentInteraction): Promise<string> {
  const callback = await sent.waitForCallback();
  expect(callback.status).toBeLessThan(300);
  expect(callback.json).toMatchObject({ type: CHANNEL_MESSAGE });
  const message = messageOf(callback.json);
  expect((message.flags ?? 0) & EPHEMERAL, 'the refusal is private').toBe(EPHEMERAL);
  expect(sent.requests().filter((r) => r !== callback), 'nothing but the private reply').toEqual([]);
  return message.content ?? '';
}

/**
 * A refusal found after the acknowledgement (storage: paused, blocked, channel, words, NSFW, limits, cooldown,
 * credits, storage unavailable): the public deferral, then that "thinking…" message deleted, then the text as an
 * ephemeral follow-up, in that order, and no public message of this interaction remains. Returns the text.
 */
export async function refusalAfterDeferral(sent: SentInteraction): Promise<string> {
  const callback = await sent.waitForCallback();
  expect(callback.status).toBeLessThan(300);
  expect(callback.json).toMatchObject({ type: DEFERRED_CHANNEL_MESSAGE });
  expect((messageOf(callback.json).flags ?? 0) & EPHEMERAL, 'the deferral is public').toBe(0);
  const deletion = await sent.waitForRequest((r) => r.method === 'DELETE' && isOriginal(r));
  expect(deletion.status).toBe(204);
  const followUp = await sent.waitForRequest(isFollowUp);
  expect(followUp.status).toBeLessThan(300);
  const message = messageOf(followUp.json);
  expect((message.flags ?? 0) & EPHEMERAL, 'the refusal is private').toBe(EPHEMERAL);
  expect(message).toMatchObject({ allowed_mentions: { parse: [] } });
  expect(callback.seq < deletion.seq && deletion.seq < followUp.seq, 'deferral, then delete, then follow-up').toBe(true);
  expect(sent.edits(), 'the public message was never written to').toEqual([]);
  expect(sent.originalMessage(), 'no public message remains').toBeUndefined();
  expect(sent.followUps(), 'one private follow-up only').toHaveLength(1);
  return message.content ?? '';
}
