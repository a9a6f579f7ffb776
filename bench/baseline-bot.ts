/**
 * The baseline: the least a discord.js bot can do for /imagine. It defers, asks the (fake) Segmind for each image in
 * parallel, and edits the reply with the image bytes: no queue, no credits, no journal, no logging, no embeds.
 * Same discord.js client, same fakes, same loopback: what is left when our code is taken away.
 *
 * Environment: DISCORD_TOKEN, DISCORD_API_URL, SEGMIND_API_URL, SEGMIND_API_KEY, SEGMIND_CONCURRENCY (connections to
 * Segmind), and BASELINE_REST_GLOBAL_RPS (optional: discord.js's global REST limit, default 50 like any discord.js bot).
 */
import { Client, Events, GatewayIntentBits, type ChatInputCommandInteraction } from 'discord.js';
import { Pool } from 'undici';
import { serveTelemetry } from './lib/telemetry.js';

function required(name: string): string {
  const value = process.env[name];
  if (value === undefined || value === '') throw new Error(`${name} is required`);
  return value;
}

const segmindUrl = new URL('/v1/flux-dev', required('SEGMIND_API_URL'));
const apiKey = required('SEGMIND_API_KEY');
const globalRps = process.env.BASELINE_REST_GLOBAL_RPS;
// As many connections as our bot may have Segmind calls in flight (its pool follows SEGMIND_CONCURRENCY): the same
// limit for both.
const connections = Number(required('SEGMIND_CONCURRENCY'));
if (!Number.isInteger(connections) || connections < 1) throw new Error('SEGMIND_CONCURRENCY must be a positive integer');
const segmind = new Pool(segmindUrl.origin, { connections });
const client = new Client({
  intents: [GatewayIntentBits.Guilds],
  rest: { api: required('DISCORD_API_URL'), ...(globalRps ? { globalRequestsPerSecond: Number(globalRps) } : {}) },
});

async function generate(body: Record<string, unknown>): Promise<Buffer> {
  const res = await segmind.request({
    path: segmindUrl.pathname,
    method: 'POST',
    headers: { 'x-api-key': apiKey, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const bytes = Buffer.from(await res.body.arrayBuffer());
  if (res.statusCode !== 200) throw new Error(`Segmind answered ${res.statusCode}`);
  return bytes;
}

async function imagine(interaction: ChatInputCommandInteraction): Promise<void> {
  await interaction.deferReply();
  const samples = interaction.options.getInteger('samples') ?? 1;
  const seed = interaction.options.getInteger('seed') ?? 0;
  const format = interaction.options.getString('output_format') ?? 'webp';
  const base = {
    prompt: interaction.options.getString('prompt', true),
    aspect_ratio: interaction.options.getString('aspect_ratio') ?? '1:1',
    output_format: format,
    samples: 1,
  };
  const images = await Promise.all(Array.from({ length: samples }, (_, i) => generate({ ...base, seed: seed + i })));
  await interaction.editReply({ files: images.map((attachment, i) => ({ attachment, name: `image-${seed + i}.${format}` })) });
}

let stopping: Promise<void> | undefined;
const telemetry = serveTelemetry({
  audit: () => Promise.resolve(undefined),
  stop: () => {
    stopping ??= client
      .destroy()
      .then(() => segmind.close())
      .then(() => {
        setImmediate(() => process.exit(0));
      });
    return stopping;
  },
});

client.on(Events.InteractionCreate, (interaction) => {
  if (!interaction.isChatInputCommand()) return;
  // A failure is the benchmark's business (the fake Discord records what did not arrive), not the baseline's.
  imagine(interaction).catch(() => undefined);
});

try {
  const ready = new Promise((resolve) => client.once(Events.ClientReady, resolve));
  await client.login(required('DISCORD_TOKEN'));
  await ready;
  telemetry.announceReady({ pid: process.pid });
} catch (error) {
  telemetry.fatal(error);
  process.exit(1);
}
