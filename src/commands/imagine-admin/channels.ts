/** `/imagine-admin channels add|remove|list|clear`: the channels where /imagine works. */
import { ApplicationCommandOptionType, ChannelType } from 'discord.js';
import { z } from 'zod';
import { UserFacingError } from '../../errors.js';
import { channel, fitList, plural } from './format.js';
import { handler, type AdminHandler, type AdminTools, type PathOf } from './handler.js';
import { group, none, requireChannelType, snowflake, subcommand } from './options.js';

const MAX_ALLOWED_CHANNELS = 50;

/** Channels `/imagine` can be used in (voice channels have a text chat). */
const IMAGINE_CHANNEL_TYPES = [ChannelType.GuildText, ChannelType.GuildAnnouncement, ChannelType.GuildVoice] as const;

export const channelsGroup = group('channels', 'Channels where /imagine works (none listed = everywhere)', [
  subcommand('add', 'Allow /imagine in a channel', [
    { type: ApplicationCommandOptionType.Channel, name: 'channel', description: 'The channel', channel_types: [...IMAGINE_CHANNEL_TYPES], required: true },
  ]),
  subcommand('remove', 'Remove a channel from the list', [
    { type: ApplicationCommandOptionType.Channel, name: 'channel', description: 'The channel', required: true },
  ]),
  subcommand('list', 'Show the allowed channels'),
  subcommand('clear', 'Allow /imagine everywhere again'),
]);

export function channelsHandlers({ change }: AdminTools): Record<PathOf<typeof channelsGroup>, AdminHandler> {
  return {
    'channels/add': handler(z.object({ channel: snowflake }), async (context, { channel: id }) => {
      requireChannelType(context.options, 'channel', IMAGINE_CHANNEL_TYPES);
      const details = await change(context, 'allowed a channel', (settings) => {
        if (settings.allowedChannels.includes(id)) throw new UserFacingError(`${channel(id)} is already allowed.`);
        if (settings.allowedChannels.length >= MAX_ALLOWED_CHANNELS)
          throw new UserFacingError(`At most ${MAX_ALLOWED_CHANNELS} channels can be listed.`);
        settings.allowedChannels = [...settings.allowedChannels, id];
        return `${channel(id)} (now ${plural(settings.allowedChannels.length, 'channel')})`;
      });
      return `✅ \`/imagine\` is allowed in ${details}; everywhere else it is refused.`;
    }),

    'channels/remove': handler(z.object({ channel: snowflake }), async (context, { channel: id }) => {
      let left = 0;
      await change(context, 'removed an allowed channel', (settings) => {
        if (!settings.allowedChannels.includes(id)) throw new UserFacingError(`${channel(id)} is not in the list.`);
        settings.allowedChannels = settings.allowedChannels.filter((c) => c !== id);
        left = settings.allowedChannels.length;
        return channel(id);
      });
      return `✅ Removed ${channel(id)}.${left === 0 ? ' No channel is listed any more: `/imagine` works everywhere.' : ''}`;
    }),

    'channels/list': handler(none, ({ settings }) =>
      Promise.resolve(
        settings.allowedChannels.length === 0
          ? '`/imagine` works in every channel (no list set).'
          : `\`/imagine\` works only in: ${fitList(settings.allowedChannels.map(channel), ', ', 1900)}`,
      ),
    ),

    'channels/clear': handler(none, async (context) => {
      await change(context, 'cleared the allowed channels', (settings) => {
        if (settings.allowedChannels.length === 0) throw new UserFacingError('No channel is listed: `/imagine` already works everywhere.');
        const cleared = settings.allowedChannels.length;
        settings.allowedChannels = [];
        return plural(cleared, 'channel');
      });
      return '✅ `/imagine` works in every channel again.';
    }),
  };
}
