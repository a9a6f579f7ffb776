import { PermissionFlagsBits, type RepliableInteraction } from 'discord.js';
import type { MemberContext } from '../services/usage/usage-policy.js';

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
    channelNsfw: channel !== null && 'nsfw' in channel ? channel.nsfw : false,
  };
}
