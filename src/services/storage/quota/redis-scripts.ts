import { createHash } from 'node:crypto';
import { DAY_MS } from './quota-store.js';

/**
 * The Lua behind RedisQuotaStore. Each mutating operation is one script, so Redis runs it atomically against every
 * other client and process. All keys a script touches share one hash tag (`{g:<guildId>}`), so on Redis Cluster they
 * live in one slot.
 *
 * Records (hashes):
 *   member      day, used (daily credits used on `day`), bonus, last (lastAcceptedAt, epoch ms; absent = none)
 *   guild total day, used (server credits spent on `day`)
 *   reservation userId, credits, fromDaily, fromBonus, day, createdAt, expiresAt, lastBefore (the member's `last`
 *               it replaced; absent = none); or, once cancelled, only `cancelled` (a tombstone, see CANCEL)
 * A `day` that is not today means "nothing used today"; a missing or unreadable number counts as 0.
 *
 * Lifetimes: a reservation lives until the sweeper could refund it; a server total until the end of its day; a member
 * forever while it holds bonus credits (they never expire), else MEMBER_TTL_MS after its last reservation.
 *
 * Mirrors quota-rules.ts (decideReserve, planRefund): keep them in step; the contract tests run both.
 */

export interface LuaScript {
  readonly name: string;
  readonly source: string;
  readonly sha1: string;
}

export function lua(name: string, source: string): LuaScript {
  return { name, source, sha1: createHash('sha1').update(source).digest('hex') };
}

/**
 * How long a member without bonus credits is kept after a reservation: today's usage matters until midnight (less
 * than a day away), a cooldown for a day at most (the longest a server can set).
 */
export const MEMBER_TTL_MS = DAY_MS;

/**
 * Lua, for every script that writes a member: keep it while it holds bonus credits; otherwise let it expire
 * MEMBER_TTL_MS after a reservation (`reserved`), and give it that lifetime if it has none (it held bonus credits,
 * or was written before members expired).
 */
const KEEP_MEMBER = `
local function keepMember(key, bonus, reserved)
  if bonus > 0 then
    redis.call('PERSIST', key)
  elseif reserved or redis.call('PTTL', key) == -1 then
    redis.call('PEXPIRE', key, ${MEMBER_TTL_MS})
  end
end
`;

/**
 * Gives a reservation's credits back to its member (`m` = HMGET day, used, bonus): bonus first (`toBonus`), the rest
 * to the daily allowance and the server's total, both only on the reservation's own day. Returns the member's bonus.
 * Shared by SETTLE (the undelivered part) and CANCEL (all of it).
 */
const GIVE_BACK = `
local function giveBack(member, m, guild, day, sameDay, toBonus, toDaily)
  local bonus = math.max(0, tonumber(m[3]) or 0)
  if toBonus > 0 then
    bonus = bonus + toBonus
    redis.call('HSET', member, 'bonus', bonus)
  end
  if toDaily > 0 and sameDay and tonumber(m[1]) == day then
    redis.call('HSET', member, 'used', math.max(0, (tonumber(m[2]) or 0) - toDaily))
  end
  if sameDay and toBonus + toDaily > 0 then
    local g = redis.call('HMGET', guild, 'day', 'used')
    if tonumber(g[1]) == day then
      redis.call('HSET', guild, 'used', math.max(0, (tonumber(g[2]) or 0) - toBonus - toDaily))
    end
  end
  return bonus
end
`;

/** EVALSHA, loading the script with EVAL when this server has not seen it yet (restart, SCRIPT FLUSH). */
export async function runLua(
  client: { sendCommand(args: string[]): Promise<unknown> },
  script: LuaScript,
  keys: string[],
  args: string[],
): Promise<unknown> {
  const tail = [String(keys.length), ...keys, ...args];
  try {
    return await client.sendCommand(['EVALSHA', script.sha1, ...tail]);
  } catch (error) {
    if (!(error instanceof Error) || !error.message.startsWith('NOSCRIPT')) throw error;
    return client.sendCommand(['EVAL', script.source, ...tail]);
  }
}

/**
 * KEYS: member, guild total, reservation
 * ARGV: now, today, credits, dailyAllowance, cooldownMs, guildDailyCap, expiresAt, userId, reservationTtlMs,
 *       guildTtlMs (until the end of today)
 * Returns {'ok', fromDaily, fromBonus, usedAfter, bonusAfter} | {'cooldown', retryAt} | {'allowance', available}
 *       | {'guild_cap', available} | {'duplicate'} | {'cancelled'}
 */
