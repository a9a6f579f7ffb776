import { z } from 'zod';

/** Environment variables, validated once at start-up. Defaults live here and in .env.example. */
const snowflake = z.string().regex(/^\d{17,20}$/, 'must be a Discord snowflake (17–20 digits)');
const httpUrl = z
  .url({ protocol: /^https?$/, error: 'must be an http(s) URL' })
  .transform((u) => u.replace(/\/+$/, ''));
const intFrom = (min: number, max: number) => z.coerce.number().int('must be a whole number').min(min).max(max);
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'], { error: 'must be true or false' })
  .transform((v) => v === 'true' || v === '1' || v === 'yes');

/** Discord's own webhook URLs (any host Discord has used, with or without an API version). */
const DISCORD_WEBHOOK_URL = /^https:\/\/(?:(?:ptb|canary)\.)?discord(?:app)?\.com\/api(?:\/v\d+)?\/webhooks\/(\d{17,20})\/([\w-]{10,})\/?$/;

/**
 * The id and token of a Discord webhook URL: Discord's own, or the same path under `DISCORD_API_URL` (a proxy, or the
 * fake Discord in tests). Undefined when it is neither.
 */
export function parseWebhookUrl(url: string, discordApiUrl: string): { id: string; token: string } | undefined {
  const official = DISCORD_WEBHOOK_URL.exec(url);
  if (official) return { id: official[1]!, token: official[2]! };
  const base = discordApiUrl.replace(/\/+$/, '');
  if (!url.startsWith(`${base}/`)) return undefined;
  const local = /^(?:v\d+\/)?webhooks\/(\d{17,20})\/([\w-]{10,})\/?$/.exec(url.slice(base.length + 1));
  return local ? { id: local[1]!, token: local[2]! } : undefined;
}

// --- Gateway shards (SHARD_COUNT, SHARDS) ---------------------------------------------------------------------

/** Discord's own ceiling is far lower for almost every bot; this only stops `0-99999999` from building a huge list. */
export const MAX_SHARD_COUNT = 100_000;

export type ShardCountSetting = 'auto' | number;
export type ShardsSetting = 'all' | readonly number[];

export type ParsedShards = { ok: true; value: ShardsSetting } | { ok: false; problem: string };

/**
 * `all`, a list `0,1,2`, a range `0-3`, or both mixed (`0-3,8`). The problem, when there is one, reads after the
 * variable's name ("SHARDS …").
 */
export function parseShards(text: string): ParsedShards {
  const trimmed = text.trim();
  if (trimmed.toLowerCase() === 'all') return { ok: true, value: 'all' };
  const ids: number[] = [];
  const seen = new Set<number>();
  for (const part of trimmed.split(',').map((p) => p.trim())) {
    const match = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!match) return { ok: false, problem: 'must be all, a list of shard ids such as 0,1,2 or a range such as 0-3' };
    const from = Number(match[1]);
    const to = match[2] === undefined ? from : Number(match[2]);
    if (to < from) return { ok: false, problem: `has a range that runs backwards (${part}): write it low-high, such as ${to}-${from}` };
    if (to >= MAX_SHARD_COUNT) return { ok: false, problem: `names shard ${to}, more than any bot has (at most ${MAX_SHARD_COUNT - 1})` };
    for (let id = from; id <= to; id++) {
      if (seen.has(id)) return { ok: false, problem: `names shard ${id} twice` };
      seen.add(id);
      ids.push(id);
    }
  }
  return { ok: true, value: ids.sort((a, b) => a - b) };
}

/**
 * Why `SHARDS` does not fit `SHARD_COUNT`, or undefined when it does. With `auto` only `all` makes sense: processes
 * splitting the shards must agree on a count, and Discord's recommendation changes as the bot grows.
 */
export function shardsProblem(count: ShardCountSetting, shards: ShardsSetting): string | undefined {
  if (shards === 'all') return undefined;
  if (count === 'auto')
    return 'must be all while SHARD_COUNT is auto: to split the shards over processes, set SHARD_COUNT to the same number in every process';
  const outside = shards.find((id) => id >= count);
  if (outside !== undefined)
    return `names shard ${outside}, but SHARD_COUNT is ${count}, so shard ids run from 0 to ${count - 1}`;
  return undefined;
}


