import { PermissionFlagsBits, type RepliableInteraction } from 'discord.js';
import type { MemberContext } from '../services/usage/usage-policy.js';

type InteractionChannel = RepliableInteraction['channel'];

/** Reads who is asking and where from the interaction payload itself (no extra API calls before the defer). */
export function memberContextOf(interaction: RepliableInteraction<'cached' | 'raw'>): MemberContext {
  const member = interaction.member;
  const roleIds = Array.isArray(member.roles) ? member.roles : [...member.roles.cache.keys()];
  const channel = interaction.channel;
  return {
    guildId: interaction.guildId,
    userId: interaction.user.id,
    channelId: interaction.channelId ?? '',
    parentChannelId: channel?.isThread() ? channel.parentId : null,
    roleIds,
    canManageGuild: interaction.memberPermissions.has(PermissionFlagsBits.ManageGuild),
    channelNsfw: isAgeRestricted(channel),
  };
}

/**
 * Threads carry no `nsfw` of their own: Discord age-restricts them through their parent channel, which the Guilds
 * intent keeps in discord.js's cache. When the parent (or the thread itself) is not cached, the channel counts as not
 * age-restricted: NSFW prompts are refused and flagged images spoilered rather than a fetch delaying the deferral.
 */
function isAgeRestricted(channel: InteractionChannel): boolean {
  if (channel === null) return false;
  if (channel.isThread()) return channel.parent?.nsfw ?? false;
  return 'nsfw' in channel ? channel.nsfw : false;
}
