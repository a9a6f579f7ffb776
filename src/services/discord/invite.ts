import { PermissionFlagsBits } from 'discord.js';

/**
 * The channel permissions the bot asks for when it is invited, in one place: the invite URL it logs and the one in
 * README (a test compares them) come from here.
 *
 * Replies to slash commands and buttons go through the interaction's webhook and need none of these. They are for
 * what the bot posts as itself: results that outlive the 15-minute interaction token and notices in a server's log
 * channel (Send Messages; in a thread, Send Messages in Threads), with the result's embed and images (Embed Links,
 * Attach Files), in channels it must be able to see (View Channel). The bot never reads or replies to other messages,
 * so Read Message History is not asked for, nor anything that moderates members (Manage Messages and the like).
 */
export const INVITE_PERMISSIONS =
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.AttachFiles;

/** Names as Discord's Developer Portal shows them, for README and log lines. */
export const INVITE_PERMISSION_NAMES = ['View Channels', 'Send Messages', 'Send Messages in Threads', 'Embed Links', 'Attach Files'] as const;

/** The URL that adds the bot (with its slash commands) to a server the person opening it manages. */
export function inviteUrl(applicationId: string): string {
  return `https://discord.com/oauth2/authorize?client_id=${applicationId}&scope=bot%20applications.commands&permissions=${INVITE_PERMISSIONS.toString()}`;
}
