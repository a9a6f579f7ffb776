/**
 * **Generation info** (right-click a result → Apps): who made it, the prompt, its settings and when, answered
 * privately. Moderators also get **Delete** and **Block owner** buttons, whose presses are checked again (a forged
 * button from anyone else is refused) and recorded in the audit log.
 */
import {
  ApplicationCommandType,
  ApplicationIntegrationType,
  ButtonStyle,
  ComponentType,
  DiscordAPIError,
  InteractionContextType,
  MessageFlags,
  escapeMarkdown,
  type APIActionRowComponent,
  type APIComponentInMessageActionRow,
  type Message,
  type RESTPostAPIContextMenuApplicationCommandsJSONBody,
} from 'discord.js';
import { UserFacingError } from '../errors.js';
import { translator, type Translator } from '../i18n/i18n.js';
import { SOURCE_LOCALE } from '../i18n/locales.js';
import type { ButtonHandler } from './cancel-button.js';
import { blockMember } from './imagine-admin/blocks.js';
import { createAdminTools, type AdminDeps } from './imagine-admin/handler.js';
import { memberContextOf } from './member-context.js';
import { answeringIn, inLanguage, memberLanguage } from './member-language.js';
import type { MessageCommand } from './types.js';
import { parseResultCustomId } from '../services/results/result-components.js';
import type { ResultRecord, ResultStore } from '../services/results/result-store.js';
import { RESULT_DELETED, resultDeletedDetails } from '../services/usage/audit-log.js';

export const definition = {
  type: ApplicationCommandType.Message,
  name: 'Generation info',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
} as const satisfies RESTPostAPIContextMenuApplicationCommandsJSONBody;

export interface GenerationInfoDeps extends AdminDeps {
  results: ResultStore;
  /** Deletes a message in a channel of the server (a result, for a moderator); rejects when Discord refuses. */
  deleteChannelMessage: (channelId: string, messageId: string) => Promise<void>;
}

/** Custom ids of the moderators' buttons: `mod:<action>:<result id>[:<message id>]`. */
export const MODERATOR_PREFIX = 'mod:';

export type ModeratorAction = { action: 'delete'; resultId: string; messageId: string } | { action: 'block'; resultId: string };

export function moderatorCustomId(action: ModeratorAction): string {
  return action.action === 'delete'
    ? `${MODERATOR_PREFIX}delete:${action.resultId}:${action.messageId}`
    : `${MODERATOR_PREFIX}block:${action.resultId}`;
}

/** Reads a moderator button's custom_id back; anything forged or malformed gives undefined. */
export function parseModeratorCustomId(customId: string): ModeratorAction | undefined {
  const remove = /^mod:delete:(\d{1,25}):(\d{17,20})$/.exec(customId);
  if (remove) return { action: 'delete', resultId: remove[1]!, messageId: remove[2]! };
  const block = /^mod:block:(\d{1,25})$/.exec(customId);
  if (block) return { action: 'block', resultId: block[1]! };
  return undefined;
}

const noLongerKept = () => new UserFacingError((t) => t('member:info.noLongerKept'));
const MAX_PROMPT = 1500;

/** The result id in a message's components (every result control carries it), if the message is a result. */
export function resultIdOf(message: Pick<Message, 'components'>): string | undefined {
  const ids: string[] = [];
  const walk = (component: unknown) => {
    const { customId, components } = component as { customId?: unknown; components?: unknown };
    if (typeof customId === 'string') {
      const parsed = parseResultCustomId(customId);
      if (parsed) ids.push(parsed.id);
    }
    if (Array.isArray(components)) components.forEach(walk);
  };
  message.components.forEach(walk);
  return ids[0];
}

export function createGenerationInfoCommand(deps: GenerationInfoDeps): MessageCommand {
  return {
    kind: 'message',
    definition,
    async execute(interaction) {
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('member:info.serversOnly'));
      const target = interaction.targetMessage;
      // Told apart from the message alone, before any storage read: answered at once.
      if (target.author.id !== interaction.client.user.id) throw new UserFacingError((t) => t('member:info.notThisBot'));
      const resultId = resultIdOf(target);
      if (resultId === undefined) throw new UserFacingError((t) => t('member:info.notAResult'));
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const [record, settings] = await Promise.all([deps.results.get(resultId), deps.settings.get(interaction.guildId)]);
      const t = memberLanguage(interaction, settings.language);
      if (!record || record.guildId !== interaction.guildId) throw inLanguage(noLongerKept(), t);
      const moderator = deps.policy.isModerator(memberContextOf(interaction), settings);
      const blocked = moderator && settings.blocked[record.ownerId] !== undefined;
      await interaction.editReply({
        content: describeResult(record, blocked, t),
        components: moderator ? moderatorButtons(record, target.id, interaction.user.id, t) : [],
        allowedMentions: { parse: [] },
      });
    },
  };
}

