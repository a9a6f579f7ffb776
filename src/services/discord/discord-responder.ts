import { randomBytes } from 'node:crypto';
import { DiscordAPIError, HTTPError, MessageFlags, Routes, type REST } from 'discord.js';
import type {
  APIActionRowComponent,
  APIAllowedMentions,
  APIComponentInMessageActionRow,
  APIEmbed,
  RESTAPIAttachment,
  RESTPatchAPIWebhookWithTokenMessageJSONBody,
  RESTPostAPICurrentUserCreateDMChannelJSONBody,
  RESTPostAPIChannelMessageJSONBody,
  RESTPostAPIInteractionFollowupJSONBody,
  Snowflake,
} from 'discord-api-types/v10';
import type { Logger } from '../../logger.js';
import { CONTENT_TYPES, detectImageFormat } from '../segmind/image-format.js';

export interface OutgoingMessage {
  content: string;
  embeds?: APIEmbed[];
  files?: Array<{ name: string; data: Buffer }>;
  components?: Array<APIActionRowComponent<APIComponentInMessageActionRow>>;
}

/** Where a request's answer goes: its interaction (by token, so a restarted process can answer too). */
export interface InteractionAddress {
  applicationId: string;
  token: string;
  channelId: string;
  userId: string;
}

/**
 * An attachment entry with the id as a snowflake string, as Discord's OpenAPI schema and discord.js have it.
 * discord-api-types also allows a number there (Discord's server coerces one), so its types alone let ours go out as
 * numbers unnoticed (issue 15).
 */
export type SentAttachment = Omit<RESTAPIAttachment, 'id'> & { id: Snowflake };

/** A discord-api-types message body whose attachment ids must be strings (see SentAttachment). */
type WithSentAttachments<T extends { attachments?: RESTAPIAttachment[] | undefined }> = Omit<T, 'attachments'> & {
  attachments?: SentAttachment[] | undefined;
};

/** PATCH /webhooks/{application}/{token}/messages/@original */
export type OriginalEditBody = WithSentAttachments<RESTPatchAPIWebhookWithTokenMessageJSONBody>;
/** POST /channels/{channel}/messages */
export type ChannelMessageBody = WithSentAttachments<RESTPostAPIChannelMessageJSONBody>;
/** POST /webhooks/{application}/{token}: an interaction follow-up. */
export type FollowUpBody = WithSentAttachments<RESTPostAPIInteractionFollowupJSONBody>;

/**
 * The fields every message of ours sets: a body valid as an edit of the original reply and as a channel message
 * alike (checked where each is sent).
 */
interface MessageFields {
  content: string;
  embeds: APIEmbed[];
  components: Array<APIActionRowComponent<APIComponentInMessageActionRow>>;
  attachments: SentAttachment[];
  allowed_mentions: APIAllowedMentions;
}

/** Discord error codes meaning the interaction token can no longer be used. */
const DEAD_TOKEN_CODES = new Set([10015 /* unknown webhook */, 50027 /* invalid webhook token */, 10062 /* unknown interaction */]);

export function isDeadToken(error: unknown): boolean {
  return error instanceof DiscordAPIError && (DEAD_TOKEN_CODES.has(Number(error.code)) || error.status === 401);
}

/** Discord's 50007: the member accepts no direct messages from the bot (closed DMs, or no server in common). */
export function isClosedDirectMessages(error: unknown): boolean {
  return error instanceof DiscordAPIError && Number(error.code) === 50007;
}

/**
 * A message with files, turned into its multipart request body once, up front: from then on that body is the only copy
 * of the files, so the caller can drop its own (the images) before the upload rather than after it.
 */
export class PreparedMessage {
  private bytes: Buffer | undefined;

  /** @internal built by DiscordResponder.prepare */
  constructor(
    /** The message without its files. */
    readonly message: Omit<OutgoingMessage, 'files'>,
    readonly fileNames: readonly string[],
    private readonly boundary: string,
    /** The files' parts, then the payload_json part of an edit of the original reply. */
    body: Buffer,
    private readonly filesEnd: number,
  ) {
    this.bytes = body;
  }

  get contentType(): string {
    return `multipart/form-data; boundary=${this.boundary}`;
  }

  /** The request body of an edit of the original reply. */
  get body(): Buffer {
    if (!this.bytes) throw new Error('this prepared message was released');
    return this.bytes;
  }

  /** Size of the body, 0 once released. */
  get byteLength(): number {
    return this.bytes?.length ?? 0;
  }

  /** The same files under another payload_json (a channel post): a new body, the files copied once more. */
  withPayload(json: ChannelMessageBody): Buffer {
    const payload = payloadPart(this.boundary, json);
    return Buffer.concat([this.body.subarray(0, this.filesEnd), payload], this.filesEnd + payload.length);
  }

  /** Lets go of the body (and so of the images): the message cannot be sent after this. */
  release(): void {
    this.bytes = undefined;
  }
}

