import type { REST } from 'discord.js';
import { pino } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { systemClock } from '../../../src/clock.js';
import { createLogger } from '../../../src/logger.js';
import { DiscordResponder } from '../../../src/services/discord/discord-responder.js';
import { DEFAULTS } from '../../../src/services/segmind/flux-params.js';
import { GenerationGate } from '../../../src/services/generation/generation-gate.js';
import { ImaginePipeline, type PipelineDeps } from '../../../src/services/generation/imagine-pipeline.js';
import { PromptHistory } from '../../../src/services/results/prompt-history.js';
import { FairScheduler } from '../../../src/services/generation/fair-scheduler.js';
import { Journal, type JournalEntry } from '../../../src/services/generation/journal.js';
import type { SegmindLimiter } from '../../../src/services/generation/segmind-limiter.js';
import { ResultStore } from '../../../src/services/results/result-store.js';
import { openStorage } from '../../../src/services/storage/open-storage.js';
import type { Storage } from '../../../src/services/storage/storage.js';

const log = createLogger({ level: 'silent', secrets: [] });

/** The Segmind limiter of a bot whose Redis is gone: every acquire is refused at once. */
const offlineLimiter: SegmindLimiter = {
  acquire: () => Promise.reject(new Error('The client is offline')),
  inFlight: () => Promise.reject(new Error('The client is offline')),
  close: () => Promise.resolve(),
};

function entry(samples: number): JournalEntry {
  const now = Date.now();
  return {
    v: 1,
    id: 'job-1',
    guildId: 'g1',
    channelId: 'c1',
    userId: 'u1',
    applicationId: 'app',
    token: 'interaction-token',
    createdAt: now,
    tokenExpiresAt: now + 15 * 60_000,
    attachmentSizeLimit: 10 * 1024 * 1024,
    params: { ...DEFAULTS, prompt: 'a kite', samples, seed: 5 },
    reservation: { id: 'job-1', guildId: 'g1', userId: 'u1', credits: samples, fromDaily: samples, fromBonus: 0, day: 0, createdAt: now, expiresAt: now + 60 * 60_000 },
    state: 'queued',
  };
}

/** A journal whose first `failures` removals are refused, as by storage that is down. */
class FlakyJournal extends Journal {
  constructor(
    storage: Storage,
    private failures: number,
  ) {
    super(storage, 'main');
  }

  override async remove(id: string): Promise<void> {
    if (this.failures-- > 0) throw new Error('The client is offline');
    return super.remove(id);
  }
}

type Settle = PipelineDeps['policy']['settle'];

/**
 * A pipeline whose Segmind slots are refused at once (Redis gone), failing waiting jobs closed at the first refusal,
 * on a memory store; Discord edits are recorded.
 */
async function pipelineWithOfflineLimiter(opts: {
  settle: Settle;
  journal?: (storage: Storage) => Journal;
  storageRetry?: PipelineDeps['storageRetry'];
  ownership?: PipelineDeps['ownership'];
  limiter?: SegmindLimiter;
}) {
  const storage = await openStorage('memory://', { logger: log });
  const edits: unknown[] = [];
  /** Every webhook request, in order: [method, route, body]. */
  const requests: Array<[string, string, unknown]> = [];
  const record = (method: string) => (route: string, options: { body?: unknown }) => {
    requests.push([method, route, options.body]);
    if (method === 'PATCH') edits.push(options.body);
    return Promise.resolve(undefined);
  };
  const webhooks = { patch: vi.fn(record('PATCH')), delete: vi.fn(record('DELETE')), post: vi.fn(record('POST')) };
  const segmind = { generate: vi.fn() };
  const journal = opts.journal?.(storage) ?? new Journal(storage, 'main');
  const scheduler = new FairScheduler(opts.limiter ?? offlineLimiter, log, { outageLimitMs: 0 });
  const pipeline = new ImaginePipeline({
    segmind,
    scheduler,
    gate: new GenerationGate({ clock: systemClock, logger: log, failureThreshold: 5, openMs: 30_000, maxOpenMs: 300_000 }),
    policy: {
      settle: opts.settle,
      imageRules: () => Promise.resolve({ action: 'spoiler', nsfwPolicy: 'off', logChannelId: null, logFlaggedImages: false, flagLimit: 0 }),
      recordFlagged: () => Promise.resolve({ blocked: false }),
    },
    checker: { check: () => Promise.resolve({ flagged: false, durationMs: 1 }), close: () => Promise.resolve() },
    journal,
    history: new PromptHistory(storage),
    results: new ResultStore(storage, systemClock, 30),
    responder: new DiscordResponder({ webhooks: webhooks as unknown as REST, channels: {} as REST }, log),
    clock: systemClock,
    progress: { firstEditDelayMs: 3_600_000, minIntervalMs: 3_600_000 },
    ...(opts.storageRetry ? { storageRetry: opts.storageRetry } : {}),
    ownership: opts.ownership,
  });
  return { storage, edits, requests, segmind, journal, pipeline, scheduler };
}

