/**
 * discord.js keeps a REST handler per route and every interaction token is its own route: left at discord.js's hourly
 * sweep, a busy bot's heap grew for an hour (the benchmark's 30-minute soak: 31 → 49 MiB after GC). The bot sweeps
 * idle handlers every minute.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { REST_HANDLER_SWEEP_MS } from '../../src/app.js';
import type { RecordedRequest } from '../fakes/fake-discord.js';
import { eventually, startHarness, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';

const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0' };
const isImageEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original') && r.files.length > 0;
type Rest = { handlers: Map<string, { inactive: boolean }>; options: { handlerSweepInterval: number } };

describe('REST handlers of answered interactions', () => {
  let h: Harness | undefined;
  afterEach(async () => {
    await h?.stop();
    h = undefined;
  });

  it('are swept every minute, not every hour as discord.js would', async () => {
    h = await startHarness({ env: NO_LIMITS });
    expect(REST_HANDLER_SWEEP_MS).toBeLessThanOrEqual(60_000);
    expect((h.bot.client.rest as unknown as Rest).options.handlerSweepInterval).toBe(REST_HANDLER_SWEEP_MS);
  });

  it('do not pile up: the idle ones (one per answered interaction) are gone once the sweep has run', async () => {
    h = await startHarness({ env: NO_LIMITS, restOptions: { handlerSweepInterval: 200 } });
    const rest = h.bot.client.rest as unknown as Rest;
    const members = Array.from({ length: 40 }, (_, i) => String(400000000000000000n + BigInt(i)));
    const jobs = members.map((userId, i) => sendImagine(h!.discord, { prompt: `a lantern ${i}`, seed: i }, { userId }));
    await Promise.all(jobs.map((job) => job.waitForRequest(isImageEdit)));
    await eventually(() => [...rest.handlers.values()].filter((handler) => handler.inactive).length === 0, 'the idle handlers to be swept', 5_000);
    expect(rest.handlers.size).toBeLessThan(members.length);
    await eventually(
      () => h!.logs.filter((l) => l.msg === 'imagine job finished').length === members.length,
      'every job to finish',
      10_000,
    );
    await expectConsistentLedger(h.storage, Object.fromEntries(members.map((m) => [m, 1])), { guildId: h.discord.guildId });
  });
});
