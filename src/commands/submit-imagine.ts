import type { RepliableInteraction } from 'discord.js';
import { memberContextOf } from '../discord/member-context.js';
import type { Logger } from '../logger.js';
import type { FluxDevParams } from '../services/flux-params.js';
import { INTERACTION_TOKEN_LIFETIME_MS, type ImagineRequest } from '../services/imagine-request.js';
import type { ImaginePipeline } from '../services/imagine-pipeline.js';
import type { JournalEntry } from '../services/queue/journal.js';
import type { UsagePolicy } from '../services/usage-policy.js';

/** A reservation outlives the interaction token: a late result can still be posted in the channel and charged. */
const RESERVATION_LIFETIME_MS = 60 * 60_000;

export interface SubmitDeps {
  pipeline: ImaginePipeline;
  policy: UsagePolicy;
}

/**
 * The one way into generation, for `/imagine`, buttons and remixes alike: the member who interacted is checked and
 * charged, the interaction is deferred (a new public message), and the job runs through the queue and journal.
 */
export async function submitImagine(
  interaction: RepliableInteraction<'cached' | 'raw'>,
  params: FluxDevParams,
  { pipeline, policy }: SubmitDeps,
  log: Logger,
): Promise<void> {
  const request: ImagineRequest = {
    id: interaction.id,
    userId: interaction.user.id,
    guildId: interaction.guildId,
    channelId: interaction.channelId ?? '',
    params,
    createdAt: interaction.createdTimestamp,
    tokenExpiresAt: interaction.createdTimestamp + INTERACTION_TOKEN_LIFETIME_MS,
    attachmentSizeLimit: interaction.attachmentSizeLimit,
  };
  const { reservation, release } = await policy.admit(
    request,
    memberContextOf(interaction),
    request.createdAt + RESERVATION_LIFETIME_MS,
  );
  try {
    try {
      await interaction.deferReply();
    } catch (error) {
      await policy.settle(reservation, 0);
      throw error;
    }
    const job: JournalEntry = {
      v: 1,
      id: request.id,
      guildId: interaction.guildId,
      channelId: request.channelId,
      userId: request.userId,
      applicationId: interaction.applicationId,
      token: interaction.token,
      createdAt: request.createdAt,
      tokenExpiresAt: request.tokenExpiresAt,
      attachmentSizeLimit: request.attachmentSizeLimit,
      params,
      reservation,
      state: 'queued',
    };
    await pipeline.run(job, log);
  } finally {
    release();
  }
}
