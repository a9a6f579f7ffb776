import {
  ApplicationIntegrationType,
  InteractionContextType,
  MessageFlags,
  type RESTPostAPIChatInputApplicationCommandsJSONBody,
} from 'discord.js';
import { memberContextOf } from './member-context.js';
import { UserFacingError } from '../errors.js';
import { plural } from '../plural.js';
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

export function describeUsage(view: UsageView): string {
  const { images, heldByServer } = imagesLeftToday(view);
  const headline =
    images > 0
      ? `You can make **${plural(images, 'more image')}** today${heldByServer ? ": that is what is left of this server's budget" : ''}.`
      : heldByServer
        ? `This server has used its image budget for today: no more images until it resets ${relative(view.resetsAt)}.`
        : `You have no images left today. Your allowance resets ${relative(view.resetsAt)}.`;
  const lines = [
    '**Your image credits in this server**',
    headline,
    `Today's allowance: **${view.remainingToday}** of ${view.allowance} left — resets ${relative(view.resetsAt)}`,
    `Bonus: **${plural(view.bonus, 'credit')}** (granted by moderators, never expire, spent after today's allowance)`,
    `Cooldown: ${view.cooldownUntil === undefined ? 'none, you can generate now' : `ends ${relative(view.cooldownUntil)}`}`,
  ];
  if (view.guildCap > 0) lines.push(`Server budget today: ${view.guildUsedToday} of ${plural(view.guildCap, 'image')} used`);
  lines.push('One credit = one image (`samples: 4` costs 4). Images that fail are not charged.');
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
