import { StorageConfigError } from './storage-config-error.js';

export interface RedisTarget {
  kind: 'redis';
  tls: boolean;
  host: string;
  port: number;
  database: number | undefined;
  username: string | undefined;
  password: string | undefined;
}

export type StoreTarget = { kind: 'memory' } | { kind: 'sqlite'; path: string } | RedisTarget;

const SUPPORTED = 'memory://, sqlite://<path>, redis://[user:password@]host:port[/db] or rediss://…';

/** Hides the password of a URL that may not even parse, for quoting it back to the operator. */
export function redactUrl(url: string): string {
  // Everything up to the last '@' may be credentials: over-redacting a path is fine, leaking a password is not.
  const at = url.lastIndexOf('@');
  if (at === -1) return url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  return `${scheme}***${url.slice(at)}`;
}

/** Where a Redis target is, for messages: never the credentials. */
export function describeRedisTarget(target: RedisTarget): string {
  const host = target.host.includes(':') ? `[${target.host}]` : target.host;
  return `${host}:${target.port}${target.database === undefined ? '' : `/${target.database}`}`;
}

/**
 * STORE_URL forms:
 * - `memory://` (tests, throwaway runs)
 * - `sqlite://data/bot.sqlite` (relative to the working directory) or `sqlite:///abs/path.sqlite`
 * - `redis://[user:password@]host[:port][/db]`, `rediss://…` for TLS
 */
export function parseStoreUrl(url: string): StoreTarget {
  const trimmed = url.trim();
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(trimmed)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    throw new StorageConfigError(`STORE_URL: "${redactUrl(trimmed)}" is not a URL (expected ${SUPPORTED})`);
  }
  switch (scheme) {
    case 'memory':
      if (!/^memory:(\/\/)?$/i.test(trimmed)) {
        throw new StorageConfigError('STORE_URL: the memory store takes no host or path (use memory://)');
      }
      return { kind: 'memory' };
    case 'sqlite': {
      const match = /^sqlite:\/\/(.*)$/i.exec(trimmed);
      const path = match?.[1] ?? '';
      if (path === '' || path === '/') {
        throw new StorageConfigError(
          'STORE_URL: sqlite:// needs a file path, e.g. sqlite://data/bot.sqlite (relative) or sqlite:///var/lib/bot/bot.sqlite',
        );
      }
      if (path.startsWith(':memory:')) {
        throw new StorageConfigError('STORE_URL: use memory:// for an in-memory store, not sqlite://:memory:');
      }
      return { kind: 'sqlite', path };
    }
    case 'redis':
    case 'rediss':
      return parseRedisUrl(trimmed, scheme === 'rediss');
    default:
      throw new StorageConfigError(`STORE_URL: unsupported scheme "${scheme}:" (expected ${SUPPORTED})`);
  }
}

function parseRedisUrl(url: string, tls: boolean): RedisTarget {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new StorageConfigError(
      `STORE_URL: "${redactUrl(url)}" is not a valid Redis URL (expected redis://[user:password@]host:port[/db])`,
    );
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, '$1');
  if (host === '') {
    throw new StorageConfigError('STORE_URL: the Redis URL has no host (expected redis://host:port[/db])');
  }
  const port = parsed.port === '' ? 6379 : Number(parsed.port);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) {
    throw new StorageConfigError(`STORE_URL: Redis port ${parsed.port} is out of range (1-65535)`);
  }
  const dbText = parsed.pathname.replace(/^\//, '');
  let database: number | undefined;
  if (dbText !== '') {
    if (!/^\d{1,5}$/.test(dbText)) {
      throw new StorageConfigError(`STORE_URL: the Redis database must be a number, e.g. redis://${host}:${port}/0`);
    }
    database = Number(dbText);
  }
  if (parsed.search !== '' || parsed.hash !== '') {
    throw new StorageConfigError('STORE_URL: query strings and fragments are not supported in the Redis URL');
  }
  let username: string | undefined;
  let password: string | undefined;
  try {
    username = parsed.username === '' ? undefined : decodeURIComponent(parsed.username);
    password = parsed.password === '' ? undefined : decodeURIComponent(parsed.password);
  } catch {
    throw new StorageConfigError('STORE_URL: the Redis user name or password is not valid percent-encoding');
  }
  return { kind: 'redis', tls, host, port, database, username, password };
}
