import { MessageFlags, Routes, type REST } from 'discord.js';
import { z } from 'zod';
import type { Logger } from '../logger.js';
import { localeFor, type Locale } from '../i18n/locales.js';
import type { Gallery } from '../services/results/gallery.js';
import { parseResultCustomId, parseShareCustomId } from '../services/results/result-components.js';
import type { ResultStore } from '../services/results/result-store.js';
import type { GuildSettingsRepository } from '../services/usage/guild-settings.js';

export const STAR = '⭐';
/** Discord's largest page of a reactions list. */
const REACTIONS_PAGE = 100;

/** MESSAGE_REACTION_ADD as the gateway sends it (the fields the starboard reads). */
const reactionAddSchema = z.object({
  guild_id: z.string().optional(),
  channel_id: z.string(),
  message_id: z.string(),
  user_id: z.string(),
  member: z.object({ user: z.object({ id: z.string(), bot: z.boolean().optional() }) }).optional(),
  emoji: z.object({ id: z.string().nullable(), name: z.string().nullable() }),
  /** The message's author; Discord sends it for messages in servers. */
  message_author_id: z.string().optional(),
});

/** The fetched message: who wrote it, its files, its buttons (they carry the result's id) and its ⭐ count. */
const messageSchema = z.object({
  id: z.string(),
  channel_id: z.string(),
  author: z.object({ id: z.string() }),
  flags: z.number().optional(),
  attachments: z.array(z.object({ url: z.string(), filename: z.string(), size: z.number() })),
  components: z.array(z.unknown()).optional(),
  reactions: z
    .array(z.object({ count: z.number(), emoji: z.object({ id: z.string().nullable(), name: z.string().nullable() }) }))
    .optional(),
});
type FetchedMessage = z.infer<typeof messageSchema>;

const reactionUsersSchema = z.array(z.object({ id: z.string(), bot: z.boolean().optional() }));

export interface StarboardDeps {
  settings: GuildSettingsRepository;
  results: ResultStore;
  gallery: Gallery;
  /** The bot's channel REST client: reads the message and who starred it. */
  rest: Pick<REST, 'get'>;
  /** The bot's user id once connected. */
  botUserId: () => string | undefined;
  isAgeRestricted: (channelId: string) => boolean;
  /** The server's Discord locale (`preferred_locale`) from the bot's cache; undefined when unknown (English then). */
  guildLocale?: (guildId: string) => string | undefined;
  log: Logger;
}

/**
 * The starboard: a public result of the bot that gets `gallery_stars` ⭐ from distinct members (its author's own and
 * bots' not counted) is shared to the gallery, once. Takes the raw MESSAGE_REACTION_ADD (it carries
 * `message_author_id`, which discord.js drops), so a ⭐ on anything but the bot's messages costs no request. Members
 * are counted from Discord's list of who reacted, never from the events: a ⭐ taken back and given again, or an event
 * delivered twice, counts once. One check per message runs at a time; ⭐ arriving meanwhile run it once more after.
 */
