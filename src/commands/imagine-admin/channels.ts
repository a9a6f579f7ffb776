/** `/imagine-admin channels add|remove|list|clear`: the channels where /imagine works. */
import { ApplicationCommandOptionType, ChannelType } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { channel, fitList, moreOf } from './format.js';
import { handler, type AdminDeps, type AdminHandler, type AdminTools, type Autocompleter, type PathOf } from './handler.js';
import { group, none, requireChannelType, resolveStored, snowflake, storedChoices, storedId, storedIdOption, subcommand } from './options.js';

const MAX_ALLOWED_CHANNELS = 50;

/**
 * Channels `/imagine` can be used in: voice channels have a text chat; forum and media channels hold posts (threads),
 * where the policy checks the post's parent against the list.
 */
const IMAGINE_CHANNEL_TYPES = [
  ChannelType.GuildText,
  ChannelType.GuildAnnouncement,
  ChannelType.GuildVoice,
  ChannelType.GuildForum,
  ChannelType.GuildMedia,
] as const;

export const channelsGroup = group('channels', 'Channels where /imagine works (none listed = everywhere)', [
  subcommand('add', 'Allow /imagine in a channel', [
    { type: ApplicationCommandOptionType.Channel, name: 'channel', description: 'The channel', channel_types: [...IMAGINE_CHANNEL_TYPES], required: true },
  ]),
  // A string with suggestions from the list, not a channel option: a deleted channel can still be picked and removed.
  subcommand('remove', 'Remove a channel from the list', [storedIdOption('channel', 'A listed channel (deleted ones too)')]),
  subcommand('list', 'Show the allowed channels'),
  subcommand('clear', 'Allow /imagine everywhere again'),
]);

/** `channels remove`: the listed channels, by name while they exist, by id once deleted. */
export const channelsAutocomplete: Partial<Record<PathOf<typeof channelsGroup>, Autocompleter>> = {
  'channels/remove': ({ interaction, settings, typed }) =>
    storedChoices(settings.allowedChannels, (id) => interaction.guild?.channels.cache.get(id)?.name, '#', typed),
};

export function channelsHandlers(_deps: AdminDeps, { change }: AdminTools): Record<PathOf<typeof channelsGroup>, AdminHandler> {
  return {
    'channels/add': handler(z.object({ channel: snowflake }), async (context, { channel: id }) => {
      requireChannelType(context.options, 'channel', IMAGINE_CHANNEL_TYPES);
      const details = await change(context, 'allowedChannel', (settings) => {
        if (settings.allowedChannels.includes(id)) throw new UserFacingError((t) => t('admin:channels.alreadyAllowed', { channel: channel(id) }));
        if (settings.allowedChannels.length >= MAX_ALLOWED_CHANNELS)
          throw new UserFacingError((t) => t('admin:channels.tooMany', { n: String(MAX_ALLOWED_CHANNELS) }));
        settings.allowedChannels = [...settings.allowedChannels, id];
        const count = settings.allowedChannels.length;
        return (t) => t('admin:channels.addedDetails', { channel: channel(id), count });
      });
      return context.t('admin:channels.added', { details: details(context.t) });
    }),

    'channels/remove': handler(z.object({ channel: storedId }), async (context, { channel: typed }) => {
      const id = resolveStored(typed, context.settings.allowedChannels, (c) => context.interaction.guild?.channels.cache.get(c)?.name, 'channel');
      let left = 0;
      await change(context, 'removedChannel', (settings) => {
        if (!settings.allowedChannels.includes(id)) throw new UserFacingError((t) => t('admin:channels.notListed', { channel: channel(id) }));
        settings.allowedChannels = settings.allowedChannels.filter((c) => c !== id);
        left = settings.allowedChannels.length;
        return () => channel(id);
      });
      return context.t(left === 0 ? 'admin:channels.removedLast' : 'admin:channels.removed', { channel: channel(id) });
    }),

    'channels/list': handler(none, ({ t, settings }) =>
      Promise.resolve(
        settings.allowedChannels.length === 0
          ? t('admin:channels.everywhere')
          : t('admin:channels.only', { list: fitList(settings.allowedChannels.map(channel), ', ', 1900, moreOf(t)) }),
      ),
    ),

    'channels/clear': handler(none, async (context) => {
      await change(context, 'clearedChannels', (settings) => {
        if (settings.allowedChannels.length === 0) throw new UserFacingError((t) => t('admin:channels.nothingToClear'));
        const count = settings.allowedChannels.length;
        settings.allowedChannels = [];
        return (t) => t('admin:channels.clearedDetails', { count });
      });
      return context.t('admin:channels.cleared');
    }),
  };
}