/**
 * Talks to Discord over REST only. discord.js already retries 5xx and waits out 429s; what is left to decide here is
 * what to do when the token is dead.
 *
 * Messages with files are sent as a multipart body built here as one buffer, not as discord.js `files`: handed
 * `files`, @discordjs/rest copies each file into a Blob, and undici streams that Blob into the socket through a
 * FormData encoder that copies every chunk once more, about three transient copies of every image in native memory
 * the allocator then keeps. Built here, each image is copied once, into an exact-size body that discord.js passes to
 * undici untouched (`passThroughBody`) and undici writes as it is. The wire format is discord.js's: the files as
 * `files[n]`, then `payload_json`.
 */
export class DiscordResponder {
  constructor(
    /** Interaction webhooks (not under Discord's global limit) and channel routes (under it). */
    private readonly rest: { webhooks: REST; channels: REST },
    private readonly log: Logger,
  ) {}

  /** Builds the body of an edit of the original reply with `message`'s files (see PreparedMessage). */
  prepare(message: OutgoingMessage): PreparedMessage {
    const { files = [], ...rest } = message;
    const names = files.map((file) => file.name);
    const boundary = `----flux-discord-bot-${randomBytes(16).toString('hex')}`;
    const parts: Uint8Array[] = [];
    files.forEach((file, index) => parts.push(...fileParts(boundary, index, file)));
    let filesEnd = 0;
    for (const part of parts) filesEnd += part.length;
    const payload = payloadPart(boundary, editJson(rest, names) satisfies OriginalEditBody);
    // One allocation of the exact size, one copy of each file.
    const body = Buffer.concat([...parts, payload], filesEnd + payload.length);
    return new PreparedMessage(rest, names, boundary, body, filesEnd);
  }

  /** Resolves with the edited message's id, as Discord's answer gives it (undefined if it did not). */
  async editOriginal(to: InteractionAddress, message: OutgoingMessage | PreparedMessage): Promise<string | undefined> {
    const route = Routes.webhookMessage(to.applicationId, to.token, '@original');
    if (message instanceof PreparedMessage)
      return idOf(await withoutBytes(this.rest.webhooks.patch(route, { auth: false, ...multipart(message.body, message.contentType) })));
    if (message.files?.length) return this.editOriginal(to, this.prepare(message));
    const body: OriginalEditBody = editJson(message, []);
    return idOf(await withoutBytes(this.rest.webhooks.patch(route, { auth: false, body })));
  }

  /** What the original reply shows now (after a restart: was the result already posted?). */
  async fetchOriginal(to: InteractionAddress): Promise<{ attachments: number } | undefined> {
    try {
      const message = (await this.rest.webhooks.get(Routes.webhookMessage(to.applicationId, to.token, '@original'), {
        auth: false,
      })) as { attachments?: unknown[] };
      return { attachments: message.attachments?.length ?? 0 };
    } catch (error) {
      this.log.debug({ err: error }, 'could not read the original reply');
      return undefined;
    }
  }

  /**
   * A normal channel message mentioning the member: for results that outlive the 15-minute token. `preface` goes
   * before the message's own content. Resolves with the posted message's id (undefined if Discord's answer had none).
   */
  async postInChannel(to: InteractionAddress, message: OutgoingMessage | PreparedMessage, preface?: string): Promise<string | undefined> {
    const prepared = message instanceof PreparedMessage ? message : message.files?.length ? this.prepare(message) : undefined;
    const base = prepared ? prepared.message : (message as OutgoingMessage);
    const content = [preface, base.content].filter((text) => text !== undefined && text !== '').join('\n');
    const json: ChannelMessageBody = {
      ...editJson(base, prepared?.fileNames ?? []),
      content: `<@${to.userId}> ${content}`.trim(),
      allowed_mentions: { users: [to.userId] },
    };
    const route = Routes.channelMessages(to.channelId);
    if (prepared) return idOf(await withoutBytes(this.rest.channels.post(route, multipart(prepared.withPayload(json), prepared.contentType))));
    return idOf(await withoutBytes(this.rest.channels.post(route, { body: json })));
  }

  /** A message only the member sees, through the interaction webhook: needs the token alive (15 minutes). */
  async followUpPrivately(to: InteractionAddress, content: string): Promise<void> {
    const body: FollowUpBody = { content, flags: MessageFlags.Ephemeral, allowed_mentions: { parse: [] } };
    await withoutBytes(this.rest.webhooks.post(Routes.webhook(to.applicationId, to.token), { auth: false, body }));
  }

  /**
   * Replaces the public "thinking…" reply with an answer only the member sees (a request that ended with no image,
   * a refusal): the reply deleted, then an ephemeral follow-up. Deleting first matters: Discord turns the first
   * follow-up after a deferral into the deferred message itself, public. If the delete fails while the token lives,
   * the text is written into the public reply instead (never silence). Rejects when the token is dead (`isDeadToken`).
   */
  async answerPrivately(to: InteractionAddress, content: string): Promise<'private' | 'public'> {
    try {
      await withoutBytes(this.rest.webhooks.delete(Routes.webhookMessage(to.applicationId, to.token, '@original'), { auth: false }));
    } catch (error) {
      if (isDeadToken(error)) throw error;
      // 10008: already gone (a restart after a delete): nothing public is left, the follow-up is private.
      if (!(error instanceof DiscordAPIError && error.code === 10008)) {
        this.log.warn({ err: error }, 'could not delete the deferred reply; answering in it instead');
        await this.editOriginal(to, { content, embeds: [], components: [] });
        return 'public';
      }
    }
    await this.followUpPrivately(to, content);
    return 'private';
  }

