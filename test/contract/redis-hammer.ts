/**
 * A second (and third) bot process for the multi-process quota test: opens its own Storage on Redis, says "ready",
 * waits for "go" on stdin, fires `count` concurrent 1-credit reservations for one member and prints a JSON summary.
 *
 * Usage: tsx test/contract/redis-hammer.ts <storeUrl> <namespace> <guildId> <userId> <count> <dailyAllowance> <now>
 */
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { openStorage } from '../../src/services/storage/open-storage.js';

const [url, namespace, guildId, userId, countText, allowanceText, nowText] = process.argv.slice(2);
if (
  url === undefined ||
  namespace === undefined ||
  guildId === undefined ||
  userId === undefined ||
  countText === undefined ||
  allowanceText === undefined ||
  nowText === undefined
) {
  process.stderr.write('usage: redis-hammer <storeUrl> <namespace> <guildId> <userId> <count> <dailyAllowance> <now>\n');
  process.exit(2);
}
const count = Number(countText);
const now = Number(nowText);
const limits = { dailyAllowance: Number(allowanceText), cooldownMs: 0, guildDailyCap: 0 };

const storage = await openStorage(url, { logger: pino({ level: 'warn' }, pino.destination(2)), namespace });
process.stdout.write('ready\n');

const lines = createInterface({ input: process.stdin });
for await (const line of lines) if (line.trim() === 'go') break;
lines.close();

const results = await Promise.allSettled(
  Array.from({ length: count }, (_, i) =>
    storage.quota.reserve({
      reservationId: `${process.pid}-${i}`,
      guildId,
      userId,
      credits: 1,
      now: now + i,
      limits,
      expiresAt: now + 900_000,
    }),
  ),
);
const summary = { granted: 0, refused: {} as Record<string, number>, errors: [] as string[] };
for (const result of results) {
  if (result.status === 'rejected') summary.errors.push(String(result.reason));
  else if (result.value.ok) summary.granted += 1;
  else summary.refused[result.value.reason] = (summary.refused[result.value.reason] ?? 0) + 1;
}
process.stdout.write(`${JSON.stringify(summary)}\n`);
await storage.close();
