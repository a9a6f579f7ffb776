/**
 * The Dockerfile's steps replayed without a container daemon (none on this machine), as a CI step (`.ci/run`, through
 * `test/container/vitest.config.ts`; too slow for `npm test`): each stage in a fresh directory standing for `/app`,
 * its COPY and RUN instructions done as written (npm installs with the registry, scripts as the image runs them),
 * then the run stage's ENTRYPOINT + CMD started as an unprivileged user against the fake Discord and fake Segmind, its
 * HEALTHCHECK command run, an image generated, and SIGTERM through the init process ending it cleanly.
 *
 * Not reproduced (printed at the end): the base image (this machine's Node stands in for node:24-bookworm-slim's),
 * Debian packages (tini is used from this machine when installed), the `node` user (nobody stands in), layers,
 * VOLUME and the HEALTHCHECK's schedule.
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, posix } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { createLogger } from '../../src/logger.js';
import { openStorage } from '../../src/services/storage/open-storage.js';
import { FakeDiscord } from '../fakes/fake-discord.js';
import { FakeSegmind } from '../fakes/fake-segmind.js';
import { describeImage } from '../fakes/images.js';
import { crashAllBotProcesses, startBotProcess, type BotProcess } from '../support/bot-process.js';
import { TEST_DISCORD_TOKEN, TEST_SEGMIND_KEY } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { envOf, execForm, healthcheckOf, instructionsOf, readDockerfile, ROOT, type Stage } from './dockerfile.js';

const WORKDIR = '/app';
const WORK = mkdtempSync(join(tmpdir(), 'flux-image-steps-'));
// mkdtemp makes it private; the unprivileged user must reach the run stage's files, as in the image
chmodSync(WORK, 0o755);
const stages = readDockerfile();
const stageDirs = new Map<string, string>();

/** The image's `USER node` stands in as nobody here: an account with no rights on anything but data/. */
const asRoot = process.getuid?.() === 0;
const nobody = (() => {
  const entry = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((line) => line.startsWith('nobody:'));
  const [, , uid, gid] = entry?.split(':') ?? [];
  return { uid: Number(uid ?? 65534), gid: Number(gid ?? 65534) };
})();
const user = asRoot ? nobody : undefined;
const TINI = '/usr/bin/tini';
/** CI sets IMAGE_STEPS_BUILD_DEPS=checkout to save one full install: see run(). */
const BUILD_DEPS_FROM_CHECKOUT = process.env.IMAGE_STEPS_BUILD_DEPS === 'checkout';

const timings: string[] = [];
/** Every process of the started image (init and node), to kill after a failure. */
const started = new Set<number>();
let imageBot: BotProcess | undefined;
const notRun: string[] = [
  'the base image node:24-bookworm-slim (this machine Node stands in)',
  'layers, VOLUME and the HEALTHCHECK schedule (the check command itself is run below)',
];

function sh(command: string, cwd: string, env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('sh', ['-c', command], { cwd, env, maxBuffer: 64 * 1024 * 1024 }, (error, stdout, stderr) => {
      if (error) reject(new Error(`"${command}" failed (${error.message}):\n${stdout}\n${stderr}`));
      else resolve();
    });
  });
}

async function timed<T>(what: string, step: () => Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await step();
  timings.push(`${what}: ${((performance.now() - started) / 1000).toFixed(1)} s`);
  return result;
}

/** The image's path under WORKDIR as a path in the stage's directory. */
function inStage(stageDir: string, imagePath: string): string {
  const absolute = posix.resolve(WORKDIR, imagePath);
  expect(absolute.startsWith(`${WORKDIR}/`) || absolute === WORKDIR, `${imagePath} is under ${WORKDIR}`).toBe(true);
  return join(stageDir, posix.relative(WORKDIR, absolute));
}

function copy(stageDir: string, args: string): void {
  const tokens = args.split(/\s+/);
  const from = tokens[0]!.startsWith('--from=') ? tokens.shift()!.slice('--from='.length) : undefined;
  const dest = tokens.pop()!;
  for (const source of tokens) {
    const sourcePath = from === undefined ? join(ROOT, source) : inStage(stageDirs.get(from)!, source);
    const isDir = statSync(sourcePath).isDirectory();
    const target = inStage(stageDir, dest.endsWith('/') && !isDir ? posix.join(dest, basename(source)) : dest);
    cpSync(sourcePath, target, { recursive: true });
  }
}

