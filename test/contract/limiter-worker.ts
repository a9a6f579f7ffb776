/**
 * A bot process for the multi-process limiter test: opens its own Storage on Redis and its own Segmind limiter, says
 * "ready", waits for "go" on stdin, then runs `count` concurrent jobs that each acquire a permit, "call Segmind" for
 * `workMs`, and release. Each job appends one JSON line `{ pid, start, end }` to `outFile`, where start and end are
 * taken from one Redis counter (INCR) right after acquiring and right before releasing: a global order of events
 * across processes, with no clock involved. Prints a JSON summary last.
 *
 * Usage: tsx test/contract/limiter-worker.ts <storeUrl> <keyPrefix> <concurrency> <count> <workMs> <outFile>
 */
import { appendFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { createClient } from '@keyv/redis';
import { pino } from 'pino';
import { systemClock } from '../../src/clock.js';
import { createSegmindLimiter } from '../../src/services/generation/create-segmind-limiter.js';
import { openStorage } from '../../src/services/storage/open-storage.js';

const [url, keyPrefix, concurrencyText, countText, workMsText, outFile] = process.argv.slice(2);
if (
  url === undefined ||
  keyPrefix === undefined ||
  concurrencyText === undefined ||
  countText === undefined ||
  workMsText === undefined ||
  outFile === undefined
) {
  process.stderr.write('usage: limiter-worker <storeUrl> <keyPrefix> <concurrency> <count> <workMs> <outFile>\n');
  process.exit(2);
}
const count = Number(countText);
const workMs = Number(workMsText);

const logger = pino({ level: 'warn' }, pino.destination(2));
const storage = await openStorage(url, { logger, namespace: 'limiter-worker' });
const limiter = createSegmindLimiter(storage, {
  concurrency: Number(concurrencyText),
  rpm: 0,
  clock: systemClock,
  logger,
  keyPrefix,
});
const sequence = createClient({ url });
sequence.on('error', () => undefined);
await sequence.connect();
const seqKey = `${keyPrefix}:seq`;
process.stdout.write('ready\n');

const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

const results = await Promise.allSettled(
  Array.from({ length: count }, async () => {
    const permit = await limiter.acquire();
    try {
      const start = await sequence.incr(seqKey);
      await new Promise((resolve) => setTimeout(resolve, workMs));
      const end = await sequence.incr(seqKey);
      await appendFile(outFile, `${JSON.stringify({ pid: process.pid, start, end })}\n`);
    } finally {
      await permit.release();
    }
  }),
);
const errors = results.flatMap((r) => (r.status === 'rejected' ? [String(r.reason)] : []));
process.stdout.write(`${JSON.stringify({ done: count - errors.length, errors })}\n`);
await limiter.close();
sequence.destroy();
await storage.close();