/** Owner, prompt, settings and time of a result, in one private message (≤ 2000 characters). */
export function describeResult(record: ResultRecord, ownerBlocked = false, t: Translator = translator(SOURCE_LOCALE)): string {
  const { params } = record;
  // Cut after escaping (escapes can double the length), never between a backslash and what it escapes.
  const prompt = escapeMarkdown(params.prompt.replace(/\s+/g, ' ').trim());
  const cut = prompt.length > MAX_PROMPT ? `${prompt.slice(0, MAX_PROMPT - 1).replace(/(?<!\\)\\$/, '')}…` : prompt;
  const at = Math.floor(record.createdAt / 1000);
  const seeds = record.images.map((image) => `\`${image.seed}\``).join(', ');
  const format = params.output_format === 'png' ? 'png' : t('member:info.formatQuality', { format: params.output_format, quality: params.output_quality });
  return [
    t('member:info.title'),
    t('member:info.madeBy', { ownerId: record.ownerId, channelId: record.channelId, at }),
    `> ${cut}`,
    t('member:info.seeds', { count: record.images.length, seeds }),
    t('member:info.settings', { steps: params.steps, guidance: params.guidance, aspectRatio: params.aspect_ratio, format }),
    ...(ownerBlocked ? [t('member:info.ownerBlocked', { ownerId: record.ownerId })] : []),
  ].join('\n');
}

function moderatorButtons(
  record: ResultRecord,
  messageId: string,
  viewerId: string,
  t: Translator,
): Array<APIActionRowComponent<APIComponentInMessageActionRow>> {
  const button = (customId: string, emoji: string, label: string) => ({
    type: ComponentType.Button as const,
    style: ButtonStyle.Danger as const,
    custom_id: customId,
    label,
    emoji: { name: emoji },
  });
  const buttons = [button(moderatorCustomId({ action: 'delete', resultId: record.id, messageId }), '🗑️', t('member:info.deleteButton'))];
  // A moderator's own result: blocking themselves is refused anyway.
  if (record.ownerId !== viewerId) buttons.push(button(moderatorCustomId({ action: 'block', resultId: record.id }), '⛔', t('member:info.blockButton')));
  return [{ type: ComponentType.ActionRow, components: buttons }];
}

/** The Delete and Block owner buttons under a moderator's Generation info. */
export function createModeratorButtons(deps: GenerationInfoDeps): ButtonHandler {
  const { change } = createAdminTools(deps);
  return {
    prefix: MODERATOR_PREFIX,
    async execute(interaction, log) {
      const parsed = parseModeratorCustomId(interaction.customId);
      if (!parsed || !interaction.isButton()) throw new UserFacingError((t) => t('common:errors.buttonGone'));
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('member:info.buttonsServersOnly'));
      // Acknowledged before storage is read, whatever its load; answered privately.
      await interaction.deferReply({ flags: MessageFlags.Ephemeral });
      const { guildId } = interaction;
      const actorId = interaction.user.id;
      const settings = await deps.settings.get(guildId);
      const t = memberLanguage(interaction, settings.language);
      if (!deps.policy.isModerator(memberContextOf(interaction), settings))
        throw inLanguage(new UserFacingError((tt) => tt('member:info.onlyModerators'), 'not_moderator'), t);
      const record = await deps.results.get(parsed.resultId);
      if (!record || record.guildId !== guildId) throw inLanguage(noLongerKept(), t);

      if (parsed.action === 'block') {
        await answeringIn(t, () => blockMember({ change, clock: deps.clock }, { guildId, actorId }, record.ownerId));
        log.info({ resultId: record.id, ownerId: record.ownerId }, 'result owner blocked from Generation info');
        await interaction.editReply({ content: t('member:info.blocked', { ownerId: record.ownerId }), allowedMentions: { parse: [] } });
        return;
      }
      // The result lives in the channel Generation info was used in, where this button is.
      await deps.deleteChannelMessage(interaction.channelId, parsed.messageId).catch((error: unknown) => {
        // Someone already removed it: what the moderator wanted is done.
        if (!(error instanceof DiscordAPIError && error.code === 10008)) throw error;
      });
      await deps.results.delete(record.id);
      await deps.audit.record(guildId, settings.logChannelId, {
        actorId,
        action: RESULT_DELETED,
        details: resultDeletedDetails({ ownerId: record.ownerId, channelId: record.channelId, prompt: record.params.prompt }),
      });
      log.info({ resultId: record.id, ownerId: record.ownerId }, 'result deleted by a moderator');
      await interaction.editReply({ content: t('member:info.deleted', { ownerId: record.ownerId }), allowedMentions: { parse: [] } });
    },
  };
}
