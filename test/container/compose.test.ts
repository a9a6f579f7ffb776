/**
 * No container daemon runs here, so the Dockerfile and compose.yaml are checked for what they promise: the services,
 * their variables and health checks, and that both agree with the bot (its start command, its health route, its
 * shutdown grace, its settings). `image-steps.container.ts` (a CI step) replays the Dockerfile's steps.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { configSchema, loadConfig } from '../../src/config.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY } from '../support/harness.js';
import { durationMs, envOf, execForm, healthcheckOf, instructionsOf, readDockerfile, ROOT } from './dockerfile.js';

interface HealthcheckSpec {
  test: string[];
  interval?: string;
  timeout?: string;
  start_period?: string;
  retries?: number;
}

interface ServiceSpec {
  build?: string;
  image?: string;
  command?: string[];
  env_file?: string | string[];
  environment?: Record<string, string>;
  volumes?: string[];
  restart?: string;
  stop_grace_period?: string;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: HealthcheckSpec;
}

interface ComposeFile {
  services: Record<string, ServiceSpec>;
  volumes?: Record<string, unknown>;
}

const composeText = readFileSync(join(ROOT, 'compose.yaml'), 'utf8');
const compose = parse(composeText) as ComposeFile;
const stages = readDockerfile();
const runStage = stages.at(-1)!;
const packageJson = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
const defaults = loadConfig({ DISCORD_TOKEN: TEST_DISCORD_TOKEN, SEGMIND_API_KEY: TEST_SEGMIND_KEY });
const SETTINGS = new Set(Object.keys(configSchema.shape));
/** Gateway shards: read by discord.js from the environment when our config does not name them. */
const DISCORD_JS_VARIABLES = new Set(['SHARDS', 'SHARD_COUNT']);

