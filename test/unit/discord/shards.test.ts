import { describe, expect, it } from 'vitest';
import { describeShards, shardOfGuild, shardPlan } from '../../../src/services/discord/shards.js';

describe('shard plan', () => {
  it('runs every shard of Discord recommendation with auto and all', () => {
    expect(shardPlan('auto', 'all', 3)).toEqual({ count: 3, shards: [0, 1, 2] });
  });

  it('runs the listed shards of a fixed count, whatever Discord recommends', () => {
    expect(shardPlan(4, [1, 3], 1)).toEqual({ count: 4, shards: [1, 3] });
    expect(shardPlan(2, 'all', 9)).toEqual({ count: 2, shards: [0, 1] });
  });

  it("maps a server to shard (guild_id >> 22) % count, Discord's rule", () => {
    // 41771983423143937 >> 22 = 9959216934: beyond 2^32, so the shift must not go through 32-bit numbers.
    expect(shardOfGuild('41771983423143937', 1)).toBe(0);
    expect(shardOfGuild('41771983423143937', 10)).toBe(4);
    expect(shardOfGuild('41771983423143937', 7)).toBe(9959216934 % 7);
    expect(shardOfGuild(String((5n << 22n) | 123n), 4)).toBe(1);
  });

  it('describes shard lists compactly for logs and health', () => {
    expect(describeShards([0, 1, 2, 3, 8, 10, 11])).toBe('0-3,8,10-11');
    expect(describeShards([5])).toBe('5');
    expect(describeShards([])).toBe('');
  });
});
