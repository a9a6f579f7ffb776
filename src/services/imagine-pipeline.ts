import type { Clock } from '../clock.js';
import type { Logger } from '../logger.js';
import type { ImageGenerator } from './image-generator.js';
import type { ImagineRequest } from './imagine-request.js';
import type { PromptHistory } from './prompt-history.js';
import { buildResultMessage, type ResultMessage } from './result-message.js';
import type { Admission, UsagePolicy } from './usage-policy.js';

/** Where a request's result goes: the deferred interaction reply, or (later) a channel message. */
export interface ReplyTarget {
  editOriginal(message: Pick<ResultMessage, 'content' | 'embeds' | 'files'>): Promise<void>;
}

export type JobOutcome =
  | { kind: 'delivered'; delivered: number; failed: number }
  | { kind: 'failed'; delivered: 0; failed: number }
  | { kind: 'delivery_failed'; delivered: 0; failed: number };

/** Leave time to upload the images before the interaction token dies. */
const DELIVERY_MARGIN_MS = 60_000;

/**
 * Runs one admitted request: Segmind, then delivery, then credits committed for what was delivered and refunded for
 * the rest — whatever happens in between.
 */
export class ImaginePipeline {
  constructor(
    private readonly generator: ImageGenerator,
    private readonly policy: Pick<UsagePolicy, 'settle'>,
    private readonly history: PromptHistory,
    private readonly clock: Clock,
  ) {}

  async run(request: ImagineRequest, admission: Admission, reply: ReplyTarget, log: Logger): Promise<JobOutcome> {
    let outcome: JobOutcome | undefined;
    try {
      outcome = await this.generateAndDeliver(request, reply, log);
      return outcome;
    } finally {
      const delivered = outcome?.delivered ?? 0;
      await this.policy.settle(admission.reservation, delivered);
      if (request.guildId !== null && delivered > 0) {
        await this.history
          .add(request.guildId, request.userId, {
            at: this.clock.now(),
            prompt: request.params.prompt,
            seeds: Array.from({ length: request.params.samples }, (_, i) => (request.params.seed + i) % 2 ** 32),
            delivered,
            channelId: request.channelId,
          })
          .catch((error: unknown) => log.warn({ err: error }, 'could not record the prompt history'));
      }
    }
  }

  private async generateAndDeliver(request: ImagineRequest, reply: ReplyTarget, log: Logger): Promise<JobOutcome> {
    const { params } = request;
    const result = await this.generator.generate(params, {
      deadline: request.tokenExpiresAt - DELIVERY_MARGIN_MS,
      log,
    });
    const message = buildResultMessage(params, result, request.attachmentSizeLimit);
    const delivered = message.files.length;
    const failed = params.samples - delivered;

    let outcome: JobOutcome;
    try {
      if (delivered > 0) {
        await reply.editOriginal(message);
        outcome = { kind: 'delivered', delivered, failed };
      } else {
        const reason = result.failures[0]?.error.message ?? message.content;
        await reply.editOriginal({
          content: `❌ No image could be generated. ${reason}${message.oversized.length > 0 ? `\n${message.content}` : ''}`,
          embeds: [],
          files: [],
        });
        outcome = { kind: 'failed', delivered: 0, failed };
      }
    } catch (error) {
      log.error({ err: error }, 'could not deliver the result to Discord');
      outcome = { kind: 'delivery_failed', delivered: 0, failed: params.samples };
    }

    log.info(
      {
        jobId: request.id,
        userId: request.userId,
        guildId: request.guildId,
        params: { ...params, prompt: truncate(params.prompt, 120) },
        durationMs: this.clock.now() - request.createdAt,
        segmindMs: result.durationMs,
        segmind: [
          ...result.images.map((i) => ({ seed: i.seed, status: i.status, attempts: i.attempts, ms: i.durationMs })),
          ...result.failures.map((f) => ({ seed: f.seed, status: f.error.status, kind: f.error.kind })),
        ],
        remainingCredits: lastDefined(result.images.map((i) => i.remainingCredits)),
        outcome: outcome.kind,
        delivered: outcome.delivered,
        failed: outcome.failed,
      },
      'imagine job finished',
    );
    return outcome;
  }
}

function truncate(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

function lastDefined<T>(values: Array<T | undefined>): T | undefined {
  return values.filter((v) => v !== undefined).at(-1);
}
