/**
 * A fake Discord (gateway over WebSocket + REST over node:http) on 127.0.0.1 for end-to-end tests of a real,
 * unpatched discord.js Client. Everything the bot does over REST is recorded; faults and latency can be injected.
 *
 *   const fake = await FakeDiscord.start();
 *   const client = new Client({ intents: [GatewayIntentBits.Guilds], rest: { api: fake.apiUrl, retries: 0, timeout: 5000 } });
 *   await client.login('fake-token');   // any token; then wait for Events.ClientReady
 *   const sent = fake.sendSlashCommand({ name: 'imagine', options: [{ name: 'prompt', type: 3, value: 'a cat' }] });
 *   const edit = await sent.waitForRequest((r) => r.method === 'PATCH');
 *   await client.destroy(); await fake.stop();   // destroy the client first, or it reconnects forever
 *
 * Realism beyond the happy path (see FakeDiscordOptions): a callback later than `callbackDeadlineMs` after the
 * interaction was sent gets 10062; webhook requests with a token older than `tokenLifetimeMs` (counted from
 * `createdAt`, so a test can send an "old" interaction) get 401/50027; a second callback gets 40060; a follow-up
 * before any callback gets 10015; the first follow-up after a deferral replaces the "thinking" message, as Discord does.
 *
 * Message bodies are held to Discord's published schema (today: attachment ids; see `protocolViolations`): a body that
 * breaks it is recorded and answered 400/50035 Invalid Form Body, so an e2e test fails on it as the bot would in use.
 *
 * Reactions (`addReaction`, `removeReaction`) reach only sessions that identified with the GuildMessageReactions intent,
 * and are listed by `GET /channels/{c}/messages/{m}/reactions/{emoji}`; the attachment URLs the fake hands out serve
 * the uploaded bytes.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  ApplicationCommandType,
  ChannelType,
  ComponentType,
  GatewayDispatchEvents,
  GatewayOpcodes,
  InteractionContextType,
  InteractionResponseType,
  InteractionType,
  MessageFlags,
  MessageType,
  PermissionFlagsBits,
  type APIActionRowComponent,
  type APIApplicationCommand,
  type APIApplicationCommandInteractionDataOption,
  type APIAttachment,
  type APIChannel,
  type APIApplicationCommandAutocompleteGuildInteraction,
  type APIChatInputApplicationCommandGuildInteraction,
  type APIMessageApplicationCommandGuildInteraction,
  type APIComponentInMessageActionRow,
  type APIEmbed,
  type APIGuildMember,
  type APIInteractionDataResolved,
  type APIInteractionGuildMember,
  type APIMessage,
  type APIMessageComponentGuildInteraction,
  type APIModalSubmissionComponent,
  type APIModalSubmitGuildInteraction,
  type ApplicationFlags,
  type ChannelFlags,
  type GuildMemberFlags,
  type GuildSystemChannelFlags,
  type RoleFlags,
  type UserFlags,
  type APIRole,
  type APIUser,
  type GatewayGuildCreateDispatchData,
  type GatewayReadyDispatchData,
  type Locale,
  type RESTPostAPIInteractionCallbackWithResponseResult,
} from 'discord-api-types/v10';
import { WebSocketServer, WebSocket, type RawData } from 'ws';

// ---------------------------------------------------------------------------------------------------------------------
// Public types

export interface FakeGuildSpec {
  id?: string;
  name?: string;
  channels?: Array<{ id?: string; name?: string; nsfw?: boolean; type?: number }>;
  roles?: Array<{ id: string; name: string; permissions?: string }>;
  /** The server's Discord language (`preferred_locale`, and `guild_locale` on its interactions); default en-US. */
  locale?: string;
}

export interface FakeDiscordOptions {
  applicationId?: string;
  /** Defaults to the application id (true for every bot created since 2020). */
  botUserId?: string;
  botUsername?: string;
  /** Default: one guild with one text channel. */
  guilds?: FakeGuildSpec[];
  /** HELLO heartbeat interval; default 41250 like Discord, so tests see no heartbeats. */
  heartbeatIntervalMs?: number;
  /**
   * An interaction callback arriving later than this after the interaction was dispatched gets 404/10062, like
   * Discord's 3 s rule. Default 3000. `Infinity` disables it.
   */
  callbackDeadlineMs?: number;
  /**
   * Webhook requests (edits, follow-ups) for an interaction whose `createdAt` is older than this get
   * 401/50027 Invalid Webhook Token. Default 15 minutes. `Infinity` disables it.
   */
  tokenLifetimeMs?: number;
  /** Keep uploaded file bytes in RecordedFile.bytes (default true). A benchmark may set false to save memory. */
  recordFileBytes?: boolean;
  /** `shards` of `GET /gateway/bot`, the count Discord recommends (default 1). Settable later: `recommendedShards`. */
  shards?: number;
  /** `session_start_limit.max_concurrency` of `GET /gateway/bot` (default 1). Settable later: `maxConcurrency`. */
  maxConcurrency?: number;
  /**
   * An IDENTIFY with a shard count below this is closed with 4011 Sharding required, as Discord does once a session
   * would hold too many servers (default 1: never).
   */
  minShardCount?: number;
}

/** One IDENTIFY the fake received: which shard of how many, and when (Date.now()). */
export interface IdentifyRecord {
  shardId: number;
  shardCount: number;
  at: number;
}

export interface RecordedFile {
  field: string;
  name: string;
  contentType: string;
  /** Empty when the fake was started with `recordFileBytes: false`; `size` is always right. */
  bytes: Buffer;
  size: number;
}

export interface RecordedRequest {
  seq: number;
  /** Date.now() when the body had been received. */
  at: number;
  method: string;
  /** Decoded, without the /api/v10 prefix, e.g. '/webhooks/APP/TOKEN/messages/@original'. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string>;
  /** Parsed JSON body, or the payload_json of a multipart body, or undefined. */
  json: unknown;
  files: RecordedFile[];
  /** Status the fake answers with (set when routed; waiters wake after the answer has been written). */
  status: number;
  /** Body the fake answered with (undefined for 204). */
  response: unknown;
  /** Set when the path belongs to an interaction the fake sent (callback or webhook with its token). */
  interactionId?: string;
  /** True when the answer came from failNext. */
  injected: boolean;
}

/** A raw Discord API option object of a chat input interaction (sub-commands nest `options`). */
export interface SlashCommandOption {
  name: string;
  type: number;
  value?: string | number | boolean;
  options?: SlashCommandOption[];
  focused?: boolean;
}

interface InteractionUserSpec {
  userId?: string;
  username?: string;
  roles?: string[];
  /** Member permission bitfield string; default: the @everyone permissions of a normal member. */
  permissions?: string;
  /** The bot's permissions in the channel (`app_permissions`); default: the same normal-member set. */
  appPermissions?: string;
  guildId?: string;
  channelId?: string;
  /** The member's Discord language (`locale`); default en-US. */
  locale?: string;
  /** `guild_locale` of this one interaction, over the server's own (FakeGuildSpec.locale). */
  guildLocale?: string;
  /** Which live gateway session receives it (index in identify order); default: the first ready one. */
  connection?: number;
  /** Default 10 MiB. */
  attachmentSizeLimit?: number;
  /** Epoch ms encoded in the interaction id snowflake; default now. Ages the token (see tokenLifetimeMs). */
  createdAt?: number;
}

export interface SlashCommandSpec extends InteractionUserSpec {
  name: string;
  options?: SlashCommandOption[];
  /** Raw `data.resolved` (for user/channel/role/attachment options). */
  resolved?: APIInteractionDataResolved;
}

export interface ButtonSpec extends InteractionUserSpec {
  customId: string;
  /** Id of the message carrying the button. If the fake knows that message (the bot sent it), it is used as is. */
  messageId?: string;
  /** Fields merged over the generated message object. */
  message?: object;
}

/** A message context-menu command (type 2, `data.type` 3) used on a message: Apps → `name`. */
export interface MessageCommandSpec extends InteractionUserSpec {
  name: string;
  /** The message it was used on. If the fake knows it (the bot sent it), it is sent as is in `resolved.messages`. */
  targetMessageId: string;
  /** Fields merged over the target message (or a generated one by another author, when the fake does not know it). */
  message?: object;
}

/** An APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4): the options typed so far, one of them `focused`. */
export interface AutocompleteSpec extends InteractionUserSpec {
  name: string;
  options: SlashCommandOption[];
}

/** A member's reaction to a message (`addReaction`, `removeReaction`). */
export interface ReactionSpec {
  messageId: string;
  /** Default: the default user. */
  userId?: string;
  username?: string;
  /** The account reacting is a bot. */
  bot?: boolean;
  /** A unicode emoji; default ⭐. */
  emoji?: string;
}

export interface SelectSpec extends ButtonSpec {
  /** The values the member picked (`data.values`). */
  values: string[];
}

export interface ModalSubmitSpec extends InteractionUserSpec {
  customId: string;
  fields: Record<string, string>;
  /** How the text inputs are wrapped: legacy action rows (default) or label components (type 18). */
  layout?: 'actionRow' | 'label';
}

export interface SentInteraction {
  id: string;
  token: string;
  applicationId: string;
  /** The raw INTERACTION_CREATE payload that was dispatched. */
  payload: Record<string, unknown>;
  /** Requests whose path belongs to this interaction: its callback and every webhook request with its token. */
  requests(): RecordedRequest[];
  /** The first POST /interactions/{id}/{token}/callback, whatever its status (check `.status`). */
  callback(): RecordedRequest | undefined;
  /** Resolves with the first callback request (also one already recorded). */
  waitForCallback(timeoutMs?: number): Promise<RecordedRequest>;
  /** PATCH /webhooks/{app}/{token}/messages/@original */
  edits(): RecordedRequest[];
  /** POST /webhooks/{app}/{token} */
  followUps(): RecordedRequest[];
  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest>;
  /** Current state of the original response message (after defer/reply/edits), if any. */
  originalMessage(): APIMessage | undefined;
  /** The choices of an accepted autocomplete result (callback type 8), once the bot has answered. */
  autocompleteChoices(): Array<{ name: string; value: string | number }> | undefined;
}

/**
 * One way a message body the fake received broke Discord's schema (an interaction callback, a webhook execution or
 * edit, a channel message create or edit; JSON or multipart `payload_json`). Discord's own server is more lenient in
 * places (it coerces a number id), but its OpenAPI description and discord.js are not: a body is held to those.
 */
export interface ProtocolViolation {
  /** The request's RecordedRequest.seq. */
  seq: number;
  method: string;
  path: string;
  /** Where in the body, as Discord names it in an Invalid Form Body error: `attachments.0.id`, `data.attachments.1.id`. */
  field: string;
  problem: string;
}

/** A POST to a webhook made with createWebhook() (an operator alert, say). */
export interface WebhookExecution {
  id: string;
  token: string;
  /** Parsed JSON body (or payload_json of a multipart one). */
  body: unknown;
  query: URLSearchParams;
  at: number;
}

export interface FaultResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface RouteMatch {
  method?: string;
  path: RegExp;
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

const DISCORD_EPOCH = 1420070400000n;
let snowflakeCounter = 0;

/** A unique snowflake whose timestamp is `ms` (22 low bits are a process-wide counter). */
export function snowflake(ms: number = Date.now()): string {
  snowflakeCounter = (snowflakeCounter + 1) & 0x3fffff;
  const t = BigInt(Math.max(Math.floor(ms), Number(DISCORD_EPOCH))) - DISCORD_EPOCH;
  return ((t << 22n) | BigInt(snowflakeCounter)).toString();
}

/** Epoch ms encoded in a snowflake. */
export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}

