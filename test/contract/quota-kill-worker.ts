/**
 * A bot process for the crash test of the local quota store: opens a SQLite file, grants the reservations named on
 * the command line one after the other, prints "reserved" and waits to be killed (SIGKILL, no chance to save anything).
 *
 * Usage: node --import tsx test/contract/quota-kill-worker.ts <storeUrl> <now> <expiresAt> <reservationId>...
 */
import { pino } from 'pino';
import { openStorage } from '../../src/services/storage/open-storage.js';

const [url, nowText, expiresText, ...ids] = process.argv.slice(2);
if (url === undefined || nowText === undefined || expiresText === undefined || ids.length === 0) {
  process.stderr.write('usage: quota-kill-worker <storeUrl> <now> <expiresAt> <reservationId>...\n');
  process.exit(2);
}
const now = Number(nowText);
const storage = await openStorage(url, { logger: pino({ level: 'warn' }, pino.destination(2)) });
for (const [i, reservationId] of ids.entries()) {
  const result = await storage.quota.reserve({
    reservationId,
    guildId: 'g1',
    userId: `u${i}`,
    credits: 2,
    now,
    limits: { dailyAllowance: 5, cooldownMs: 0, guildDailyCap: 0 },
    expiresAt: Number(expiresText),
  });
  if (!result.ok) throw new Error(`reservation ${reservationId} refused: ${result.reason}`);
}
process.stdout.write('reserved\n');
// Stays alive, as a bot would while its job runs, until the test kills it.
setInterval(() => undefined, 60_000);