export const RESERVE = lua(
  'reserve',
  `${KEEP_MEMBER}
local now = tonumber(ARGV[1])
local today = tonumber(ARGV[2])
local credits = tonumber(ARGV[3])
local allowance = tonumber(ARGV[4])
local cooldown = tonumber(ARGV[5])
local cap = tonumber(ARGV[6])

if redis.call('EXISTS', KEYS[3]) == 1 then
  if redis.call('HEXISTS', KEYS[3], 'cancelled') == 1 then return {'cancelled'} end
  return {'duplicate'}
end

local m = redis.call('HMGET', KEYS[1], 'day', 'used', 'bonus', 'last')
local used = 0
if tonumber(m[1]) == today then used = math.max(0, tonumber(m[2]) or 0) end
local bonus = math.max(0, tonumber(m[3]) or 0)
local last = tonumber(m[4])

if cooldown > 0 and last ~= nil and last + cooldown > now then
  return {'cooldown', last + cooldown}
end

local dailyLeft = math.max(0, allowance - used)
local available = dailyLeft + bonus
if credits > available then
  return {'allowance', available}
end

local g = redis.call('HMGET', KEYS[2], 'day', 'used')
local guildUsed = 0
if tonumber(g[1]) == today then guildUsed = math.max(0, tonumber(g[2]) or 0) end
if cap > 0 and guildUsed + credits > cap then
  return {'guild_cap', math.max(0, cap - guildUsed)}
end

local fromDaily = math.min(credits, dailyLeft)
local fromBonus = credits - fromDaily
used = used + fromDaily
bonus = bonus - fromBonus
redis.call('HSET', KEYS[1], 'day', today, 'used', used, 'bonus', bonus, 'last', ARGV[1])
keepMember(KEYS[1], bonus, true)
redis.call('HSET', KEYS[2], 'day', today, 'used', guildUsed + credits)
redis.call('PEXPIRE', KEYS[2], ARGV[10])
redis.call('HSET', KEYS[3], 'userId', ARGV[8], 'credits', credits, 'fromDaily', fromDaily, 'fromBonus', fromBonus,
  'day', today, 'createdAt', ARGV[1], 'expiresAt', ARGV[7])
if last ~= nil then redis.call('HSET', KEYS[3], 'lastBefore', m[4]) end
redis.call('PEXPIRE', KEYS[3], ARGV[9])
return {'ok', fromDaily, fromBonus, used, bonus}
`,
);

/**
 * KEYS: reservation, guild total
 * ARGV: member key prefix (same hash tag; the user id comes from the reservation), delivered, today
 * Returns {settled (0|1), committed, refunded}
 *
 * The reservation is deleted before anything is given back, so a second settle finds nothing and refunds nothing.
 * The member key is built from ARGV rather than passed in KEYS because only the reservation knows the user; it
 * carries the same hash tag, so it is in the same Cluster slot.
 */
export const SETTLE = lua(
  'settle',
  `${KEEP_MEMBER}${GIVE_BACK}
local r = redis.call('HMGET', KEYS[1], 'userId', 'credits', 'fromBonus', 'day')
if not r[1] then
  return {0, 0, 0}
end
redis.call('DEL', KEYS[1])

local credits = math.max(0, tonumber(r[2]) or 0)
local fromBonus = math.max(0, tonumber(r[3]) or 0)
local day = tonumber(r[4])
local today = tonumber(ARGV[3])
local delivered = math.min(math.max(tonumber(ARGV[2]) or 0, 0), credits)
local refund = credits - delivered
local toBonus = math.min(refund, fromBonus)
local toDaily = refund - toBonus
local sameDay = day == today

if refund > 0 then
  local member = ARGV[1] .. r[1]
  local m = redis.call('HMGET', member, 'day', 'used', 'bonus')
  keepMember(member, giveBack(member, m, KEYS[2], day, sameDay, toBonus, toDaily), false)
end
return {1, delivered, refund}
`,
);

/**
 * KEYS: reservation, guild total
 * ARGV: member key prefix (as in SETTLE), today, tombstoneTtlMs
 * Returns {cancelled (0|1), refunded}
 *
 * Undoes a reservation whose requester was told it failed: every credit back as in a settle delivering nothing, and
 * the member's `last` back to what the reservation replaced, unless a later reservation has replaced it since. The
 * reservation becomes a tombstone that RESERVE refuses: a reserve given up by its caller may still reach the server
 * after this (its connection was replaced, its command already sent). SETTLE finds nothing in a tombstone.
 */
export const CANCEL = lua(
  'cancel',
  `${KEEP_MEMBER}${GIVE_BACK}
local r = redis.call('HMGET', KEYS[1], 'userId', 'credits', 'fromBonus', 'day', 'createdAt', 'lastBefore')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'cancelled', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if not r[1] then
  return {0, 0}
end

local credits = math.max(0, tonumber(r[2]) or 0)
local toBonus = math.min(math.max(0, tonumber(r[3]) or 0), credits)
local toDaily = credits - toBonus
local day = tonumber(r[4])
local sameDay = day == tonumber(ARGV[2])

local member = ARGV[1] .. r[1]
local m = redis.call('HMGET', member, 'day', 'used', 'bonus', 'last')
local bonus = giveBack(member, m, KEYS[2], day, sameDay, toBonus, toDaily)
if m[4] and m[4] == r[5] then
  if r[6] then
    redis.call('HSET', member, 'last', r[6])
  else
    redis.call('HDEL', member, 'last')
  end
end
keepMember(member, bonus, false)
return {1, credits}
`,
);

/**
 * KEYS: member
 * ARGV: delta
 * Returns the new bonus balance (never below 0).
 */
export const ADJUST_BONUS = lua(
  'adjust-bonus',
  `${KEEP_MEMBER}
local bonus = math.max(0, (tonumber(redis.call('HGET', KEYS[1], 'bonus')) or 0) + tonumber(ARGV[1]))
redis.call('HSET', KEYS[1], 'bonus', bonus)
keepMember(KEYS[1], bonus, false)
return bonus
`,
);

/**
 * KEYS: member
 * ARGV: today
 * Zeroes today's usage and ends the cooldown; the bonus balance stays.
 */
export const RESET_USER = lua(
  'reset-user',
  `${KEEP_MEMBER}
redis.call('HSET', KEYS[1], 'day', ARGV[1], 'used', 0)
redis.call('HDEL', KEYS[1], 'last')
keepMember(KEYS[1], math.max(0, tonumber(redis.call('HGET', KEYS[1], 'bonus')) or 0), false)
return 1
`,
);

/**
 * KEYS: stats hash (one per server per day)
 * ARGV: ttlMs, then field, delta pairs
 */
export const INCREMENT_STATS = lua(
  'increment-stats',
  `
for i = 2, #ARGV, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`,
);
