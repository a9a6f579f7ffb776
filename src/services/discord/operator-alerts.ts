import { Routes, type REST } from 'discord.js';
import type { RESTPostAPIWebhookWithTokenJSONBody } from 'discord-api-types/v10';
import type { Logger } from '../../logger.js';

export type OperatorAlertKind = 'generation_paused' | 'generation_resumed' | 'low_balance' | 'storage_down' | 'storage_up';

export interface OperatorAlertsOptions {
  /** discord.js REST pointed at DISCORD_API_URL; webhook executions need no bot token. */
  rest: Pick<REST, 'post'>;
  /** From OPERATOR_WEBHOOK_URL; unset = alerts are only logged. */
  webhook?: { id: string; token: string };
  logger: Logger;
}

/** Discord's limit for a message's content. */
const MAX_CONTENT = 2_000;
const GOOD_NEWS: ReadonlySet<OperatorAlertKind> = new Set(['generation_resumed', 'storage_up']);

/**
 * Tells the operator what needs them (generation paused or resumed, a low Segmind balance, storage down or back):
 * always in the log, and through the OPERATOR_WEBHOOK_URL Discord webhook when one is set. Never throws: an alert that
 * cannot be posted is logged, and whatever raised it carries on.
 */
export class OperatorAlerts {
  private storageDown = false;

  constructor(private readonly options: OperatorAlertsOptions) {}

  get webhookConfigured(): boolean {
    return this.options.webhook !== undefined;
  }

  async send(kind: OperatorAlertKind, text: string): Promise<void> {
    const { webhook, logger, rest } = this.options;
    logger[GOOD_NEWS.has(kind) ? 'info' : 'warn']({ alert: kind, webhook: webhook !== undefined }, `operator alert: ${text}`);
    if (!webhook) return;
    // allowed_mentions: an alert quoting an error must never ping anyone.
    const body: RESTPostAPIWebhookWithTokenJSONBody = { content: clip(text), allowed_mentions: { parse: [] } };
    try {
      await rest.post(Routes.webhook(webhook.id, webhook.token), { auth: false, query: new URLSearchParams({ wait: 'true' }), body });
    } catch (error) {
      // Only the status, code and message: a discord.js error carries the URL, and the URL carries the token.
      const { status, code } = error as { status?: unknown; code?: unknown };
      const reason = error instanceof Error ? error.message.split(webhook.token).join('[redacted]') : String(error);
      logger.warn({ alert: kind, status, code, reason }, 'could not post the operator alert to OPERATOR_WEBHOOK_URL');
    }
  }

  /**
   * What each storage round trip of the bot's sweep found: alerts once when storage stops answering and once when it
   * answers again, never for every failed sweep of one outage.
   */
  storageAnswered(up: boolean, reason?: string): Promise<void> {
    if (up === !this.storageDown) return Promise.resolve();
    this.storageDown = !up;
    return up
      ? this.send('storage_up', '✅ **Storage is back**: credits and settings can be read again; members can generate.')
      : this.send(
          'storage_down',
          `⚠️ **Storage is not answering**${reason ? ` (${reason})` : ''}: members' requests are refused (nothing charged) until it is back. Check STORE_URL's database.`,
        );
  }
}

function clip(text: string): string {
  return text.length <= MAX_CONTENT ? text : `${text.slice(0, MAX_CONTENT - 1)}…`;
}
