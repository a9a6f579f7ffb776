import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { StorageConfigError, openStorage } from '../../src/services/storage/open-storage.js';
import type { Storage } from '../../src/services/storage/storage.js';
import {
  REDIS_URL,
  deleteRedisKeys,
  describeWithRedis,
  listRedisKeys,
  redisTestNamespace,
} from '../support/redis.js';

const logger = pino({ level: 'silent' });
const dir = await mkdtemp(join(tmpdir(), 'flux-open-storage-'));

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Opens, proves a write/read round trip and a ping, closes; returns the kind. */
async function roundTrip(storage: Storage): Promise<string> {
  try {
    await storage.kv.set('probe', { hello: 'world' });
    expect(await storage.kv.get('probe')).toEqual({ hello: 'world' });
    await storage.ping();
    expect(await storage.withLock('k', () => Promise.resolve(42))).toBe(42);
    return storage.kind;
  } finally {
    await storage.close();
  }
}

/** The error openStorage throws for `url`, checked to be a StorageConfigError that came quickly. */
async function configError(url: string, namespace?: string): Promise<StorageConfigError> {
  const started = performance.now();
  const error: unknown = await openStorage(url, { logger, ...(namespace === undefined ? {} : { namespace }) }).then(
    async (storage) => {
      await storage.close();
      throw new Error(`expected ${url} to be refused`);
    },
    (e: unknown) => e,
  );
  expect(performance.now() - started).toBeLessThan(5000);
  expect(error).toBeInstanceOf(StorageConfigError);
  return error as StorageConfigError;
}