/** A registered command as Discord lists it without `with_localizations=true`: no `*_localizations` at any level. */
function withoutLocalizations<T>(value: T): T {
  if (Array.isArray(value)) return value.map(withoutLocalizations) as T;
  if (!isRecord(value)) return value;
  return Object.fromEntries(
    Object.entries(value)
      .filter(([key]) => key !== 'name_localizations' && key !== 'description_localizations')
      .map(([key, v]) => [key, withoutLocalizations(v)]),
  ) as T;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const DEFAULT_MEMBER_PERMISSIONS = (
  PermissionFlagsBits.CreateInstantInvite |
  PermissionFlagsBits.AddReactions |
  PermissionFlagsBits.Stream |
  PermissionFlagsBits.ViewChannel |
  PermissionFlagsBits.SendMessages |
  PermissionFlagsBits.EmbedLinks |
  PermissionFlagsBits.AttachFiles |
  PermissionFlagsBits.ReadMessageHistory |
  PermissionFlagsBits.MentionEveryone |
  PermissionFlagsBits.UseExternalEmojis |
  PermissionFlagsBits.Connect |
  PermissionFlagsBits.Speak |
  PermissionFlagsBits.UseVAD |
  PermissionFlagsBits.ChangeNickname |
  PermissionFlagsBits.UseApplicationCommands |
  PermissionFlagsBits.CreatePublicThreads |
  PermissionFlagsBits.CreatePrivateThreads |
  PermissionFlagsBits.SendMessagesInThreads |
  PermissionFlagsBits.UseExternalStickers |
  PermissionFlagsBits.UseEmbeddedActivities |
  PermissionFlagsBits.SendVoiceMessages |
  PermissionFlagsBits.SendPolls |
  PermissionFlagsBits.UseExternalApps
).toString();

const MiB = 1024 * 1024;
const LOADING_FLAG = 1 << 7; // MessageFlags.Loading
const EPHEMERAL_FLAG = Number(MessageFlags.Ephemeral);

type Resp = FaultResponse;

function err(status: number, code: number, message: string): Resp {
  return { status, body: { code, message } };
}
const notFound = (): Resp => err(404, 0, '404: Not Found');
const unknownInteraction = (): Resp => err(404, 10062, 'Unknown interaction');
const unknownWebhook = (): Resp => err(404, 10015, 'Unknown Webhook');
const unknownMessage = (): Resp => err(404, 10008, 'Unknown Message');
const unknownChannel = (): Resp => err(404, 10003, 'Unknown Channel');
const invalidBody = (msg = 'Invalid Form Body'): Resp => err(400, 50035, msg);

/**
 * Discord's answer to a body that breaks its schema: every problem nested under its field, in `_errors`. The shape is
 * Discord's; of the codes, NUMBER_TYPE_COERCE is the one Discord gives a bad snowflake, the others are the fake's own.
 */
function invalidFormBody(violations: ReadonlyArray<Pick<ProtocolViolation, 'field' | 'problem'> & { code: string }>): Resp {
  const errors: Record<string, unknown> = {};
  for (const v of violations) {
    let node = errors;
    for (const key of v.field.split('.')) {
      const next = node[key];
      node = isRecord(next) ? next : (node[key] = {});
    }
    const list = Array.isArray(node._errors) ? (node._errors as unknown[]) : (node._errors = []);
    list.push({ code: v.code, message: v.problem });
  }
  return { status: 400, body: { code: 50035, errors, message: 'Invalid Form Body' } };
}

const SNOWFLAKE = /^\d+$/;

function pngSize(bytes: Buffer): { width: number; height: number } | undefined {
  if (bytes.length >= 24 && bytes.readUInt32BE(0) === 0x89504e47 && bytes.toString('latin1', 12, 16) === 'IHDR') {
    return { width: bytes.readUInt32BE(16), height: bytes.readUInt32BE(20) };
  }
  return undefined;
}

function routeMatches(m: RouteMatch, method: string, path: string): boolean {
  if (m.method !== undefined && m.method.toUpperCase() !== method) return false;
  m.path.lastIndex = 0; // tolerate /g regexes
  return m.path.test(path);
}

// ---------------------------------------------------------------------------------------------------------------------
// Internal state

interface GuildState {
  id: string;
  name: string;
  channels: ChannelState[];
  roles: APIRole[];
  locale: string;
}
interface ChannelState {
  id: string;
  guildId: string;
  name: string;
  type: ChannelType;
  nsfw: boolean;
  position: number;
  /** Set for threads (see `addThread`): the channel they belong to. */
  parentId?: string;
}

interface Session {
  id: string;
  order: number;
  /** `[shard_id, num_shards]` from its IDENTIFY; `[0, 1]` for an unsharded client. */
  shard: [number, number];
  /** The gateway intents of its IDENTIFY: which events it is sent. */
  intents: number;
  seq: number;
  socket: Conn | null;
  ready: boolean;
  /** Dispatches produced while the socket was gone; replayed on RESUME. */
  backlog: string[];
}
interface Conn {
  ws: WebSocket;
  session: Session | null;
  serverClosed: boolean;
}

interface InteractionState {
  id: string;
  token: string;
  type: InteractionType;
  guildId: string;
  channelId: string;
  user: APIUser;
  commandName?: string;
  sentAt: number;
  createdAt: number;
  acknowledged: boolean;
  callbackType?: number;
  original?: APIMessage;
  /** Message carrying the component (component interactions, modal submits from a component). */
  sourceMessage?: APIMessage;
  followUps: Map<string, APIMessage>;
  /** The choices of the autocomplete result (callback type 8) accepted for this interaction. */
  autocompleteChoices?: Array<{ name: string; value: string | number }>;
  requests: RecordedRequest[];
  payload: Record<string, unknown>;
}

interface RequestWaiter {
  pred: (r: RecordedRequest) => boolean;
  resolve: (r: RecordedRequest) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}
interface ReadyWaiter {
  n: number;
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
}

interface FaultRule {
  match: RouteMatch;
  response: FaultResponse;
  remaining: number;
}
interface LatencyRule {
  match: RouteMatch;
  ms: number;
}

const DEFAULT_TIMEOUT_MS = 5000;
/** GatewayIntentBits.GuildMessageReactions: MESSAGE_REACTION_ADD / _REMOVE in servers. */
const GUILD_MESSAGE_REACTIONS = 1 << 10;
/** Discord's default and largest `limit` of a reactions list. */
const REACTIONS_DEFAULT_LIMIT = 25;
const REACTIONS_MAX_LIMIT = 100;

// ---------------------------------------------------------------------------------------------------------------------

export class FakeDiscord {
  /** 'http://127.0.0.1:PORT/api', for `rest.api` (discord.js appends /v10). */
  readonly apiUrl: string;
  readonly gatewayUrl: string;
  readonly port: number;
  readonly applicationId: string;
  readonly botUserId: string;
  /** The default guild and its first text channel. */
  readonly guildId: string;
  readonly channelId: string;
  /** A default human user for interactions without `userId`. */
  readonly defaultUserId: string;
  /** Every REST request, in order. */
  readonly requests: RecordedRequest[] = [];
  readonly commandPuts: Array<{ guildId?: string; body: unknown[] }> = [];
  readonly botUser: APIUser;
  /** `shards` of `GET /gateway/bot`. */
  recommendedShards: number;
  /** `session_start_limit.max_concurrency` of `GET /gateway/bot`. */
  maxConcurrency: number;
  /** See FakeDiscordOptions.minShardCount. */
  minShardCount: number;
  /** Every IDENTIFY, in order, accepted or refused. */
  readonly identifies: IdentifyRecord[] = [];

  private readonly server: Server;
  private readonly wss: WebSocketServer;
  private readonly opts: Required<
    Pick<FakeDiscordOptions, 'heartbeatIntervalMs' | 'callbackDeadlineMs' | 'tokenLifetimeMs' | 'recordFileBytes'>
  >;
  private readonly guilds = new Map<string, GuildState>();
  private readonly channels = new Map<string, ChannelState>();
  private readonly conns = new Set<Conn>();
  private readonly sessions: Session[] = [];
  private readonly sessionsById = new Map<string, Session>();
  private sessionOrder = 0;
  private readonly interactionsById = new Map<string, InteractionState>();
  private readonly interactionsByToken = new Map<string, InteractionState>();
  private readonly messages = new Map<string, APIMessage>();
  private readonly commands = new Map<string, APIApplicationCommand[]>();
  private readonly commandIds = new Map<string, string>();
  private readonly requestWaiters = new Set<RequestWaiter>();
  private readonly readyWaiters = new Set<ReadyWaiter>();
  private faults: FaultRule[] = [];
  private latencies: LatencyRule[] = [];
  private seq = 0;
  private stopPromise: Promise<void> | undefined;
  private stopped = false;
  private readonly users = new Map<string, APIUser>();
  /** Incoming webhooks made with createWebhook(), by id. */
  private readonly webhookTokens = new Map<string, { token: string; channelId: string }>();
  private readonly executions: WebhookExecution[] = [];
  /** DM channels opened through `POST /users/@me/channels`: channel id → the member. */
  private readonly dmChannels = new Map<string, string>();
  /** Members who accept no direct messages from the bot (see `closeDirectMessages`). */
  private readonly closedDms = new Set<string>();
  private readonly violations: ProtocolViolation[] = [];
  /** Who reacted to a message with what: message id → emoji → user ids, in the order they reacted. */
  private readonly reactions = new Map<string, Map<string, string[]>>();
  /** The uploaded bytes behind each attachment URL the fake handed out, by attachment id. */
  private readonly attachmentBytes = new Map<string, { bytes: Buffer; contentType: string }>();

  static async start(opts: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const server = createServer();
    const wss = new WebSocketServer({ noServer: true, perMessageDeflate: false });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
    const addr = server.address();
    if (addr === null || typeof addr === 'string') throw new Error('FakeDiscord: no port');
    return new FakeDiscord(opts, server, wss, addr.port);
  }

  private constructor(opts: FakeDiscordOptions, server: Server, wss: WebSocketServer, port: number) {
    this.server = server;
    this.wss = wss;
    this.port = port;
    this.apiUrl = `http://127.0.0.1:${port}/api`;
    this.gatewayUrl = `ws://127.0.0.1:${port}/gateway`;
    this.opts = {
      heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 41_250,
      callbackDeadlineMs: opts.callbackDeadlineMs ?? 3000,
      tokenLifetimeMs: opts.tokenLifetimeMs ?? 15 * 60_000,
      recordFileBytes: opts.recordFileBytes ?? true,
    };
    this.recommendedShards = opts.shards ?? 1;
    this.maxConcurrency = opts.maxConcurrency ?? 1;
    this.minShardCount = opts.minShardCount ?? 1;
    this.applicationId = opts.applicationId ?? snowflake();
    this.botUserId = opts.botUserId ?? this.applicationId;
    this.botUser = {
      id: this.botUserId,
      username: opts.botUsername ?? 'FakeBot',
      discriminator: '0000',
      global_name: null,
      avatar: null,
      bot: true,
      flags: 0 as UserFlags,
      public_flags: 0 as UserFlags,
    };
    this.users.set(this.botUserId, this.botUser);
    this.defaultUserId = snowflake();

    const specs = opts.guilds && opts.guilds.length > 0 ? opts.guilds : [{}];
    for (const spec of specs) this.addGuild(spec);
    const first = [...this.guilds.values()][0];
    if (!first) throw new Error('FakeDiscord: no guild');
    this.guildId = first.id;
    const firstText = first.channels.find((c) => c.type === ChannelType.GuildText) ?? first.channels[0];
    this.channelId = firstText?.id ?? '';

    server.on('request', (req: IncomingMessage, res: ServerResponse) => this.onHttpRequest(req, res));
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));
    server.on('clientError', (_e, socket) => socket.destroy());
    server.on('error', (e) => console.error('[fake-discord] http server error', e));
    wss.on('error', (e) => console.error('[fake-discord] ws server error', e));
  }

  private addGuild(spec: FakeGuildSpec): void {
    const id = spec.id ?? snowflake();
    const everyone = this.makeRole(id, '@everyone', DEFAULT_MEMBER_PERMISSIONS, 0);
    const roles = [everyone, ...(spec.roles ?? []).map((r, i) => this.makeRole(r.id, r.name, r.permissions ?? '0', i + 1))];
    const channelSpecs = spec.channels && spec.channels.length > 0 ? spec.channels : [{}];
    const channels = channelSpecs.map(
      (c, i): ChannelState => ({
        id: c.id ?? snowflake(),
        guildId: id,
        name: c.name ?? (i === 0 ? 'general' : `channel-${i}`),
        type: (c.type ?? ChannelType.GuildText),
        nsfw: c.nsfw ?? false,
        position: i,
      }),
    );
    const guild: GuildState = { id, name: spec.name ?? 'Fake Guild', channels, roles, locale: spec.locale ?? 'en-US' };
    this.guilds.set(id, guild);
    for (const c of channels) this.channels.set(c.id, c);
  }

  private makeRole(id: string, name: string, permissions: string, position: number): APIRole {
    return {
      id,
      name,
      color: 0,
      colors: { primary_color: 0, secondary_color: null, tertiary_color: null },
      hoist: false,
      icon: null,
      unicode_emoji: null,
      position,
      permissions,
      managed: false,
      mentionable: false,
      flags: 0 as RoleFlags,
    };
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Gateway

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => undefined);
    const path = (req.url ?? '').split('?')[0];
    if (this.stopped || path !== '/gateway') {
      socket.destroy();
      return;
    }
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws));
    } catch (e) {
      console.error('[fake-discord] upgrade error', e);
      socket.destroy();
    }
  }

  private onConnection(ws: WebSocket): void {
    const conn: Conn = { ws, session: null, serverClosed: false };
    this.conns.add(conn);
    ws.on('error', (e) => console.error('[fake-discord] gateway socket error', e.message));
    ws.on('message', (data: RawData, isBinary: boolean) => {
      try {
        this.onGatewayMessage(conn, data, isBinary);
      } catch (e) {
        console.error('[fake-discord] gateway handler error', e);
      }
    });
    ws.on('close', (code: number) => this.onGatewayClose(conn, code));
    this.sendOp(conn, { op: GatewayOpcodes.Hello, d: { heartbeat_interval: this.opts.heartbeatIntervalMs } });
  }

  private sendOp(conn: Conn, payload: object): void {
    if (conn.ws.readyState === WebSocket.OPEN) conn.ws.send(JSON.stringify({ s: null, t: null, ...payload }));
  }

  private onGatewayMessage(conn: Conn, data: RawData, isBinary: boolean): void {
    if (isBinary) return; // the fake speaks JSON only
    const text = Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data as ArrayBuffer).toString();
    const msg: unknown = JSON.parse(text);
    if (!isRecord(msg)) return;
    switch (msg.op) {
      case GatewayOpcodes.Heartbeat:
        this.sendOp(conn, { op: GatewayOpcodes.HeartbeatAck });
        return;
      case GatewayOpcodes.Identify:
        this.identify(conn, isRecord(msg.d) ? msg.d.shard : undefined, isRecord(msg.d) && typeof msg.d.intents === 'number' ? msg.d.intents : 0);
        return;
      case GatewayOpcodes.Resume: {
        const d = isRecord(msg.d) ? msg.d : {};
        this.resume(conn, typeof d.session_id === 'string' ? d.session_id : '');
        return;
      }
      default:
        return; // presence updates, guild member requests, ...: ignored
    }
  }

  private identify(conn: Conn, shardField: unknown, intents: number): void {
    if (conn.session) {
      conn.serverClosed = true;
      conn.ws.close(4005, 'Already authenticated');
      return;
    }
    const shard: [number, number] = Array.isArray(shardField) ? [Number(shardField[0]), Number(shardField[1])] : [0, 1];
    const [shardId, shardCount] = shard;
    this.identifies.push({ shardId, shardCount, at: Date.now() });
    if (!Number.isInteger(shardId) || !Number.isInteger(shardCount) || shardCount < 1 || shardId < 0 || shardId >= shardCount) {
      conn.serverClosed = true;
      conn.ws.close(4010, 'Invalid shard');
      return;
    }
    if (shardCount < this.minShardCount) {
      conn.serverClosed = true;
      conn.ws.close(4011, 'Sharding required');
      return;
    }
    const session: Session = {
      id: randomBytes(16).toString('hex'),
      order: this.sessionOrder++,
      shard,
      intents,
      seq: 0,
      socket: conn,
      ready: false,
      backlog: [],
    };
    conn.session = session;
    this.sessions.push(session);
    this.sessionsById.set(session.id, session);
    const ready: GatewayReadyDispatchData = {
      v: 10,
      user: { ...this.botUser, verified: true, mfa_enabled: false, email: null },
      guilds: [...this.guilds.keys()].filter((id) => this.sessionServes(session, id)).map((id) => ({ id, unavailable: true })),
      session_id: session.id,
      resume_gateway_url: this.gatewayUrl,
      shard,
      application: { id: this.applicationId, flags: 0 as ApplicationFlags, flags_new: '0' },
    };
    this.dispatch(session, GatewayDispatchEvents.Ready, ready);
    for (const g of this.guilds.values())
      if (this.sessionServes(session, g.id)) this.dispatch(session, GatewayDispatchEvents.GuildCreate, this.guildCreate(g));
    session.ready = true;
    this.checkReadyWaiters();
  }

  private resume(conn: Conn, sessionId: string): void {
    const session = this.sessionsById.get(sessionId);
    if (!session || conn.session) {
      this.sendOp(conn, { op: GatewayOpcodes.InvalidSession, d: false });
      return;
    }
    if (session.socket && session.socket !== conn) {
      const old = session.socket;
      old.session = null;
      old.serverClosed = true;
      old.ws.close(4000, 'Session resumed elsewhere');
    }
    session.socket = conn;
    conn.session = session;
    const backlog = session.backlog;
    session.backlog = [];
    for (const frame of backlog) conn.ws.send(frame);
    this.dispatch(session, GatewayDispatchEvents.Resumed, {});
    this.checkReadyWaiters();
  }

  private onGatewayClose(conn: Conn, code: number): void {
    this.conns.delete(conn);
    const session = conn.session;
    if (!session) return;
    if (session.socket === conn) session.socket = null;
    // A client closing with 1000/1001 ends its session (discord.js does so on destroy()); others may resume.
    if (!conn.serverClosed && (code === 1000 || code === 1001)) {
      this.sessionsById.delete(session.id);
      const i = this.sessions.indexOf(session);
      if (i >= 0) this.sessions.splice(i, 1);
    }
    this.checkReadyWaiters();
  }

  private dispatch(session: Session, t: string, d: unknown): void {
    session.seq += 1;
    const frame = JSON.stringify({ op: GatewayOpcodes.Dispatch, t, s: session.seq, d });
    const ws = session.socket?.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(frame);
    else session.backlog.push(frame);
  }

  private guildCreate(g: GuildState): GatewayGuildCreateDispatchData {
    const now = new Date().toISOString();
    const botMember = guildMember(this.botUser, now);
    return {
      id: g.id,
      name: g.name,
      icon: null,
      splash: null,
      discovery_splash: null,
      banner: null,
      description: null,
      owner_id: this.defaultUserId,
      afk_channel_id: null,
      afk_timeout: 300,
      widget_enabled: false,
      widget_channel_id: null,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      roles: g.roles,
      emojis: [],
      stickers: [],
      features: [],
      mfa_level: 0,
      application_id: null,
      system_channel_id: g.channels[0]?.id ?? null,
      system_channel_flags: 0 as GuildSystemChannelFlags,
      rules_channel_id: null,
      max_presences: null,
      max_members: 500000,
      vanity_url_code: null,
      premium_tier: 0,
      premium_subscription_count: 0,
      preferred_locale: g.locale as Locale,
      public_updates_channel_id: null,
      max_video_channel_users: 25,
      max_stage_video_channel_users: 50,
      nsfw_level: 0,
      premium_progress_bar_enabled: false,
      safety_alerts_channel_id: null,
      incidents_data: null,
      hub_type: null,
      joined_at: now,
      large: false,
      unavailable: false,
      member_count: 2,
      voice_states: [],
      members: [botMember],
      channels: g.channels.map((c) => this.channelObject(c) as GatewayGuildCreateDispatchData['channels'][number]),
      threads: [],
      presences: [],
      stage_instances: [],
      guild_scheduled_events: [],
      soundboard_sounds: [],
    };
  }

  private channelObject(c: ChannelState): APIChannel {
    return {
      id: c.id,
      type: c.type,
      guild_id: c.guildId,
      name: c.name,
      position: c.position,
      permission_overwrites: [],
      nsfw: c.nsfw,
      topic: null,
      last_message_id: null,
      rate_limit_per_user: 0,
      parent_id: null,
      flags: 0 as ChannelFlags,
      // Forum and media channels hold only threads (posts), and carry their tags and defaults.
      ...(c.type === ChannelType.GuildForum || c.type === ChannelType.GuildMedia
        ? { available_tags: [], default_reaction_emoji: null, default_sort_order: null, default_thread_rate_limit_per_user: 0, default_forum_layout: 0 }
        : {}),
    } as APIChannel;
  }

  /** Gateway sessions that got READY and currently have an open socket. */
  readyConnections(): number {
    let n = 0;
    for (const s of this.sessions) if (s.ready && s.socket && s.socket.ws.readyState === WebSocket.OPEN) n++;
    return n;
  }

  waitForReadyConnections(n: number, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<void> {
    if (this.readyConnections() >= n) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error('FakeDiscord is stopped'));
    return new Promise<void>((resolve, reject) => {
      const w: ReadyWaiter = {
        n,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.readyWaiters.delete(w);
          reject(new Error(`FakeDiscord: ${n} ready connection(s) not reached in ${timeoutMs} ms (have ${this.readyConnections()})`));
        }, timeoutMs),
      };
      this.readyWaiters.add(w);
    });
  }

  private checkReadyWaiters(): void {
    if (this.readyWaiters.size === 0) return;
    const have = this.readyConnections();
    for (const w of this.readyWaiters) {
      if (have >= w.n) {
        clearTimeout(w.timer);
        this.readyWaiters.delete(w);
        w.resolve();
      }
    }
  }

  /** Close every gateway socket with 4000 (resumable); discord.js reconnects and RESUMEs. */
  disconnectAll(code = 4000): void {
    for (const conn of this.conns) {
      conn.serverClosed = true;
      if (conn.session?.socket === conn) conn.session.socket = null;
      conn.ws.close(code, 'FakeDiscord disconnect');
    }
    this.checkReadyWaiters();
  }

  /** Sends a raw dispatch to one live session (default: the first ready one). */
  sendDispatch(t: string, d: unknown, connection?: number): void {
    this.dispatch(this.pickSession(connection), t, d);
  }

  /**
   * Opens a public thread under `parentId` and sends THREAD_CREATE to every live session, as Discord does for the
   * Guilds intent, so discord.js caches it before any interaction sent afterwards (same socket, in order). Like
   * Discord's thread objects it carries no `nsfw` of its own: a thread is age-restricted when its parent is.
   * Interactions sent with its id as `channelId` carry its type and `parent_id`. Returns the thread's id.
   */
  addThread(spec: { parentId: string; id?: string; name?: string }): string {
    const parent = this.channels.get(spec.parentId);
    if (!parent) throw new Error(`FakeDiscord: no channel ${spec.parentId} to open a thread in`);
    const thread: ChannelState = {
      id: spec.id ?? snowflake(),
      guildId: parent.guildId,
      name: spec.name ?? `thread-${this.channels.size}`,
      type: ChannelType.PublicThread,
      nsfw: false,
      position: 0,
      parentId: parent.id,
    };
    this.channels.set(thread.id, thread);
    const payload = {
      id: thread.id,
      type: thread.type,
      guild_id: thread.guildId,
      parent_id: parent.id,
      owner_id: this.defaultUserId,
      name: thread.name,
      last_message_id: null,
      rate_limit_per_user: 0,
      message_count: 0,
      member_count: 1,
      total_message_sent: 0,
      flags: 0,
      newly_created: true,
      thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false },
    };
    for (const s of this.sessionsOf(thread.guildId)) this.dispatch(s, GatewayDispatchEvents.ThreadCreate, payload);
    return thread.id;
  }

  /**
   * Someone deletes a channel (or thread): it is gone from the fake, and CHANNEL_DELETE (THREAD_DELETE for a thread)
   * goes to every live session, so discord.js forgets it as it does on Discord.
   */
  deleteChannel(id: string): void {
    const channel = this.channels.get(id);
    if (!channel) throw new Error(`FakeDiscord: no channel ${id} to delete`);
    this.channels.delete(id);
    const guild = this.guilds.get(channel.guildId);
    if (guild) guild.channels = guild.channels.filter((c) => c.id !== id);
    const thread = channel.parentId !== undefined;
    const payload = thread
      ? { id, guild_id: channel.guildId, parent_id: channel.parentId, type: channel.type }
      : this.channelObject(channel);
    for (const s of this.sessionsOf(channel.guildId)) this.dispatch(s, thread ? GatewayDispatchEvents.ThreadDelete : GatewayDispatchEvents.ChannelDelete, payload);
  }

  /** Someone deletes a role: it is gone from the fake, and GUILD_ROLE_DELETE goes to every live session. */
  deleteRole(guildId: string, roleId: string): void {
    const guild = this.guilds.get(guildId);
    if (!guild?.roles.some((r) => r.id === roleId)) throw new Error(`FakeDiscord: no role ${roleId} in ${guildId}`);
    guild.roles = guild.roles.filter((r) => r.id !== roleId);
    for (const s of this.sessionsOf(guildId)) this.dispatch(s, GatewayDispatchEvents.GuildRoleDelete, { guild_id: guildId, role_id: roleId });
  }

  /** Servers the bot left through `DELETE /users/@me/guilds/{id}`, in order. */
  readonly leftGuilds: string[] = [];

  /**
   * The bot is added to a new server: it is created and GUILD_CREATE goes to every live session, as Discord does when
   * someone invites the bot. Returns the server's id.
   */
  joinGuild(spec: FakeGuildSpec = {}): string {
    const id = spec.id ?? snowflake();
    this.addGuild({ ...spec, id });
    const guild = this.guilds.get(id)!;
    for (const s of this.sessionsOf(id)) this.dispatch(s, GatewayDispatchEvents.GuildCreate, this.guildCreate(guild));
    return id;
  }

  /** The bot leaves a server: it is gone from the fake, and GUILD_DELETE goes to every live session. */
  private leaveGuild(id: string): Resp {
    const guild = this.guilds.get(id);
    if (!guild) return err(404, 10004, 'Unknown Guild');
    this.guilds.delete(id);
    for (const c of guild.channels) this.channels.delete(c.id);
    this.leftGuilds.push(id);
    for (const s of this.sessionsOf(id)) this.dispatch(s, GatewayDispatchEvents.GuildDelete, { id });
    return { status: 204 };
  }

  /**
   * The session a dispatch goes to: session #`index` (identify order) when given; otherwise, for a server's event, the
   * first ready one running that server's shard (every unsharded session runs shard 0 of 1, so: the first ready one).
   */
  private pickSession(index: number | undefined, guildId?: string): Session {
    if (index !== undefined) {
      const s = this.sessions[index];
      if (!s) throw new Error(`FakeDiscord: no gateway session #${index} (have ${this.sessions.length})`);
      return s;
    }
    const serving = guildId === undefined ? this.sessions : this.sessions.filter((x) => this.sessionServes(x, guildId));
    const s = serving.find((x) => x.ready && x.socket) ?? serving[0];
    if (!s && guildId !== undefined && this.sessions.length > 0)
      throw new Error(`FakeDiscord: no gateway session runs the shard of server ${guildId} (shard ${FakeDiscord.shardOf(guildId, this.sessions[0]!.shard[1])})`);
    if (!s) throw new Error('FakeDiscord: no gateway session; wait for the client to be ready first');
    return s;
  }

  /** Discord's rule: a server's events go to shard `(guild_id >> 22) % num_shards`. */
  static shardOf(guildId: string, shardCount: number): number {
    return Number((BigInt(guildId) >> 22n) % BigInt(shardCount));
  }

  private sessionServes(session: Session, guildId: string): boolean {
    return FakeDiscord.shardOf(guildId, session.shard[1]) === session.shard[0];
  }

  /** The ready sessions receiving a server's events. */
  private sessionsOf(guildId: string): Session[] {
    return this.sessions.filter((s) => s.ready && this.sessionServes(s, guildId));
  }

  /**
   * A server id that lands on `shardId` of `shardCount` (for tests that need a server on each shard). Its timestamp
   * part is the shard number plus a multiple of the count, so ids stay distinct.
   */
  static guildIdOnShard(shardId: number, shardCount: number, nth = 0): string {
    const base = BigInt(Date.now()) - DISCORD_EPOCH;
    const aligned = base - (base % BigInt(shardCount)) + BigInt(shardId) + BigInt(nth * shardCount);
    return ((aligned << 22n) | BigInt(Math.floor(Math.random() * 4096))).toString();
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Interactions

  private userFor(spec: InteractionUserSpec): APIUser {
    const id = spec.userId ?? this.defaultUserId;
    const username = spec.username ?? (id === this.defaultUserId ? 'tester' : `user${id.slice(-4)}`);
    const known = this.users.get(id);
    if (known && known.username === username) return known;
    const user: APIUser = {
      id,
      username,
      discriminator: '0',
      global_name: username,
      avatar: null,
      public_flags: 0 as UserFlags,
      flags: 0 as UserFlags,
    };
    this.users.set(id, user);
    return user;
  }

  private baseInteraction(spec: InteractionUserSpec, type: InteractionType) {
    const guildId = spec.guildId ?? this.guildId;
    const guild = this.guilds.get(guildId);
    const channelId = spec.channelId ?? (guild ? (guild.channels[0]?.id ?? this.channelId) : this.channelId);
    const ch = this.channels.get(channelId);
    const guildLocale = (spec.guildLocale ?? guild?.locale ?? 'en-US') as Locale;
    const user = this.userFor(spec);
    const createdAt = spec.createdAt ?? Date.now();
    const id = snowflake(createdAt);
    const token = `aW50ZXJhY3Rpb246${randomBytes(48).toString('base64url')}`;
    const member: APIInteractionGuildMember = {
      ...guildMember(user, new Date(createdAt - 86_400_000).toISOString(), spec.roles ?? []),
      permissions: spec.permissions ?? DEFAULT_MEMBER_PERMISSIONS,
    };
    const channel = {
      id: channelId,
      type: ch?.type ?? ChannelType.GuildText,
      guild_id: guildId,
      name: ch?.name ?? 'unknown',
      nsfw: ch?.nsfw ?? false,
      position: ch?.position ?? 0,
      permission_overwrites: [],
      topic: null,
      last_message_id: null,
      rate_limit_per_user: 0,
      parent_id: ch?.parentId ?? null,
      flags: 0 as ChannelFlags,
    } as APIChatInputApplicationCommandGuildInteraction['channel'];
    const state: InteractionState = {
      id,
      token,
      type,
      guildId,
      channelId,
      user,
      sentAt: Date.now(),
      createdAt,
      acknowledged: false,
      followUps: new Map(),
      requests: [],
      payload: {},
    };
    const base = {
      id,
      application_id: this.applicationId,
      token,
      version: 1 as const,
      guild_id: guildId,
      guild: { id: guildId, locale: guildLocale, features: [] },
      channel_id: channelId,
      channel,
      member,
      app_permissions: spec.appPermissions ?? DEFAULT_MEMBER_PERMISSIONS,
      locale: (spec.locale ?? 'en-US') as Locale,
      guild_locale: guildLocale,
      entitlements: [],
      authorizing_integration_owners: { '0': guildId },
      context: InteractionContextType.Guild,
      attachment_size_limit: spec.attachmentSizeLimit ?? 10 * MiB,
    };
    return { state, base };
  }

  private deliver(state: InteractionState, payload: object, connection: number | undefined): SentInteraction {
    const session = this.pickSession(connection, state.guildId);
    this.interactionsById.set(state.id, state);
    this.interactionsByToken.set(state.token, state);
    state.sentAt = Date.now();
    state.payload = payload as Record<string, unknown>;
    this.dispatch(session, GatewayDispatchEvents.InteractionCreate, payload);
    return this.handle(state);
  }

  private handle(state: InteractionState): SentInteraction {
    const cbPrefix = `/interactions/${state.id}/${state.token}/callback`;
    const hookPrefix = `/webhooks/${this.applicationId}/${state.token}`;
    const original = `${hookPrefix}/messages/@original`;
    const isCallback = (r: RecordedRequest) => r.method === 'POST' && r.path === cbPrefix;
    return {
      id: state.id,
      token: state.token,
      applicationId: this.applicationId,
      payload: state.payload,
      requests: () => state.requests.slice(),
      callback: () => state.requests.find(isCallback),
      waitForCallback: (timeoutMs) =>
        this.waitIn(state.requests, (r) => r.interactionId === state.id && isCallback(r), timeoutMs, `callback of ${state.id}`),
      edits: () => state.requests.filter((r) => r.method === 'PATCH' && r.path === original),
      followUps: () => state.requests.filter((r) => r.method === 'POST' && r.path === hookPrefix),
      waitForRequest: (pred, timeoutMs) =>
        this.waitIn(state.requests, (r) => r.interactionId === state.id && pred(r), timeoutMs, `request of ${state.id}`),
      originalMessage: () => state.original,
      autocompleteChoices: () => state.autocompleteChoices,
    };
  }

  /** Dispatch an INTERACTION_CREATE for a chat input (slash) command. */
  sendSlashCommand(spec: SlashCommandSpec): SentInteraction {
    const { state, base } = this.baseInteraction(spec, InteractionType.ApplicationCommand);
    state.commandName = spec.name;
    const isSlash = (c: APIApplicationCommand) =>
      c.name === spec.name && (c.type ?? ApplicationCommandType.ChatInput) === ApplicationCommandType.ChatInput;
    const registered =
      this.commands.get(state.guildId)?.find(isSlash) ?? this.commands.get('global')?.find(isSlash);
    const data: APIChatInputApplicationCommandGuildInteraction['data'] = {
      id: registered?.id ?? this.commandId('global', ApplicationCommandType.ChatInput, spec.name),
      name: spec.name,
      type: ApplicationCommandType.ChatInput,
      ...(spec.options ? { options: spec.options as APIApplicationCommandInteractionDataOption[] } : {}),
      ...(spec.resolved ? { resolved: spec.resolved } : {}),
      ...(registered?.guild_id ? { guild_id: registered.guild_id } : {}),
    };
    const payload: APIChatInputApplicationCommandGuildInteraction = {
      ...base,
      type: InteractionType.ApplicationCommand,
      data,
    };
    return this.deliver(state, payload, spec.connection);
  }

  /**
   * Dispatch a message context-menu command (type 2 with `data.type` 3, `target_id`, `resolved.messages`), as when a
   * member right-clicks a message → Apps → `name`.
   */
  sendMessageCommand(spec: MessageCommandSpec): SentInteraction {
    const { state, base } = this.baseInteraction(spec, InteractionType.ApplicationCommand);
    state.commandName = spec.name;
    const isMessageCommand = (c: APIApplicationCommand) => c.name === spec.name && c.type === ApplicationCommandType.Message;
    const registered = this.commands.get(state.guildId)?.find(isMessageCommand) ?? this.commands.get('global')?.find(isMessageCommand);
    const known = this.messages.get(spec.targetMessageId);
    const target: APIMessage = {
      ...(known ?? {
        ...this.blankMessage(spec.targetMessageId, state.channelId, MessageType.Default, false),
        author: this.userFor({ userId: snowflake() }),
      }),
      ...(spec.message as Partial<APIMessage> | undefined),
    };
    const payload: APIMessageApplicationCommandGuildInteraction = {
      ...base,
      type: InteractionType.ApplicationCommand,
      data: {
        id: registered?.id ?? this.commandId('global', ApplicationCommandType.Message, spec.name),
        name: spec.name,
        type: ApplicationCommandType.Message,
        target_id: target.id,
        resolved: { messages: { [target.id]: target } },
        ...(registered?.guild_id ? { guild_id: registered.guild_id } : {}),
      },
    };
    return this.deliver(state, payload, spec.connection);
  }

  /**
   * Dispatch an APPLICATION_COMMAND_AUTOCOMPLETE interaction (type 4) for a slash command while the member types: the
   * bot answers with callback type 8, whose choices `autocompleteChoices()` returns.
   */
  sendAutocomplete(spec: AutocompleteSpec): SentInteraction {
    const { state, base } = this.baseInteraction(spec, InteractionType.ApplicationCommandAutocomplete);
    state.commandName = spec.name;
    const isSlash = (c: APIApplicationCommand) =>
      c.name === spec.name && (c.type ?? ApplicationCommandType.ChatInput) === ApplicationCommandType.ChatInput;
    const registered = this.commands.get(state.guildId)?.find(isSlash) ?? this.commands.get('global')?.find(isSlash);
    const payload: APIApplicationCommandAutocompleteGuildInteraction = {
      ...base,
      type: InteractionType.ApplicationCommandAutocomplete,
      data: {
        id: registered?.id ?? this.commandId('global', ApplicationCommandType.ChatInput, spec.name),
        name: spec.name,
        type: ApplicationCommandType.ChatInput,
        options: spec.options as APIApplicationCommandInteractionDataOption[],
        ...(registered?.guild_id ? { guild_id: registered.guild_id } : {}),
      },
    };
    return this.deliver(state, payload, spec.connection);
  }

  /** Dispatch a button click (type 3, component_type 2) on a message carrying that button. */
  sendButton(spec: ButtonSpec): SentInteraction {
    const { state, base } = this.baseInteraction(spec, InteractionType.MessageComponent);
    const message = this.sourceMessageFor(spec, state.channelId);
    state.sourceMessage = message;
    const payload: APIMessageComponentGuildInteraction = {
      ...base,
      type: InteractionType.MessageComponent,
      data: { custom_id: spec.customId, component_type: ComponentType.Button },
      message,
    };
    return this.deliver(state, payload, spec.connection);
  }

  /**
   * Dispatch a string select choice (type 3, component_type 3, `data.values`) on a message carrying that menu. An
   * unknown message gets a generated one with a single select menu of those values.
   */
  sendSelect(spec: SelectSpec): SentInteraction {
    const { state, base } = this.baseInteraction(spec, InteractionType.MessageComponent);
    const known = spec.messageId !== undefined && this.messages.has(spec.messageId);
    const row: APIActionRowComponent<APIComponentInMessageActionRow> = {
      type: ComponentType.ActionRow,
      id: 1,
      components: [
        {
          type: ComponentType.StringSelect,
          id: 2,
          custom_id: spec.customId,
          options: spec.values.map((value) => ({ label: value, value })),
        },
      ],
    };
    const message = this.sourceMessageFor(known || spec.message ? spec : { ...spec, message: { components: [row] } }, state.channelId);
    state.sourceMessage = message;
    const payload: APIMessageComponentGuildInteraction = {
      ...base,
      type: InteractionType.MessageComponent,
      data: { custom_id: spec.customId, component_type: ComponentType.StringSelect, values: spec.values },
      message,
    };
    return this.deliver(state, payload, spec.connection);
  }

  /** Dispatch a modal submit (type 5) with text input values keyed by custom id. */
  sendModalSubmit(spec: ModalSubmitSpec): SentInteraction {
    const { state, base } = this.baseInteraction(spec, InteractionType.ModalSubmit);
    let n = 0;
    const components = Object.entries(spec.fields).map(([customId, value]): APIModalSubmissionComponent => {
      const wrapperId = ++n;
      const input = { type: ComponentType.TextInput as const, id: ++n, custom_id: customId, value };
      return spec.layout === 'label'
        ? ({ type: ComponentType.Label, id: wrapperId, component: input } as unknown as APIModalSubmissionComponent)
        : ({ type: ComponentType.ActionRow, id: wrapperId, components: [input] } as unknown as APIModalSubmissionComponent);
    });
    const payload: APIModalSubmitGuildInteraction = {
      ...base,
      type: InteractionType.ModalSubmit,
      data: { custom_id: spec.customId, components },
    };
    return this.deliver(state, payload, spec.connection);
  }

  private sourceMessageFor(spec: ButtonSpec, channelId: string): APIMessage {
    const known = spec.messageId ? this.messages.get(spec.messageId) : undefined;
    if (known && !spec.message) return known;
    const id = spec.messageId ?? snowflake();
    const row: APIActionRowComponent<APIComponentInMessageActionRow> = {
      type: ComponentType.ActionRow,
      id: 1,
      components: [{ type: ComponentType.Button, id: 2, style: 1, label: 'Button', custom_id: spec.customId }],
    };
    const msg: APIMessage = {
      ...this.blankMessage(id, channelId, MessageType.Default, true),
      components: [row],
      ...(known ?? {}),
      ...(spec.message as Partial<APIMessage> | undefined),
    };
    this.messages.set(id, msg);
    return msg;
  }

  /**
   * Dispatch an already-sent interaction again, to another gateway session (duplicate delivery, as when two bot
   * processes run the same shard). Both copies share one id and token, so only the first callback succeeds.
   */
  redeliver(sent: SentInteraction, connection?: number): void {
    const state = this.interactionsById.get(sent.id);
    if (!state) throw new Error(`FakeDiscord: unknown interaction ${sent.id}`);
    this.dispatch(this.pickSession(connection), GatewayDispatchEvents.InteractionCreate, sent.payload);
  }

  /** Look up an interaction the fake sent (by id). */
  interaction(id: string): SentInteraction | undefined {
    const s = this.interactionsById.get(id);
    return s ? this.handle(s) : undefined;
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Reactions

  /**
   * A member reacts to a message (⭐ unless told): recorded on the message (its `reactions`, and the users list of
   * `GET …/reactions/{emoji}`), and MESSAGE_REACTION_ADD goes to every live session of the server that asked for the
   * GuildMessageReactions intent, as Discord sends it. A reaction the member already has changes nothing and sends
   * nothing (Discord's PUT is idempotent). Returns whether it was added.
   */
  addReaction(spec: ReactionSpec): boolean {
    const { msg, guildId, emoji, user } = this.reactionTarget(spec);
    const byEmoji = this.reactions.get(msg.id) ?? new Map<string, string[]>();
    this.reactions.set(msg.id, byEmoji);
    const users = byEmoji.get(emoji) ?? [];
    if (users.includes(user.id)) return false;
    byEmoji.set(emoji, [...users, user.id]);
    this.refreshReactions(msg);
    const member = guildMember(user, new Date().toISOString());
    this.dispatchReaction(guildId, GatewayDispatchEvents.MessageReactionAdd, {
      user_id: user.id,
      channel_id: msg.channel_id,
      message_id: msg.id,
      guild_id: guildId,
      member,
      emoji: { id: null, name: emoji },
      message_author_id: msg.author.id,
      burst: false,
      burst_colors: [],
      type: 0,
    });
    return true;
  }

  /** A member takes a reaction back: MESSAGE_REACTION_REMOVE (same intent). Returns whether there was one. */
  removeReaction(spec: ReactionSpec): boolean {
    const { msg, guildId, emoji, user } = this.reactionTarget(spec);
    const byEmoji = this.reactions.get(msg.id);
    const users = byEmoji?.get(emoji) ?? [];
    if (!byEmoji || !users.includes(user.id)) return false;
    const left = users.filter((id) => id !== user.id);
    if (left.length > 0) byEmoji.set(emoji, left);
    else byEmoji.delete(emoji);
    this.refreshReactions(msg);
    this.dispatchReaction(guildId, GatewayDispatchEvents.MessageReactionRemove, {
      user_id: user.id,
      channel_id: msg.channel_id,
      message_id: msg.id,
      guild_id: guildId,
      emoji: { id: null, name: emoji },
      burst: false,
      type: 0,
    });
    return true;
  }

  /**
   * A member posts a message in a channel, for reactions to a message that is not the bot's. Nothing is dispatched (a
   * bot without the GuildMessages intent is sent no MESSAGE_CREATE). Returns its id.
   */
  memberMessage(spec: { channelId?: string; userId?: string; content?: string } = {}): string {
    const msg = this.blankMessage(snowflake(), spec.channelId ?? this.channelId, MessageType.Default, false);
    msg.author = this.userFor(spec.userId !== undefined ? { userId: spec.userId } : {});
    msg.content = spec.content ?? 'look at this';
    this.messages.set(msg.id, msg);
    return msg.id;
  }

  /** Who has reacted to a message with `emoji` (default ⭐), in the order they did. */
  reactionUsers(messageId: string, emoji = '⭐'): string[] {
    return [...(this.reactions.get(messageId)?.get(emoji) ?? [])];
  }

  private reactionTarget(spec: ReactionSpec): { msg: APIMessage; guildId: string; emoji: string; user: APIUser } {
    const msg = this.messages.get(spec.messageId);
    if (!msg) throw new Error(`FakeDiscord: no message ${spec.messageId} to react to`);
    const guildId = this.channels.get(msg.channel_id)?.guildId;
    if (!guildId) throw new Error(`FakeDiscord: message ${spec.messageId} is not in a server channel`);
    const user = spec.bot
      ? { ...this.userFor({ ...(spec.userId !== undefined ? { userId: spec.userId } : {}), ...(spec.username !== undefined ? { username: spec.username } : {}) }), bot: true }
      : this.userFor({ ...(spec.userId !== undefined ? { userId: spec.userId } : {}), ...(spec.username !== undefined ? { username: spec.username } : {}) });
    if (spec.bot) this.users.set(user.id, user);
    return { msg, guildId, emoji: spec.emoji ?? '⭐', user };
  }

  /** The message's `reactions` as Discord returns them: one entry per emoji with its count (no burst reactions here). */
  private refreshReactions(msg: APIMessage): void {
    const byEmoji = this.reactions.get(msg.id);
    const entries = [...(byEmoji ?? new Map<string, string[]>())].map(([name, users]) => ({
      count: users.length,
      count_details: { burst: 0, normal: users.length },
      me: users.includes(this.botUserId),
      me_burst: false,
      emoji: { id: null, name },
      burst_colors: [],
    }));
    if (entries.length > 0) msg.reactions = entries;
    else delete msg.reactions;
  }

  private dispatchReaction(guildId: string, t: GatewayDispatchEvents, d: object): void {
    for (const s of this.sessionsOf(guildId)) if ((s.intents & GUILD_MESSAGE_REACTIONS) !== 0) this.dispatch(s, t, d);
  }

  /** `GET /channels/{c}/messages/{m}/reactions/{emoji}?limit&after&type`: users by ascending id, after `after`. */
  private reactionList(rec: RecordedRequest, msg: APIMessage, emoji: string): Resp {
    const limitText = rec.query.get('limit');
    const limit = limitText === null ? REACTIONS_DEFAULT_LIMIT : Number(limitText);
    if (!Number.isInteger(limit) || limit < 1 || limit > REACTIONS_MAX_LIMIT) return invalidBody('limit: must be between 1 and 100');
    const after = rec.query.get('after');
    if (after !== null && !SNOWFLAKE.test(after)) return invalidBody('after: not a snowflake');
    // Only normal reactions exist here: a list of burst (super) reactions is empty.
    if (rec.query.get('type') === '1') return { status: 200, body: [] };
    const ids = (this.reactions.get(msg.id)?.get(emoji) ?? [])
      .map((id) => BigInt(id))
      .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
      .filter((id) => after === null || id > BigInt(after))
      .slice(0, limit);
    return { status: 200, body: ids.map((id) => this.users.get(id.toString()) ?? this.userFor({ userId: id.toString() })) };
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Commands

  private scopeKey(guildId: string | undefined): string {
    return guildId ?? 'global';
  }

  private commandId(scope: string, type: number, name: string): string {
    const key = `${scope}\u0000${type}\u0000${name}`;
    let id = this.commandIds.get(key);
    if (!id) {
      id = snowflake();
      this.commandIds.set(key, id);
    }
    return id;
  }

  private normalizeCommands(body: unknown[], guildId: string | undefined): APIApplicationCommand[] {
    const scope = this.scopeKey(guildId);
    const version = snowflake();
    return body.filter(isRecord).map((cmd) => {
      const type = typeof cmd.type === 'number' ? cmd.type : 1;
      const name = typeof cmd.name === 'string' ? cmd.name : '';
      return {
        type,
        description: '',
        default_member_permissions: null,
        nsfw: false,
        integration_types: [0],
        contexts: null,
        ...(guildId === undefined ? { dm_permission: true } : {}),
        ...cmd,
        id: typeof cmd.id === 'string' ? cmd.id : this.commandId(scope, type, name),
        application_id: this.applicationId,
        version,
        ...(guildId !== undefined ? { guild_id: guildId } : {}),
      } as unknown as APIApplicationCommand;
    });
  }

  registeredCommands(guildId?: string): unknown[] {
    return (this.commands.get(this.scopeKey(guildId)) ?? []).slice();
  }

  setRegisteredCommands(commands: unknown[], guildId?: string): void {
    this.commands.set(this.scopeKey(guildId), this.normalizeCommands(commands, guildId));
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Faults, latency, waiting

  /** The next `times` requests matching get `response` instead (they are still recorded, with `injected: true`). */
  failNext(match: RouteMatch, response: FaultResponse, times = 1): void {
    this.faults.push({ match, response, remaining: times });
  }

  /** Delay answers of matching requests by `ms` (0 removes a rule with the same method and path source). */
  setLatency(match: RouteMatch, ms: number): void {
    this.latencies = this.latencies.filter(
      (l) => !(l.match.method === match.method && l.match.path.source === match.path.source),
    );
    if (ms > 0) this.latencies.push({ match, ms });
  }

  /** Forget recorded requests (e.g. between benchmark phases); interaction and message state is kept. */
  clearRecords(): void {
    this.requests.length = 0;
    for (const s of this.interactionsById.values()) s.requests.length = 0;
  }

  waitForRequest(pred: (r: RecordedRequest) => boolean, timeoutMs?: number): Promise<RecordedRequest> {
    return this.waitIn(this.requests, pred, timeoutMs, 'request');
  }

  private waitIn(
    list: readonly RecordedRequest[],
    pred: (r: RecordedRequest) => boolean,
    timeoutMs = DEFAULT_TIMEOUT_MS,
    what: string,
  ): Promise<RecordedRequest> {
    const found = list.find(pred);
    if (found) return Promise.resolve(found);
    if (this.stopped) return Promise.reject(new Error('FakeDiscord is stopped'));
    return new Promise<RecordedRequest>((resolve, reject) => {
      const w: RequestWaiter = {
        pred,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.requestWaiters.delete(w);
          const last = this.requests
            .slice(-8)
            .map((r) => `  #${r.seq} ${r.method} ${r.path} -> ${r.status}`)
            .join('\n');
          reject(new Error(`FakeDiscord: no matching ${what} within ${timeoutMs} ms. Last requests:\n${last || '  (none)'}`));
        }, timeoutMs),
      };
      this.requestWaiters.add(w);
    });
  }

  private notify(rec: RecordedRequest): void {
    for (const w of this.requestWaiters) {
      let ok = false;
      try {
        ok = w.pred(rec);
      } catch (e) {
        clearTimeout(w.timer);
        this.requestWaiters.delete(w);
        w.reject(e instanceof Error ? e : new Error(String(e)));
        continue;
      }
      if (ok) {
        clearTimeout(w.timer);
        this.requestWaiters.delete(w);
        w.resolve(rec);
      }
    }
  }

  // -------------------------------------------------------------------------------------------------------------------
  // HTTP

  private onHttpRequest(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('error', () => res.destroy());
    res.on('error', () => undefined);
    req.on('end', () => {
      this.handleHttp(req, res, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).catch((e: unknown) => {
        console.error('[fake-discord] internal error', e);
        try {
          this.write(res, { status: 500, body: { code: 0, message: '500: Internal Server Error (fake)' } });
        } catch {
          res.destroy();
        }
      });
    });
  }

  private async handleHttp(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const method = (req.method ?? 'GET').toUpperCase();
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    let path = url.pathname;
    try {
      path = decodeURIComponent(path);
    } catch {
      /* keep it raw */
    }
    if (path.startsWith('/api/v10/')) path = path.slice('/api/v10'.length);
    else if (path.startsWith('/api/')) path = path.slice('/api'.length);

    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) {
      if (v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : v;
    }

    let json: unknown = undefined;
    let files: RecordedFile[] = [];
    let badBody = false;
    const ct = headers['content-type'] ?? '';
    if (body.length > 0) {
      if (ct.startsWith('multipart/form-data')) {
        const parsed = await this.parseMultipart(ct, body);
        json = parsed.json;
        files = parsed.files;
        badBody = parsed.bad;
      } else if (ct.includes('json')) {
        try {
          json = JSON.parse(body.toString('utf8'));
        } catch {
          badBody = true;
        }
      }
    }

    const rec: RecordedRequest = {
      seq: ++this.seq,
      at: Date.now(),
      method,
      path,
      query: url.searchParams,
      headers,
      json,
      files,
      status: 0,
      response: undefined,
      injected: false,
    };
    const segs = path.split('/');
    const it = this.interactionFor(segs);
    if (it) {
      rec.interactionId = it.id;
      it.requests.push(rec);
    }
    this.requests.push(rec);

    let resp: Resp;
    const fault = this.takeFault(method, path);
    const violations = fault || badBody ? [] : this.checkMessageBody(rec, segs, it);
    if (fault) {
      rec.injected = true;
      resp = fault;
    } else if (badBody) {
      resp = err(400, 50109, 'The request body contains invalid JSON.');
    } else if (violations.length > 0) {
      for (const v of violations) this.violations.push({ seq: rec.seq, method, path, field: v.field, problem: v.problem });
      resp = invalidFormBody(violations);
    } else {
      try {
        resp = this.route(rec, segs, it);
      } catch (e) {
        console.error('[fake-discord] route error', method, path, e);
        resp = { status: 500, body: { code: 0, message: '500: Internal Server Error (fake)' } };
      }
    }
    rec.status = resp.status;
    rec.response = resp.body;

    const delay = this.latencyFor(method, path);
    if (delay > 0) await new Promise((r) => setTimeout(r, delay));
    this.write(res, resp);
    // Waiters wake once the answer is on its way; the bot has not processed it yet, so poll for bot-side effects.
    this.notify(rec);
  }

  private async parseMultipart(ct: string, body: Buffer): Promise<{ json: unknown; files: RecordedFile[]; bad: boolean }> {
    const form = await new Request('http://x', { method: 'POST', headers: { 'content-type': ct }, body }).formData();
    let json: unknown = undefined;
    let bad = false;
    const files: RecordedFile[] = [];
    for (const [field, value] of form.entries()) {
      if (typeof value === 'string') {
        if (field === 'payload_json') {
          try {
            json = JSON.parse(value);
          } catch {
            bad = true;
          }
        }
        continue;
      }
      const bytes = Buffer.from(await value.arrayBuffer());
      files.push({
        field,
        name: value.name,
        contentType: value.type,
        bytes: this.opts.recordFileBytes ? bytes : Buffer.alloc(0),
        size: bytes.length,
      });
    }
    return { json, files, bad };
  }

  /**
   * Schema checks of a message body, on the routes that take one. `attachments[].id` is a snowflake string naming
   * either a file part `files[<id>]` of this request or, in an edit, an attachment the message already has.
   */
  private checkMessageBody(
    rec: RecordedRequest,
    segs: string[],
    it: InteractionState | undefined,
  ): Array<{ field: string; problem: string; code: string }> {
    const s = segs.slice(1);
    const m = rec.method;
    const json = isRecord(rec.json) ? rec.json : undefined;
    let body: Record<string, unknown> | undefined;
    let prefix = '';
    let kept: readonly APIAttachment[] = [];
    if (s[0] === 'interactions' && s.length === 4 && s[3] === 'callback' && m === 'POST') {
      body = isRecord(json?.data) ? json.data : undefined;
      prefix = 'data.';
      if (json?.type === InteractionResponseType.UpdateMessage) kept = it?.sourceMessage?.attachments ?? [];
    } else if (s[0] === 'webhooks' && s.length === 3 && m === 'POST') {
      body = json;
    } else if (s[0] === 'webhooks' && s.length === 5 && s[3] === 'messages' && m === 'PATCH') {
      body = json;
      const mid = s[4] ?? '';
      const target = it ? (mid === '@original' ? it.original : (it.followUps.get(mid) ?? this.messages.get(mid))) : this.messages.get(mid);
      kept = target?.attachments ?? [];
    } else if (s[0] === 'channels' && s[2] === 'messages' && ((s.length === 3 && m === 'POST') || (s.length === 4 && m === 'PATCH'))) {
      body = json;
      if (s.length === 4) kept = this.messages.get(s[3] ?? '')?.attachments ?? [];
    }
    if (body === undefined || body.attachments === undefined || body.attachments === null) return [];
    const field = `${prefix}attachments`;
    if (!Array.isArray(body.attachments)) return [{ field, problem: 'Must be an array of attachment objects.', code: 'LIST_TYPE_CONVERT' }];
    const parts = new Set(rec.files.map((f) => f.field));
    const problems: Array<{ field: string; problem: string; code: string }> = [];
    body.attachments.forEach((entry: unknown, index) => {
      const at = `${field}.${index}`;
      if (!isRecord(entry)) return void problems.push({ field: at, problem: 'Must be an attachment object.', code: 'DICT_TYPE_CONVERT' });
      const id = entry.id;
      if (typeof id !== 'string') {
        problems.push({ field: `${at}.id`, problem: `Value ${JSON.stringify(id)} is not a snowflake string.`, code: 'SNOWFLAKE_TYPE_STRING' });
      } else if (!SNOWFLAKE.test(id)) {
        problems.push({ field: `${at}.id`, problem: `Value "${id}" is not snowflake.`, code: 'NUMBER_TYPE_COERCE' });
      } else if (!parts.has(`files[${id}]`) && !kept.some((a) => a.id === id)) {
        problems.push({
          field: `${at}.id`,
          problem: `No file part files[${id}] in this request and no attachment ${id} on the message.`,
          code: 'ATTACHMENT_NOT_FOUND',
        });
      }
    });
    return problems;
  }

  /**
   * Every message body the fake refused for breaking Discord's schema (see `checkMessageBody`), in order. A test of
   * what the bot sends ends by expecting this to be empty.
   */
  protocolViolations(): ProtocolViolation[] {
    return [...this.violations];
  }

  private takeFault(method: string, path: string): Resp | undefined {
    if (this.faults.length === 0) return undefined;
    const i = this.faults.findIndex((f) => f.remaining > 0 && routeMatches(f.match, method, path));
    if (i < 0) return undefined;
    const f = this.faults[i]!;
    f.remaining -= 1;
    if (f.remaining <= 0) this.faults.splice(i, 1);
    const r = f.response;
    let body = r.body;
    const headers = { ...r.headers };
    if (body === undefined && r.status === 429) {
      body = { message: 'You are being rate limited.', retry_after: 0.05, global: false, code: 0 };
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'retry-after')) headers['retry-after'] = '0.05';
    } else if (body === undefined && r.status >= 400) {
      body = { code: 0, message: `${r.status}: injected failure` };
    }
    return { status: r.status, body, headers };
  }

  private latencyFor(method: string, path: string): number {
    if (this.latencies.length === 0) return 0;
    return this.latencies.find((l) => routeMatches(l.match, method, path))?.ms ?? 0;
  }

  private write(res: ServerResponse, resp: Resp): void {
    if (res.headersSent || res.destroyed) return;
    const headers: Record<string, string> = { ...resp.headers };
    let payload: string | Buffer | undefined;
    if (resp.status !== 204 && resp.body !== undefined) {
      payload = Buffer.isBuffer(resp.body) ? resp.body : JSON.stringify(resp.body);
      if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
    }
    res.writeHead(resp.status, headers);
    res.end(payload);
  }

  private interactionFor(segs: string[]): InteractionState | undefined {
    // ['', 'interactions', id, token, 'callback'] or ['', 'webhooks', app, token, ...]
    if (segs[1] === 'interactions' && segs[3] !== undefined) {
      const s = this.interactionsById.get(segs[2] ?? '');
      return s && s.token === segs[3] ? s : undefined;
    }
    if (segs[1] === 'webhooks' && segs[3] !== undefined && segs[2] === this.applicationId) {
      return this.interactionsByToken.get(segs[3]);
    }
    return undefined;
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Routing

  private route(rec: RecordedRequest, segs: string[], it: InteractionState | undefined): Resp {
    const m = rec.method;
    const s = segs.slice(1);
    const n = s.length;
    switch (s[0]) {
      case 'gateway':
        if (m !== 'GET') break;
        if (n === 1) return { status: 200, body: { url: this.gatewayUrl } };
        if (n === 2 && s[1] === 'bot') {
          return {
            status: 200,
            body: {
              url: this.gatewayUrl,
              shards: this.recommendedShards,
              session_start_limit: { total: 1000, remaining: 1000, reset_after: 0, max_concurrency: this.maxConcurrency },
            },
          };
        }
        break;
      case 'users':
        if (m === 'GET' && n === 2 && s[1] === '@me') return { status: 200, body: this.botUser };
        if (m === 'DELETE' && n === 4 && s[1] === '@me' && s[2] === 'guilds' && s[3]) return this.leaveGuild(s[3]);
        if (m === 'POST' && n === 3 && s[1] === '@me' && s[2] === 'channels') return this.openDm(rec);
        if (m === 'GET' && n === 2 && s[1]) {
          const u = this.users.get(s[1]);
          return u ? { status: 200, body: u } : err(404, 10013, 'Unknown User');
        }
        break;
      case 'applications':
        return this.routeApplications(rec, s);
      case 'interactions':
        if (m === 'POST' && n === 4 && s[3] === 'callback') return this.callback(rec, it);
        break;
      case 'webhooks':
        return this.routeWebhooks(rec, s, it);
      case 'channels':
        return this.routeChannels(rec, s);
      case 'guilds':
        return this.routeGuilds(rec, s);
      case 'attachments': {
        // /attachments/{channel}/{attachment}/{filename}: the CDN URL of an attachment the fake handed out.
        const stored = m === 'GET' && n === 4 ? this.attachmentBytes.get(s[2] ?? '') : undefined;
        return stored ? { status: 200, body: stored.bytes, headers: { 'content-type': stored.contentType } } : notFound();
      }
      default:
        break;
    }
    return notFound();
  }

  private routeApplications(rec: RecordedRequest, s: string[]): Resp {
    const m = rec.method;
    if (s[1] === '@me' && s.length === 2 && m === 'GET') {
      return {
        status: 200,
        body: {
          id: this.applicationId,
          name: this.botUser.username,
          icon: null,
          description: '',
          bot_public: true,
          bot_require_code_grant: false,
          verify_key: 'f'.repeat(64),
          flags: 0,
          team: null,
          owner: { ...this.botUser, bot: false, id: this.defaultUserId, username: 'owner' },
          bot: this.botUser,
          summary: '',
          approximate_guild_count: this.guilds.size,
          integration_types_config: { '0': {} },
        },
      };
    }
    if (s[1] !== this.applicationId) return notFound();
    let guildId: string | undefined;
    let rest: string[];
    if (s[2] === 'commands') rest = s.slice(3);
    else if (s[2] === 'guilds' && s[3] && s[4] === 'commands') {
      guildId = s[3];
      rest = s.slice(5);
    } else return notFound();
    const key = this.scopeKey(guildId);
    const list = this.commands.get(key) ?? [];
    if (rest.length === 0) {
      // Like Discord: the localization dictionaries only when asked for (else the client's locale's text alone).
      if (m === 'GET') return { status: 200, body: rec.query.get('with_localizations') === 'true' ? list : list.map(withoutLocalizations) };
      if (m === 'PUT') {
        if (!Array.isArray(rec.json)) return invalidBody();
        const body = rec.json as unknown[];
        this.commandPuts.push({ ...(guildId !== undefined ? { guildId } : {}), body });
        const stored = this.normalizeCommands(body, guildId);
        this.commands.set(key, stored);
        return { status: 200, body: stored };
      }
      if (m === 'POST') {
        if (!isRecord(rec.json)) return invalidBody();
        const [cmd] = this.normalizeCommands([rec.json], guildId);
        if (!cmd) return invalidBody();
        const i = list.findIndex((c) => c.name === cmd.name && c.type === cmd.type);
        const next = list.slice();
        if (i >= 0) next[i] = cmd;
        else next.push(cmd);
        this.commands.set(key, next);
        return { status: i >= 0 ? 200 : 201, body: cmd };
      }
      return notFound();
    }
    if (rest.length === 1) {
      const i = list.findIndex((c) => c.id === rest[0]);
      const found = list[i];
      if (!found) return err(404, 10063, 'Unknown application command');
      if (m === 'GET') return { status: 200, body: found };
      if (m === 'DELETE') {
        this.commands.set(key, list.filter((_c, j) => j !== i));
        return { status: 204 };
      }
      if (m === 'PATCH' && isRecord(rec.json)) {
        const [cmd] = this.normalizeCommands([{ ...found, ...rec.json, id: found.id }], guildId);
        const next = list.slice();
        if (cmd) next[i] = cmd;
        this.commands.set(key, next);
        return { status: 200, body: cmd };
      }
    }
    return notFound();
  }

  private callback(rec: RecordedRequest, it: InteractionState | undefined): Resp {
    if (!it) return unknownInteraction();
    if (it.acknowledged) return err(400, 40060, 'Interaction has already been acknowledged.');
    if (rec.at - it.sentAt > this.opts.callbackDeadlineMs) return unknownInteraction();
    const body = isRecord(rec.json) ? rec.json : undefined;
    const type = body?.type;
    const data = isRecord(body?.data) ? body.data : {};
    if (typeof type !== 'number') return invalidBody();
    const cbType = type as InteractionResponseType;
    const flags = typeof data.flags === 'number' ? data.flags : 0;
    const isComponent = it.type === InteractionType.MessageComponent || (it.type === InteractionType.ModalSubmit && it.sourceMessage);
    // Autocomplete interactions take an autocomplete result only, and only they take one.
    const isAutocomplete = it.type === InteractionType.ApplicationCommandAutocomplete;
    if (isAutocomplete !== (cbType === InteractionResponseType.ApplicationCommandAutocompleteResult))
      return invalidBody('Interaction response type not valid for this interaction');
    let message: APIMessage | undefined;
    switch (cbType) {
      case InteractionResponseType.Pong:
        break;
      case InteractionResponseType.ApplicationCommandAutocompleteResult: {
        const choices = Array.isArray(data.choices) ? data.choices.filter(isRecord) : undefined;
        if (!choices || choices.length > 25) return invalidBody('choices: at most 25');
        it.autocompleteChoices = choices.map((c) => ({ name: String(c.name), value: typeof c.value === 'number' ? c.value : String(c.value) }));
        break;
      }
      case InteractionResponseType.ChannelMessageWithSource:
        message = this.newInteractionMessage(it, rec, data, flags & EPHEMERAL_FLAG);
        it.original = message;
        break;
      case InteractionResponseType.DeferredChannelMessageWithSource:
        message = this.newInteractionMessage(it, rec, {}, (flags & EPHEMERAL_FLAG) | LOADING_FLAG);
        it.original = message;
        break;
      case InteractionResponseType.DeferredMessageUpdate:
        if (!isComponent || !it.sourceMessage) return invalidBody('Interaction response type not valid for this interaction');
        it.original = it.sourceMessage;
        break;
      case InteractionResponseType.UpdateMessage:
        if (!isComponent || !it.sourceMessage) return invalidBody('Interaction response type not valid for this interaction');
        this.applyBody(it.sourceMessage, rec, data, true);
        it.original = it.sourceMessage;
        message = it.sourceMessage;
        break;
      case InteractionResponseType.Modal:
        if (it.type === InteractionType.ModalSubmit) return invalidBody('Cannot respond to a modal submit with a modal');
        break;
      default:
        return invalidBody(`Unsupported interaction response type ${type}`);
    }
    it.acknowledged = true;
    it.callbackType = type;
    if (rec.query.get('with_response') !== 'true') return { status: 204 };
    const result: RESTPostAPIInteractionCallbackWithResponseResult = {
      interaction: {
        id: it.id,
        type: it.type,
        ...(it.original
          ? {
              response_message_id: it.original.id,
              response_message_loading: ((it.original.flags ?? 0) & LOADING_FLAG) !== 0,
              response_message_ephemeral: ((it.original.flags ?? 0) & EPHEMERAL_FLAG) !== 0,
            }
          : {}),
      },
      ...(message || cbType === InteractionResponseType.Modal
        ? { resource: { type, ...(message ? { message } : {}) } }
        : {}),
    };
    return { status: 200, body: result };
  }

  private routeWebhooks(rec: RecordedRequest, s: string[], it: InteractionState | undefined): Resp {
    // webhooks/{app}/{token}[/messages/{id}]
    if (!it) return this.executeWebhook(rec, s);
    if (rec.at - it.createdAt > this.opts.tokenLifetimeMs) return err(401, 50027, 'Invalid Webhook Token');
    const m = rec.method;
    const body = isRecord(rec.json) ? rec.json : {};
    if (s.length === 3) {
      if (m !== 'POST') return notFound();
      if (!it.acknowledged) return unknownWebhook();
      const flags = typeof body.flags === 'number' ? body.flags : 0;
      let msg: APIMessage;
      if (it.original && ((it.original.flags ?? 0) & LOADING_FLAG) !== 0) {
        // The first follow-up after a deferral replaces the "thinking" message.
        msg = it.original;
        this.applyBody(msg, rec, body, false);
      } else {
        msg = this.newInteractionMessage(it, rec, body, flags & EPHEMERAL_FLAG);
        msg.interaction_metadata = { ...msg.interaction_metadata!, original_response_message_id: it.original?.id };
        it.followUps.set(msg.id, msg);
      }
      return rec.query.get('wait') === 'true' ? { status: 200, body: msg } : { status: 204 };
    }
    if (s.length === 5 && s[3] === 'messages') {
      const mid = s[4]!;
      const msg = mid === '@original' ? it.original : (it.followUps.get(mid) ?? (it.original?.id === mid ? it.original : undefined));
      if (!msg) return unknownMessage();
      if (m === 'GET') return { status: 200, body: msg };
      if (m === 'PATCH') {
        this.applyBody(msg, rec, body, true);
        return { status: 200, body: msg };
      }
      if (m === 'DELETE') {
        if (msg === it.original) it.original = undefined;
        it.followUps.delete(msg.id);
        this.messages.delete(msg.id);
        return { status: 204 };
      }
    }
    return notFound();
  }

  /** POST /webhooks/{id}/{token}[?wait=true] to a webhook from createWebhook(): recorded, answered like Discord. */
  private executeWebhook(rec: RecordedRequest, s: string[]): Resp {
    const [, id = '', token = ''] = s;
    const hook = this.webhookTokens.get(id);
    if (hook === undefined) return unknownWebhook();
    if (hook.token !== token) return err(401, 50027, 'Invalid Webhook Token');
    if (s.length !== 3 || rec.method !== 'POST') return notFound();
    const body = isRecord(rec.json) ? rec.json : {};
    if (body.content === undefined && body.embeds === undefined && rec.files.length === 0) return err(400, 50006, 'Cannot send an empty message');
    this.executions.push({ id, token, body: rec.json, query: rec.query, at: rec.at });
    const msg = this.blankMessage(snowflake(), hook.channelId, MessageType.Default, false);
    msg.webhook_id = id;
    this.applyBody(msg, rec, body, false);
    return rec.query.get('wait') === 'true' ? { status: 200, body: msg } : { status: 204 };
  }

  private routeChannels(rec: RecordedRequest, s: string[]): Resp {
    const m = rec.method;
    const ch = this.channels.get(s[1] ?? '');
    if (!ch) return unknownChannel();
    const body = isRecord(rec.json) ? rec.json : {};
    if (s.length === 2 && m === 'GET') return { status: 200, body: this.channelObject(ch) };
    if (s[2] !== 'messages') return notFound();
    if (s.length === 3) {
      if (m !== 'POST') return m === 'GET' ? { status: 200, body: [] } : notFound();
      if (body.content === undefined && body.embeds === undefined && rec.files.length === 0 && body.components === undefined) {
        return err(400, 50006, 'Cannot send an empty message');
      }
      const recipient = this.dmChannels.get(ch.id);
      if (recipient !== undefined && this.closedDms.has(recipient)) return err(403, 50007, 'Cannot send messages to this user');
      const msg = this.blankMessage(snowflake(), ch.id, MessageType.Default, false);
      this.applyBody(msg, rec, body, false);
      this.messages.set(msg.id, msg);
      return { status: 200, body: msg };
    }
    if (s.length === 6 && s[4] === 'reactions') {
      const msg = this.messages.get(s[3] ?? '');
      if (!msg || msg.channel_id !== ch.id) return unknownMessage();
      if (m === 'GET') return this.reactionList(rec, msg, s[5] ?? '');
      return notFound();
    }
    if (s.length === 4) {
      const msg = this.messages.get(s[3] ?? '');
      if (!msg || msg.channel_id !== ch.id) return unknownMessage();
      if (m === 'GET') return { status: 200, body: msg };
      if (m === 'PATCH') {
        this.applyBody(msg, rec, body, true);
        return { status: 200, body: msg };
      }
      if (m === 'DELETE') {
        this.messages.delete(msg.id);
        return { status: 204 };
      }
    }
    return notFound();
  }

  private routeGuilds(rec: RecordedRequest, s: string[]): Resp {
    const g = this.guilds.get(s[1] ?? '');
    if (!g) return err(404, 10004, 'Unknown Guild');
    if (rec.method !== 'GET') return notFound();
    if (s.length === 2) {
      const full = this.guildCreate(g) as unknown as Record<string, unknown>;
      const { joined_at: _j, large: _l, members: _m, channels: _c, threads: _t, presences: _p, voice_states: _v, ...rest } = full;
      return { status: 200, body: rest };
    }
    if (s.length === 3 && s[2] === 'channels') return { status: 200, body: g.channels.map((c) => this.channelObject(c)) };
    if (s.length === 3 && s[2] === 'roles') return { status: 200, body: g.roles };
    return notFound();
  }

  // -------------------------------------------------------------------------------------------------------------------
  // Messages

  private blankMessage(id: string, channelId: string, type: MessageType, fromApp: boolean): APIMessage {
    return {
      id,
      channel_id: channelId,
      author: this.botUser,
      content: '',
      timestamp: new Date(snowflakeTime(id)).toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      components: [],
      pinned: false,
      type,
      flags: 0 as MessageFlags,
      ...(fromApp ? { webhook_id: this.applicationId, application_id: this.applicationId } : {}),
    };
  }

  private newInteractionMessage(it: InteractionState, rec: RecordedRequest, data: Record<string, unknown>, flags: number): APIMessage {
    const type = it.type === InteractionType.ApplicationCommand ? MessageType.ChatInputCommand : MessageType.Default;
    const msg = this.blankMessage(snowflake(), it.channelId, type, true);
    msg.flags = flags;
    msg.interaction_metadata = {
      id: it.id,
      type: it.type,
      user: it.user,
      authorizing_integration_owners: { '0': it.guildId },
      ...(it.type === InteractionType.MessageComponent && it.sourceMessage ? { interacted_message_id: it.sourceMessage.id } : {}),
    } as APIMessage['interaction_metadata'];
    if (it.commandName !== undefined) {
      msg.interaction = { id: it.id, type: it.type, name: it.commandName, user: it.user };
    }
    if ((flags & LOADING_FLAG) === 0) this.applyBody(msg, rec, data, false);
    else msg.attachments = [];
    this.messages.set(msg.id, msg);
    return msg;
  }

  /** Applies a create/edit body (JSON or payload_json + files) to a message object, Discord style. */
  private applyBody(msg: APIMessage, rec: RecordedRequest, body: Record<string, unknown>, isEdit: boolean): void {
    const wasLoading = ((msg.flags ?? 0) & LOADING_FLAG) !== 0;
    if (typeof body.content === 'string') msg.content = body.content;
    else if (body.content === null) msg.content = '';
    if (typeof body.tts === 'boolean' && !isEdit) msg.tts = body.tts;
    if (Array.isArray(body.components)) msg.components = body.components as APIMessage['components'];
    else if (body.components === null) msg.components = [];
    if (typeof body.flags === 'number' && !isEdit) msg.flags = body.flags & ~LOADING_FLAG;
    if (wasLoading) msg.flags = (msg.flags ?? 0) & ~LOADING_FLAG;
    else if (isEdit) msg.edited_timestamp = new Date(rec.at).toISOString();

    // Attachments: an explicit `attachments` array lists what stays (existing ids) and names new uploads (ids = file index).
    const byIndex = new Map<string, RecordedFile>();
    rec.files.forEach((f, i) => byIndex.set(/^files\[(\d+)\]$/.exec(f.field)?.[1] ?? String(i), f));
    const used = new Set<RecordedFile>();
    let attachments: APIAttachment[] = isEdit || wasLoading ? msg.attachments : [];
    if (Array.isArray(body.attachments)) {
      const next: APIAttachment[] = [];
      for (const a of body.attachments) {
        if (!isRecord(a)) continue;
        const aid = typeof a.id === 'string' || typeof a.id === 'number' ? String(a.id) : '';
        const file = byIndex.get(aid);
        if (file && !used.has(file)) {
          used.add(file);
          next.push(this.attachmentFor(msg, file, a));
        } else {
          const existing = msg.attachments.find((x) => x.id === aid);
          if (existing) next.push(existing);
        }
      }
      attachments = next;
    }
    if (used.size < rec.files.length) {
      attachments = attachments.slice();
      for (const f of rec.files) if (!used.has(f)) attachments.push(this.attachmentFor(msg, f, {}));
    }
    msg.attachments = attachments;

    if (Array.isArray(body.embeds)) msg.embeds = body.embeds.filter(isRecord).map((e) => this.resolveEmbed(e, attachments));
    else if (body.embeds === null) msg.embeds = [];
  }

  private attachmentFor(msg: APIMessage, f: RecordedFile, entry: Record<string, unknown>): APIAttachment {
    const id = snowflake();
    const filename = typeof entry.filename === 'string' ? entry.filename : f.name;
    const url = `http://127.0.0.1:${this.port}/attachments/${msg.channel_id}/${id}/${encodeURIComponent(filename)}`;
    const dims = pngSize(f.bytes);
    if (f.bytes.length > 0) this.attachmentBytes.set(id, { bytes: f.bytes, contentType: f.contentType || 'application/octet-stream' });
    return {
      id,
      filename,
      size: f.size,
      url,
      proxy_url: url,
      content_type: f.contentType,
      ...(typeof entry.description === 'string' ? { description: entry.description } : {}),
      ...(dims ?? {}),
      ...(((msg.flags ?? 0) & EPHEMERAL_FLAG) !== 0 ? { ephemeral: true } : {}),
    };
  }

  private resolveEmbed(e: Record<string, unknown>, attachments: APIAttachment[]): APIEmbed {
    const out: Record<string, unknown> = { type: 'rich', ...e };
    for (const key of ['image', 'thumbnail'] as const) {
      const media = e[key];
      if (isRecord(media) && typeof media.url === 'string' && media.url.startsWith('attachment://')) {
        const name = media.url.slice('attachment://'.length);
        const att = attachments.find((a) => a.filename === name);
        if (att) out[key] = { ...media, url: att.url, proxy_url: att.proxy_url, width: att.width, height: att.height };
      }
    }
    return out;
  }

  /** `POST /users/@me/channels {recipient_id}`: the DM channel with that user (one per user, as Discord). */
  private openDm(rec: RecordedRequest): Resp {
    const recipientId = isRecord(rec.json) && typeof rec.json.recipient_id === 'string' ? rec.json.recipient_id : undefined;
    if (recipientId === undefined) return err(400, 50035, 'Invalid Form Body');
    let id = [...this.dmChannels].find(([, userId]) => userId === recipientId)?.[0];
    if (id === undefined) {
      id = snowflake();
      this.dmChannels.set(id, recipientId);
      this.channels.set(id, { id, guildId: '', name: '', type: ChannelType.DM, nsfw: false, position: 0 });
    }
    return { status: 200, body: { id, type: ChannelType.DM, last_message_id: null, recipients: [this.userFor({ userId: recipientId })] } };
  }

  /** From now on the bot's direct messages to this member are refused (50007), as when they close their DMs. */
  closeDirectMessages(userId: string): void {
    this.closedDms.add(userId);
  }

  /** The messages the bot sent a member directly, oldest first. */
  directMessages(userId: string): APIMessage[] {
    const channels = new Set([...this.dmChannels].filter(([, id]) => id === userId).map(([channelId]) => channelId));
    return [...this.messages.values()].filter((msg) => channels.has(msg.channel_id));
  }

  /**
   * What everyone in a channel sees now: its messages that still exist (interaction replies, follow-ups, channel
   * posts), ephemeral ones excluded, oldest first.
   */
  publicMessages(channelId: string): APIMessage[] {
    return [...this.messages.values()].filter((msg) => msg.channel_id === channelId && ((msg.flags ?? 0) & EPHEMERAL_FLAG) === 0);
  }

  /** Current state of a message the bot created or edited (interaction responses, follow-ups, channel messages). */
  /**
   * An incoming webhook (in the default channel unless told), as a server admin makes one (Server Settings →
   * Integrations); its `url` is under this fake's API, the form `OPERATOR_WEBHOOK_URL` accepts for a configured
   * `DISCORD_API_URL`. A test that must name the webhook before the fake starts passes its own id and token.
   */
  createWebhook(spec: { channelId?: string; id?: string; token?: string } = {}): { id: string; token: string; url: string; channelId: string } {
    const id = spec.id ?? snowflake();
    const token = spec.token ?? `fakeWebhookToken_${randomBytes(24).toString('base64url')}`;
    const channelId = spec.channelId ?? this.channelId;
    this.webhookTokens.set(id, { token, channelId });
    return { id, token, url: `${this.apiUrl}/webhooks/${id}/${token}`, channelId };
  }

  /** Every execution of a webhook made with createWebhook(), in order. */
  webhookExecutions(): WebhookExecution[] {
    return [...this.executions];
  }

  message(id: string): APIMessage | undefined {
    return this.messages.get(id);
  }

  // -------------------------------------------------------------------------------------------------------------------

  /** Close HTTP and WS servers and every socket. Safe to call twice. Destroy discord.js clients first. */
  stop(): Promise<void> {
    this.stopPromise ??= this.doStop();
    return this.stopPromise;
  }

  private async doStop(): Promise<void> {
    this.stopped = true;
    const stoppedErr = new Error('FakeDiscord stopped');
    for (const w of this.requestWaiters) {
      clearTimeout(w.timer);
      w.reject(stoppedErr);
    }
    this.requestWaiters.clear();
    for (const w of this.readyWaiters) {
      clearTimeout(w.timer);
      w.reject(stoppedErr);
    }
    this.readyWaiters.clear();
    for (const conn of this.conns) {
      conn.serverClosed = true;
      conn.ws.terminate();
    }
    this.conns.clear();
    await Promise.all([
      new Promise<void>((resolve) => this.wss.close(() => resolve())),
      new Promise<void>((resolve) => {
        this.server.close(() => resolve());
        this.server.closeAllConnections();
      }),
    ]);
  }
}

/** A guild member as Discord sends one: the fields the fake does not vary, around the user, join date and roles. */
function guildMember(user: APIUser, joinedAt: string, roles: string[] = []): APIGuildMember & { user: APIUser } {
  return {
    user,
    nick: null,
    avatar: null,
    banner: null,
    roles,
    joined_at: joinedAt,
    premium_since: null,
    deaf: false,
    mute: false,
    flags: 0 as GuildMemberFlags,
    pending: false,
    communication_disabled_until: null,
  };
}
