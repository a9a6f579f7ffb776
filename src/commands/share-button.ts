import { DiscordAPIError, MessageFlags } from 'discord.js';
import { UserFacingError, type LocalizedText } from '../errors.js';
import { translator, type Translator } from '../i18n/i18n.js';
import { localeFor } from '../i18n/locales.js';
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

const NOT_ANY_MORE: LocalizedText = (t) => t('common:errors.buttonGone');
const EXPIRED: LocalizedText = (t) => t('imagine:share.expired');
export const NO_GALLERY: LocalizedText = (t) => t('imagine:share.noGallery');
export const AGE_RESTRICTED: LocalizedText = (t) => t('imagine:share.ageRestricted');

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
        throw new UserFacingError((t) => t('imagine:share.notAllowed'));
      const sources = { memberLocale: interaction.locale, guildLocale: interaction.guildLocale, serverLanguage: settings.language };
      const t = translator(localeFor(sources, 'member'));
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
        // The gallery post is a channel post nobody there interacted with: the server's language.
        const galleryLocale = localeFor(sources, 'channel');
        outcome = await deps.gallery.share(record, source, galleryChannelId, { kind: 'member', userId: interaction.user.id }, galleryLocale);
      } catch (error) {
        log.warn({ err: error, resultId, galleryChannelId }, 'could not share a result to the gallery');
        throw new UserFacingError((tr) => failureText(error, galleryChannelId, tr));
      }
      await interaction.editReply({ content: answerFor(outcome, galleryChannelId, t), allowedMentions: { parse: [] } });
    },
  };
}

function answerFor(outcome: ShareOutcome, galleryChannelId: string, t: Translator): string {
  switch (outcome.kind) {
    case 'shared':
      return t('imagine:share.shared', { channel: `<#${galleryChannelId}>`, link: outcome.link });
    case 'already':
      return outcome.link ? t('imagine:share.already', { link: outcome.link }) : t('imagine:share.underWay');
    case 'nothing':
      return t('imagine:share.allFlagged');
    case 'private':
      return t('imagine:share.private');
  }
}

/** Discord refusing the post (channel gone, no permission) is for the moderators to fix; anything else may pass. */
function failureText(error: unknown, galleryChannelId: string, t: Translator): string {
  if (error instanceof DiscordAPIError && [10003, 50001, 50013].includes(Number(error.code)))
    return t('imagine:share.cannotPost', { channel: `<#${galleryChannelId}>` });
  return t('imagine:share.failed');
}
