import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/logger.js';
import { GenerationLog, generationLogLine } from '../../../src/services/results/generation-log.js';

const RESULT = { guildId: '1', channelId: '2', userId: '3', prompt: 'a *cat*   in\ta hat', messageId: '4' };

function silent() {
  return createLogger({ level: 'silent', secrets: [], destination: new Writable({ write: (_c, _e, done) => done() }) });
}

describe('the generation log', () => {
  it('writes one line: member, prompt on one escaped line, link to the message', () => {
    expect(generationLogLine(RESULT)).toBe('<@3> · a \\*cat\\* in a hat · https://discord.com/channels/1/2/4');
    const long = generationLogLine({ ...RESULT, prompt: 'y'.repeat(2000) });
    expect(long.length).toBeLessThan(300);
    expect(long).toContain('…');
  });

  it("names a result's style after the member's own prompt", () => {
    expect(generationLogLine({ ...RESULT, prompt: 'a fox', style: 'anime_2' })).toBe('<@3> · a fox · style: anime\\_2 · https://discord.com/channels/1/2/4');
  });

  it('reads the channel once per server for a while, posts nothing without one, and never rejects', async () => {
    let now = 0;
    const reads: string[] = [];
    const posted: Array<[string, string]> = [];
    let channel: string | null = null;
    const log = new GenerationLog({
      channelOf: (guildId) => {
        reads.push(guildId);
        return Promise.resolve(channel);
      },
      post: (channelId, text) => {
        if (channelId === 'broken') return Promise.reject(new Error('Missing Access'));
        posted.push([channelId, text]);
        return Promise.resolve();
      },
      clock: { now: () => now, sleep: () => Promise.resolve() },
      log: silent(),
    });
    await log.onDelivered(RESULT);
    channel = '9';
    await log.onDelivered(RESULT);
    expect(posted, 'the cached "none" still applies').toEqual([]);
    expect(reads).toEqual(['1']);
    now = 31_000;
    await log.onDelivered(RESULT);
    expect(posted).toEqual([['9', generationLogLine(RESULT)]]);
    channel = 'broken';
    now = 62_000;
    await expect(log.onDelivered(RESULT)).resolves.toBeUndefined();
    const failing = new GenerationLog({ channelOf: () => Promise.reject(new Error('storage down')), post: () => Promise.resolve(), clock: { now: () => 0, sleep: () => Promise.resolve() }, log: silent() });
    await expect(failing.onDelivered(RESULT)).resolves.toBeUndefined();
  });
});