describe('ImaginePipeline', () => {
  it('keeps trying to refund and close the journal entry while storage refuses, so a failed-closed job is neither left charged nor resumed', async () => {
    // policy.settle answers undefined when storage refused the settlement.
    const settle = vi
      .fn<Settle>()
      .mockResolvedValueOnce(undefined)
      .mockResolvedValueOnce(undefined)
      .mockResolvedValue({ settled: true, committed: 0, refunded: 2 });
    const { storage, journal, pipeline } = await pipelineWithOfflineLimiter({
      settle,
      journal: (s) => new FlakyJournal(s, 2),
      storageRetry: { firstMs: 1, maxMs: 4 },
    });
    const job = entry(2);

    await expect(pipeline.run(job, log)).resolves.toEqual({ kind: 'failed', delivered: 0, failed: 2 });

    expect(settle).toHaveBeenCalledTimes(3);
    expect(settle).toHaveBeenLastCalledWith(job.reservation, 0);
    expect(await journal.list()).toEqual([]);
    await storage.close();
  });

  it('tells the member plainly and privately that their request could not run, and refunds, for a job failed closed by a long limiter outage', async () => {
    const settle = vi.fn<Settle>(() => Promise.resolve({ settled: true, committed: 0, refunded: 2 }));
    const { storage, edits, requests, segmind, journal, pipeline } = await pipelineWithOfflineLimiter({ settle });
    const job = entry(2);

    await expect(pipeline.run(job, log)).resolves.toEqual({ kind: 'failed', delivered: 0, failed: 2 });

    expect(segmind.generate).not.toHaveBeenCalled();
    // the public "thinking…" reply deleted, then the answer as an ephemeral follow-up; the reply never written to
    expect(edits).toEqual([]);
    expect(requests).toEqual([
      ['DELETE', '/webhooks/app/interaction-token/messages/%40original', undefined],
      [
        'POST',
        '/webhooks/app/interaction-token',
        {
          content: '❌ The bot had trouble on its side and could not run your request. Nothing was charged — please try again in a few minutes.',
          flags: 64,
          allowed_mentions: { parse: [] },
        },
      ],
    ]);
    expect(settle).toHaveBeenCalledWith(job.reservation, 0);
    expect(await journal.list()).toEqual([]);
    await storage.close();
  });

  it('neither answers nor settles a finished job once this process has lost its journal lease: the process that adopted it does both', async () => {
    const settle = vi.fn<Settle>(() => Promise.resolve({ settled: true, committed: 0, refunded: 2 }));
    const confirm = vi.fn(() => Promise.resolve(false));
    const { storage, requests, journal, pipeline } = await pipelineWithOfflineLimiter({ settle, ownership: { confirm } });
    const job = entry(2);

    await expect(pipeline.run(job, log)).resolves.toEqual({ kind: 'suspended', delivered: 0, failed: 0 });

    expect(confirm).toHaveBeenCalledTimes(1);
    expect(requests).toEqual([]);
    expect(settle).not.toHaveBeenCalled();
    // still in this process's journal as it was: the adopter's claim moves it, this process must not touch it
    expect((await journal.list()).map((e) => e.id)).toEqual([job.id]);
    await storage.close();
  });

  it('leaves to itself a request taken while its start-up recovery reads the journal, instead of running it twice', async () => {
    // Segmind slots that never come: the new request stays queued while the recovery runs.
    const waiting: SegmindLimiter = { acquire: () => new Promise(() => undefined), inFlight: () => Promise.resolve(0), close: () => Promise.resolve() };
    const settle = vi.fn<Settle>(() => Promise.resolve({ settled: true, committed: 0, refunded: 1 }));
    const { storage, journal, pipeline, scheduler } = await pipelineWithOfflineLimiter({ settle, limiter: waiting });
    const job = entry(1);

    void pipeline.run(job, log);
    const deadline = Date.now() + 5_000;
    while (!(await journal.list()).some((e) => e.id === job.id)) {
      if (Date.now() > deadline) throw new Error('the request was never journaled');
      await new Promise((resolve) => setImmediate(resolve));
    }
    const lines: string[] = [];
    const recoveryLog = pino({ level: 'info' }, { write: (line: string) => void lines.push(line) });
    await pipeline.recover(recoveryLog);

    expect(lines).toEqual([]);
    expect(scheduler.stats().jobs).toBe(1);
    expect(settle).not.toHaveBeenCalled();
    scheduler.stop();
    await pipeline.drain(5_000);
    await storage.close();
  });
});
