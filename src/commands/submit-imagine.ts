import type { RepliableInteraction } from 'discord.js';
import { memberContextOf } from './member-context.js';
import type { Logger } from '../logger.js';
import type { FluxDevParams } from '../services/segmind/flux-params.js';
import { INTERACTION_TOKEN_LIFETIME_MS, type ImagineRequest } from '../services/generation/imagine-request.js';
import type { ImaginePipeline } from '../services/generation/imagine-pipeline.js';
import type { JournalEntry } from '../services/generation/journal.js';
import type { UsagePolicy } from '../services/usage/usage-policy.js';

/** A reservation outlives the interaction token: a late result can still be posted in the channel and charged. */
const RESERVATION_LIFETIME_MS = 60 * 60_000;

export interface SubmitDeps {
  pipeline: ImaginePipeline;
  policy: UsagePolicy;
}

/**
 * The one way into generation, for `/imagine`, buttons and remixes alike. Defer first (Discord's 3 s rule holds
 * whatever storage's load):
 * 1. the checks that need no storage (bot-wide gate, the member's open requests), before any await: a refusal is an
 *    immediate private reply;
 * 2. the deferral (a new public "thinking…" message);
 * 3. the parameters, when they must be read from storage first (`params` as a function: a result's buttons);
 * 4. the member who interacted is checked against the server's rules and charged (storage): a refusal here, or in 3,
 *    replaces the "thinking…" message with a private one (the router's `replyWithError`);
 * 5. the job runs through the queue and journal.
 */
export async function submitImagine(
  interaction: RepliableInteraction<'cached' | 'raw'>,
  params: FluxDevParams | (() => Promise<FluxDevParams>),
  { pipeline, policy }: SubmitDeps,
  log: Logger,
): Promise<void> {
  const member = memberContextOf(interaction);
  const release = policy.openRequest(member);
  try {
    // Nothing is reserved yet: a failed deferral has nothing to refund, only the slot to give back.
    await interaction.deferReply();
    const request: ImagineRequest = {
      id: interaction.id,
      userId: interaction.user.id,
      guildId: interaction.guildId,
      channelId: interaction.channelId ?? '',
      params: typeof params === 'function' ? await params() : params,
      createdAt: interaction.createdTimestamp,
      tokenExpiresAt: interaction.createdTimestamp + INTERACTION_TOKEN_LIFETIME_MS,
      attachmentSizeLimit: interaction.attachmentSizeLimit,
    };
    const { reservation } = await policy.reserve(request, member, request.createdAt + RESERVATION_LIFETIME_MS);
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
      params: request.params,
      reservation,
      state: 'queued',
      channelNsfw: member.channelNsfw,
    };
    await pipeline.run(job, log);
  } finally {
    release();
  }
}
