import { describe, expect, it } from 'vitest';
import { JOB_OUTCOMES, Metrics, SEGMIND_DURATION_BUCKETS } from '../../src/services/metrics.js';

interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition (enough of it for prom-client's output: no escaped quotes in our labels). */
function parse(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) throw new Error(`unparsable metrics line: ${line}`);
    const labels: Record<string, string> = {};
    for (const [, key, value] of (match[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) labels[key!] = value!;
    samples.push({ name: match[1]!, labels, value: Number(match[3]) });
  }
  return samples;
}

async function samples(metrics: Metrics): Promise<Sample[]> {
  return parse((await metrics.render()).body);
}

/** The value of one series, or undefined when it is not exported. */
async function value(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const all = await samples(metrics);
  const found = all.filter(
    (s) =>
      s.name === name &&
      Object.keys(s.labels).length === Object.keys(labels).length &&
      Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  );
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

describe('Metrics', () => {
  it('renders Prometheus text with its content type', async () => {
    const { contentType, body } = await new Metrics().render();
    expect(contentType).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(body).toContain('# TYPE flux_bot_jobs_total counter');
    expect(body).toContain('# TYPE flux_bot_segmind_request_duration_seconds histogram');
  });

  it('collects default process metrics on its own registry', async () => {
    const metrics = new Metrics();
    expect(await value(metrics, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(await value(metrics, 'nodejs_heap_size_used_bytes')).toBeGreaterThan(0);
  });

  it('starts with the gateway and storage down, the breaker closed and generation running', async () => {
    const metrics = new Metrics();
    expect(metrics.health()).toEqual({
      gateway: false,
      storage: false,
      breaker: 'closed',
      paused: false,
      shardCount: 1,
      shards: [{ id: 0, up: false, downSeconds: 0 }],
    });
    expect(await value(metrics, 'flux_bot_gateway_up', { shard: '0' })).toBe(0);
    expect(await value(metrics, 'flux_bot_storage_up')).toBe(0);
    expect(await value(metrics, 'flux_bot_breaker_state')).toBe(0);
    expect(await value(metrics, 'flux_bot_generation_paused')).toBe(0);
  });

  it('sets gateway_up and storage_up and reflects them in health()', async () => {
    const metrics = new Metrics();
    metrics.setGatewayUp(true);
    metrics.setStorageUp(true);
    expect(await value(metrics, 'flux_bot_gateway_up', { shard: '0' })).toBe(1);
    expect(await value(metrics, 'flux_bot_storage_up')).toBe(1);
    expect(metrics.health()).toMatchObject({ gateway: true, storage: true });

    metrics.setStorageUp(false);
    expect(await value(metrics, 'flux_bot_storage_up')).toBe(0);
    expect(metrics.health().storage).toBe(false);
  });

  it('sets the queue gauges and the in-flight gauge', async () => {
    const metrics = new Metrics();
    metrics.setQueue({ tasks: 7, jobs: 3 });
    metrics.setInFlight(4);
    expect(await value(metrics, 'flux_bot_queue_depth')).toBe(7);
    expect(await value(metrics, 'flux_bot_jobs_queued')).toBe(3);
    expect(await value(metrics, 'flux_bot_segmind_in_flight')).toBe(4);

    metrics.setQueue({ tasks: 0, jobs: 0 });
    expect(await value(metrics, 'flux_bot_queue_depth')).toBe(0);
    expect(await value(metrics, 'flux_bot_jobs_queued')).toBe(0);
  });

  it('exports every job outcome at 0 before any job finishes', async () => {
    const metrics = new Metrics();
    for (const outcome of JOB_OUTCOMES) expect(await value(metrics, 'flux_bot_jobs_total', { outcome })).toBe(0);
  });

  it('counts finished jobs by outcome', async () => {
    const metrics = new Metrics();
    metrics.jobFinished('delivered');
    metrics.jobFinished('delivered');
    metrics.jobFinished('delivery_failed');
    expect(await value(metrics, 'flux_bot_jobs_total', { outcome: 'delivered' })).toBe(2);
    expect(await value(metrics, 'flux_bot_jobs_total', { outcome: 'delivery_failed' })).toBe(1);
    expect(await value(metrics, 'flux_bot_jobs_total', { outcome: 'failed' })).toBe(0);
  });

  it('counts refusals by reason', async () => {
    const metrics = new Metrics();
    metrics.refused('cooldown');
    metrics.refused('cooldown');
    metrics.refused('daily_limit');
    expect(await value(metrics, 'flux_bot_refusals_total', { reason: 'cooldown' })).toBe(2);
    expect(await value(metrics, 'flux_bot_refusals_total', { reason: 'daily_limit' })).toBe(1);
  });

  it('folds label values beyond the cap into "other" instead of growing without bound', async () => {
    const metrics = new Metrics();
    for (let i = 0; i < 60; i++) metrics.refused(`reason_${i}`);
    metrics.refused('reason_0');
    const reasons = (await samples(metrics)).filter((s) => s.name === 'flux_bot_refusals_total');
    expect(reasons).toHaveLength(51);
    expect(await value(metrics, 'flux_bot_refusals_total', { reason: 'reason_0' })).toBe(2);
    expect(await value(metrics, 'flux_bot_refusals_total', { reason: 'other' })).toBe(10);
  });

  it('counts Segmind requests by status and observes their duration in the histogram buckets', async () => {
    const metrics = new Metrics();
    metrics.segmindRequest('200', 0.3);
    metrics.segmindRequest('200', 12);
    metrics.segmindRequest('200', 250);
    metrics.segmindRequest('timeout', 180);
    const h = 'flux_bot_segmind_request_duration_seconds';

    expect(await value(metrics, 'flux_bot_segmind_requests_total', { status: '200' })).toBe(3);
    expect(await value(metrics, 'flux_bot_segmind_requests_total', { status: 'timeout' })).toBe(1);
    // Buckets are cumulative: le="15" holds 0.3 and 12.
    expect(await value(metrics, `${h}_bucket`, { status: '200', le: '0.5' })).toBe(1);
    expect(await value(metrics, `${h}_bucket`, { status: '200', le: '10' })).toBe(1);
    expect(await value(metrics, `${h}_bucket`, { status: '200', le: '15' })).toBe(2);
    expect(await value(metrics, `${h}_bucket`, { status: '200', le: '180' })).toBe(2);
    expect(await value(metrics, `${h}_bucket`, { status: '200', le: '300' })).toBe(3);
    expect(await value(metrics, `${h}_bucket`, { status: '200', le: '+Inf' })).toBe(3);
    expect(await value(metrics, `${h}_count`, { status: '200' })).toBe(3);
    expect(await value(metrics, `${h}_sum`, { status: '200' })).toBeCloseTo(262.3);
    expect(await value(metrics, `${h}_bucket`, { status: 'timeout', le: '120' })).toBe(0);
    expect(await value(metrics, `${h}_bucket`, { status: 'timeout', le: '180' })).toBe(1);
  });

  it('uses buckets suited to 1–300 s image generation', async () => {
    const metrics = new Metrics();
    metrics.segmindRequest('200', 1);
    const les = (await samples(metrics))
      .filter((s) => s.name === 'flux_bot_segmind_request_duration_seconds_bucket')
      .map((s) => s.labels.le);
    expect(les).toEqual([...SEGMIND_DURATION_BUCKETS.map(String), '+Inf']);
    expect(SEGMIND_DURATION_BUCKETS.at(-1)).toBeGreaterThanOrEqual(300);
  });

  it('counts refunded and committed credits', async () => {
    const metrics = new Metrics();
    metrics.refunded(2);
    metrics.refunded(1);
    metrics.committed(4);
    expect(await value(metrics, 'flux_bot_credits_refunded_total')).toBe(3);
    expect(await value(metrics, 'flux_bot_credits_committed_total')).toBe(4);
  });

  it('drops invalid numbers instead of throwing', async () => {
    const metrics = new Metrics();
    metrics.committed(3);
    metrics.setRemainingCredits(12.5);
    expect(() => {
      metrics.committed(-1);
      metrics.refunded(Number.NaN);
      metrics.setRemainingCredits(Number.NaN);
      metrics.setInFlight(Number.POSITIVE_INFINITY);
      metrics.segmindRequest('200', Number.NaN);
    }).not.toThrow();
    expect(await value(metrics, 'flux_bot_credits_committed_total')).toBe(3);
    expect(await value(metrics, 'flux_bot_credits_refunded_total')).toBe(0);
    expect(await value(metrics, 'flux_bot_segmind_remaining_credits')).toBe(12.5);
    // The request still counts; only its unusable duration is dropped.
    expect(await value(metrics, 'flux_bot_segmind_requests_total', { status: '200' })).toBe(1);
    expect(await value(metrics, 'flux_bot_segmind_request_duration_seconds_count', { status: '200' })).toBeUndefined();
  });

  it('maps breaker states to 0 closed, 1 half-open, 2 open', async () => {
    const metrics = new Metrics();
    metrics.setBreakerState('open');
    expect(await value(metrics, 'flux_bot_breaker_state')).toBe(2);
    expect(metrics.health().breaker).toBe('open');
    metrics.setBreakerState('half_open');
    expect(await value(metrics, 'flux_bot_breaker_state')).toBe(1);
    metrics.setBreakerState('closed');
    expect(await value(metrics, 'flux_bot_breaker_state')).toBe(0);
    expect(metrics.health().breaker).toBe('closed');
  });

  it('sets generation_paused and reflects it in health()', async () => {
    const metrics = new Metrics();
    metrics.setGenerationPaused(true);
    expect(await value(metrics, 'flux_bot_generation_paused')).toBe(1);
    expect(metrics.health().paused).toBe(true);
    metrics.setGenerationPaused(false);
    expect(await value(metrics, 'flux_bot_generation_paused')).toBe(0);
  });

  it('sets the remaining Segmind credits in dollars', async () => {
    const metrics = new Metrics();
    metrics.setRemainingCredits(41.37);
    expect(await value(metrics, 'flux_bot_segmind_remaining_credits')).toBe(41.37);
  });

  it('counts Discord delivery errors by status', async () => {
    const metrics = new Metrics();
    metrics.deliveryError('403');
    metrics.deliveryError('403');
    metrics.deliveryError('timeout');
    expect(await value(metrics, 'flux_bot_discord_delivery_errors_total', { status: '403' })).toBe(2);
    expect(await value(metrics, 'flux_bot_discord_delivery_errors_total', { status: 'timeout' })).toBe(1);
  });

  it('keeps two instances independent', async () => {
    const a = new Metrics();
    const b = new Metrics();
    a.jobFinished('delivered');
    a.setGatewayUp(true);
    a.segmindRequest('500', 3);
    expect(await value(a, 'flux_bot_jobs_total', { outcome: 'delivered' })).toBe(1);
    expect(await value(b, 'flux_bot_jobs_total', { outcome: 'delivered' })).toBe(0);
    expect(await value(b, 'flux_bot_gateway_up', { shard: '0' })).toBe(0);
    expect(await value(b, 'flux_bot_segmind_requests_total', { status: '500' })).toBeUndefined();
    expect(b.health().gateway).toBe(false);
  });

  it('returns a snapshot from health() that callers cannot change', () => {
    const metrics = new Metrics();
    const snapshot = metrics.health();
    snapshot.gateway = true;
    expect(metrics.health().gateway).toBe(false);
  });

  describe('gateway shards', () => {
    /** A clock the test moves by hand. */
    function manualClock(start = 1_000_000) {
      let now = start;
      return { now: () => now, sleep: () => Promise.resolve(), advance: (ms: number) => (now += ms) };
    }

    it("exports one gateway_up series per shard of this process, and drops those it no longer runs", async () => {
      const metrics = new Metrics();
      metrics.setShards({ count: 4, shards: [1, 3] });
      metrics.setShardUp(3, true);
      expect(await value(metrics, 'flux_bot_gateway_up', { shard: '0' })).toBeUndefined();
      expect(await value(metrics, 'flux_bot_gateway_up', { shard: '1' })).toBe(0);
      expect(await value(metrics, 'flux_bot_gateway_up', { shard: '3' })).toBe(1);
      expect(metrics.health()).toMatchObject({ shardCount: 4, shards: [{ id: 1, up: false }, { id: 3, up: true }] });
    });

    it('stays healthy while a shard that was ready is down for less than the grace period, then not', () => {
      const clock = manualClock();
      const metrics = new Metrics({ clock, gatewayGraceMs: 30_000 });
      metrics.setShards({ count: 2, shards: [0, 1] });
      metrics.setShardUp(0, true);
      expect(metrics.health().gateway).toBe(false); // shard 1 was never ready: down at once
      metrics.setShardUp(1, true);
      expect(metrics.health().gateway).toBe(true);
      metrics.setShardUp(1, false);
      clock.advance(29_000);
      expect(metrics.health()).toMatchObject({ gateway: true, shards: [{ id: 0, up: true }, { id: 1, up: false, downSeconds: 29 }] });
      clock.advance(1_000);
      expect(metrics.health().gateway).toBe(false);
      metrics.setShardUp(1, true);
      expect(metrics.health().gateway).toBe(true);
    });

    it('counts a second down report of the same shard from its first', () => {
      const clock = manualClock();
      const metrics = new Metrics({ clock, gatewayGraceMs: 10_000 });
      metrics.setShardUp(0, true);
      metrics.setShardUp(0, false);
      clock.advance(6_000);
      metrics.setShardUp(0, false); // reconnecting again: still the same outage
      clock.advance(6_000);
      expect(metrics.health().gateway).toBe(false);
    });
  });
});
