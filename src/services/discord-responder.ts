import { DiscordAPIError, Routes, type APIActionRowComponent, type APIComponentInMessageActionRow, type APIEmbed, type REST } from 'discord.js';
import type { Logger } from '../logger.js';

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

/** Discord error codes meaning the interaction token can no longer be used. */
const DEAD_TOKEN_CODES = new Set([10015 /* unknown webhook */, 50027 /* invalid webhook token */, 10062 /* unknown interaction */]);

export function isDeadToken(error: unknown): boolean {
  return error instanceof DiscordAPIError && (DEAD_TOKEN_CODES.has(Number(error.code)) || error.status === 401);
}

/**
 * Talks to Discord over REST only. discord.js already retries 5xx and waits out 429s; what is left to decide here is
 * what to do when the token is dead.
 */
export class DiscordResponder {
  constructor(
    /** Interaction webhooks (not under Discord's global limit) and channel routes (under it). */
    private readonly rest: { webhooks: REST; channels: REST },
    private readonly log: Logger,
  ) {}

  async editOriginal(to: InteractionAddress, message: OutgoingMessage): Promise<void> {
    await this.rest.webhooks.patch(Routes.webhookMessage(to.applicationId, to.token, '@original'), {
      auth: false,
      body: this.body(message),
      files: (message.files ?? []).map((file) => ({ name: file.name, data: file.data })),
    });
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

  /** A normal channel message mentioning the member: for results that outlive the 15-minute token. */
  async postInChannel(to: InteractionAddress, message: OutgoingMessage): Promise<void> {
    await this.rest.channels.post(Routes.channelMessages(to.channelId), {
      body: {
        ...this.body(message),
        content: `<@${to.userId}> ${message.content}`.trim(),
        allowed_mentions: { users: [to.userId] },
      },
      files: (message.files ?? []).map((file) => ({ name: file.name, data: file.data })),
    });
  }

  private body(message: OutgoingMessage) {
    return {
      content: message.content,
      embeds: message.embeds ?? [],
      components: message.components ?? [],
      attachments: (message.files ?? []).map((file, id) => ({ id, filename: file.name })),
      allowed_mentions: { parse: [] },
    };
  }
}
