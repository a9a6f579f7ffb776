import {
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { memberContextOf } from './member-context.js';
import { memberLanguage } from './member-language.js';
import { UserFacingError } from '../errors.js';
import { translator, type Translator } from '../i18n/i18n.js';
import { SOURCE_LOCALE } from '../i18n/locales.js';
import type { GuildSettingsRepository } from '../services/usage/guild-settings.js';
import type { UsagePolicy, UsageView } from '../services/usage/usage-policy.js';
import type { SlashCommand } from './types.js';

export const definition = {
  name: 'credits',
  description: 'How many images you can still generate today',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

const relative = (ms: number) => `<t:${Math.ceil(ms / 1000)}:R>`;

/** Images the member can still make today: today's allowance plus bonus, held to the server's remaining budget. */
export function imagesLeftToday(view: UsageView): { images: number; heldByServer: boolean } {
  const own = view.remainingToday + view.bonus;
  if (view.guildCap <= 0) return { images: own, heldByServer: false };
  const server = Math.max(0, view.guildCap - view.guildUsedToday);
  return server < own ? { images: server, heldByServer: true } : { images: own, heldByServer: false };
}

export function describeUsage(view: UsageView, t: Translator = translator(SOURCE_LOCALE)): string {
  const { images, heldByServer } = imagesLeftToday(view);
  const resets = relative(view.resetsAt);
  const headline =
    images > 0
      ? t(heldByServer ? 'member:credits.canMakeServerLeft' : 'member:credits.canMake', { count: images })
      : heldByServer
        ? t('member:credits.serverSpent', { resets })
        : t('member:credits.noneLeft', { resets });
  const lines: string[] = [
    t('member:credits.title'),
    headline,
    t('member:credits.allowance', { remaining: view.remainingToday, allowance: view.allowance, resets }),
    t('member:credits.bonus', { count: view.bonus }),
    view.cooldownUntil === undefined ? t('member:credits.cooldownNone') : t('member:credits.cooldownEnds', { until: relative(view.cooldownUntil) }),
  ];
  if (view.guildCap > 0) lines.push(t('member:credits.serverBudget', { used: view.guildUsedToday, count: view.guildCap }));
  lines.push(t('member:credits.cost'));
  return lines.join('\n');
}

export function createCreditsCommand({ policy, settings }: { policy: UsagePolicy; settings: GuildSettingsRepository }): SlashCommand {
  return {
    definition,
    async execute(interaction) {
      if (!interaction.inGuild()) throw new UserFacingError((t) => t('member:credits.serversOnly'));
      // The settings only say which language to answer in: read alongside the usage, whose wait is bounded and whose
      // storage trouble is the refusal that counts; unreadable, they leave the member's own language.
      const language = settings.get(interaction.guildId).then((guild) => guild.language, () => 'auto' as const);
      const view = await policy.usageView(memberContextOf(interaction));
      const t = memberLanguage(interaction, await language);
      await interaction.reply({ content: describeUsage(view, t), flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    },
  };
}
