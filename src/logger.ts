import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** `pretty`: one readable line per entry, for a person at a terminal; `json`: for files, pipes and log collectors. */
export type LogFormat = 'json' | 'pretty';

export interface LoggerSetup {
  level: LoggerOptions['level'];
  /** Values that must never be written, whatever field or message they end up in (tokens, API keys). */
  secrets: string[];
  /** Default stdout. */
  destination?: DestinationStream;
  /** Default: `pretty` when writing to stdout and stdout is a terminal, `json` otherwise. */
  format?: LogFormat;
}

/** Pretty only where a person reads: a terminal. Redirected to a file or collected by a container runtime, JSON. */
export function defaultLogFormat(stdout: { isTTY?: boolean } = process.stdout): LogFormat {
  return stdout.isTTY === true ? 'pretty' : 'json';
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
export function createLogger({ level, secrets, destination, format }: LoggerSetup): Logger {
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
  const chosen = format ?? (destination ? 'json' : defaultLogFormat());
  if (chosen === 'pretty') {
    // Formatted in this thread, synchronously: pino-pretty's transport would add a worker thread (and its memory) to
    // every process for what only matters at a terminal. Scrubbing (streamWrite) has run on the JSON line already.
    const out = destination ?? process.stdout;
    const colors = !destination && process.stdout.hasColors?.() === true;
    return pino(options, { write: (line: string) => void out.write(formatPretty(line, colors)) });
  }
  return destination ? pino(options, destination) : pino(options);
}

const LEVELS: Record<number, { name: string; color: string }> = {
  10: { name: 'TRACE', color: '90' },
  20: { name: 'DEBUG', color: '36' },
  30: { name: 'INFO', color: '32' },
  40: { name: 'WARN', color: '33' },
  50: { name: 'ERROR', color: '31' },
  60: { name: 'FATAL', color: '41;97' },
};
/** Written by every line (or shown in the prefix): not repeated among the fields. */
const PREFIX_KEYS = new Set(['level', 'time', 'msg', 'app', 'pid', 'hostname', 'component']);

/**
 * One pino JSON line as `12:34:56.789 WARN  [segmind] message  key=value …`, an error's stack indented below it.
 * Anything that is not a pino line is written as it came.
 */
export function formatPretty(line: string, colors = false): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(line) as Record<string, unknown>;
  } catch {
    return line.endsWith('\n') ? line : `${line}\n`;
  }
  const paint = (code: string, text: string) => (colors ? `\u001b[${code}m${text}\u001b[0m` : text);
  const level = LEVELS[entry.level as number] ?? { name: String(entry.level), color: '0' };
  const time = typeof entry.time === 'number' ? new Date(entry.time).toISOString().slice(11, 23) : '';
  const component = typeof entry.component === 'string' ? paint('35', `[${entry.component}] `) : '';
  const fields: string[] = [];
  const stacks: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (PREFIX_KEYS.has(key) || value === undefined) continue;
    if (isSerializedError(value)) {
      fields.push(`${key}=${JSON.stringify(`${value.type ?? 'Error'}: ${value.message}`)}`);
      if (typeof value.stack === 'string') stacks.push(indent(value.stack));
      continue;
    }
    const text = typeof value === 'string' ? (/^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)) : JSON.stringify(value);
    fields.push(`${key}=${text}`);
  }
  const head = `${paint('2', time)} ${paint(level.color, level.name.padEnd(5))} ${component}${typeof entry.msg === 'string' ? entry.msg : ''}`;
  const tail = fields.length > 0 ? `  ${paint('2', fields.join(' '))}` : '';
  return `${head}${tail}\n${stacks.map((stack) => `${stack}\n`).join('')}`;
}

function isSerializedError(value: unknown): value is { type?: string; message: string; stack?: unknown } {
  return typeof value === 'object' && value !== null && typeof (value as { message?: unknown }).message === 'string' && 'stack' in value;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
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