const shardCountSetting = z
  .string()
  .trim()
  .transform((value, ctx): ShardCountSetting => {
    if (value.toLowerCase() === 'auto') return 'auto';
    const count = /^\d+$/.test(value) ? Number(value) : Number.NaN;
    if (count >= 1 && count <= MAX_SHARD_COUNT) return count;
    ctx.addIssue({ code: 'custom', message: `must be auto or a whole number of shards from 1 to ${MAX_SHARD_COUNT}` });
    return z.NEVER;
  });
const shardsSetting = z.string().transform((value, ctx): ShardsSetting => {
  const parsed = parseShards(value);
  if (parsed.ok) return parsed.value;
  ctx.addIssue({ code: 'custom', message: parsed.problem });
  return z.NEVER;
});

export const configSchema = z.object({
  DISCORD_TOKEN: z.string({ error: 'is required' }).trim().min(50, 'does not look like a bot token (too short)'),
  SEGMIND_API_KEY: z.string({ error: 'is required' }).trim().min(8, 'does not look like a Segmind API key (too short)'),
  DISCORD_API_URL: httpUrl.default('https://discord.com/api'),
  SEGMIND_API_URL: httpUrl.default('https://api.segmind.com'),
  DISCORD_GUILD_ID: snowflake.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SYNC_COMMANDS_ON_START: bool.default(true),
  SEGMIND_TIMEOUT_SECONDS: intFrom(5, 900).default(180),
  SEGMIND_MAX_RETRIES: intFrom(0, 10).default(2),
  SEGMIND_RETRY_BASE_MS: intFrom(1, 60_000).default(1000),
  SEGMIND_MAX_IMAGE_MB: intFrom(1, 100).default(25),
  STORE_URL: z
    .string()
    .regex(/^(memory|sqlite|redis|rediss):\/\//, 'must start with sqlite://, redis://, rediss:// or memory://')
    .default('sqlite://data/bot.sqlite'),
  DEFAULT_DAILY_CREDITS: intFrom(0, 100_000).default(20),
  DEFAULT_COOLDOWN_SECONDS: intFrom(0, 86_400).default(30),
  DEFAULT_GUILD_DAILY_CREDITS: intFrom(0, 10_000_000).default(0),
  /** The operator's ceilings, over anything a server's moderators set (0 = none). */
  MAX_DAILY_CREDITS: intFrom(0, 100_000).default(0),
  MAX_GUILD_DAILY_CREDITS: intFrom(0, 10_000_000).default(0),
  /** Servers the bot may stay in (unset = any): it leaves the others and answers nothing there. */
  ALLOWED_GUILD_IDS: z
    .string()
    .transform((v) => v.split(',').map((id) => id.trim()).filter((id) => id !== ''))
    .refine((ids) => ids.length > 0 && ids.every((id) => /^\d{17,20}$/.test(id)), 'must be Discord server ids (17–20 digits), separated by commas')
    .optional(),
  DEFAULT_MAX_SAMPLES: intFrom(1, 4).default(4),
  DEFAULT_MAX_STEPS: intFrom(1, 50).default(50),
  SEGMIND_CONCURRENCY: intFrom(1, 1024).default(4),
  SEGMIND_RPM: intFrom(0, 100_000).default(0),
  MAX_QUEUED_PER_USER: intFrom(1, 100).default(2),
  SHUTDOWN_GRACE_SECONDS: intFrom(0, 600).default(30),
  HTTP_PORT: intFrom(0, 65_535).optional(),
  HTTP_HOST: z.string().min(1).default('127.0.0.1'),
  RESULT_RETENTION_DAYS: intFrom(1, 3650).default(90),
  INSTANCE_ID: z.string().regex(/^[\w.-]{1,64}$/, 'must be 1–64 letters, digits, dots, dashes or underscores').default('main'),
  /**
   * Redis only: how long this process's INSTANCE_ID lease lives without renewal. After that the process counts as dead
   * and the live processes adopt its unfinished requests; shorter answers members sooner after a crash, longer
   * tolerates longer Redis hiccups.
   */
  INSTANCE_LEASE_SECONDS: intFrom(2, 3_600).default(60),
  /** How long a storage operation may take before the request is refused (fail closed, inside Discord's 3 s). */
  STORAGE_TIMEOUT_MS: intFrom(100, 2_500).default(1_500),
  /** Worker threads classifying images (each loads its own model, about 0.2 s and tens of MiB). */
  IMAGE_CHECK_THREADS: intFrom(1, 8).default(1),
  /** Flagged when the classifier's sexual-content score (Porn + Hentai) reaches this. */
  IMAGE_CHECK_THRESHOLD: z.coerce.number('must be a number').min(0).max(1).default(0.6),
  /** What a server does with a flagged image until its moderators choose (`/imagine-admin settings set image_check`). */
  DEFAULT_IMAGE_CHECK: z.enum(['off', 'spoiler', 'block']).default('spoiler'),
  /** How often the Segmind balance is read into the gauge and the log (and checked against SEGMIND_LOW_BALANCE). */
  SEGMIND_BALANCE_CHECK_MINUTES: intFrom(1, 1440).default(15),
  /** Dollars: below this, log channels and the operator alert get one warning per crossing. 0 = off. */
  SEGMIND_LOW_BALANCE: z.coerce.number('must be a number').min(0).max(100_000).default(1),
  /** A Discord webhook for operator alerts (pause, resume, low balance, storage down); unset = the log only. */
  OPERATOR_WEBHOOK_URL: z.string().trim().optional(),
  /** The bot's total number of gateway shards (the same in every process), or Discord's recommendation. */
  SHARD_COUNT: shardCountSetting.default('auto'),
  /** Which of them this process runs. */
  SHARDS: shardsSetting.default('all'),
}).superRefine((config, ctx) => {
  const shards = shardsProblem(config.SHARD_COUNT, config.SHARDS);
  if (shards !== undefined) ctx.addIssue({ code: 'custom', path: ['SHARDS'], message: shards });
  // Checked against DISCORD_API_URL, so a proxy or a test's fake Discord can receive the alerts. The message never
  // quotes the URL: its token lets anyone post there.
  if (config.OPERATOR_WEBHOOK_URL !== undefined && !parseWebhookUrl(config.OPERATOR_WEBHOOK_URL, config.DISCORD_API_URL))
    ctx.addIssue({
      code: 'custom',
      path: ['OPERATOR_WEBHOOK_URL'],
      message: 'must be a Discord webhook URL: https://discord.com/api/webhooks/<id>/<token>',
    });
});

export type Config = z.infer<typeof configSchema>;

export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}\nSee .env.example for every variable.`);
    this.name = 'ConfigError';
  }
}

/** Empty strings count as unset, so a blank line in .env falls back to the default. */
/**
 * Settings that no longer exist, with what replaced them: a start-up warning rather than a refusal, so an `.env` from
 * an older release keeps working.
 */
const RETIRED_SETTINGS: Record<string, string> = {
  SEGMIND_CONNECTIONS:
    'SEGMIND_CONNECTIONS is no longer used: the bot keeps as many connections to Segmind as SEGMIND_CONCURRENCY allows calls, so it can be removed',
};

/** One warning per retired setting present in the environment. */
export function retiredSettingWarnings(env: NodeJS.ProcessEnv): string[] {
  return Object.entries(RETIRED_SETTINGS)
    .filter(([name]) => env[name] !== undefined && env[name].trim() !== '')
    .map(([, warning]) => warning);
}

export function loadConfig(env: NodeJS.ProcessEnv): Config {
  const input: Record<string, string> = {};
  for (const key of Object.keys(configSchema.shape)) {
    const value = env[key];
    if (value !== undefined && value.trim() !== '') input[key] = value;
  }
  const result = configSchema.safeParse(input);
  if (result.success) return result.data;
  // Only the variable name and the rule are reported: the value may be a secret.
  throw new ConfigError(
    result.error.issues.map((issue) => {
      const name = issue.path.join('.');
      return `${name} ${name in input ? describeIssue(issue) : 'is required'}`;
    }),
  );
}

function describeIssue(issue: z.core.$ZodIssue): string {
  if (issue.code === 'invalid_value' && 'values' in issue)
    return `must be one of: ${issue.values.map(String).join(', ')}`;
  if (issue.code === 'too_small' && issue.origin === 'number') return `must be at least ${String(issue.minimum)}`;
  if (issue.code === 'too_big' && issue.origin === 'number') return `must be at most ${String(issue.maximum)}`;
  if (issue.code === 'invalid_type' && issue.expected === 'number') return 'must be a number';
  return issue.message;
}
