import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';

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
