/**
 * The container's HEALTHCHECK (`node dist/scripts/healthcheck.js`, see Dockerfile and compose.yaml): asks this bot's
 * own `/healthz` and exits 0 on 200 (`ok` or `degraded`), 1 otherwise. Plain node, since slim images have no curl.
 *
 * It runs inside the container with the bot's environment, so it asks where the bot listens: `HTTP_PORT`, and
 * `HTTP_HOST` (default 127.0.0.1, as the bot's); a bot listening on every interface is asked on loopback.
 */
import { existsSync } from 'node:fs';

// The bot reads .env too (real environment variables win): a mounted .env must not leave the check asking elsewhere.
if (existsSync('.env')) process.loadEnvFile('.env');

const TIMEOUT_MS = 4_000;

function fail(why: string): never {
  process.stderr.write(`healthcheck: ${why}\n`);
  process.exit(1);
}

function healthzUrl(env: NodeJS.ProcessEnv): string {
  const port = Number(env.HTTP_PORT);
  if (!env.HTTP_PORT || !Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new Error(`HTTP_PORT must be a port from 1 to 65535 for the health check (it is ${env.HTTP_PORT ?? 'unset'})`);
  }
  const configured = env.HTTP_HOST?.trim() || '127.0.0.1';
  const host = configured === '0.0.0.0' ? '127.0.0.1' : configured === '::' ? '::1' : configured;
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/healthz`;
}

let url: string;
try {
  url = healthzUrl(process.env);
} catch (error) {
  fail((error as Error).message);
}
try {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  const body = (await res.text()).trim();
  if (res.status !== 200) fail(`${url} answered ${res.status} ${body}`);
  process.stdout.write(`healthcheck: ${url} answered 200 ${body}\n`);
} catch (error) {
  fail(`${url}: ${(error as Error).message}`);
}
