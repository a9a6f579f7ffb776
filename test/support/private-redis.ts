/**
 * A Redis server of the test's own, on a free port: one the test may kill and start again (the machine's Redis on
 * 6379 is shared and is never touched). It runs as fault tests here must (`--save "" --appendonly no`); `kill()`
 * first takes a snapshot with `redis-cli --rdb` into its temporary directory, which the next `start()` loads, so a
 * kill -9 and a restart keep every key, as a production Redis with persistence would.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const READY_TIMEOUT_MS = 10_000;

/** A port nothing listens on right now (the OS picks it; Redis binds it a moment later). */
async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP address');
  return address.port;
}

/** True once the server answers PING. */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once('error', () => done(false));
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => done(data.toString().startsWith('+PONG')));
  });
}

export class PrivateRedis {
  readonly port: number;
  readonly #dir: string;
  #child: ChildProcess | undefined;
  #exited: Promise<void> = Promise.resolve();

  private constructor(port: number, dir: string) {
    this.port = port;
    this.#dir = dir;
  }

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await freePort(), mkdtempSync(join(tmpdir(), 'flux-private-redis-')));
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts the server (again) on its port and data directory; resolves once it answers PING. */
  async start(): Promise<void> {
    if (this.#child) return;
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.#dir, '--dbfilename', 'dump.rdb', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.#child = child;
    this.#exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    void this.#exited.then(() => {
      if (this.#child === child) this.#child = undefined;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (!(await pings(this.port))) {
      if (this.#child !== child) throw new Error(`redis-server on port ${this.port} exited at start`);
      if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} not ready within ${READY_TIMEOUT_MS} ms`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Snapshots the data for the next start, then kill -9 this server only (by its own process id); resolves once it is gone. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (!child) return;
    await promisify(execFile)('redis-cli', ['-p', String(this.port), '--rdb', join(this.#dir, 'dump.rdb')]);
    child.kill('SIGKILL');
    await this.#exited;
  }

  /** Kills the server and removes its data directory. */
  async destroy(): Promise<void> {
    const child = this.#child;
    child?.kill('SIGKILL');
    if (child) await this.#exited;
    rmSync(this.#dir, { recursive: true, force: true });
  }
}