/** The commented-out second bot, uncommented and parsed: it must work as written once someone enables it. */
function commentedSecondBot(): ServiceSpec {
  const lines = composeText.split('\n');
  const start = lines.findIndex((l) => /^ {2}# bot-2:\s*$/.test(l));
  expect(start, 'a commented example of a second bot process').toBeGreaterThan(0);
  const block: string[] = [];
  for (const line of lines.slice(start)) {
    if (!line.startsWith('  #')) break;
    block.push(line.replace(/^ {2}# ?/, ''));
  }
  return (parse(block.join('\n')) as Record<string, ServiceSpec>)['bot-2']!;
}

describe('compose.yaml', () => {
  const bot = compose.services.bot!;
  const redis = compose.services.redis!;

  it('runs the bot built from this Dockerfile next to a Redis, and nothing else', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['bot', 'redis']);
    expect(bot.build).toBe('.');
    expect(redis.image).toMatch(/^redis:\d/);
  });

  it('passes .env through and points the store at the Redis service', () => {
    expect([bot.env_file].flat()).toContain('.env');
    expect(bot.environment?.STORE_URL).toBe('redis://redis:6379');
    expect(bot.environment?.INSTANCE_ID).toMatch(/\S/);
    // every variable set is one the bot (or discord.js) reads: a typo would be silently ignored
    for (const name of Object.keys(bot.environment ?? {})) expect(SETTINGS.has(name) || DISCORD_JS_VARIABLES.has(name), name).toBe(true);
  });

  it('keeps the health server on for the health check, whatever .env says (.env.example leaves HTTP_PORT empty)', () => {
    const envExample = readFileSync(join(ROOT, '.env.example'), 'utf8');
    expect(envExample).toMatch(/^HTTP_PORT=$/m);
    const port = Number(bot.environment?.HTTP_PORT);
    expect(Number.isInteger(port) && port > 0).toBe(true);
    // HTTP_HOST is left to the image (loopback): the check runs inside the container
    expect(envOf(runStage).HTTP_HOST).toBe('127.0.0.1');
  });

  it('restarts the bot and Redis, and starts the bot once Redis is healthy', () => {
    expect(bot.restart).toBe('unless-stopped');
    expect(redis.restart).toBe('unless-stopped');
    expect(bot.depends_on).toEqual({ redis: { condition: 'service_healthy' } });
  });

  it("gives the bot longer to stop than its own shutdown grace (docker's default 10 s would cut running images)", () => {
    expect(durationMs(bot.stop_grace_period!)).toBeGreaterThan(defaults.SHUTDOWN_GRACE_SECONDS * 1000);
  });

  it("checks the bot's health with the image's own check, and Redis's with a ping", () => {
    expect(bot.healthcheck?.test).toEqual(['CMD', ...healthcheckOf(runStage).command]);
    expect(durationMs(bot.healthcheck!.timeout!)).toBeLessThan(durationMs(bot.healthcheck!.interval!));
    expect(redis.healthcheck?.test).toEqual(['CMD', 'redis-cli', 'ping']);
    expect(redis.healthcheck?.retries).toBeGreaterThan(0);
  });

  it('keeps the credit ledger in Redis on a named volume, written to an append-only file', () => {
    expect(redis.volumes).toContain('redis-data:/data');
    expect(compose.volumes).toHaveProperty('redis-data');
    expect(redis.command).toEqual(expect.arrayContaining(['--appendonly', 'yes']));
  });

  it('has a commented second bot process that shares the Redis under its own INSTANCE_ID and shards', () => {
    const second = commentedSecondBot();
    expect(second.image).toBe(bot.image);
    expect(second.environment?.STORE_URL).toBe(bot.environment?.STORE_URL);
    expect(second.environment?.INSTANCE_ID).toMatch(/\S/);
    expect(second.environment?.INSTANCE_ID).not.toBe(bot.environment?.INSTANCE_ID);
    expect(second.environment?.SYNC_COMMANDS_ON_START, 'one process registers the commands').toBe('false');
    expect(second.depends_on).toEqual(bot.depends_on);
    expect(second.healthcheck).toEqual(bot.healthcheck);
    // two gateway connections for the same shard would answer every interaction twice
    expect(second.environment?.SHARDS).toBe('1');
    expect(second.environment?.SHARD_COUNT).toBe('2');
    expect(composeText).toMatch(/^ {6}# SHARDS: "0"$/m);
    expect(composeText).toMatch(/^ {6}# SHARD_COUNT: "2"$/m);
    for (const name of Object.keys(second.environment ?? {})) expect(SETTINGS.has(name) || DISCORD_JS_VARIABLES.has(name), name).toBe(true);
  });
});

describe('Dockerfile', () => {
  it('builds in one stage and runs in another, both on an official Node 24 slim image', () => {
    expect(stages).toHaveLength(2);
    for (const stage of stages) expect(stage.from).toMatch(/^node:24(\.\d+)*-(bookworm-)?slim$/);
    expect(stages[0]!.name).toBe('build');
    expect(instructionsOf(stages[0]!, 'RUN')).toContain('npm run build');
  });

  it('runs with production dependencies and the built dist/ only, dist/ copied before the install runs prepare', () => {
    const steps = runStage.instructions.map((i) => `${i.keyword} ${i.args}`);
    const copyDist = steps.indexOf('COPY --from=build /app/dist/ dist/');
    const install = steps.findIndex((s) => s.startsWith('RUN npm ci --omit=dev'));
    expect(copyDist).toBeGreaterThan(0);
    expect(install).toBeGreaterThan(copyDist);
    expect(steps.some((s) => s.startsWith('COPY src/ '))).toBe(false);
    expect(envOf(runStage).NODE_ENV).toBe('production');
  });

  it('runs as the unprivileged node user, under tini, with the same command as `npm start`', () => {
    expect(instructionsOf(runStage, 'USER')).toEqual(['node']);
    expect(instructionsOf(runStage, 'RUN').some((r) => /apt-get install .*\btini\b/.test(r))).toBe(true);
    expect(execForm(instructionsOf(runStage, 'ENTRYPOINT')[0]!)).toEqual(['/usr/bin/tini', '--']);
    expect(execForm(instructionsOf(runStage, 'CMD')[0]!).join(' ')).toBe(packageJson.scripts.start);
  });

  it('keeps data/ (the default SQLite store) on a volume the bot can write', () => {
    expect(instructionsOf(runStage, 'WORKDIR')).toEqual(['/app']);
    expect(defaults.STORE_URL).toBe('sqlite://data/bot.sqlite');
    expect(instructionsOf(runStage, 'VOLUME')).toEqual(['["/app/data"]']);
    expect(instructionsOf(runStage, 'RUN')).toContain('mkdir -p data && chown node:node data');
  });

  it('asks /healthz with node itself, through the compiled health-check script', () => {
    const { options, command } = healthcheckOf(runStage);
    expect(command).toEqual(['node', 'dist/scripts/healthcheck.js']);
    expect(existsSync(join(ROOT, 'src/scripts/healthcheck.ts'))).toBe(true);
    expect(durationMs(options['start-period']!)).toBeGreaterThanOrEqual(30_000);
    expect(envOf(runStage).HTTP_PORT).toMatch(/^\d+$/);
  });

  it('.dockerignore keeps secrets, state and local builds out of the build context', () => {
    const ignored = readFileSync(join(ROOT, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['.env', 'data/', 'node_modules/', 'dist/', '.git/']) expect(ignored).toContain(entry);
  });
});
