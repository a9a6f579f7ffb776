import type { RedisCommandSender } from '../storage/quota/redis-quota-store.js';
import type { Storage } from '../storage/storage.js';
import { LocalLimiter } from './local-limiter.js';
import { RedisLimiter } from './redis-limiter.js';
import type { LimiterOptions, SegmindLimiter } from './segmind-limiter.js';

/** One limiter per bot process: Redis-backed when the storage is Redis (shared by all processes), else in-process. */
export function createSegmindLimiter(storage: Storage, opts: LimiterOptions): SegmindLimiter {
  const windowMs = opts.windowMs ?? 60_000;
  if (storage.kind !== 'redis') {
    return new LocalLimiter({
      concurrency: opts.concurrency,
      rpm: opts.rpm,
      windowMs,
      clock: opts.clock,
      logger: opts.logger,
      ...(opts.timers ? { timers: opts.timers } : {}),
    });
  }
  return new RedisLimiter({
    client: redisSenderOf(storage),
    concurrency: opts.concurrency,
    rpm: opts.rpm,
    windowMs,
    logger: opts.logger,
    keyPrefix: opts.keyPrefix ?? storage.namespace,
    ...(opts.leaseMs === undefined ? {} : { leaseMs: opts.leaseMs }),
    ...(opts.renewEveryMs === undefined ? {} : { renewEveryMs: opts.renewEveryMs }),
    ...(opts.pollMs === undefined ? {} : { pollMs: opts.pollMs }),
    ...(opts.waitingTtlMs === undefined ? {} : { waitingTtlMs: opts.waitingTtlMs }),
  });
}

/** The Redis Storage's own guarded connection (command deadline, reconnects), for the limiter's Lua scripts. */
function redisSenderOf(storage: Storage): RedisCommandSender {
  if (storage.redis === undefined) throw new Error('Redis storage without a Redis connection');
  return storage.redis;
}
