import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { isClosedDirectMessages, isDeadToken, type DiscordResponder, type InteractionAddress, type PreparedMessage } from '../discord/discord-responder.js';
import { splitIntoSingleImageRequests } from '../segmind/flux-params.js';
import type { GenerationGate } from './generation-gate.js';
import type { Metrics } from '../metrics.js';
import type { PromptHistory } from '../results/prompt-history.js';
import type { FairScheduler, JobEnd } from './fair-scheduler.js';
import type { Journal, JournalEntry } from './journal.js';
import { progressMessage, ProgressReporter } from './progress-reporter.js';
import { resultComponents } from '../results/result-components.js';
import { buildResultMessage, segmindErrorText, spoilerFileNameFor, type BatchFailure, type BatchImage, type WithheldImage } from '../results/result-message.js';
import type { ResultStore } from '../results/result-store.js';
import type { ImageChecker, ImageVerdict } from '../safety/image-checker.js';
import {
  autoBlockReason,
  flagReportText,
  RULES_UNREADABLE,
  scoresForLog,
  treatmentOf,
  withheldNoticeText,
  type FlaggedImage,
  type FlagTreatment,
  type ImageRules,
} from './flagged-images.js';
import type { SegmindClient } from '../segmind/segmind-client.js';
import { translator, type Translator } from '../../i18n/i18n.js';
import { SOURCE_LOCALE, type Locale } from '../../i18n/locales.js';
import { SegmindError } from '../segmind/segmind-errors.js';
import type { Reservation, SettleResult } from '../storage/quota/quota-store.js';

export type JobOutcome =
  | { kind: 'delivered' | 'partial' | 'failed' | 'cancelled' | 'delivery_failed'; delivered: number; failed: number }
  | { kind: 'suspended'; delivered: 0; failed: 0 };

/** Leave this much of the token's life to upload the images through the original reply. */
const EDIT_MARGIN_MS = 10_000;
/** A resumed job needs at least this much token life left to be worth generating again. */
const RESUME_MIN_TOKEN_MS = 2 * 60_000;
/** Segmind calls stop this long before the reservation expires (the sweeper refunds it then). */
const GENERATION_MARGIN_MS = 5 * 60_000;

/** The member's language, for everything that answers their request (their own interaction's, or the server's fixed one). */
function memberT(job: JournalEntry): Translator {
  return translator(job.locale ?? SOURCE_LOCALE);
}

/** The server's language, for channel posts nobody interacted with (a late result, the log channel). */
function channelT(job: JournalEntry): Translator {
  return translator(job.channelLocale ?? SOURCE_LOCALE);
}

export interface PipelineDeps {
  segmind: Pick<SegmindClient, 'generate'>;
  scheduler: FairScheduler;
  gate: GenerationGate;
  /**
   * The usage policy's settlement (commit what was delivered, refund the rest; answers undefined when storage refused
   * it). Named by shape: the policy sits above generation and hands it this.
   */
  policy: {
    settle(reservation: Reservation, delivered: number): Promise<SettleResult | undefined>;
    /** The server's rules for flagged images; rejects when storage cannot say (the pipeline then fails closed). */
    imageRules(guildId: string): Promise<ImageRules>;
    /**
     * Counts a member's flagged images (per server and day) and, when the server's `flag_limit` is reached, blocks the
     * member (recorded in the audit log, `blockedBy` as the actor). Answers whether this call blocked them.
     */
    recordFlagged(flag: { guildId: string; userId: string; images: number; flagLimit: number; blockedBy: string }): Promise<{ blocked: boolean }>;
  };
  /** Every generated image is checked before its result is built; a check that fails counts as flagged. */
  checker: ImageChecker;
  journal: Journal;
  history: PromptHistory;
  results: ResultStore;
  responder: DiscordResponder;
  clock: Clock;
  metrics?: Metrics | undefined;
  progress: { firstEditDelayMs: number; minIntervalMs: number };
  /** Waits between tries of a settlement or journal close that storage refused: doubling from `firstMs` to `maxMs`. */
  storageRetry?: { firstMs: number; maxMs: number };
  /**
   * With Redis, this process's lease on its journal: asked before a finished job is delivered or settled, because a
   * process cut off from Redis past its lease may have had its jobs adopted by another, which delivers them then.
   */
  ownership?: { confirm(signal?: AbortSignal): Promise<boolean> } | undefined;
  /**
   * Called once a result has been posted (the generation log channel): never awaited before settling, and whatever it
   * throws or rejects is only logged.
   */
  onDelivered?: ((delivery: DeliveredResult) => void | Promise<void>) | undefined;
}

