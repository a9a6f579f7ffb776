import type { ShardCountSetting, ShardsSetting } from '../../config.js';

/**
 * Which gateway shards this process runs. `SHARD_COUNT` is the bot's total (every process agrees on it) and `SHARDS`
 * this process's share of them; Discord sends each server's events to shard `(guild_id >> 22) % SHARD_COUNT`. Both
 * settings are parsed and checked against each other in config.ts.
 */

/** What this process runs once the count is known: every id in `shards` is below `count`. */
export interface ShardPlan {
  count: number;
  shards: readonly number[];
}

/** The plan, once the count is known (`recommended` is Discord's `shards` from `GET /gateway/bot`, used for `auto`). */
export function shardPlan(count: ShardCountSetting, shards: ShardsSetting, recommended: number): ShardPlan {
  const total = count === 'auto' ? Math.max(1, recommended) : count;
  return { count: total, shards: shards === 'all' ? Array.from({ length: total }, (_, i) => i) : [...shards] };
}

/** Discord's rule: the shard receiving a server's events. */
export function shardOfGuild(guildId: string, count: number): number {
  return Number((BigInt(guildId) >> 22n) % BigInt(count));
}

/** `0-3,8` for logs and health: short even for a process running hundreds of shards. */
export function describeShards(shards: readonly number[]): string {
  const parts: string[] = [];
  let start: number | undefined;
  let previous: number | undefined;
  for (const id of [...shards].sort((a, b) => a - b)) {
    if (start !== undefined && previous !== undefined && id === previous + 1) {
      previous = id;
      continue;
    }
    if (start !== undefined && previous !== undefined) parts.push(start === previous ? `${start}` : `${start}-${previous}`);
    start = previous = id;
  }
  if (start !== undefined && previous !== undefined) parts.push(start === previous ? `${start}` : `${start}-${previous}`);
  return parts.join(',');
}
