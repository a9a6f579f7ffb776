import type Keyv from 'keyv';
import type { Logger } from '../../logger.js';
import type { QuotaStore } from '../quota/quota-store.js';
import type { KeyedMutex } from './keyed-mutex.js';
import type { Storage, StoreKind } from './storage.js';

/** The common shape of every backend: close is idempotent and concurrent closes share one attempt. */
export function assembleStorage(parts: {
  kind: StoreKind;
  kv: Keyv;
  quota: QuotaStore;
  mutex: KeyedMutex;
  ping: () => Promise<void>;
  close: () => Promise<void>;
}): Storage {
  let closing: Promise<void> | undefined;
  return {
    kind: parts.kind,
    kv: parts.kv,
    quota: parts.quota,
    withLock: (key, fn) => parts.mutex.run(key, fn),
    ping: parts.ping,
    close: () => (closing ??= parts.close()),
  };
}

/**
 * keyv's default is to swallow store errors and answer `undefined` (quotas would fail open); every backend sets
 * throwOnErrors, and this listener makes sure the errors are also logged. Errors already logged elsewhere (the Redis
 * connection listener) are skipped.
 */
export function logKeyvErrors(kv: Keyv, logger: Logger, alreadyLogged?: WeakSet<object>): void {
  kv.on('error', (error: unknown) => {
    if (typeof error === 'object' && error !== null && alreadyLogged?.has(error)) return;
    logger.error({ err: error }, 'storage operation failed');
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
