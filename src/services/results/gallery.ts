import { Routes, type REST } from 'discord.js';
import type { RESTAPIAttachment, RESTPostAPIChannelMessageJSONBody, Snowflake } from 'discord-api-types/v10';
import type { Clock } from '../../clock.js';
import { translator, type Translator } from '../../i18n/i18n.js';
import { SOURCE_LOCALE, type Locale } from '../../i18n/locales.js';
import type { Logger } from '../../logger.js';
import type { Storage } from '../storage/storage.js';
import { MAX_CONTENT_LENGTH, MAX_UPLOAD_BYTES, escapedPrefix } from './result-message.js';
import type { ResultRecord } from './result-store.js';

const DAY_MS = 86_400_000;
/**
 * How long a share may be under way before its claim lapses: a process that dies between the claim and the post must
 * not keep the result from ever being shared. Longer than the downloads and the post can take together.
 */
const PENDING_MS = 5 * 60_000;
const PENDING = 'pending';
/** One image download from Discord's CDN. */
export const IMAGE_FETCH_TIMEOUT_MS = 15_000;
/** Where Discord serves attachments: the only hosts an image is downloaded from (besides a configured API's own). */
const DISCORD_CDN_HOSTS = new Set(['cdn.discordapp.com', 'media.discordapp.net']);

/** The posted result message, as Discord describes it (a button press's message, or one fetched for a reaction). */
export interface SourceMessage {
  guildId: string;
  channelId: string;
  messageId: string;
  attachments: ReadonlyArray<{ url: string; filename: string; size: number }>;
}

/** Who shared: a member's ⭐ Share, or the starboard once enough members starred it. */
export type SharedBy = { kind: 'member'; userId: string } | { kind: 'stars'; count: number };

export type ShareOutcome =
  | { kind: 'shared'; link: string }
  /** `link` is undefined while another press (or the starboard) is posting it right now. */
  | { kind: 'already'; link: string | undefined }
  /** No unflagged image of the result is on its message: nothing may be shared. */
  | { kind: 'nothing' }
  /** A private result: never shared. */
  | { kind: 'private' };

export class GalleryPostError extends Error {
  override name = 'GalleryPostError';
}

export interface GalleryDeps {
  storage: Storage;
  clock: Clock;
  /** The mark that a result was shared is kept as long as the result's settings (RESULT_RETENTION_DAYS). */
  retentionDays: number;
  /** Posts the gallery message (the bot's channel REST client). */
  rest: Pick<REST, 'post'>;
  /** Origins besides Discord's CDN that attachment URLs may have (a proxy or test double set as DISCORD_API_URL). */
  extraImageOrigins?: readonly string[];
  fetch?: typeof globalThis.fetch;
  fetchTimeoutMs?: number;
  log: Logger;
}

/**
 * The community gallery: posts a result's unflagged images to the server's gallery channel, once per result.
 *
 * Once: the first caller claims the result (on Redis a `SET NX`, which one process only can take; on memory and
 * SQLite, one process by design, a get-then-set under the store's lock), then posts and records the gallery link in
 * the claim. A post that fails releases the claim so the result can be shared later. Flagged (spoilered) images are
 * never shared, nor private results. Images are downloaded from the URLs Discord gave for the result's own
 * attachments (Discord's CDN only), within a time and size limit: the bot keeps no copy of its images.
 */
export class Gallery {
  private readonly fetch: typeof globalThis.fetch;
  private readonly imageOrigins: ReadonlySet<string>;

  constructor(private readonly deps: GalleryDeps) {
    this.fetch = deps.fetch ?? globalThis.fetch;
    this.imageOrigins = new Set(deps.extraImageOrigins ?? []);
  }

  /** The gallery post's link, `pending` while one is being posted, undefined when the result was never shared. */
  async sharedLink(resultId: string): Promise<string | undefined> {
    const { redis } = this.deps.storage;
    const value: unknown = redis ? await redis.sendCommand(['GET', this.redisKey(resultId)]) : await this.deps.storage.kv.get(kvKey(resultId));
    return typeof value === 'string' ? value : undefined;
  }

  /** `locale`: the gallery post's language (the server's: nobody in the gallery channel interacted with it). */
  async share(record: ResultRecord, source: SourceMessage, galleryChannelId: string, by: SharedBy, locale: Locale = SOURCE_LOCALE): Promise<ShareOutcome> {
    if (record.private) return { kind: 'private' };
    const images = shareableImages(record, source.attachments);
    if (images.length === 0) return { kind: 'nothing' };
    if (!(await this.claim(record.id))) {
      const link = await this.sharedLink(record.id);
      return { kind: 'already', link: link === PENDING ? undefined : link };
    }
    const log = this.deps.log.child({ resultId: record.id, galleryChannelId });
    try {
      const files = await this.download(images);
      const original = messageLink(source.guildId, source.channelId, source.messageId);
      const body: Omit<RESTPostAPIChannelMessageJSONBody, 'attachments'> & { attachments: Array<RESTAPIAttachment & { id: Snowflake }> } = {
        content: galleryContent(record, original, by, translator(locale)),
        attachments: files.map((file, index) => ({ id: String(index), filename: file.name })),
        allowed_mentions: { parse: [] },
      };
      const posted = (await this.deps.rest.post(Routes.channelMessages(galleryChannelId), { body, files })) as { id?: unknown };
      if (typeof posted.id !== 'string') throw new GalleryPostError('Discord answered the gallery post without a message id');
      const link = messageLink(source.guildId, galleryChannelId, posted.id);
      await this.record(record.id, link).catch((error: unknown) => log.warn({ err: error }, 'could not record the gallery link; the post stands'));
      log.info({ by: by.kind, images: files.length }, 'result shared to the gallery');
      return { kind: 'shared', link };
    } catch (error) {
      await this.release(record.id).catch((releaseError: unknown) => log.warn({ err: releaseError }, 'could not release the claim of a failed share'));
      throw error;
    }
  }

