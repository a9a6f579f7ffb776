import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RecordedRequest } from '../fakes/fake-discord.js';
import { eventually, startHarness, TEST_SEGMIND_KEY, type Harness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral as privateAnswer } from '../support/refusals.js';

/** Segmind answers the harness found besides the documented ones, through the real bot (issue 15). */

const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '100000', DEFAULT_COOLDOWN_SECONDS: '0' };
const ERROR = 50;
const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');

describe('Segmind conformance, end to end', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { SEGMIND_MAX_RETRIES: '1', ...NO_LIMITS } });
  });
  afterAll(async () => {
    await h?.stop();
  });
  beforeEach(() => h.segmind.reset());

  it('a 406 "Invalid content type" fails that request, free and as a bot-side problem, without pausing generation', async () => {
    const errorsBefore = h.logs.filter((l) => l.level >= ERROR).length;
    h.segmind.enqueue({ kind: 'invalidContentType' });
    const first = sendImagine(h.discord, { prompt: 'first', seed: 1 });
    const text = await privateAnswer(first);
    expect(text).toContain("Something went wrong on the bot's side");
    expect(text).toContain('Nothing was charged');
    expect(text).not.toMatch(/paused|tops up/);

    const firstEnd = await eventually(
      () => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === first.id),
      'the failed job to end',
    );
    expect(firstEnd).toMatchObject({ outcome: 'failed' });
    // the job's own line names Segmind's request id too, for a support ticket
    expect((firstEnd as typeof firstEnd & { segmind: Array<{ requestId?: string }> }).segmind[0]!.requestId).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    const errors = h.logs.filter((l) => l.level >= ERROR).slice(errorsBefore);
    expect(errors, 'one error line, saying it is a bug in the request').toHaveLength(1);
    expect(errors[0]).toMatchObject({ kind: 'malformed_request', status: 406 });
    expect(errors[0]!.msg).toMatch(/bug/);
    expect(errors[0]!.requestId).toEqual(expect.stringMatching(/^[0-9a-f-]{36}$/));
    expect(h.logs.some((l) => l.msg.startsWith('generation paused bot-wide'))).toBe(false);
    expect(h.segmind.requests).toHaveLength(1);

    // The next request is generated as usual: nothing was paused.
    const second = sendImagine(h.discord, { prompt: 'second', seed: 2 });
    const edit = await second.waitForRequest(isEdit);
    expect(edit.files).toHaveLength(1);
    expect(h.segmind.requests).toHaveLength(2);
    await eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === second.id && l.outcome === 'delivered'), 'the second job to be delivered');
    expect(h.rawLogs()).not.toContain(TEST_SEGMIND_KEY);
    await expectConsistentLedger(h.storage, { [h.discord.defaultUserId]: 1 }, { guildId: h.discord.guildId });
  });

  it('a 429 carrying only x-rate-limit-reset-at-utc is retried at the reset time and the image delivered', async () => {
    const before = await h.storage.quota.usage(h.discord.guildId, h.discord.defaultUserId, Date.now());
    // The reset time is set when the 429 is sent, so the bot's own work before the call does not eat into the wait.
    let resetAt: number | undefined;
    h.segmind.respondWith(() => {
      if (resetAt !== undefined) return { kind: 'image' };
      resetAt = Date.now() + 500;
      return { kind: 'error', status: 429, rateLimitResetAt: new Date(resetAt).toISOString() };
    });
    const sent = sendImagine(h.discord, { prompt: 'after the rate limit', seed: 3 });
    const edit = await sent.waitForRequest(isEdit);
    expect(edit.files).toHaveLength(1);
    expect(h.segmind.requests).toHaveLength(2);
    // SEGMIND_RETRY_BASE_MS is 20 here: the backoff alone would have retried within ~20 ms.
    expect(h.segmind.requests[1]!.at).toBeGreaterThanOrEqual(resetAt! - 15);
    await eventually(() => h.logs.find((l) => l.msg === 'imagine job finished' && l.jobId === sent.id && l.outcome === 'delivered'), 'the job to be delivered');
    await expectConsistentLedger(h.storage, { [h.discord.defaultUserId]: before.usedToday + 1 }, { guildId: h.discord.guildId });
  });
});