/** One command of a RUN line, done here as the image would (as root, before USER), or skipped with the reason. */
async function run(stageDir: string, command: string, env: Record<string, string>): Promise<void> {
  if (/^(apt-get |rm -rf \/var\/lib\/apt\/lists)/.test(command)) {
    notRun.push(`RUN ${command} (Debian packages; ${existsSync(TINI) ? `tini used from ${TINI}` : 'tini not installed here: node started without it'})`);
    return;
  }
  if (command === 'npm cache clean --force') {
    notRun.push(`RUN ${command} (would empty this machine's shared npm cache; in the image it only shrinks the layer)`);
    return;
  }
  const chown = /^chown node:node (\S+)$/.exec(command);
  if (chown) {
    if (user) chownSync(inStage(stageDir, chown[1]!), user.uid, user.gid);
    else notRun.push(`RUN ${command} (not root here: the bot runs as the current user)`);
    return;
  }
  if (BUILD_DEPS_FROM_CHECKOUT && command.startsWith('npm ci --ignore-scripts')) {
    // The build stage's install is the checkout's own (same lockfile, installed by CI moments before): linked, not
    // installed a third time. The run stage's production install always runs.
    symlinkSync(join(ROOT, 'node_modules'), join(stageDir, 'node_modules'));
    notRun.push(`RUN ${command} in the build stage (IMAGE_STEPS_BUILD_DEPS=checkout: the checkout's node_modules linked instead)`);
    return;
  }
  // Paths inside the stage only (node_modules/…): nothing outside it can be removed by a replayed step.
  if (/^rm -rf (node_modules\/[\w./-]+ ?)+$/.test(command) && !command.includes('..')) {
    await timed(`RUN ${command}`, () => sh(command, stageDir, env));
    return;
  }
  if (/^(npm (ci|run) |mkdir -p )/.test(command)) {
    await timed(`RUN ${command}`, () => sh(command, stageDir, env));
    return;
  }
  throw new Error(`the Dockerfile runs "${command}", which this replay does not know: teach it (test/container/image-steps.container.ts)`);
}

/** Replays one stage's COPY, ENV and RUN instructions; the run-time ones are checked where they matter. */
async function replay(stage: Stage): Promise<string> {
  const stageDir = join(WORK, stage.name ?? 'run');
  mkdirSync(stageDir);
  chmodSync(stageDir, 0o755);
  if (stage.name) stageDirs.set(stage.name, stageDir);
  const env: Record<string, string> = { ...machineEnv };
  for (const { keyword, args } of stage.instructions) {
    if (keyword === 'WORKDIR') expect(args).toBe(WORKDIR);
    else if (keyword === 'COPY') copy(stageDir, args);
    else if (keyword === 'ENV') Object.assign(env, envOf({ ...stage, instructions: [{ keyword, args }] }));
    else if (keyword === 'RUN') for (const command of args.split(' && ')) await run(stageDir, command.trim(), env);
    else if (!['USER', 'VOLUME', 'STOPSIGNAL', 'HEALTHCHECK', 'ENTRYPOINT', 'CMD'].includes(keyword)) {
      throw new Error(`the Dockerfile uses ${keyword}, which this replay does not know`);
    }
  }
  return stageDir;
}

/**
 * The environment RUN steps see: this machine's (its CA certificates and proxies reach the registry, as a docker build
 * would through the daemon's network), without what vitest and npx add to it.
 */
const machineEnv = Object.fromEntries(
  Object.entries(process.env).filter(
    (entry): entry is [string, string] =>
      entry[1] !== undefined && !/^(VITEST|npm_)/i.test(entry[0]) && !['NODE_ENV', 'NODE_OPTIONS', 'TEST'].includes(entry[0]),
  ),
);

/**
 * A process and its descendants, with the program they run (argv[0]: Node 22+ names its main thread "MainThread", so
 * not /proc's Name) and their real uid, from /proc.
 */
function processTree(pid: number): Array<{ pid: number; name: string; uid: number }> {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const name = basename(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')[0] ?? '?');
  const uid = Number(/^Uid:\s+(\d+)/m.exec(status)?.[1]);
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return [{ pid, name, uid }, ...children.flatMap(processTree)];
}

function runAs(command: string[], cwd: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(command[0]!, command.slice(1), { cwd, env, timeout: 10_000, ...user }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, output: stdout + stderr }),
    );
  });
}

