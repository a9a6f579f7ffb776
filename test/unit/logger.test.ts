import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';

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