/** A result just posted: who asked, what, and where the message is. */
export interface DeliveredResult {
  guildId: string;
  channelId: string;
  userId: string;
  /** What the member typed (a style's expansion is not theirs). */
  prompt: string;
  /** The server style applied, by name. */
  style?: string | undefined;
  messageId: string;
  /** The server's language (a log-channel line is a post nobody interacted with). */
  locale: Locale;
}

/**
 * Runs one admitted request, whichever way it came in: journaled before Segmind is called, queued fairly, generated
 * one image per call, delivered to Discord, then credits committed for what was delivered and refunded for the rest.
 */
export class ImaginePipeline {
  /** Jobs this process is running (new or resumed), until their member has been answered and credits settled. */
  private readonly active = new Set<Promise<unknown>>();
  /** Ids of the new requests this process is running (not resumed ones): the start-up recovery leaves them alone. */
  private readonly running = new Set<string>();
  /** Aborted when the shutdown grace period is over: running Segmind calls stop and their jobs stay journaled. */
  private readonly abandon = new AbortController();

  constructor(private readonly deps: PipelineDeps) {}

  /** Resolves true once every job has delivered (or posted its notice) and settled, false after `timeoutMs`. */
  async drain(timeoutMs: number): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<boolean>((r) => (timer = setTimeout(() => r(false), timeoutMs)));
    try {
      return await Promise.race([Promise.allSettled([...this.active]).then(() => true), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * After the shutdown grace period: stops the Segmind calls still running. Their jobs end as `suspended`, left in
   * the journal exactly as they are (credits still reserved), so the next start resumes or refunds them once.
   */
  abandonRunning(): void {
    this.abandon.abort(new Error('the shutdown grace period is over'));
  }

  private track<T>(job: Promise<T>): Promise<T> {
    this.active.add(job);
    const forget = () => this.active.delete(job);
    job.then(forget, forget);
    return job;
  }

  /** A new request: journal it (so a crash cannot lose it), then run it. Shutdown waits for it from the start. */
  run(job: JournalEntry, log: Logger): Promise<JobOutcome> {
    // Requests are taken while the start-up recovery still reads the journal: it must not run this one a second time.
    this.running.add(job.id);
    return this.track(
      (async () => {
        try {
          await this.deps.journal.add(job);
        } catch (error) {
          await this.deps.policy.settle(job.reservation, 0);
          throw error;
        }
        return await this.execute(job, log);
      })().finally(() => this.running.delete(job.id)),
    );
  }

  /** Cancels a job that has not started; only the member who asked may. */
  cancel(jobId: string, userId: string): 'cancelled' | 'not_yours' | 'too_late' {
    const owner = this.deps.scheduler.ownerOf(jobId);
    if (owner === undefined) return 'too_late';
    if (owner !== userId) return 'not_yours';
    return this.deps.scheduler.cancel(jobId) ? 'cancelled' : 'too_late';
  }

  /** After a restart: resume what can still be answered, refund and tell the member about the rest. */
  async recover(log: Logger): Promise<void> {
    for (const job of await this.deps.journal.list()) {
      if (this.running.has(job.id)) continue;
      await this.recoverJob(job, log.child({ jobId: job.id, guildId: job.guildId, userId: job.userId }));
    }
  }

  /**
   * One unfinished job from the journal, whoever ran it last (this instance before a restart, or a dead one whose job
   * this process adopted): resumed while its token has enough life left, else refunded and its member told; a job
   * interrupted while delivering is settled from what Discord shows.
   */
  async recoverJob(job: JournalEntry, jobLog: Logger): Promise<void> {
    const { clock } = this.deps;
    const address = addressOf(job);
    if (job.state === 'delivering') {
      // The result may already be posted: never post it twice.
      const original = await this.deps.responder.fetchOriginal(address);
      const delivered = Math.min(original?.attachments ?? 0, job.params.samples);
      jobLog.warn({ delivered }, 'settling a job interrupted while delivering');
      // The reply was read and has no images: the post never landed, and the member still sees "Generating…".
      // (The bot restarted after the images were generated and before they were posted.)
      if (original !== undefined && delivered === 0) await this.endPrivately(job, memberT(job)('imagine:job.notPosted'), jobLog);
      await this.finish(job, delivered, jobLog);
      return;
    }
    if (job.tokenExpiresAt - clock.now() > RESUME_MIN_TOKEN_MS) {
      jobLog.info('resuming a request left unfinished by the last run');
      void this.track(this.execute(job, jobLog)).catch((error: unknown) => jobLog.error({ err: error }, 'resumed job failed'));
    } else {
      jobLog.warn('refunding a request left unfinished by the last run: too late to resume');
      await this.endPrivately(job, memberT(job)('imagine:job.tooLate'), jobLog);
      await this.finish(job, 0, jobLog);
      this.deps.metrics?.jobFinished('expired');
    }
  }

  private async execute(job: JournalEntry, log: Logger): Promise<JobOutcome> {
    const { scheduler, clock } = this.deps;
    const address = addressOf(job);
    const t = memberT(job);
    const bodies = splitIntoSingleImageRequests(job.params);
    const images: BatchImage[] = [];
    const failures: BatchFailure[] = [];
    const verdicts = new Map<number, ImageVerdict>();
    const started = clock.now();
    const reporter = new ProgressReporter(async (message) => void (await this.deps.responder.editOriginal(address, message)), {
      ...this.deps.progress,
      now: () => clock.now(),
    });
    let firstStart: number | undefined;
    // Read once, when the first image arrives: where the server's rules would post a flagged image as it is (check
    // off, or NSFW allowed in this age-restricted channel) the classifier is not asked at all; unreadable rules check.
    let rules: Promise<ImageRules> | undefined;
    const rulesOnce = () => (rules ??= this.readImageRules(job, log));

    const handle = scheduler.submit({
      id: job.id,
      userId: job.userId,
      tasks: bodies.length,
      runTask: async (index) => {
        firstStart ??= clock.now();
        const body = bodies[index]!;
        let image: Awaited<ReturnType<ImaginePipeline['generateOne']>>;
        try {
          image = await this.generateOne(body, job, log);
        } catch (error) {
          failures.push({ index, seed: body.seed, error: error instanceof SegmindError ? error : new SegmindError('connection', { cause: error }) });
          return;
        }
        // Checked as soon as it arrives, while the job's other images are still generating.
        const verdict = treatmentOf(await rulesOnce(), job.channelNsfw ?? false) === 'as_is' ? NOT_CHECKED : await this.check(image.bytes, log);
        images.push({ ...image, index });
        verdicts.set(index, verdict);
      },
      onProgress: (progress) => reporter.update(progressMessage(progress, job.id, t)),
    });
    const end: JobEnd = await handle.done;
    await reporter.close();

    if (this.abandon.signal.aborted && end !== 'cancelled') {
      log.warn({ jobId: job.id }, 'left journaled for the next start: the shutdown grace period ended while it ran');
      return { kind: 'suspended', delivered: 0, failed: 0 };
    }

    if (this.deps.ownership && !(await this.deps.ownership.confirm(this.abandon.signal))) {
      // Neither posted nor settled here: the process that adopted the job does both (or the next start, on shutdown).
      log.warn({ jobId: job.id }, 'not delivering: this process lost its journal lease, so another process answers this job');
      return { kind: 'suspended', delivered: 0, failed: 0 };
    }

    if (end === 'stopped' && images.length === 0) {
      // Nothing generated: left in the journal, the next start resumes it while its token lives, or refunds it.
      await this.noteOnReply(job, t('imagine:job.saved'), log);
      return { kind: 'suspended', delivered: 0, failed: 0 };
    }
    if (end === 'cancelled') {
      await this.endPrivately(job, t('imagine:job.cancelled'), log);
      await this.finish(job, 0, log);
      this.deps.metrics?.jobFinished('cancelled');
      return { kind: 'cancelled', delivered: 0, failed: job.params.samples };
    }

    images.sort((a, b) => a.index - b.index);
    failures.sort((a, b) => a.index - b.index);
    const generationMs = clock.now() - (firstStart ?? started);
    // What the log needs of the images; the images themselves are handed on (splice empties this job's array).
    const segmind = [
      ...images.map((i) => ({ seed: i.seed, status: i.status, attempts: i.attempts, ms: i.durationMs, check: checkForLog(verdicts.get(i.index)) })),
      ...failures.map((f) => ({ seed: f.seed, status: f.error.status, kind: f.error.kind, requestId: f.error.detail.requestId })),
    ];
    const remainingCredits = images.map((i) => i.remainingCredits).filter((c) => c !== undefined).at(-1);
    // A job cut short (shutdown, storage outage) delivers what it has; the images never started are refunded.
    const notStarted = bodies.length - images.length - failures.length;
    // A result posted late in the channel speaks the server's language, like any post nobody is waiting for.
    const resultT = this.tokenAlive(job) ? t : channelT(job);
    const notice = notStarted > 0 && (end === 'stopped' || end === 'unavailable') ? notGeneratedNotice(notStarted, end, resultT) : undefined;
    const screened = await this.screen(job, images.splice(0), verdicts, rulesOnce);
    const result = this.prepareResult(job, screened.posted.splice(0), failures, generationMs, notice, screened.withheld, resultT);
    // Reported and counted while the result is delivered; the member hears of it once both are done.
    const flagsHandled = this.handleFlags(job, screened, log);
    let delivered = 0;
    let kind: JobOutcome['kind'];
    if (result.kind === 'nothing') {
      const failure = failures[0]?.error;
      const reason = failure ? segmindErrorText(failure, t) : '';
      const content =
        screened.withheld.length > 0
          ? [t('imagine:job.allWithheld', { count: screened.withheld.length }), result.notes, notice]
              .filter((line) => line !== undefined && line !== '')
              .join('\n')
          : end === 'unavailable' && failures.length === 0 && result.oversized === 0
          ? // Waited through a long storage outage and generated nothing: what happened, not which part failed.
            t('imagine:job.storageDown')
          : [t('imagine:job.noImage', { reason }).replace(/\s+/g, ' '), result.oversized > 0 ? result.notes : undefined, notice]
              .filter((line) => line !== undefined)
              .join('\n');
      await this.endPrivately(job, content, log);
      kind = 'failed';
    } else {
      // Both before posting, and independent of each other, so side by side (the images wait in memory meanwhile):
      // the result saved, as the buttons must find it the moment they appear; the job marked as delivering, so that
      // a restart checks what was posted instead of posting again.
      await Promise.all([
        this.deps.results
          .save({
            id: job.id,
            guildId: job.guildId,
            channelId: job.channelId,
            ownerId: job.userId,
            params: job.params,
            images: result.posted,
            ...(job.style ? { style: job.style } : {}),
            ...(job.private ? { private: true } : {}),
          })
          .catch((error: unknown) => log.warn({ err: error }, 'could not save the result for its buttons')),
        this.deps.journal.markDelivering(job).catch((error: unknown) => log.warn({ err: error }, 'could not mark the job as delivering')),
      ]);
      delivered = await this.deliver(job, address, result.message, log);
      kind = delivered === 0 ? 'delivery_failed' : delivered < job.params.samples ? 'partial' : 'delivered';
    }
    const { blocked } = await flagsHandled;
    const privately = [
      screened.withheld.length > 0 ? withheldNoticeText(screened.withheld, job.params.samples, t) : undefined,
      blocked ? t('imagine:job.nowBlocked', { reason: autoBlockReason(screened.rules.flagLimit, t) }) : undefined,
    ].filter((line) => line !== undefined);
    if (privately.length > 0) await this.tellPrivately(job, privately.join('\n'), log);
    await this.finish(job, delivered, log);
    this.deps.metrics?.jobFinished(kind);

    log.info(
      {
        jobId: job.id,
        userId: job.userId,
        guildId: job.guildId,
        params: { ...job.params, prompt: truncate(job.params.prompt, 120) },
        style: job.style?.name,
        private: job.private,
        durationMs: clock.now() - job.createdAt,
        queuedMs: (firstStart ?? clock.now()) - started,
        segmindMs: generationMs,
        segmind,
        remainingCredits,
        imageCheck: screened.flagged.length > 0 ? { flagged: screened.flagged.length, treatment: screened.treatment } : undefined,
        outcome: kind,
        delivered,
        failed: job.params.samples - delivered,
      },
      'imagine job finished',
    );
    return { kind, delivered, failed: job.params.samples - delivered };
  }

  /**
   * The result message, with the images already inside its request body: once this returns, nothing but that body
   * holds image bytes (the caller has given up `images`), through the storage writes before the upload and the upload.
   */
  private prepareResult(
    job: JournalEntry,
    images: BatchImage[],
    failures: BatchFailure[],
    generationMs: number,
    notice: string | undefined,
    withheld: WithheldImage[],
    t: Translator,
  ):
    | { kind: 'nothing'; notes: string; oversized: number }
    | { kind: 'images'; message: PreparedMessage; posted: Array<{ index: number; seed: number; spoiler?: boolean }> } {
    const extraNotes = [...(job.notes ?? []), ...(notice === undefined ? [] : [notice])];
    const message = buildResultMessage(
      job.params,
      { images, failures, durationMs: generationMs, withheld },
      job.attachmentSizeLimit,
      {
        ownerId: job.userId,
        ...(extraNotes.length > 0 ? { extraNotes } : {}),
        ...(job.style ? { style: { name: job.style.name, memberPrompt: job.style.memberPrompt } } : {}),
        t,
      },
    );
    if (message.files.length === 0) return { kind: 'nothing', notes: message.notes, oversized: message.oversized.length };
    const { content } = message;
    const posted = images
      .filter((image) => message.files.some((file) => file.data === image.bytes))
      .map((image) => ({ index: image.index, seed: image.seed, ...(image.spoiler ? { spoiler: true } : {}) }));
    // Share only where something shareable was posted: flagged (spoilered) images never reach a gallery.
    const components = resultComponents(job.id, posted, {
      private: job.private === true,
      share: job.gallery === true && posted.some((image) => !image.spoiler),
      t,
    });
    const prepared = this.deps.responder.prepare({ content, embeds: message.embeds, files: message.files, components });
    return { kind: 'images', message: prepared, posted };
  }

  /** The server's rules for flagged images; unreadable rules withhold (fail closed). */
  private readImageRules(job: JournalEntry, log: Logger): Promise<ImageRules> {
    return this.deps.policy.imageRules(job.guildId).catch((error: unknown) => {
      log.warn({ err: error }, "could not read the server's image rules: checking every image and withholding the flagged ones");
      return RULES_UNREADABLE;
    });
  }

  /** The image check; never throws: a checker that breaks its promise not to reject is failed closed here too. */
  private async check(bytes: Uint8Array, log: Logger): Promise<ImageVerdict> {
    const started = this.deps.clock.now();
    const verdict = await this.deps.checker.check(bytes).catch((error: unknown): ImageVerdict => {
      log.error({ err: error }, 'the image checker rejected: the image counts as flagged');
      return { flagged: true, failure: 'error', durationMs: this.deps.clock.now() - started };
    });
    if (verdict.failure !== undefined) log.warn({ failure: verdict.failure, ms: verdict.durationMs }, 'an image could not be checked: it counts as flagged');
    this.deps.metrics?.imageChecked(verdict, verdict.durationMs / 1000);
    return verdict;
  }

  /**
   * Applies the server's rules to the flagged images: spoilered, withheld or posted as they are. The rules are the
   * ones the job read when its first image arrived (to know whether to check at all); unreadable rules withhold.
   */
  private async screen(job: JournalEntry, images: BatchImage[], verdicts: Map<number, ImageVerdict>, rulesOnce: () => Promise<ImageRules>): Promise<Screened> {
    const flaggedImages = images.filter((image) => verdicts.get(image.index)?.flagged !== false);
    if (flaggedImages.length === 0) return { posted: images, withheld: [], flagged: [], treatment: 'as_is', rules: RULES_UNREADABLE, evidence: new Map() };
    const rules = await rulesOnce();
    const treatment = treatmentOf(rules, job.channelNsfw ?? false);
    const flagged: FlaggedImage[] = flaggedImages.map((image) => ({
      index: image.index,
      seed: image.seed,
      verdict: verdicts.get(image.index) ?? { flagged: true, failure: 'error', durationMs: 0 },
    }));
    // The log channel gets the image itself only when the server asked for it (and only as a spoiler, below).
    const evidence = new Map(
      treatment !== 'as_is' && rules.logFlaggedImages && rules.logChannelId !== null
        ? flaggedImages.map((image) => [image.index, { name: spoilerFileNameFor(image), data: image.bytes }] as const)
        : [],
    );
    if (treatment === 'as_is') return { posted: images, withheld: [], flagged, treatment, rules, evidence };
    if (treatment === 'spoiler') {
      const spoilered = new Set(flaggedImages);
      return { posted: images.map((image) => (spoilered.has(image) ? { ...image, spoiler: true } : image)), withheld: [], flagged, treatment, rules, evidence };
    }
    const kept = images.filter((image) => !flaggedImages.includes(image));
    return { posted: kept, withheld: flagged, flagged, treatment, rules, evidence };
  }

  /**
   * Tells the moderators (the log channel) and counts the flags toward `flag_limit`, side by side. Never rejects:
   * the images are delivered whatever becomes of the report. Checks that were off (`as_is`) are neither reported
   * nor counted.
   */
  private async handleFlags(job: JournalEntry, screened: Screened, log: Logger): Promise<{ blocked: boolean }> {
    const { treatment, rules, flagged, evidence } = screened;
    if (treatment === 'as_is' || flagged.length === 0) return { blocked: false };
    const report = async () => {
      if (rules.logChannelId === null) return;
      const content = flagReportText(
        { userId: job.userId, channelId: job.channelId, prompt: job.params.prompt, samples: job.params.samples },
        flagged,
        treatment,
        channelT(job),
      );
      const files = flagged.map((image) => evidence.get(image.index)).filter((file) => file !== undefined);
      await this.deps.responder
        .postToChannel(rules.logChannelId, { content, files })
        .catch((error: unknown) => log.warn({ err: error, logChannelId: rules.logChannelId }, 'could not report flagged images in the log channel'));
      evidence.clear();
    };
    const count = () =>
      this.deps.policy
        .recordFlagged({ guildId: job.guildId, userId: job.userId, images: flagged.length, flagLimit: rules.flagLimit, blockedBy: job.applicationId })
        .catch((error: unknown) => {
          log.warn({ err: error }, 'could not count the flagged images');
          return { blocked: false };
        });
    const [, counted] = await Promise.all([report(), count()]);
    return counted;
  }

  private async generateOne(body: ReturnType<typeof splitIntoSingleImageRequests>[number], job: JournalEntry, log: Logger) {
    const { gate, segmind, metrics, clock } = this.deps;
    const deadline = job.reservation.expiresAt - GENERATION_MARGIN_MS;
    if (clock.now() >= deadline) throw new SegmindError('timeout', { reason: 'waited in the queue past its deadline' });
    const blocked = gate.beforeCall();
    if (blocked) throw blocked;
    const started = clock.now();
    try {
      const image = await segmind.generate(body, { deadline, log, signal: this.abandon.signal });
      gate.afterCall(undefined);
      metrics?.segmindRequest(String(image.status), (clock.now() - started) / 1000);
      if (image.remainingCredits !== undefined) metrics?.setRemainingCredits(image.remainingCredits);
      return image;
    } catch (error) {
      const segmindError = error instanceof SegmindError ? error : new SegmindError('connection', { cause: error });
      gate.afterCall(segmindError);
      metrics?.segmindRequest(segmindError.status !== undefined ? String(segmindError.status) : segmindError.kind, (clock.now() - started) / 1000);
      throw segmindError;
    }
  }

  /**
   * Tells `onDelivered` (the generation log) about a result just posted. Not awaited and never throwing: the job's
   * settlement must not wait for, nor fail because of, a log line. Private results are not announced: the log channel
   * would show them publicly (moderators see them in `/imagine-admin usage member:`).
   */
  private announce(job: JournalEntry, messageId: string | undefined, log: Logger): void {
    const { onDelivered } = this.deps;
    if (!onDelivered || messageId === undefined || job.private) return;
    const delivery: DeliveredResult = {
      guildId: job.guildId,
      channelId: job.channelId,
      userId: job.userId,
      prompt: job.style?.memberPrompt ?? job.params.prompt,
      ...(job.style ? { style: job.style.name } : {}),
      messageId,
      locale: job.channelLocale ?? SOURCE_LOCALE,
    };
    try {
      void Promise.resolve(onDelivered(delivery)).catch((error: unknown) => log.warn({ err: error }, 'the delivery callback failed'));
    } catch (error) {
      log.warn({ err: error }, 'the delivery callback failed');
    }
  }

  /** Posts the images (the job is marked as delivering), then lets go of them (the job still has its settling to do). */
  private async deliver(job: JournalEntry, address: InteractionAddress, message: PreparedMessage, log: Logger): Promise<number> {
    try {
      return await this.post(job, address, message, log);
    } finally {
      message.release();
    }
  }

  /** Through the original reply while its token lives, else as a channel message (a private one: a direct message). */
  private async post(job: JournalEntry, address: InteractionAddress, message: PreparedMessage, log: Logger): Promise<number> {
    const { responder, metrics } = this.deps;
    const files = message.fileNames.length;
    if (this.tokenAlive(job)) {
      try {
        this.announce(job, await responder.editOriginal(address, message), log);
        return files;
      } catch (error) {
        metrics?.deliveryError(statusOf(error));
        if (!isDeadToken(error)) {
          log.error({ err: error }, 'could not deliver the images to Discord');
          await this.endPrivately(job, memberT(job)('imagine:job.notPostedHere', { count: job.params.samples }), log);
          return 0;
        }
        log.warn(job.private ? 'interaction token is no longer valid: sending by direct message instead' : 'interaction token is no longer valid: posting in the channel instead');
      }
    }
    if (job.private) return this.postByDirectMessage(job, message, log);
    try {
      // The one deliberate ping (postInChannel mentions the member): they may have stopped watching long ago.
      const messageId = await responder.postInChannel(address, message, channelT(job)('imagine:job.late', { count: job.params.samples }));
      this.announce(job, messageId, log);
      return files;
    } catch (error) {
      metrics?.deliveryError(statusOf(error));
      log.error({ err: error }, 'could not post the images in the channel either: refunding');
      return 0;
    }
  }

  /**
   * A private result whose token died: no ephemeral message can be sent any more and the channel must never see it,
   * so it goes by direct message, without its buttons (they work in servers only). A member who takes no direct
   * messages gets nothing: refunded, and told in the channel in words that do not give the prompt away.
   */
  private async postByDirectMessage(job: JournalEntry, message: PreparedMessage, log: Logger): Promise<number> {
    const { responder, metrics } = this.deps;
    const t = memberT(job);
    const count = job.params.samples;
    try {
      await responder.sendDirectMessageWith(job.userId, message, t('imagine:job.privateByDm', { count, channel: `<#${job.channelId}>` }));
      return message.fileNames.length;
    } catch (error) {
      metrics?.deliveryError(statusOf(error));
      if (isClosedDirectMessages(error)) {
        log.info('the member takes no direct messages: their private result is not delivered, and refunded');
        await responder
          .postInChannel(addressOf(job), { content: t('imagine:job.privateDmClosed', { count }) })
          .catch((noticeError: unknown) => log.warn({ err: noticeError }, 'could not tell the member in the channel'));
        return 0;
      }
      log.error({ err: error }, 'could not send the private result by direct message: refunding');
      await this.tellLate(job, t('imagine:job.privateNotDelivered', { count }), log);
      return 0;
    }
  }

  /**
   * Settles credits, records history, and closes the journal entry: the last step of every job. Settling and closing
   * are tried again while storage refuses them (an outage ends): a job given up on without its refund would leave the
   * member's credits held until the sweeper, and one left in the journal would be run again by the next start after
   * the member was told it was over. Tries end when the reservation expires (the sweeper refunds it then) or when the
   * shutdown grace period is over (the next start settles from the journal).
   */
  private async finish(job: JournalEntry, delivered: number, log: Logger): Promise<void> {
    const { policy, history, journal, clock } = this.deps;
    const settled = await this.whileStorageRefuses(job, async () => {
      const result = await policy.settle(job.reservation, delivered);
      if (result === undefined) throw new Error('the credits could not be settled');
      return result;
    });
    if (settled === undefined) log.error({ reservationId: job.reservation.id }, 'gave up settling the credits: the sweeper refunds them');
    if (settled?.settled) {
      this.deps.metrics?.committed(settled.committed);
      this.deps.metrics?.refunded(settled.refunded);
    }
    if (delivered > 0) {
      await history
        .add(job.guildId, job.userId, {
          at: clock.now(),
          // The member's own words, with the style's name: a moderator reads what the member asked for.
          prompt: job.style?.memberPrompt ?? job.params.prompt,
          seeds: splitIntoSingleImageRequests(job.params).map((b) => b.seed),
          delivered,
          channelId: job.channelId,
          ...(job.style ? { style: job.style.name } : {}),
          ...(job.private ? { private: true } : {}),
        })
        .catch((error: unknown) => log.warn({ err: error }, 'could not record the prompt history'));
    }
    const closed = await this.whileStorageRefuses(job, async () => {
      await journal.remove(job.id);
      return true;
    });
    if (closed === undefined) log.error('could not close the journal entry');
  }

  /** `attempt` until it resolves, backing off while it rejects; undefined once the reservation expired or shutdown ended. */
  private async whileStorageRefuses<T>(job: JournalEntry, attempt: () => Promise<T>): Promise<T | undefined> {
    const { clock } = this.deps;
    const { firstMs, maxMs } = this.deps.storageRetry ?? { firstMs: 1_000, maxMs: 30_000 };
    for (let wait = firstMs; ; wait = Math.min(maxMs, wait * 2)) {
      try {
        return await attempt();
      } catch {
        if (this.abandon.signal.aborted || clock.now() + wait >= job.reservation.expiresAt) return undefined;
        try {
          await clock.sleep(wait, this.abandon.signal);
        } catch {
          return undefined;
        }
      }
    }
  }

  /**
   * The end of a request that posted no image (every image failed, cancelled, storage down, the restart notices):
   * the member's business only, like a refusal. While the token lives the public "thinking…" reply is deleted and
   * the text sent privately (the responder's one delete-then-follow-up path), or, for a private request, written into
   * its reply (already ephemeral); after that, see `tellLate`.
   */
  private async endPrivately(job: JournalEntry, content: string, log: Logger): Promise<void> {
    if (this.deps.clock.now() < job.tokenExpiresAt - EDIT_MARGIN_MS) {
      try {
        if (job.private) await this.deps.responder.editOriginal(addressOf(job), { content, embeds: [], components: [] });
        else await this.deps.responder.answerPrivately(addressOf(job), content);
        return;
      } catch (error) {
        if (!isDeadToken(error)) {
          log.warn({ err: error }, 'could not answer the member privately');
          return;
        }
      }
    }
    await this.tellLate(job, content, log);
  }

  /** A notice only the member sees (a follow-up through the interaction webhook), or `tellLate` once the token is dead. */
  private async tellPrivately(job: JournalEntry, content: string, log: Logger): Promise<void> {
    const address = addressOf(job);
    if (this.deps.clock.now() < job.tokenExpiresAt - EDIT_MARGIN_MS) {
      try {
        await this.deps.responder.followUpPrivately(address, content);
        return;
      } catch (error) {
        if (!isDeadToken(error)) {
          log.warn({ err: error }, 'could not tell the member privately');
          return;
        }
      }
    }
    await this.tellLate(job, content, log);
  }

  /**
   * Once the interaction token is dead, nothing sent through it can reach the member, and no ephemeral message exists
   * outside it. A direct message is the only private route left, so it is tried first (it names the channel, as the
   * DM has no other context); members who accept no DMs from the server (Discord answers 50007) are told in the
   * channel with a mention instead of not at all: a request must never end in silence.
   */
  private async tellLate(job: JournalEntry, content: string, log: Logger): Promise<void> {
    try {
      await this.deps.responder.sendDirectMessage(job.userId, memberT(job)('imagine:job.about', { channel: `<#${job.channelId}>`, content }));
      return;
    } catch (error) {
      log.info({ err: error }, 'could not send the member a direct message: telling them in the channel');
    }
    await this.deps.responder
      .postInChannel(addressOf(job), { content })
      .catch((error: unknown) => log.warn({ err: error }, 'could not tell the member in the channel'));
  }

  /** While the interaction token lives (less the time an upload takes), the reply can still be edited. */
  private tokenAlive(job: JournalEntry): boolean {
    return this.deps.clock.now() < job.tokenExpiresAt - EDIT_MARGIN_MS;
  }

  /**
   * A passing note written into the public reply, which stays the request's reply (the resumed job's result replaces
   * it). With a dead token there is nothing to write into, and nothing is posted: the next start refunds the job and
   * tells the member then.
   */
  private async noteOnReply(job: JournalEntry, content: string, log: Logger): Promise<void> {
    if (this.deps.clock.now() >= job.tokenExpiresAt - EDIT_MARGIN_MS) return;
    await this.deps.responder
      .editOriginal(addressOf(job), { content, embeds: [], components: [] })
      .catch((error: unknown) => log.warn({ err: error }, 'could not update the reply'));
  }
}

export function addressOf(job: JournalEntry): InteractionAddress {
  return { applicationId: job.applicationId, token: job.token, channelId: job.channelId, userId: job.userId };
}

/** One job's images after the image check and the server's rules. */
interface Screened {
  /** What goes into the result (spoilered ones marked). */
  posted: BatchImage[];
  withheld: FlaggedImage[];
  /** Every flagged image, whatever its treatment. */
  flagged: FlaggedImage[];
  treatment: FlagTreatment;
  rules: ImageRules;
  /** The flagged images' files for the log channel (when `log_flagged_images`), released once reported. */
  evidence: Map<number, { name: string; data: Buffer }>;
}

/** An image the server's rules post as it is whatever its verdict: the classifier is spared (and not loaded for it). */
const NOT_CHECKED: ImageVerdict = Object.freeze({ flagged: false, durationMs: 0 });

function checkForLog(verdict: ImageVerdict | undefined) {
  if (verdict === undefined) return undefined;
  if (verdict === NOT_CHECKED) return 'off';
  return { flagged: verdict.flagged, scores: scoresForLog(verdict), failure: verdict.failure, ms: Math.round(verdict.durationMs) };
}

function statusOf(error: unknown): string {
  const status = (error as { status?: unknown }).status;
  return typeof status === 'number' ? String(status) : 'network';
}

/** The line added to a delivery cut short: how many images were never generated, why, and that they cost nothing. */
function notGeneratedNotice(count: number, end: 'stopped' | 'unavailable', t: Translator): string {
  return end === 'stopped' ? t('imagine:job.notGeneratedRestart', { count }) : t('imagine:job.notGeneratedTrouble', { count });
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}