  /**
   * A direct message to the member (no mention needed, nobody else sees it). Rejects when Discord refuses, e.g. the
   * member does not accept direct messages from server members (50007).
   */
  async sendDirectMessage(userId: string, content: string): Promise<void> {
    const channelId = await this.openDirectMessage(userId);
    const body: ChannelMessageBody = { content, allowed_mentions: { parse: [] } };
    await withoutBytes(this.rest.channels.post(Routes.channelMessages(channelId), { body }));
  }

  /**
   * A prepared result (its images) as a direct message, `preface` before its content: a private result whose token
   * died. Without its buttons: they work in servers only. Resolves with the message's id; rejects as
   * `sendDirectMessage` does (50007: the member takes no direct messages, see `isClosedDirectMessages`).
   */
  async sendDirectMessageWith(userId: string, message: PreparedMessage, preface: string): Promise<string | undefined> {
    const channelId = await this.openDirectMessage(userId);
    const content = [preface, message.message.content].filter((text) => text !== '').join('\n');
    const json: ChannelMessageBody = { ...editJson(message.message, message.fileNames), content, components: [] };
    return idOf(await withoutBytes(this.rest.channels.post(Routes.channelMessages(channelId), multipart(message.withPayload(json), message.contentType))));
  }

  private async openDirectMessage(userId: string): Promise<string> {
    const open: RESTPostAPICurrentUserCreateDMChannelJSONBody = { recipient_id: userId };
    const channel = (await this.rest.channels.post(Routes.userChannels(), { body: open })) as { id?: unknown };
    if (typeof channel.id !== 'string') throw new Error('Discord answered the DM channel request without an id');
    return channel.id;
  }

  /** A message in any channel (a server's log channel), mentioning nobody; files as they are named. */
  async postToChannel(channelId: string, message: OutgoingMessage): Promise<void> {
    const route = Routes.channelMessages(channelId);
    if (message.files?.length) {
      const prepared = this.prepare(message);
      try {
        await withoutBytes(this.rest.channels.post(route, multipart(prepared.withPayload(editJson(prepared.message, prepared.fileNames)), prepared.contentType)));
      } finally {
        prepared.release();
      }
      return;
    }
    const body: ChannelMessageBody = editJson(message, []);
    await withoutBytes(this.rest.channels.post(route, { body }));
  }
}

/** The `id` of a message object Discord answered with. */
function idOf(answer: unknown): string | undefined {
  const id = (answer as { id?: unknown } | null | undefined)?.id;
  return typeof id === 'string' ? id : undefined;
}

/** The message's JSON part; `fileNames[n]` is the upload in the part named `files[n]`, hence attachment id `"n"`. */
function editJson(message: Omit<OutgoingMessage, 'files'>, fileNames: readonly string[]): MessageFields {
  return {
    content: message.content,
    embeds: message.embeds ?? [],
    components: message.components ?? [],
    attachments: fileNames.map((filename, index) => ({ id: String(index), filename })),
    allowed_mentions: { parse: [] },
  };
}

function multipart(body: Buffer, contentType: string) {
  return { body, passThroughBody: true, headers: { 'Content-Type': contentType } };
}

function fileParts(boundary: string, index: number, file: { name: string; data: Buffer }): Uint8Array[] {
  const format = detectImageFormat(file.data);
  const head =
    `--${boundary}\r\nContent-Disposition: form-data; name="files[${index}]"; filename="${escapeQuoted(file.name)}"\r\n` +
    `Content-Type: ${format ? CONTENT_TYPES[format] : 'application/octet-stream'}\r\n\r\n`;
  return [Buffer.from(head), file.data, CRLF];
}

function payloadPart(boundary: string, json: OriginalEditBody | ChannelMessageBody): Buffer {
  return Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="payload_json"\r\nContent-Type: application/json\r\n\r\n` +
      `${JSON.stringify(json)}\r\n--${boundary}--\r\n`,
  );
}

const CRLF = Buffer.from('\r\n');

/** As browsers and undici escape a form-data name: no quote or line break can end the header early. */
function escapeQuoted(text: string): string {
  return text.replace(/\n/g, '%0A').replace(/\r/g, '%0D').replace(/"/g, '%22');
}

/**
 * discord.js errors keep the request body (`requestBody.json`, here the multipart buffer with every image): dropped,
 * so that an error which is logged or kept does not hold megabytes of images, nor write them into the log.
 */
async function withoutBytes(request: Promise<unknown>): Promise<unknown> {
  try {
    return await request;
  } catch (error) {
    if ((error instanceof DiscordAPIError || error instanceof HTTPError) && Buffer.isBuffer(error.requestBody.json)) {
      error.requestBody = { files: undefined, json: `(multipart body of ${error.requestBody.json.length} bytes)` };
    }
    throw error;
  }
}