  private async claim(resultId: string): Promise<boolean> {
    const { redis } = this.deps.storage;
    if (redis) return (await redis.sendCommand(['SET', this.redisKey(resultId), PENDING, 'NX', 'PX', String(PENDING_MS)])) === 'OK';
    const key = kvKey(resultId);
    return this.deps.storage.withLock(key, async () => {
      if ((await this.deps.storage.kv.get(key)) !== undefined) return false;
      await this.deps.storage.kv.set(key, PENDING, PENDING_MS);
      return true;
    });
  }

  private async record(resultId: string, link: string): Promise<void> {
    const ttlMs = this.deps.retentionDays * DAY_MS;
    const { redis } = this.deps.storage;
    if (redis) await redis.sendCommand(['SET', this.redisKey(resultId), link, 'PX', String(ttlMs)]);
    else await this.deps.storage.kv.set(kvKey(resultId), link, ttlMs);
  }

  private async release(resultId: string): Promise<void> {
    const { redis } = this.deps.storage;
    if (redis) await redis.sendCommand(['DEL', this.redisKey(resultId)]);
    else await this.deps.storage.kv.delete(kvKey(resultId));
  }

  /** Downloads the images in order; one that would take the post over Discord's 25 MiB is left out, as in the result. */
  private async download(images: ReadonlyArray<{ url: string; filename: string }>): Promise<Array<{ name: string; data: Buffer }>> {
    const files: Array<{ name: string; data: Buffer }> = [];
    let total = 0;
    const downloaded = await Promise.all(images.map((image) => this.downloadOne(image.url, MAX_UPLOAD_BYTES)));
    downloaded.forEach((data, i) => {
      if (total + data.length > MAX_UPLOAD_BYTES) return;
      total += data.length;
      files.push({ name: images[i]!.filename, data });
    });
    if (files.length === 0) throw new GalleryPostError('no image fits one gallery post');
    return files;
  }

  private async downloadOne(url: string, maxBytes: number): Promise<Buffer> {
    const parsed = new URL(url);
    const fromDiscord = (parsed.protocol === 'https:' && DISCORD_CDN_HOSTS.has(parsed.hostname)) || this.imageOrigins.has(parsed.origin);
    if (!fromDiscord) throw new GalleryPostError(`an attachment URL outside Discord's CDN: ${parsed.origin}`);
    const response = await this.fetch(url, { signal: AbortSignal.timeout(this.deps.fetchTimeoutMs ?? IMAGE_FETCH_TIMEOUT_MS), redirect: 'error' });
    if (!response.ok || !response.body) throw new GalleryPostError(`downloading an image answered ${response.status}`);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of response.body as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > maxBytes) throw new GalleryPostError(`an image is over ${maxBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    return Buffer.concat(chunks, size);
  }

  private redisKey(resultId: string): string {
    return `${this.deps.storage.namespace}:gallery:${resultId}`;
  }
}

function kvKey(resultId: string): string {
  return `gallery:${resultId}`;
}

export function messageLink(guildId: string, channelId: string, messageId: string): string {
  return `https://discord.com/channels/${guildId}/${channelId}/${messageId}`;
}

/**
 * The result's images that may be shared, in message order: each unflagged image of the record whose file is on the
 * message. A `SPOILER_` file is never taken, whatever the record says (a blurred image was flagged).
 */
export function shareableImages(
  record: Pick<ResultRecord, 'images'>,
  attachments: SourceMessage['attachments'],
): Array<{ url: string; filename: string }> {
  const unflagged = record.images.filter((image) => !image.spoiler);
  return attachments
    .filter((file) => !file.filename.startsWith('SPOILER_'))
    .filter((file) => unflagged.some((image) => file.filename.startsWith(`flux-${image.seed}.`)))
    .map((file) => ({ url: file.url, filename: file.filename }));
}

/** `⭐ **prompt** — @author`, the style, the link to the original, and who shared it; the author is never pinged. */
export function galleryContent(
  record: Pick<ResultRecord, 'ownerId' | 'params' | 'style'>,
  originalLink: string,
  by: SharedBy,
  t: Translator = translator(SOURCE_LOCALE),
): string {
  const author = ` — <@${record.ownerId}>`;
  const details = [
    record.style ? t('imagine:gallery.style', { style: record.style.name }) : '',
    t('imagine:gallery.original', { link: originalLink }),
    by.kind === 'member' ? t('imagine:gallery.sharedBy', { user: `<@${by.userId}>` }) : t('imagine:gallery.starredBy', { count: by.count }),
  ]
    .filter((part) => part !== '')
    .join(' · ');
  const budget = MAX_CONTENT_LENGTH - '⭐ ****'.length - author.length - 1 - details.length;
  const prompt = escapedPrefix((record.style?.memberPrompt ?? record.params.prompt).replace(/\s+/g, ' ').trim(), budget);
  return `⭐ **${prompt}**${author}\n${details}`;
}
