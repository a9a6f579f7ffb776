import { MessageFlags, type RepliableInteraction } from 'discord.js';
import { memberContextOf } from './member-context.js';
import { localeFor } from '../i18n/locales.js';
import { translator } from '../i18n/i18n.js';
import type { LocalizedText } from '../errors.js';
import type { Logger } from '../logger.js';
import type { FluxDevParams } from '../services/segmind/flux-params.js';
import {
  INTERACTION_TOKEN_LIFETIME_MS,
  type AdjustableParam,
  type AppliedStyle,
  type ImagineRequest,
} from '../services/generation/imagine-request.js';
import type { ImaginePipeline } from '../services/generation/imagine-pipeline.js';
import type { JournalEntry } from '../services/generation/journal.js';
import type { UsagePolicy } from '../services/usage/usage-policy.js';

/** A reservation outlives the interaction token: a late result can still be posted in the channel and charged. */
const RESERVATION_LIFETIME_MS = 60 * 60_000;

/** What a request asks Segmind for, as its entry point resolved it (options, preference, style). */
export interface ImagineInput {
  params: FluxDevParams;
  style?: AppliedStyle | undefined;
  /** Parameters the member did not type: the server's limits cut them (with a note) instead of refusing. */
  adjustable?: readonly AdjustableParam[] | undefined;
  /** Lines for the result about how the request was resolved (a preferred style that no longer exists). */
  notes?: readonly LocalizedText[] | undefined;
}

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
 * 3. the parameters, when they must be read from storage first (`input` as a function: a result's buttons, styles);
 * 4. the member who interacted is checked against the server's rules and charged (storage): a refusal here, or in 3,
 *    replaces the "thinking…" message with a private one (the router's `replyWithError`);
 * 5. the job runs through the queue and journal.
 */
export async function submitImagine(
  interaction: RepliableInteraction<'cached' | 'raw'>,
  input: ImagineInput | (() => Promise<ImagineInput>),
  { pipeline, policy }: SubmitDeps,
  log: Logger,
  { private: privacy = false }: { private?: boolean | (() => Promise<boolean>) } = {},
): Promise<void> {
  const member = memberContextOf(interaction);
  const release = policy.openRequest(member);
  try {
    // Asked only once the checks that need no storage passed (a paused bot refuses without a read): a preference may
    // decide it, and the deferral must be private or public from the start.
    const isPrivate = typeof privacy === 'function' ? await privacy() : privacy;
    // Nothing is reserved yet: a failed deferral has nothing to refund, only the slot to give back. A private request
    // is private from its first message: the deferral is ephemeral (the policy refuses it where the server does not
    // allow private results, into that same private message).
    await interaction.deferReply(isPrivate ? { flags: MessageFlags.Ephemeral } : {});
    const resolved = typeof input === 'function' ? await input() : input;
    const request: ImagineRequest = {
      id: interaction.id,
      userId: interaction.user.id,
      guildId: interaction.guildId,
      channelId: interaction.channelId ?? '',
      params: resolved.params,
      createdAt: interaction.createdTimestamp,
      tokenExpiresAt: interaction.createdTimestamp + INTERACTION_TOKEN_LIFETIME_MS,
      attachmentSizeLimit: interaction.attachmentSizeLimit,
      style: resolved.style,
      private: isPrivate,
      adjustable: resolved.adjustable,
    };
    const { reservation, params, notes: admissionNotes, settings } = await policy.reserve(request, member, request.createdAt + RESERVATION_LIFETIME_MS);
    const languages = { memberLocale: interaction.locale, guildLocale: interaction.guildLocale, serverLanguage: settings.language };
    // Written down in the member's language: the journal keeps text, so a resumed job shows the notes as they were.
    const t = translator(localeFor(languages, 'member'));
    const notes = [...(resolved.notes ?? []), ...admissionNotes].map((note) => note(t));
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
      channelNsfw: member.channelNsfw,
      ...(resolved.style ? { style: resolved.style } : {}),
      ...(isPrivate ? { private: true } : {}),
      ...(notes.length > 0 ? { notes } : {}),
      ...(!isPrivate && settings.galleryChannelId !== null ? { gallery: true } : {}),
      locale: localeFor(languages, 'member'),
      channelLocale: localeFor(languages, 'channel'),
    };
    await pipeline.run(job, log);
  } finally {
    release();
  }
}