describe('the Dockerfile, replayed in a fresh directory', () => {
  const runStage = stages.at(-1)!;
  let runDir: string;
  let discord: FakeDiscord;
  let segmind: FakeSegmind;
  let containerEnv: Record<string, string>;

  beforeAll(async () => {
    for (const stage of stages) runDir = await replay(stage);
    discord = await FakeDiscord.start();
    segmind = await FakeSegmind.start({ apiKey: TEST_SEGMIND_KEY });
    const home = join(WORK, 'home');
    mkdirSync(home);
    if (user) chownSync(home, user.uid, user.gid);
    containerEnv = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      ...envOf(runStage),
      // what the operator's .env would hold, pointed at the fakes
      DISCORD_TOKEN: TEST_DISCORD_TOKEN,
      SEGMIND_API_KEY: TEST_SEGMIND_KEY,
      DISCORD_API_URL: discord.apiUrl,
      SEGMIND_API_URL: segmind.url,
      DISCORD_GUILD_ID: discord.guildId,
      LOG_LEVEL: 'info',
    };
  }, 900_000);

  afterAll(async () => {
    // tini puts node in a process group of its own: killing the bot's group (crash()) would leave node running
    if (imageBot) {
      try {
        for (const p of processTree(imageBot.pid)) started.add(p.pid);
      } catch {
        // the init has exited already
      }
    }
    for (const pid of [...started].reverse()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await crashAllBotProcesses();
    await discord?.stop();
    await segmind?.stop();
    console.log(
      [`image steps replayed in ${WORK}`, ...timings.map((t) => `  ${t}`), 'not reproduced here:', ...notRun.map((n) => `  ${n}`)].join('\n'),
    );
  });

  it('installs production dependencies only, keeping the dist/ built in the build stage', () => {
    expect(existsSync(join(runDir, 'dist/index.js'))).toBe(true);
    expect(existsSync(join(runDir, 'dist/index.js.map'))).toBe(true);
    expect(existsSync(join(runDir, 'node_modules/discord.js'))).toBe(true);
    for (const devOnly of ['typescript', 'tsx', 'vitest', 'eslint']) expect(existsSync(join(runDir, 'node_modules', devOnly)), devOnly).toBe(false);
    expect(existsSync(join(runDir, 'src/index.ts')), 'no TypeScript sources in the image').toBe(false);
  });

  it('starts unprivileged under the init, is healthy, generates an image, and stops cleanly on SIGTERM', async () => {
    const entrypoint = execForm(instructionsOf(runStage, 'ENTRYPOINT')[0]!);
    const cmd = execForm(instructionsOf(runStage, 'CMD')[0]!);
    const command = (existsSync(entrypoint[0]!) ? [...entrypoint, ...cmd] : cmd) as [string, ...string[]];
    const healthcheck = healthcheckOf(runStage).command;

    // As PID 1, tini reaps every orphan; here it registers as a subreaper to do the same (and not warn)
    const bot: BotProcess = startBotProcess({ TINI_SUBREAPER: '1' }, { command, cwd: runDir, user, baseEnv: containerEnv });
    imageBot = bot;
    onTestFailed(() => console.log(`--- bot process ${bot.pid} ---\n${bot.output()}`));
    await timed('start to "connected to Discord"', () => bot.waitForLog('connected to Discord', 120_000));
    const tree = processTree(bot.pid);
    for (const p of tree) started.add(p.pid);
    expect(tree.map((p) => p.name)).toContain('node');
    if (existsSync(entrypoint[0]!)) expect(tree[0]!.name).toBe(basename(entrypoint[0]!));
    if (user) for (const p of tree) expect(p.uid, `${p.name} (${p.pid}) runs as the unprivileged user`).toBe(user.uid);

    const healthy = await runAs(healthcheck, runDir, containerEnv);
    expect(healthy, 'the HEALTHCHECK command').toMatchObject({ code: 0, output: expect.stringContaining('answered 200') as unknown });

    const interaction = sendImagine(discord, { prompt: 'a lighthouse in a container', output_format: 'png', seed: 13 });
    const edit = await interaction.waitForRequest((r) => r.method === 'PATCH' && r.files.length > 0, 60_000);
    expect(edit.files[0]!.name).toBe('flux-13.png');
    expect((await describeImage(edit.files[0]!.bytes)).format).toBe('png');
    // the image was checked by the classifier's worker thread, loaded from dist/
    await bot.waitForLog((l) => l.msg === 'imagine job finished');

    bot.terminate();
    expect(await timed('SIGTERM to exit', () => bot.exited)).toEqual({ code: 0, signal: null });
    expect(bot.logsWith('shutting down')[0]).toMatchObject({ signal: 'SIGTERM' });
    expect(bot.logs.filter((l) => l.level >= 50)).toEqual([]);
    expect(bot.output()).not.toContain(TEST_DISCORD_TOKEN);
    expect(bot.output()).not.toContain(TEST_SEGMIND_KEY);

    const down = await runAs(healthcheck, runDir, containerEnv);
    expect(down.code, 'the HEALTHCHECK command with the bot stopped').toBe(1);

    // the SQLite store was written by the unprivileged user into data/, and its ledger is whole
    const db = join(runDir, 'data/bot.sqlite');
    if (user) expect(statSync(db).uid).toBe(user.uid);
    const storage = await openStorage(`sqlite://${db}`, { logger: createLogger({ level: 'silent', secrets: [] }) });
    try {
      await expectConsistentLedger(storage, { [discord.defaultUserId]: 1 }, { guildId: discord.guildId });
    } finally {
      await storage.close();
    }
  }, 240_000);
});
