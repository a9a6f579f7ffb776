import {
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { memberContextOf } from './member-context.js';
import { UserFacingError } from '../errors.js';
import type { UsagePolicy, UsageView } from '../services/usage/usage-policy.js';
import type { SlashCommand } from './types.js';

export const definition = {
  name: 'credits',
  description: 'How many images you can still generate today',
  contexts: [InteractionContextType.Guild],
  integration_types: [ApplicationIntegrationType.GuildInstall],
} as const satisfies RESTPostAPIChatInputApplicationCommandsJSONBody;

const relative = (ms: number) => `<t:${Math.ceil(ms / 1000)}:R>`;

export function describeUsage(view: UsageView): string {
  const lines = [
    '**Your image credits in this server**',
    `Today: **${view.remainingToday}** of ${view.allowance} left — resets ${relative(view.resetsAt)}`,
    `Bonus: **${view.bonus}** (granted by moderators, never expire)`,
    `Cooldown: ${view.cooldownUntil === undefined ? 'none, you can generate now' : `ends ${relative(view.cooldownUntil)}`}`,
  ];
  if (view.guildCap > 0) lines.push(`Server budget today: ${view.guildUsedToday} of ${view.guildCap} images used`);
  lines.push('One credit = one image (`samples: 4` costs 4). Failed images are refunded.');
  return lines.join('\n');
}

export function createCreditsCommand({ policy }: { policy: UsagePolicy }): SlashCommand {
  return {
    definition,
    async execute(interaction) {
      if (!interaction.inGuild()) throw new UserFacingError('`/credits` works in servers only.');
      const view = await policy.usageView(memberContextOf(interaction));
      await interaction.reply({ content: describeUsage(view), flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
    },
  };
}
