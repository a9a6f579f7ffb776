/**
 * The container's HEALTHCHECK script (`src/scripts/healthcheck.ts`) against a real HTTP server: exit 0 only on a 200
 * from /healthz at the address the bot listens on, exit 1 with a reason otherwise.
 */
import { execFile } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { distIsFresh } from '../support/bot-process.js';
import { ROOT } from './dockerfile.js';

// The compiled script the image runs when dist/ is up to date (CI), else the source through tsx.
const [COMMAND, ...ARGS] = distIsFresh()
  ? [process.execPath, join(ROOT, 'dist/scripts/healthcheck.js')]
  : [join(ROOT, 'node_modules/.bin/tsx'), join(ROOT, 'src/scripts/healthcheck.ts')];
// no .env in the working directory
const CWD = mkdtempSync(join(tmpdir(), 'flux-healthcheck-'));

interface Check {
  code: number | null;
  stdout: string;
  stderr: string;
}

function check(env: Record<string, string>): Promise<Check> {
  return new Promise((resolve) => {
    execFile(COMMAND, ARGS, { cwd: CWD, env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env } }, (error, stdout, stderr) =>
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, stdout, stderr }),
    );
  });
}

describe('the container health check', () => {
  let server: Server;
  let port: number;
  let status = 200;
  const paths: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(req.url === '/healthz' ? status : 404, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: status === 200 ? 'ok' : 'down' }));
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    server.close();
    await once(server, 'close');
  });

  it('exits 0 when /healthz answers 200, asking loopback for a bot listening on every interface', async () => {
    status = 200;
    const hosts = ['127.0.0.1', '0.0.0.0'];
    const results = await Promise.all(hosts.map((host) => check({ HTTP_PORT: String(port), HTTP_HOST: host })));
    results.forEach((result, n) => expect(result, hosts[n]).toMatchObject({ code: 0, stdout: expect.stringContaining('answered 200') as unknown }));
    expect(paths).toEqual(['/healthz', '/healthz']);
  });

  it('exits 1 when /healthz answers 503', async () => {
    status = 503;
    const result = await check({ HTTP_PORT: String(port) });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('answered 503');
  });

  it('exits 1 naming HTTP_PORT when the health server is off, and when nothing listens', async () => {
    const [off, closed] = await Promise.all([check({}), check({ HTTP_PORT: '1' })]);
    expect(off.code).toBe(1);
    expect(off.stderr).toContain('HTTP_PORT must be a port from 1 to 65535 for the health check (it is unset)');
    expect(closed.code).toBe(1);
    expect(closed.stderr).toContain('http://127.0.0.1:1/healthz');
  });
});