export function createStarboard(deps: StarboardDeps): (data: unknown) => Promise<void> {
  const running = new Map<string, { again: boolean }>();

  return async function onReactionAdd(data) {
    const parsed = reactionAddSchema.safeParse(data);
    if (!parsed.success) return;
    const event = parsed.data;
    const botId = deps.botUserId();
    if (event.emoji.name !== STAR || event.emoji.id !== null || event.guild_id === undefined || event.member?.user.bot) return;
    if (botId === undefined || event.user_id === botId || (event.message_author_id !== undefined && event.message_author_id !== botId)) return;
    const guildId = event.guild_id;
    const log = deps.log.child({ guildId, channelId: event.channel_id, messageId: event.message_id, userId: event.user_id });
    try {
      const settings = await deps.settings.get(guildId);
      const galleryChannelId = settings.galleryChannelId;
      if (settings.galleryStars <= 0 || galleryChannelId === null) return log.debug('starboard: off in this server');
      const state = running.get(event.message_id);
      if (state) {
        state.again = true;
        return;
      }
      const mine = { again: false };
      running.set(event.message_id, mine);
      try {
        do {
          mine.again = false;
          // Nobody interacted: the gallery post speaks the server's language.
          const locale = localeFor({ guildLocale: deps.guildLocale?.(guildId), serverLanguage: settings.language }, 'channel');
          const outcome = await check({ guildId, channelId: event.channel_id, messageId: event.message_id, botId, galleryChannelId, stars: settings.galleryStars, locale }, log);
          log.debug({ outcome }, 'starboard: checked a starred message');
        } while (mine.again);
      } finally {
        running.delete(event.message_id);
      }
    } catch (error) {
      log.warn({ err: error }, 'starboard: could not check a starred message');
    }
  };

  /** Shares the message's result if it has enough ⭐; says what it found (for the debug log). */
  async function check(
    at: { guildId: string; channelId: string; messageId: string; botId: string; galleryChannelId: string; stars: number; locale: Locale },
    log: Logger,
  ): Promise<string> {
    const message = messageSchema.parse(await deps.rest.get(Routes.channelMessage(at.channelId, at.messageId)));
    if (message.author.id !== at.botId || ((message.flags ?? 0) & MessageFlags.Ephemeral) !== 0) return 'not a result';
    // Every ⭐, the author's and bots' included: below the threshold, who gave them needs no asking.
    const starCount = message.reactions?.find((r) => r.emoji.name === STAR && r.emoji.id === null)?.count ?? 0;
    if (starCount < at.stars) return 'too few stars';
    const resultId = resultIdOf(message);
    if (resultId === undefined) return 'not a result';
    if ((await deps.gallery.sharedLink(resultId)) !== undefined) return 'already shared';
    const record = await deps.results.get(resultId);
    if (!record) return 'result not kept';
    if (record.private) return 'private';
    if (deps.isAgeRestricted(message.channel_id) && !deps.isAgeRestricted(at.galleryChannelId)) return 'age-restricted';
    const count = await countStars(message, record.ownerId, at.stars);
    if (count < at.stars) return 'too few members';
    const outcome = await deps.gallery.share(
      record,
      { guildId: at.guildId, channelId: message.channel_id, messageId: message.id, attachments: message.attachments },
      at.galleryChannelId,
      { kind: 'stars', count },
      at.locale,
    );
    log.info({ resultId, outcome: outcome.kind, stars: count }, 'starboard: a result reached its stars');
    return outcome.kind;
  }

  /** Distinct members who starred the message, its author and bots left out; stops once `enough` are found. */
  async function countStars(message: FetchedMessage, ownerId: string, enough: number): Promise<number> {
    const route = Routes.channelMessageReaction(message.channel_id, message.id, encodeURIComponent(STAR));
    let count = 0;
    let after: string | undefined;
    for (;;) {
      const query = new URLSearchParams({ limit: String(REACTIONS_PAGE), ...(after === undefined ? {} : { after }) });
      const users = reactionUsersSchema.parse(await deps.rest.get(route, { query }));
      count += users.filter((user) => user.id !== ownerId && user.bot !== true).length;
      if (count >= enough || users.length < REACTIONS_PAGE) return count;
      after = users[users.length - 1]!.id;
    }
  }
}

/** The result id its buttons carry (⭐ Share, or any of the result's controls). */
function resultIdOf(message: FetchedMessage): string | undefined {
  for (const customId of customIds(message.components ?? [])) {
    const id = parseShareCustomId(customId) ?? parseResultCustomId(customId)?.id;
    if (id !== undefined) return id;
  }
  return undefined;
}

function customIds(value: unknown): string[] {
  if (Array.isArray(value)) return value.flatMap(customIds);
  if (typeof value !== 'object' || value === null) return [];
  const { custom_id: own, components, component } = value as { custom_id?: unknown; components?: unknown; component?: unknown };
  return [...(typeof own === 'string' ? [own] : []), ...customIds(components), ...customIds(component)];
}
