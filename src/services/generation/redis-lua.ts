/** Lua pieces and the key tag shared by the fleet-wide limits on Redis (Segmind slots, members' open requests). */

/** Every fleet-wide limit's keys share this hash tag (one Redis Cluster slot). */
export const limiterKeyTag = (prefix: string) => `${prefix}:{limiter}`;

/**
 * Time comes from the Redis server (TIME), never from the bot: bot processes on several hosts may disagree by
 * seconds, and lease expiries and the rpm window are compared across all of them. One clock, no skew. (TIME before
 * writes is fine on Redis >= 5: scripts replicate their effects, not the script.)
 */
export const SERVER_NOW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
`;

/** Sets the key's expiry to at least `ms` from now (never shortens it: limiters may run with different settings). */
export const EXTEND_TTL = `
local function extendTtl(key, ms)
  local ttl = redis.call('PTTL', key)
  if ttl < ms then redis.call('PEXPIRE', key, ms) end
end
`;
