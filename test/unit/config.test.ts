import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, configSchema, loadConfig, retiredSettingWarnings } from '../../src/config.js';

const ROOT = resolve(import.meta.dirname, '../..');

/** README's configuration table: variable → [default cell, meaning cell]. */
function readmeTable(): Map<string, { default: string; meaning: string }> {
  const rows = new Map<string, { default: string; meaning: string }>();
  for (const line of readFileSync(resolve(ROOT, 'README.md'), 'utf8').split('\n')) {
    const match = /^\| `([A-Z][A-Z0-9_]+)` \| (.+?) \| (.+) \|$/.exec(line);
    if (match) rows.set(match[1]!, { default: match[2]!, meaning: match[3]! });
  }
  return rows;
}

const TOKEN = 'MTIzNDU2Nzg5MDEyMzQ1Njc4.GabcDE.abcdefghijklmnopqrstuvwxyz0123456789AB';
const KEY = 'SG_0123456789abcdef';
const valid = { DISCORD_TOKEN: TOKEN, SEGMIND_API_KEY: KEY };

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).problems;
  }
  throw new Error('expected loadConfig to fail');
}

describe('configuration', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(valid);
    expect(config).toMatchObject({
      DISCORD_API_URL: 'https://discord.com/api',
      SEGMIND_API_URL: 'https://api.segmind.com',
      LOG_LEVEL: 'info',
      SYNC_COMMANDS_ON_START: true,
      SEGMIND_TIMEOUT_SECONDS: 180,
      SEGMIND_MAX_RETRIES: 2,
    });
    expect(config.DISCORD_GUILD_ID).toBeUndefined();
  });

  it('applies the usage and storage defaults README documents', () => {
    expect(loadConfig(valid)).toMatchObject({
      DEFAULT_DAILY_CREDITS: 20,
      DEFAULT_COOLDOWN_SECONDS: 30,
      DEFAULT_GUILD_DAILY_CREDITS: 0,
      DEFAULT_MAX_SAMPLES: 4,
      DEFAULT_MAX_STEPS: 50,
      STORE_URL: 'sqlite://data/bot.sqlite',
      STORAGE_TIMEOUT_MS: 1500,
      SEGMIND_RETRY_BASE_MS: 1000,
      SEGMIND_MAX_IMAGE_MB: 25,
      SEGMIND_CONCURRENCY: 4,
      SEGMIND_RPM: 0,
      MAX_QUEUED_PER_USER: 2,
      SHUTDOWN_GRACE_SECONDS: 30,
      RESULT_RETENTION_DAYS: 90,
      INSTANCE_ID: 'main',
      INSTANCE_LEASE_SECONDS: 60,
      HTTP_HOST: '127.0.0.1',
      DEFAULT_IMAGE_CHECK: 'spoiler',
      IMAGE_CHECK_THREADS: 1,
      IMAGE_CHECK_THRESHOLD: 0.6,
    });
    expect(loadConfig(valid).HTTP_PORT).toBeUndefined();
  });

  it('has exactly the variables of README\'s configuration table, each with the default listed there', () => {
    const table = readmeTable();
    expect([...table.keys()].sort()).toEqual(Object.keys(configSchema.shape).sort());
    const config = loadConfig(valid) as Record<string, unknown>;
    for (const [name, row] of table) {
      if (row.default === '— (required)') {
        expect(problemsOf({ ...valid, [name]: '' }), name).toEqual([`${name} is required`]);
        continue;
      }
      if (row.default === 'unset') {
        expect(config[name], name).toBeUndefined();
        continue;
      }
      const documented = /^`([^`]+)`$/.exec(row.default)?.[1];
      expect(documented, `${name}: default cell ${row.default}`).toBeDefined();
      expect(String(config[name]), name).toBe(documented);
    }
  });

  it('accepts the ranges README gives, and nothing outside them', () => {
    const documented = new Map<string, [number, number]>();
    for (const [name, row] of readmeTable()) {
      const range = /(\d+)–(\d+)\)/.exec(row.meaning);
      if (range) documented.set(name, [Number(range[1]), Number(range[2])]);
    }
    expect(Object.fromEntries(documented)).toEqual({
      SEGMIND_TIMEOUT_SECONDS: [5, 900],
      SEGMIND_MAX_RETRIES: [0, 10],
      DEFAULT_MAX_SAMPLES: [1, 4],
      DEFAULT_MAX_STEPS: [1, 50],
      SEGMIND_CONCURRENCY: [1, 1024],
      IMAGE_CHECK_THREADS: [1, 8],
    });
    for (const [name, [min, max]] of documented) {
      expect(loadConfig({ ...valid, [name]: String(min) }) as Record<string, unknown>).toMatchObject({ [name]: min });
      expect(loadConfig({ ...valid, [name]: String(max) }) as Record<string, unknown>).toMatchObject({ [name]: max });
      expect(problemsOf({ ...valid, [name]: String(min - 1) })).toEqual([`${name} must be at least ${min}`]);
      expect(problemsOf({ ...valid, [name]: String(max + 1) })).toEqual([`${name} must be at most ${max}`]);
    }
  });

  it('writes the same defaults in .env.example as it applies', () => {
    const config = loadConfig(valid) as Record<string, unknown>;
    const example = new Map<string, string>();
    for (const line of readFileSync(resolve(ROOT, '.env.example'), 'utf8').split('\n')) {
      const match = /^([A-Z][A-Z0-9_]+)=(.*)$/.exec(line);
      if (match) example.set(match[1]!, match[2]!);
    }
    expect([...example.keys()].sort()).toEqual(Object.keys(configSchema.shape).sort());
    for (const [name, value] of example) {
      if (name === 'DISCORD_TOKEN' || name === 'SEGMIND_API_KEY') expect(value, name).toBe('');
      else if (value === '') expect(config[name], name).toBeUndefined();
      else expect(String(config[name]), name).toBe(value);
    }
  });

  it('takes an image-check threshold from 0 to 1 and one of the three image-check actions', () => {
    expect(loadConfig({ ...valid, IMAGE_CHECK_THRESHOLD: '0.85' }).IMAGE_CHECK_THRESHOLD).toBe(0.85);
    expect(problemsOf({ ...valid, IMAGE_CHECK_THRESHOLD: '1.5' })).toEqual(['IMAGE_CHECK_THRESHOLD must be at most 1']);
    expect(problemsOf({ ...valid, IMAGE_CHECK_THRESHOLD: '-0.1' })).toEqual(['IMAGE_CHECK_THRESHOLD must be at least 0']);
    expect(loadConfig({ ...valid, DEFAULT_IMAGE_CHECK: 'block' }).DEFAULT_IMAGE_CHECK).toBe('block');
    expect(problemsOf({ ...valid, DEFAULT_IMAGE_CHECK: 'blur' })).toEqual(['DEFAULT_IMAGE_CHECK must be one of: off, spoiler, block']);
  });

  it('has no operator ceilings and no server allow-list unless the operator sets them', () => {
    const config = loadConfig(valid);
    expect(config).toMatchObject({ MAX_DAILY_CREDITS: 0, MAX_GUILD_DAILY_CREDITS: 0 });
    expect(config.ALLOWED_GUILD_IDS).toBeUndefined();
    expect(loadConfig({ ...valid, MAX_DAILY_CREDITS: '5', MAX_GUILD_DAILY_CREDITS: '100' })).toMatchObject({
      MAX_DAILY_CREDITS: 5,
      MAX_GUILD_DAILY_CREDITS: 100,
    });
    expect(problemsOf({ ...valid, MAX_DAILY_CREDITS: '-1' })).toEqual(['MAX_DAILY_CREDITS must be at least 0']);
  });

  it('reads ALLOWED_GUILD_IDS as a comma-separated list of server ids, and names a list that is not one', () => {
    expect(loadConfig({ ...valid, ALLOWED_GUILD_IDS: '111111111111111111, 222222222222222222,' }).ALLOWED_GUILD_IDS).toEqual([
      '111111111111111111',
      '222222222222222222',
    ]);
    expect(problemsOf({ ...valid, ALLOWED_GUILD_IDS: '111111111111111111,my-server' })).toEqual([
      'ALLOWED_GUILD_IDS must be Discord server ids (17–20 digits), separated by commas',
    ]);
    expect(problemsOf({ ...valid, ALLOWED_GUILD_IDS: ' , ' })).toEqual([
      'ALLOWED_GUILD_IDS must be Discord server ids (17–20 digits), separated by commas',
    ]);
  });

  it('names every missing required variable in one message', () => {
    expect(problemsOf({})).toEqual(['DISCORD_TOKEN is required', 'SEGMIND_API_KEY is required']);
  });

  it('treats an empty value as unset', () => {
    expect(problemsOf({ ...valid, SEGMIND_API_KEY: '  ' })).toEqual(['SEGMIND_API_KEY is required']);
    expect(loadConfig({ ...valid, LOG_LEVEL: '' }).LOG_LEVEL).toBe('info');
  });

  it('explains the rule an invalid value broke', () => {
    expect(problemsOf({ ...valid, LOG_LEVEL: 'loud' })).toEqual([
      'LOG_LEVEL must be one of: fatal, error, warn, info, debug, trace, silent',
    ]);
    expect(problemsOf({ ...valid, DISCORD_GUILD_ID: 'my-server' })).toEqual([
      'DISCORD_GUILD_ID must be a Discord snowflake (17–20 digits)',
    ]);
    expect(problemsOf({ ...valid, SEGMIND_API_URL: 'ftp://x' })).toEqual(['SEGMIND_API_URL must be an http(s) URL']);
    expect(problemsOf({ ...valid, SEGMIND_MAX_RETRIES: '99' })).toEqual(['SEGMIND_MAX_RETRIES must be at most 10']);
    expect(problemsOf({ ...valid, SEGMIND_TIMEOUT_SECONDS: 'soon' })).toEqual([
      'SEGMIND_TIMEOUT_SECONDS must be a number',
    ]);
  });

  it('never repeats a secret value in its message', () => {
    const error = (() => {
      try {
        return loadConfig({ DISCORD_TOKEN: 'short-secret-token', SEGMIND_API_KEY: 'abc' });
      } catch (e) {
        return e as ConfigError;
      }
    })() as ConfigError;
    expect(error.message).toContain('DISCORD_TOKEN does not look like a bot token');
    expect(error.message).not.toContain('short-secret-token');
    expect(error.message).not.toContain('abc\n');
  });

  it('strips a trailing slash from URLs', () => {
    expect(loadConfig({ ...valid, SEGMIND_API_URL: 'http://127.0.0.1:9999/' }).SEGMIND_API_URL).toBe(
      'http://127.0.0.1:9999',
    );
  });
});

describe('configuration: gateway shards', () => {
  it('runs every shard Discord recommends unless told otherwise', () => {
    expect(loadConfig(valid)).toMatchObject({ SHARD_COUNT: 'auto', SHARDS: 'all' });
  });

  it('takes a list, a range or both for SHARDS, with a SHARD_COUNT number', () => {
    expect(loadConfig({ ...valid, SHARD_COUNT: '4', SHARDS: '2,0' })).toMatchObject({ SHARD_COUNT: 4, SHARDS: [0, 2] });
    expect(loadConfig({ ...valid, SHARD_COUNT: '8', SHARDS: '0-3' }).SHARDS).toEqual([0, 1, 2, 3]);
    expect(loadConfig({ ...valid, SHARD_COUNT: '8', SHARDS: ' 4-5, 7 ' }).SHARDS).toEqual([4, 5, 7]);
    expect(loadConfig({ ...valid, SHARD_COUNT: '2', SHARDS: 'all' }).SHARDS).toBe('all');
  });

  it('refuses shards outside SHARD_COUNT, naming the valid ids', () => {
    expect(problemsOf({ ...valid, SHARD_COUNT: '2', SHARDS: '1,2' })).toEqual([
      'SHARDS names shard 2, but SHARD_COUNT is 2, so shard ids run from 0 to 1',
    ]);
  });

  it('refuses a share of the shards while SHARD_COUNT is auto', () => {
    expect(problemsOf({ ...valid, SHARDS: '0' })).toEqual([
      'SHARDS must be all while SHARD_COUNT is auto: to split the shards over processes, set SHARD_COUNT to the same number in every process',
    ]);
  });

  it('refuses malformed lists, backwards ranges and duplicates, one message each', () => {
    const listHint = 'SHARDS must be all, a list of shard ids such as 0,1,2 or a range such as 0-3';
    for (const bad of ['[0]', '0,,1', 'one', '0-', '-1', '1.5']) expect(problemsOf({ ...valid, SHARD_COUNT: '4', SHARDS: bad }), bad).toEqual([listHint]);
    expect(problemsOf({ ...valid, SHARD_COUNT: '4', SHARDS: '3-1' })).toEqual(['SHARDS has a range that runs backwards (3-1): write it low-high, such as 1-3']);
    expect(problemsOf({ ...valid, SHARD_COUNT: '4', SHARDS: '0-2,2' })).toEqual(['SHARDS names shard 2 twice']);
    expect(problemsOf({ ...valid, SHARD_COUNT: '4', SHARDS: '0-99999999' })).toEqual(['SHARDS names shard 99999999, more than any bot has (at most 99999)']);
  });

  it('refuses a SHARD_COUNT that is neither auto nor a positive whole number', () => {
    for (const bad of ['0', '-2', '1.5', 'many', '100001'])
      expect(problemsOf({ ...valid, SHARD_COUNT: bad }), bad).toEqual(['SHARD_COUNT must be auto or a whole number of shards from 1 to 100000']);
  });
});

describe('configuration: retired settings', () => {
  it('warns about SEGMIND_CONNECTIONS (the pool follows SEGMIND_CONCURRENCY) instead of refusing an older .env', () => {
    const env = { ...valid, SEGMIND_CONNECTIONS: '16' };
    expect(() => loadConfig(env)).not.toThrow();
    expect(retiredSettingWarnings(env)).toEqual([expect.stringContaining('SEGMIND_CONCURRENCY')]);
    expect(retiredSettingWarnings(valid)).toEqual([]);
  });
});
