import { DiscordAPIError, MessageFlags } from 'discord.js';
import { UserFacingError } from '../errors.js';
import type { Gallery, ShareOutcome } from '../services/results/gallery.js';
import { parseShareCustomId, SHARE_PREFIX } from '../services/results/result-components.js';
import type { ResultStore } from '../services/results/result-store.js';
import type { GuildSettingsRepository } from '../services/usage/guild-settings.js';
import type { UsagePolicy } from '../services/usage/usage-policy.js';
import type { ButtonHandler } from './cancel-button.js';
import { memberContextOf } from './member-context.js';

export interface ShareButtonDeps {
  gallery: Gallery;
  results: ResultStore;
  settings: GuildSettingsRepository;
  policy: Pick<UsagePolicy, 'isModerator'>;
  /** Whether a channel of the bot's cache is age-restricted (a thread through its parent); false when unknown. */
  isAgeRestricted: (channelId: string) => boolean;
}

const NOT_ANY_MORE = 'This button does not work any more.';
const EXPIRED = 'The settings of this result are no longer kept (results are kept for a limited time, or it was deleted), so it cannot be shared.';
export const NO_GALLERY =
  "This server has no gallery channel. Its moderators turn it on with `/imagine-admin settings set gallery_channel:#channel`.";
export const AGE_RESTRICTED =
  'This result was made in an age-restricted channel and the gallery channel is not age-restricted, so it cannot be shared there.';

/**
 * ⭐ Share under a public result: posts it to the server's gallery channel (`Gallery`), once. Acknowledged privately
 * before storage is read; the member who asked or a moderator may share, anyone else is told so privately.
 */
export function createShareButton(deps: ShareButtonDeps): ButtonHandler {
  return {
    prefix: SHARE_PREFIX,
    async execute(interaction, log) {
      const resultId = parseShareCustomId(interaction.customId);
      if (!interaction.isButton() || !interaction.inGuild() || resultId === undefined) throw new UserFacingError(NOT_ANY_MORE);
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const [settings, record] = await Promise.all([deps.settings.get(interaction.guildId), deps.results.get(resultId)]);
      if (!record) throw new UserFacingError(EXPIRED);
      if (interaction.user.id !== record.ownerId && !deps.policy.isModerator(memberContextOf(interaction), settings))
        throw new UserFacingError('Only the member who asked for these images, or a moderator, can share them to the gallery.');
      const galleryChannelId = settings.galleryChannelId;
      if (galleryChannelId === null) throw new UserFacingError(NO_GALLERY);
      if (deps.isAgeRestricted(interaction.message.channelId) && !deps.isAgeRestricted(galleryChannelId)) throw new UserFacingError(AGE_RESTRICTED);
      const { message } = interaction;
      const source = {
        guildId: interaction.guildId,
        channelId: message.channelId,
        messageId: message.id,
        attachments: [...message.attachments.values()].map((file) => ({ url: file.url, filename: file.name, size: file.size })),
      };
      let outcome: ShareOutcome;
      try {
        outcome = await deps.gallery.share(record, source, galleryChannelId, { kind: 'member', userId: interaction.user.id });
      } catch (error) {
        log.warn({ err: error, resultId, galleryChannelId }, 'could not share a result to the gallery');
        throw new UserFacingError(failureText(error, galleryChannelId));
      }
      await interaction.editReply({ content: answerFor(outcome, galleryChannelId), allowedMentions: { parse: [] } });
    },
  };
}

function answerFor(outcome: ShareOutcome, galleryChannelId: string): string {
  switch (outcome.kind) {
    case 'shared':
      return `⭐ Shared to <#${galleryChannelId}>: ${outcome.link}`;
    case 'already':
      return outcome.link ? `⭐ This result is already in the gallery: ${outcome.link}` : '⭐ This result is being shared to the gallery right now.';
    case 'nothing':
      return '❌ The image check flagged every image of this result: flagged images are never shared.';
    case 'private':
      return '❌ Private results are never shared.';
  }
}

/** Discord refusing the post (channel gone, no permission) is for the moderators to fix; anything else may pass. */
function failureText(error: unknown, galleryChannelId: string): string {
  if (error instanceof DiscordAPIError && [10003, 50001, 50013].includes(Number(error.code)))
    return `The bot cannot post in the gallery channel <#${galleryChannelId}> (deleted, or missing permissions). Tell a moderator. Nothing was shared.`;
  return 'The result could not be shared to the gallery right now. Try again in a minute.';
}