describe('openStorage', () => {
  it('opens memory://', async () => {
    expect(await roundTrip(await openStorage('memory://', { logger }))).toBe('memory');
  });

  it('opens sqlite:///absolute/path, creating the directory', async () => {
    const file = join(dir, 'abs', 'nested', 'bot.sqlite');
    expect(await roundTrip(await openStorage(`sqlite://${file}`, { logger }))).toBe('sqlite');
    expect(existsSync(file)).toBe(true);
  });

  it('opens sqlite://relative/path against the working directory', async () => {
    const file = join(dir, 'rel', 'bot.sqlite');
    const relativePath = relative(process.cwd(), file);
    expect(relativePath.startsWith('/')).toBe(false);
    expect(await roundTrip(await openStorage(`sqlite://${relativePath}`, { logger }))).toBe('sqlite');
    expect(existsSync(file)).toBe(true);
  });

  it('opens the default sqlite://data/bot.sqlite under the working directory', async () => {
    const cwd = join(dir, 'app');
    await mkdir(cwd);
    const previous = process.cwd();
    process.chdir(cwd);
    try {
      expect(await roundTrip(await openStorage('sqlite://data/bot.sqlite', { logger }))).toBe('sqlite');
    } finally {
      process.chdir(previous);
    }
    expect(existsSync(join(cwd, 'data', 'bot.sqlite'))).toBe(true);
  });

  it('refuses an unknown scheme', async () => {
    const error = await configError('postgres://bot:pg-secret-password@db:5432/bot');
    expect(error.message).toMatch(/^STORE_URL: unsupported scheme "postgres:"/);
    expect(error.message).not.toContain('pg-secret-password');
  });

  it.each([
    ['', /not a URL/],
    ['not a url', /not a URL/],
    ['redis://', /no host|not a valid Redis URL/],
    ['redis://127.0.0.1:notaport', /not a valid Redis URL/],
    ['redis://:malformed-secret-pw@127.0.0.1:99999', /not a valid Redis URL/],
    ['redis://127.0.0.1:6379/not-a-db', /database must be a number/],
    ['redis://127.0.0.1:6379?tls=true', /query strings/],
    ['sqlite://', /needs a file path/],
    ['sqlite://:memory:', /use memory:\/\//],
    ['memory://somewhere', /memory store takes no host/],
  ])('refuses the malformed STORE_URL %j', async (url, message) => {
    const error = await configError(url);
    expect(error.message).toMatch(/^STORE_URL: /);
    expect(error.message).toMatch(message);
    expect(error.message).not.toContain('malformed-secret-pw');
  });

  it('refuses an invalid namespace', async () => {
    expect((await configError('memory://', 'has:colon')).message).toMatch(/namespace/);
  });

  it('reports an unreachable Redis quickly, naming the address but never the password', async () => {
    const error = await configError('redis://bot:hunter2-very-secret@127.0.0.1:1');
    expect(error.message).toBe('STORE_URL: cannot connect to Redis at 127.0.0.1:1 (ECONNREFUSED)');
    expect(error.message).not.toContain('hunter2-very-secret');
  });

  it('reports a SQLite path whose parent is a file', async () => {
    const blocker = join(dir, 'not-a-directory');
    await writeFile(blocker, 'x');
    const error = await configError(`sqlite://${join(blocker, 'bot.sqlite')}`);
    expect(error.message).toMatch(/^STORE_URL: cannot create the directory for the SQLite database .*not-a-directory/);
  });

  it('reports a SQLite path that is a directory', async () => {
    const error = await configError(`sqlite://${dir}`);
    expect(error.message).toBe(`STORE_URL: cannot open the SQLite database ${dir} (SQLITE_CANTOPEN: unable to open database file)`);
  });

  it('reports a file that is not a SQLite database, and leaves it as it was', async () => {
    const file = join(dir, 'notes.txt');
    const text = 'not a database, '.repeat(100);
    await writeFile(file, text);
    const error = await configError(`sqlite://${file}`);
    expect(error.message).toMatch(/^STORE_URL: cannot open the SQLite database .*notes\.txt \(SQLITE_NOTADB/);
    expect(await readFile(file, 'utf8')).toBe(text);
  });

  // Root may write anywhere, so this one can only run as another user.
  it.skipIf(process.getuid?.() === 0)('reports a SQLite file in a read-only directory', async () => {
    const readOnly = join(dir, 'read-only');
    await mkdir(readOnly);
    await chmod(readOnly, 0o500);
    try {
      const error = await configError(`sqlite://${join(readOnly, 'bot.sqlite')}`);
      expect(error.message).toMatch(/^STORE_URL: cannot open the SQLite database/);
    } finally {
      await chmod(readOnly, 0o700);
    }
  });
});

describeWithRedis('openStorage on Redis', () => {
  afterAll(async () => {
    await deleteRedisKeys();
  });

  it('opens redis://host:port with keys under the namespace, prefixed once', async () => {
    const namespace = redisTestNamespace();
    const storage = await openStorage(REDIS_URL, { logger, namespace });
    await storage.kv.set('probe', 1);
    expect(await listRedisKeys(namespace)).toEqual([`${namespace}::probe`]);
    expect(await roundTrip(storage)).toBe('redis');
  });

  it('opens redis://host:port/db', async () => {
    expect(await roundTrip(await openStorage(`${REDIS_URL}/0`, { logger, namespace: redisTestNamespace() }))).toBe(
      'redis',
    );
  });

  it('reports a database the server does not have', async () => {
    const error = await configError(`${REDIS_URL}/999`);
    expect(error.message).toMatch(/^STORE_URL: Redis at 127\.0\.0\.1:6379\/999 has no database 999/);
  });

  it('reports refused credentials without repeating the password', async () => {
    const error = await configError('redis://someone:wrong-password-1234@127.0.0.1:6379');
    expect(error.message).toMatch(/^STORE_URL: Redis at 127\.0\.0\.1:6379 refused the credentials/);
    expect(error.message).not.toContain('wrong-password-1234');
  });

  it('reports rediss:// to a server that does not speak TLS, without the password', async () => {
    const error = await configError('rediss://:tls-secret-password@127.0.0.1:6379');
    expect(error.message).toMatch(/^STORE_URL: cannot connect to Redis at 127\.0\.0\.1:6379 \(/);
    expect(error.message).not.toContain('tls-secret-password');
  });
});
