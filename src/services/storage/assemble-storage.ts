import type Keyv from 'keyv';
import type { Logger } from '../../logger.js';
import type { QuotaStore } from './quota/quota-store.js';
import type { RedisCommandSender } from './quota/redis-quota-store.js';
import type { KeyedMutex } from './keyed-mutex.js';
import type { Storage, StoreKind } from './storage.js';

/** The common shape of every backend: close is idempotent and concurrent closes share one attempt. */
export function assembleStorage(parts: {
  kind: StoreKind;
  namespace: string;
  redis?: RedisCommandSender;
  kv: Keyv;
  quota: QuotaStore;
  mutex: KeyedMutex;
  ping: () => Promise<void>;
  /** Absent for a backend that expires keys itself (Redis). */
  purgeExpired?: (now: number) => Promise<number>;
  close: () => Promise<void>;
}): Storage {
  let closing: Promise<void> | undefined;
  return {
    kind: parts.kind,
    namespace: parts.namespace,
    ...(parts.redis ? { redis: parts.redis } : {}),
    kv: parts.kv,
    quota: parts.quota,
    withLock: (key, fn) => parts.mutex.run(key, fn),
    ping: parts.ping,
    purgeExpired: parts.purgeExpired ?? (() => Promise.resolve(0)),
    close: () => (closing ??= parts.close()),
  };
}

/**
 * keyv's default is to swallow store errors and answer `undefined` (quotas would fail open); every backend sets
 * throwOnErrors, and this listener makes sure the errors are also logged. Errors already logged elsewhere are skipped,
 * and while `degraded()` says a known outage is under way (already reported by the connection) they go to debug, so
 * an outage is not one error line per request.
 */
export function logKeyvErrors(
  kv: Keyv,
  logger: Logger,
  options: { alreadyLogged?: WeakSet<object>; degraded?: () => boolean } = {},
): void {
  kv.on('error', (error: unknown) => {
    if (typeof error === 'object' && error !== null && options.alreadyLogged?.has(error)) return;
    if (options.degraded?.()) logger.debug({ err: error }, 'storage operation failed (storage unavailable)');
    else logger.error({ err: error }, 'storage operation failed');
  });
}

/** A short reason for an operator: the error code when there is one (ECONNREFUSED, SQLITE_CANTOPEN), else the message. */
export function reasonOf(error: unknown): string {
  if (error instanceof Error) {
    const code = (error as Error & { code?: unknown }).code;
    if (typeof code === 'string' && code !== '' && !error.message.includes(code)) return `${code}: ${error.message}`;
    return error.message;
  }
  return String(error);
}
