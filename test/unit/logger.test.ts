import { Writable } from 'node:stream';
import { DiscordAPIError } from 'discord.js';
import { describe, expect, it } from 'vitest';
import { createLogger, defaultLogFormat, formatPretty } from '../../src/logger.js';

function capture() {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(chunk.toString());
      done();
    },
  });
  return { lines, destination };
}

describe('logger', () => {
  const token = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.supersecretvalue';
  const key = 'SG_supersecretkey';

  it('redacts secret fields and scrubs secrets from free text and stacks', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', secrets: [token, key], destination });
    log.info({ headers: { 'x-api-key': key }, config: { DISCORD_TOKEN: token } }, 'request');
    log.error({ err: new Error(`failed calling with ${key} and ${token}`) }, `oops ${token}`);
    const all = lines.join('');
    expect(all).not.toContain(key);
    expect(all).not.toContain(token);
    expect(all.match(/\[redacted\]/g)?.length).toBeGreaterThanOrEqual(4);
  });
});

describe('logger: Discord interaction tokens in URLs', () => {
  const appId = '109876543210987654';
  const interactionId = '123456789012345678';
  // Interaction tokens are long base64url strings; whoever has one may post as the bot for 15 minutes.
  const interactionToken = 'aW50ZXJhY3Rpb246MTIzNDU2Nzg5MDEyMzQ1Njc4OnNlY3JldA-_x9ZkQ2';
  const webhookUrl = `https://discord.com/api/v10/webhooks/${appId}/${interactionToken}/messages/@original`;
  const callbackUrl = `https://discord.com/api/v10/interactions/${interactionId}/${interactionToken}/callback?with_response=false`;

  function discordError(method: string, url: string): DiscordAPIError {
    return new DiscordAPIError({ code: 10015, message: 'Unknown Webhook' }, 10015, 404, method, url, {});
  }

  it.each([
    ['a webhook edit', 'PATCH', webhookUrl, `https://discord.com/api/v10/webhooks/${appId}/[redacted]/messages/@original`],
    [
      'an interaction callback',
      'POST',
      callbackUrl,
      `https://discord.com/api/v10/interactions/${interactionId}/[redacted]/callback?with_response=false`,
    ],
  ])('removes the token from a DiscordAPIError of %s and keeps the rest of the URL', (_what, method, url, redacted) => {
    const { lines, destination } = capture();
    // No configured secret covers interaction tokens: each interaction has its own.
    const log = createLogger({ level: 'info', secrets: [], destination });
    log.error({ err: discordError(method, url) }, 'could not deliver the result');
    const line = JSON.parse(lines.join('')) as { err: { url: string; type: string } };
    expect(line.err.type).toBe('DiscordAPIError');
    expect(line.err.url).toBe(redacted);
    expect(lines.join('')).not.toContain(interactionToken);
  });

  it('removes the token from the message, any field and a stack that quote such a URL', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', secrets: [], destination });
    const error = new Error(`request to ${callbackUrl} failed`);
    log.warn({ route: { url: webhookUrl }, err: error, note: `edit ${webhookUrl}` }, `PATCH ${webhookUrl} answered 404`);
    const all = lines.join('');
    expect(all).not.toContain(interactionToken);
    expect(all).toContain(`/webhooks/${appId}/[redacted]/messages/@original`);
    expect(all).toContain(`/interactions/${interactionId}/[redacted]/callback`);
    // the message, the field, the note, and the error's message and stack
    expect(all.match(/\[redacted\]/g)).toHaveLength(5);
  });

  it('leaves URLs without a token alone', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', secrets: [], destination });
    log.info({ url: `https://discord.com/api/v10/channels/${appId}/messages`, webhook: `/webhooks/${appId}` }, 'posted');
    expect(lines.join('')).not.toContain('[redacted]');
  });
});

describe('log format', () => {
  it('is pretty at a terminal and JSON when stdout is a file, a pipe or a container log', () => {
    expect(defaultLogFormat({ isTTY: true })).toBe('pretty');
    expect(defaultLogFormat({ isTTY: false })).toBe('json');
    expect(defaultLogFormat({})).toBe('json');
  });

  it('writes one readable line per entry: time, level, component, message, fields, and the stack below', () => {
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', secrets: ['SG_supersecretkey'], destination, format: 'pretty' });
    log.child({ component: 'segmind' }).warn({ attempt: 2, kind: 'timeout', reason: 'took too long' }, 'segmind request failed');
    log.error({ err: new Error('boom with SG_supersecretkey') }, 'crashed');
    const [first, second] = lines;
    expect(first).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN {2}\[segmind\] segmind request failed {2}attempt=2 kind=timeout reason="took too long"\n$/);
    expect(first).not.toContain('{');
    expect(second).toMatch(/ERROR crashed {2}err="Error: boom with \[redacted\]"\n {4}Error: boom with \[redacted\]\n +at /);
    expect(second).not.toContain('SG_supersecretkey');
  });

  it('stays JSON lines with a destination unless told otherwise', () => {
    const { lines, destination } = capture();
    createLogger({ level: 'info', secrets: [], destination }).info({ a: 1 }, 'hello');
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: 30, msg: 'hello', a: 1 });
  });

  it('passes through anything that is not a pino line', () => {
    expect(formatPretty('not json')).toBe('not json\n');
    expect(formatPretty('{"level":30,"time":0,"msg":"x","nested":{"b":[1,2]}}', true)).toContain('nested={"b":[1,2]}');
  });
});
