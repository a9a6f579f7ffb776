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
 * pino's `redact` removes known secret fields; the stream hook is the backstop for secrets that slip into free text
 * (an error message quoting a URL or a header, a stack trace).
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
      streamWrite: (line) => scrubSecrets(line, needles),
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
