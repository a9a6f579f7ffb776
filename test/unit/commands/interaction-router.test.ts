import { Writable } from 'node:stream';
import { MessageFlags } from 'discord.js';
import { describe, expect, it, vi } from 'vitest';
import type { ComponentInteraction } from '../../../src/commands/cancel-button.js';
import { replyWithError } from '../../../src/commands/interaction-router.js';
import { createLogger } from '../../../src/logger.js';
import { Refusal } from '../../../src/services/usage/usage-policy.js';

/** What replyWithError touches on an interaction, recorded in call order. */
function interaction(state: { deferred: boolean; replied: boolean; ephemeral: boolean | null }, failing: string[] = []) {
  const calls: Array<[string, unknown]> = [];
  const method = (name: string) =>
    vi.fn((options?: unknown) => {
      calls.push([name, options]);
      return failing.includes(name) ? Promise.reject(new Error(`${name} failed`)) : Promise.resolve(undefined);
    });
  const fake = {
    id: '123456789012345678',
    ...state,
    reply: method('reply'),
    editReply: method('editReply'),
    deleteReply: method('deleteReply'),
    followUp: method('followUp'),
  };
  return { fake, calls, asInteraction: fake as unknown as ComponentInteraction };
}

function logger() {
  const lines: Array<{ level: number; msg: string }> = [];
  const destination = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as { level: number; msg: string });
      done();
    },
  });
  return { log: createLogger({ level: 'debug', secrets: [], destination }), lines };
}

const REFUSAL = new Refusal('cooldown', "You're on cooldown. Try again <t:1:R>.");
const PRIVATE = { flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } };
const PUBLIC_DEFERRAL = { deferred: true, replied: false, ephemeral: false };

describe('the central error reply', () => {
  it('answers a refusal before any acknowledgement with a private reply', async () => {
    const { calls, asInteraction } = interaction({ deferred: false, replied: false, ephemeral: null });
    await replyWithError(asInteraction, REFUSAL, logger().log);
    expect(calls).toEqual([['reply', { content: `❌ ${REFUSAL.message}`, ...PRIVATE }]]);
  });

  it('replaces a public "thinking…" message with a private follow-up: delete first, then follow up', async () => {
    const { calls, asInteraction } = interaction(PUBLIC_DEFERRAL);
    await replyWithError(asInteraction, REFUSAL, logger().log);
    expect(calls).toEqual([
      ['deleteReply', undefined],
      ['followUp', { content: `❌ ${REFUSAL.message}`, ...PRIVATE }],
    ]);
  });

  it('keeps an unexpected error after a public deferral private too, with its reference, and logs it as an error', async () => {
    const { calls, asInteraction } = interaction(PUBLIC_DEFERRAL);
    const { log, lines } = logger();
    await replyWithError(asInteraction, new Error('journal write failed'), log);
    expect(calls.map(([name]) => name)).toEqual(['deleteReply', 'followUp']);
    expect(calls[1]![1]).toEqual({
      content: "❌ Something went wrong on the bot's side. Nothing was generated. (ref `123456789012345678`)",
      ...PRIVATE,
    });
    expect(lines.find((l) => l.msg === 'command failed')?.level).toBe(50);
  });

  it('writes the text into the public message when it cannot be deleted, and sends no follow-up', async () => {
    const { calls, asInteraction } = interaction(PUBLIC_DEFERRAL, ['deleteReply']);
    const { log, lines } = logger();
    await replyWithError(asInteraction, REFUSAL, log);
    expect(calls).toEqual([
      ['deleteReply', undefined],
      ['editReply', { content: `❌ ${REFUSAL.message}`, embeds: [], files: [], attachments: [], allowedMentions: { parse: [] } }],
    ]);
    expect(lines.some((l) => l.msg.startsWith('could not delete the deferred reply'))).toBe(true);
  });

  it('edits an ephemeral deferral (its own private view) instead of deleting it', async () => {
    const { calls, asInteraction } = interaction({ deferred: true, replied: false, ephemeral: true });
    await replyWithError(asInteraction, REFUSAL, logger().log);
    expect(calls.map(([name]) => name)).toEqual(['editReply']);
  });

  it('edits a reply that was already written to, rather than deleting what it shows', async () => {
    const { calls, asInteraction } = interaction({ deferred: true, replied: true, ephemeral: false });
    await replyWithError(asInteraction, REFUSAL, logger().log);
    expect(calls.map(([name]) => name)).toEqual(['editReply']);
  });

  it('never throws when even the follow-up fails; it logs a warning', async () => {
    const { calls, asInteraction } = interaction(PUBLIC_DEFERRAL, ['followUp']);
    const { log, lines } = logger();
    await expect(replyWithError(asInteraction, REFUSAL, log)).resolves.toBeUndefined();
    expect(calls.map(([name]) => name)).toEqual(['deleteReply', 'followUp']);
    expect(lines.find((l) => l.msg === 'could not send the error reply')?.level).toBe(40);
  });
});
