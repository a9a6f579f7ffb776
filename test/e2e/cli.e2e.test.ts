import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { commandDefinitions } from '../../src/commands/index.js';
import { instanceLeaseKey } from '../../src/services/generation/instance-lease.js';
import { FakeDiscord } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { describeImage } from '../fakes/images.js';
import { buildDist, crashAllBotProcesses, startBotProcess, type BotExit, type BotProcess } from '../support/bot-process.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY, eventually } from '../support/harness.js';
import { messageOf, sendImagine } from '../support/imagine.js';
import { REDIS_URL, describeWithRedis, redisRunPrefix, withRedisClient } from '../support/redis.js';

const ROOT = resolve(import.meta.dirname, '../..');
// An empty working directory: no .env from a developer's checkout leaks into these runs.
const CWD = mkdtempSync(join(tmpdir(), 'flux-bot-cli-'));

// The entry points as `npm start` and `npm run commands` run them: compiled JavaScript, plain node, source maps.
beforeAll(buildDist, 180_000);

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function baseEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, ...extra };
  return env;
}

/** `node --enable-source-maps dist/<script>`, as the package.json scripts run it. */
function run(script: string, env: Record<string, string>, nodeOptions: string[] = ['--enable-source-maps']): Promise<Run> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [...nodeOptions, resolve(ROOT, script)], { cwd: CWD, env: baseEnv(env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolveRun({ code, stdout, stderr }));
  });
}

describe('the compiled start', () => {
  it('`npm start` and `npm run commands` run the compiled entry points with plain node, no tsx', () => {
    const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    expect(scripts.start).toBe('node --enable-source-maps dist/index.js');
    expect(scripts.commands).toBe('node --enable-source-maps dist/scripts/sync-commands.js');
    expect(scripts.prepare, 'npm install builds dist/').toBe('node scripts/prepare.mjs');
  });

  it('points stack traces at the TypeScript lines', async () => {
    // A ConfigError thrown inside dist/config.js, its stack printed as node prints it with the start's flags.
    const probe = join(CWD, 'stack-probe.mjs');
    writeFileSync(
      probe,
      `import { loadConfig } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist/config.js')).href)};\n` +
        'try { loadConfig({}); } catch (error) { console.log(error.stack); }\n',
    );
    const mapped = await run(probe, {});
    expect(mapped.stdout).toContain('Invalid configuration:');
    expect(mapped.stdout).toMatch(/\bsrc\/config\.ts:\d+:\d+/);
    expect(mapped.stdout).not.toMatch(/\bdist\/config\.js:\d+/);
    // the flag is what does it: without it the same throw points into dist/
    const unmapped = await run(probe, {}, []);
    expect(unmapped.stdout).toMatch(/\bdist\/config\.js:\d+:\d+/);
  });
});

