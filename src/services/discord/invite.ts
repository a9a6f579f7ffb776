import { PermissionFlagsBits } from 'discord.js';

/**
 * The channel permissions the bot asks for when it is invited, in one place: the invite URL it logs and the one in
 * README (a test compares them) come from here.
 *
 * Replies to slash commands and buttons go through the interaction's webhook and need none of these. They are for
 * what the bot posts as itself: results that outlive the 15-minute interaction token and notices in a server's log
 * channel (Send Messages; in a thread, Send Messages in Threads), with the result's embed and images (Embed Links,
 * Attach Files), in channels it must be able to see (View Channel). Read Message History is for the gallery's
 * starboard: Discord answers a bot's read of a message, and of who reacted ⭐ to it, only with that permission; the bot
 * reads only its own results that way. Nothing that moderates members is asked for (Manage Messages and the like).
 */
export const INVITE_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.ReadMessageHistory;

/** Names as Discord's Developer Portal shows them, for README and log lines. */
export const INVITE_PERMISSION_NAMES = [
  'View Channels',
  'Send Messages',
  'Send Messages in Threads',
  'Embed Links',
  'Attach Files',
  'Read Message History',
] as const;

/** The URL that adds the bot (with its slash commands) to a server the person opening it manages. */
export function inviteUrl(applicationId: string): string {
  return `https://discord.com/oauth2/authorize?client_id=${applicationId}&scope=bot%20applications.commands&permissions=${INVITE_PERMISSIONS.toString()}`;
}
