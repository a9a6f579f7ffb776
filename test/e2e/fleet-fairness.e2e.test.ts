import { afterAll, expect, it } from 'vitest';
import type { RecordedRequest } from '../fakes/fake-discord.js';
import { redisLimiterKeys } from '../../src/services/generation/redis-limiter.js';
import { redisOpenRequestsKey } from '../../src/services/usage/open-requests.js';
import { eventually, startHarness } from '../support/harness.js';
import { sendImagine } from '../support/imagine.js';
import { expectConsistentLedger } from '../support/ledger.js';
import { refusalAfterDeferral } from '../support/refusals.js';
import { deleteRedisKeys, describeWithRedis, redisTestNamespace, REDIS_URL, withRedisClient } from '../support/redis.js';

const isEdit = (r: RecordedRequest) => r.method === 'PATCH' && r.path.endsWith('/messages/@original');
const NO_LIMITS = { DEFAULT_DAILY_CREDITS: '1000', DEFAULT_COOLDOWN_SECONDS: '0', STORE_URL: REDIS_URL };
const member = (i: number) => String(400000000000000000n + BigInt(i));

describeWithRedis('fairness and open requests across two bot processes on one Redis', () => {
  afterAll(async () => {
    await deleteRedisKeys();
  });

  it("serves a member alone on process B in turn with process A's five members, not after A's twenty images", async () => {
    const namespace = redisTestNamespace();
    const h = await startHarness({ env: { ...NO_LIMITS, SEGMIND_CONCURRENCY: '1', MAX_QUEUED_PER_USER: '2' }, storageNamespace: namespace });
    try {
      await h.addBot();
      await h.discord.waitForReadyConnections(2);
      h.segmind.pause(); // the one slot stays taken until every request below is waiting
      const busy = [1, 2, 3, 4, 5].map(member);
      const onA = busy.map((userId, i) =>
        sendImagine(h.discord, { prompt: `a${i + 1}`, samples: 4, seed: 10 * (i + 1) }, { userId, connection: 0 }),
      );
      await Promise.all(onA.map((s) => s.waitForCallback()));
      await h.segmind.waitForInFlight(1);
      const quiet = member(6);
      const onB = sendImagine(h.discord, { prompt: 'b', samples: 1, seed: 99 }, { userId: quiet, connection: 1 });
      await onB.waitForCallback();
      // Both processes wait for the slot in the fleet's turn order.
      const waiting = redisLimiterKeys(namespace).waiting;
      for (const deadline = Date.now() + 10_000; (await withRedisClient((c) => c.zCard(waiting))) < 2; ) {
        if (Date.now() > deadline) throw new Error('both processes never waited in the turn order');
        await new Promise((r) => setTimeout(r, 10));
      }
      h.segmind.resume();

      const edits = await Promise.all([...onA, onB].map((s) => s.waitForRequest(isEdit, 30_000)));
      expect(edits.map((e) => e.files.length)).toEqual([4, 4, 4, 4, 4, 1]);
      await eventually(() => h.logs.filter((l) => l.msg === 'imagine job finished').length === 6, 'six job log lines', 10_000);
      const order = h.segmind.requests.map((r) => (r.body as { prompt: string }).prompt);
      expect(order).toHaveLength(21);
      // Six members in turn: B's one image comes once each of the four A members who waited before it had a turn
      // (the sixth call at the latest), not after A's twenty.
      const position = order.indexOf('b');
      expect(position, `request order: ${order.join(' ')}`).toBeLessThanOrEqual(5);
      expect(new Set(order.slice(0, 5)).size, 'the five before it are five different members').toBe(5);
      expect(h.segmind.maxInFlight()).toBe(1);
      await expectConsistentLedger(h.storage, Object.fromEntries([...busy.map((m): [string, number] => [m, 4]), [quiet, 1]]), {
        guildId: h.discord.guildId,
      });
    } finally {
      await h.stop();
    }
  }, 60_000);

  it('refuses a member at their open-request limit on one process when they ask on the other, and frees the place', async () => {
    const namespace = redisTestNamespace();
    const h = await startHarness({ env: { ...NO_LIMITS, MAX_QUEUED_PER_USER: '1' }, storageNamespace: namespace });
    try {
      await h.addBot();
      await h.discord.waitForReadyConnections(2);
      const userId = member(7);
      h.segmind.pause();
      const first = sendImagine(h.discord, { prompt: 'first', seed: 1 }, { userId, connection: 0 });
      await h.segmind.waitForInFlight(1);

      const refused = await refusalAfterDeferral(sendImagine(h.discord, { prompt: 'second', seed: 2 }, { userId, connection: 1 }));
      expect(refused).toBe(
        '❌ You already have 1 request waiting or generating. Wait for one to finish (or cancel it) — nothing was charged.',
      );
      expect(h.segmind.requests).toHaveLength(1);

      h.segmind.resume();
      await first.waitForRequest(isEdit, 10_000);
      // Once the first job is over its place is given back: B takes the member's next request.
      const placeKey = redisOpenRequestsKey(namespace, userId);
      await eventually(() => h.logs.filter((l) => l.msg === 'imagine job finished').length === 1, 'the first job to finish');
      for (const deadline = Date.now() + 5_000; (await withRedisClient((c) => c.zCard(placeKey))) > 0; ) {
        if (Date.now() > deadline) throw new Error('the place of the finished request was never given back');
        await new Promise((r) => setTimeout(r, 10));
      }
      const third = sendImagine(h.discord, { prompt: 'third', seed: 3 }, { userId, connection: 1 });
      expect((await third.waitForRequest(isEdit, 10_000)).files).toHaveLength(1);
      await eventually(() => h.logs.filter((l) => l.msg === 'imagine job finished').length === 2, 'the third job to finish');
      await expectConsistentLedger(h.storage, { [userId]: 2 }, { guildId: h.discord.guildId });
      expect(await withRedisClient((c) => c.zCard(placeKey))).toBe(0);
    } finally {
      await h.stop();
    }
  }, 60_000);
});