describe('start-up configuration errors', () => {
  it('stops with one message naming every missing variable', async () => {
    const result = await run('dist/index.js', {});
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('Invalid configuration:');
    expect(result.stderr).toContain('DISCORD_TOKEN is required');
    expect(result.stderr).toContain('SEGMIND_API_KEY is required');
  });

  it('names the variable and the rule, never the secret value', async () => {
    const result = await run('dist/index.js', {
      DISCORD_TOKEN: 'leaky-but-short-secret',
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      SEGMIND_API_URL: 'not a url',
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('DISCORD_TOKEN does not look like a bot token (too short)');
    expect(result.stderr).toContain('SEGMIND_API_URL must be an http(s) URL');
    expect(result.stderr + result.stdout).not.toContain('leaky-but-short-secret');
    expect(result.stderr + result.stdout).not.toContain(TEST_SEGMIND_KEY);
  });
});

describe('start-up storage errors', () => {
  it.each([
    ['redis://127.0.0.1:1', '127.0.0.1:1'],
    ['redis://bot:hunter2-store-password@127.0.0.1:1/3', '127.0.0.1:1'],
  ])('stops with exit code 1 and one message naming STORE_URL when Redis is unreachable (%s)', async (url, where) => {
    const started = Date.now();
    const result = await run('dist/index.js', {
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      // nothing listens here either: the bot must stop before it tries Discord
      DISCORD_API_URL: 'http://127.0.0.1:1/api',
      STORE_URL: url,
      LOG_LEVEL: 'info',
    });
    expect(result.code).toBe(1);
    expect(Date.now() - started, 'gives up within a few seconds').toBeLessThan(15_000);
    const lines = result.stderr.split('\n').filter((l) => l.trim() !== '');
    expect(lines, result.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^STORE_URL: cannot connect to Redis at ${where.replace(/\./g, '\\.')}\\b`));
    expect(lines[0]).toContain('ECONNREFUSED');
    // no stack trace, and the bot never got as far as Discord
    expect(result.stderr).not.toMatch(/\n\s+at /);
    expect(result.stdout).not.toContain('storage ready');
    expect(result.stdout).not.toContain('connected to Discord');
    const output = result.stdout + result.stderr;
    expect(output).not.toContain(TEST_DISCORD_TOKEN);
    expect(output).not.toContain(TEST_SEGMIND_KEY);
    expect(output).not.toContain('hunter2-store-password');
  });
});

describe('the real entry points against the fakes', () => {
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  beforeAll(async () => {
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
  });
  afterAll(async () => {
    await discord.stop();
    await segmind.stop();
  });
  const env = () => ({
    DISCORD_TOKEN: TEST_DISCORD_TOKEN,
    SEGMIND_API_KEY: TEST_SEGMIND_KEY,
    DISCORD_API_URL: discord.apiUrl,
    SEGMIND_API_URL: segmind.url,
    DISCORD_GUILD_ID: discord.guildId,
  });

  it('`npm run commands` registers the commands once, then reports them up to date', async () => {
    const first = await run('dist/scripts/sync-commands.js', env());
    expect(first.stderr).toBe('');
    expect(first.code).toBe(0);
    expect(first.stdout).toContain(`Registered ${commandDefinitions.length} command(s) in guild ${discord.guildId}`);
    const second = await run('dist/scripts/sync-commands.js', env());
    expect(second.code).toBe(0);
    expect(second.stdout).toContain('Commands are already up to date; nothing was sent.');
    expect(discord.commandPuts).toHaveLength(1);
  });

  it('`npm start` connects, answers /imagine with an image, and exits cleanly on SIGTERM', async () => {
    const child = spawn(process.execPath, ['--enable-source-maps', join(ROOT, 'dist/index.js')], {
      cwd: CWD,
      env: baseEnv({ ...env(), LOG_LEVEL: 'info' }),
    });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stdout += d.toString()));
    const exited = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    try {
      // generous: the classifier's model loads first, and CI runs test files side by side on 2 cores
      await eventually(() => stdout.includes('connected to Discord'), 'the bot to connect', 30_000);
      const interaction = sendImagine(discord, { prompt: 'a tiny robot', output_format: 'png', seed: 9 });
      const edit = await interaction.waitForRequest((r) => r.method === 'PATCH', 10_000);
      expect(edit.files[0]!.name).toBe('flux-9.png');
      expect((await describeImage(edit.files[0]!.bytes)).format).toBe('png');
      expect(messageOf(edit.json).embeds?.[0]?.image?.url).toBe('attachment://flux-9.png');
    } finally {
      child.kill('SIGTERM');
    }
    expect(await exited).toBe(0);
    expect(stdout).toContain('"msg":"shutting down"');
    expect(stdout).not.toContain(TEST_DISCORD_TOKEN);
    expect(stdout).not.toContain(TEST_SEGMIND_KEY);
  });
});

describeWithRedis('one live process per INSTANCE_ID on a Redis', () => {
  // The entry point writes under the default namespace `flux`: a run-unique INSTANCE_ID keeps runs apart.
  const instanceId = `${redisRunPrefix}lease`;
  const leaseKey = instanceLeaseKey('flux', instanceId);
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  beforeAll(async () => {
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
  });
  afterEach(async () => {
    await crashAllBotProcesses();
  });
  afterAll(async () => {
    await discord.stop();
    await segmind.stop();
    await withRedisClient((c) => c.del(leaseKey));
  });

  function startBot(): BotProcess {
    const bot = startBotProcess(
      {
        DISCORD_TOKEN: TEST_DISCORD_TOKEN,
        SEGMIND_API_KEY: TEST_SEGMIND_KEY,
        DISCORD_API_URL: discord.apiUrl,
        SEGMIND_API_URL: segmind.url,
        DISCORD_GUILD_ID: discord.guildId,
        STORE_URL: REDIS_URL,
        INSTANCE_ID: instanceId,
        HTTP_PORT: '0',
        HTTP_HOST: '127.0.0.1',
        LOG_LEVEL: 'info',
      },
      { compiled: true },
    );
    onTestFailed(() => console.log(`--- bot process ${bot.pid} ---\n${bot.output()}`));
    return bot;
  }

  function exitWithin(bot: BotProcess, ms: number): Promise<BotExit> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`bot process ${bot.pid} still running after ${ms} ms`)), ms);
    });
    return Promise.race([bot.exited, late]).finally(() => clearTimeout(timer));
  }

  async function healthz(bot: BotProcess): Promise<{ status: number; body: unknown }> {
    const { port } = (await bot.waitForLog('serving /healthz and /metrics')) as unknown as { port: number };
    const res = await fetch(`http://127.0.0.1:${port}/healthz`);
    return { status: res.status, body: await res.json() };
  }

  it('refuses a second live process with exit code 1 and one message; the first keeps working; after a clean stop a new one starts at once', async () => {
    const first = startBot();
    await first.waitForLog('connected to Discord');

    const second = startBot();
    // recognised by the first one's lease renewal (every 10 s), never by waiting out its 60 s lease
    expect(await exitWithin(second, 20_000)).toEqual({ code: 1, signal: null });
    const text = second
      .output()
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith('{'));
    expect(text).toHaveLength(1);
    expect(text[0]).toMatch(
      new RegExp(`^INSTANCE_ID "${instanceId}" is in use by another running bot process on this Redis \\(pid \\d+ on host `),
    );
    expect(second.output()).not.toContain('connected to Discord');
    expect(second.output()).not.toContain(TEST_DISCORD_TOKEN);
    expect(second.output()).not.toContain(TEST_SEGMIND_KEY);

    // the first one is unaffected: connected, storage up, still holding its lease
    expect(await healthz(first)).toMatchObject({ status: 200, body: { status: 'ok' } });
    expect(first.logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(await withRedisClient((c) => c.get(leaseKey))).not.toBeNull();

    first.terminate();
    expect(await first.exited).toEqual({ code: 0, signal: null });
    expect(await withRedisClient((c) => c.get(leaseKey)), 'released on a clean stop').toBeNull();

    const started = Date.now();
    const third = startBot();
    await third.waitForLog('connected to Discord');
    expect(third.logs.filter((l) => l.level >= 40)).toEqual([]);
    expect(Date.now() - started).toBeLessThan(10_000);
    third.terminate();
    expect(await third.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
