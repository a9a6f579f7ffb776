import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

export interface LoggerSetup {
  level: LoggerOptions['level'];
  /** Values that must never be written, whatever field or message they end up in (tokens, API keys). */
  secrets: string[];
  destination?: DestinationStream;
}

const REDACTED = '[redacted]';

/**
 * The token segment of Discord's interaction routes: `/webhooks/<application>/<token>/…` and
 * `/interactions/<interaction>/<token>/callback`. A token lets anyone post as the bot in that channel for 15 minutes,
 * and discord.js errors carry the URL (`DiscordAPIError.url`), which pino's error serializer copies into the line.
 */
const INTERACTION_TOKEN_IN_URL = /(\/(?:webhooks|interactions)\/\d+\/)[^/?#\s"'\\]+/g;

/**
 * pino's `redact` removes known secret fields; the stream hook is the backstop for secrets that slip into free text
 * (an error message quoting a URL or a header, a stack trace) and for interaction tokens, which are new with every
 * interaction: it sees the whole line, so every field, message and stack of every call site is covered.
 */
export function createLogger({ level, secrets, destination }: LoggerSetup): Logger {
  const needles = secrets.filter((s) => s.length >= 8);
  const options: LoggerOptions = {
    level,
    base: { app: 'flux-discord-bot' },
    redact: {
      paths: [
        'token',
        'apiKey',
        '*.token',
        '*.apiKey',
        'headers["x-api-key"]',
        '*.headers["x-api-key"]',
        'headers.authorization',
        '*.headers.authorization',
        'DISCORD_TOKEN',
        'SEGMIND_API_KEY',
        '*.DISCORD_TOKEN',
        '*.SEGMIND_API_KEY',
      ],
      censor: REDACTED,
    },
    hooks: {
      streamWrite: (line) => scrubInteractionTokens(scrubSecrets(line, needles)),
    },
  };
  return destination ? pino(options, destination) : pino(options);
}

export function scrubSecrets(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const secret of secrets) {
    if (out.includes(secret)) out = out.split(secret).join(REDACTED);
  }
  return out;
}

export function scrubInteractionTokens(text: string): string {
  if (!text.includes('/webhooks/') && !text.includes('/interactions/')) return text;
  return text.replace(INTERACTION_TOKEN_IN_URL, `$1${REDACTED}`);
}
