import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { systemClock, type Clock } from '../clock.js';

/** How a job ended; every outcome is exported from the start (at 0), so `rate()` works before the first one happens. */
export const JOB_OUTCOMES = ['delivered', 'partial', 'failed', 'cancelled', 'refused', 'expired', 'delivery_failed'] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

export const BREAKER_STATES = ['closed', 'half_open', 'open'] as const;
export type BreakerState = (typeof BREAKER_STATES)[number];

/** One gateway shard this process runs; `downSeconds` only while it is down. */
export interface ShardHealth {
  id: number;
  up: boolean;
  downSeconds?: number;
}

/** What `/healthz` reports; kept next to the gauges so the probe never has to parse the registry. */
export interface HealthSnapshot {
  /**
   * Every shard of this process is ready, or was ready and has been down less than the grace period (discord.js
   * reconnects and resumes within seconds). A shard that has not been ready yet counts as down at once.
   */
  gateway: boolean;
  /** The bot's total shard count, and this process's shards. */
  shardCount: number;
  shards: ShardHealth[];
  storage: boolean;
  breaker: BreakerState;
  paused: boolean;
}

const PREFIX = 'flux_bot_';
/** Image generation takes 1–300 s (FLUX dev, up to 4 samples, 50 steps); sub-second buckets catch fast failures. */
export const SEGMIND_DURATION_BUCKETS = [0.5, 1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300];

/** How an image check ended: `failed` (no verdict: timeout, dead worker, full queue) counts as flagged for the member. */
export const IMAGE_CHECK_VERDICTS = ['ok', 'flagged', 'failed'] as const;
export type ImageCheckVerdict = (typeof IMAGE_CHECK_VERDICTS)[number];
/** A check takes about 50 ms on a free core; a queue behind a burst adds seconds; the pool gives up at 15 s. */
export const IMAGE_CHECK_DURATION_BUCKETS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];
/**
 * Free-text labels (refusal reasons, HTTP statuses) are capped per metric: a bug that passes an error message or an
 * id as a label would otherwise create a new time series per call. Values beyond the cap are counted as `other`.
 */
const MAX_LABEL_VALUES = 50;
const OVERFLOW_LABEL = 'other';

const BREAKER_VALUE: Record<BreakerState, number> = { closed: 0, half_open: 1, open: 2 };

/** How long a shard that was ready may be down (reconnecting, resuming) before `/healthz` says 503. */
export const GATEWAY_GRACE_MS = 30_000;

export interface MetricsOptions {
  clock?: Clock;
  gatewayGraceMs?: number;
}

interface ShardState {
  up: boolean;
  /** When `up` last changed (or the shard was declared). */
  since: number;
  wasUp: boolean;
}

/**
 * The bot's Prometheus metrics behind small typed methods, so callers never touch prom-client.
 *
 * Each instance owns its own registry (never prom-client's global one), so several bots in one test process don't
 * collide. Recording never throws: a bad number (negative count, NaN) is dropped rather than breaking a job.
 */
export class Metrics {
  readonly registry = new Registry();

  private readonly state: Omit<HealthSnapshot, 'gateway' | 'shardCount' | 'shards'> = { storage: false, breaker: 'closed', paused: false };
  private readonly labelValues = new Map<string, Set<string>>();
  private readonly clock: Clock;
  private readonly gatewayGraceMs: number;
  /** This process's shards; an unsharded bot runs shard 0 of 1 until told otherwise. */
  private shardCount = 1;
  private readonly shards = new Map<number, ShardState>();

  private readonly gatewayUp = new Gauge({
    name: `${PREFIX}gateway_up`,
    help: "Whether each of this process's gateway shards is ready (1) or not (0).",
    labelNames: ['shard'] as const,
    registers: [this.registry],
  });
  private readonly storageUp = this.gauge('storage_up', 'Whether the storage backend answers (1) or not (0).');
  private readonly queueDepth = this.gauge('queue_depth', 'Image generation tasks waiting for a Segmind slot.');
  private readonly jobsQueued = this.gauge('jobs_queued', 'Jobs (one per /imagine) waiting to start.');
  private readonly inFlight = this.gauge('segmind_in_flight', 'Segmind requests currently in flight.');
  private readonly breakerState = this.gauge('breaker_state', 'Segmind circuit breaker: 0 closed, 1 half-open, 2 open.');
  private readonly generationPaused = this.gauge(
    'generation_paused',
    'Whether generation is paused bot-wide (1), e.g. a rejected Segmind key or no credits left.',
  );
  private readonly remainingCredits = this.gauge(
    'segmind_remaining_credits',
    'Segmind account balance in dollars (paid plus free credits), from the periodic balance read and every image response.',
  );

  private readonly jobs = new Counter({
    name: `${PREFIX}jobs_total`,
    help: 'Finished jobs by outcome.',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  private readonly refusals = new Counter({
    name: `${PREFIX}refusals_total`,
    help: 'Requests refused before generation, by reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  private readonly segmindDuration = new Histogram({
    name: `${PREFIX}segmind_request_duration_seconds`,
    help: 'Duration of Segmind requests by HTTP status or failure kind (timeout, connection).',
    labelNames: ['status'] as const,
    buckets: SEGMIND_DURATION_BUCKETS,
    registers: [this.registry],
  });
  private readonly segmindRequests = new Counter({
    name: `${PREFIX}segmind_requests_total`,
    help: 'Segmind requests by HTTP status or failure kind (timeout, connection).',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });
  private readonly creditsRefunded = this.counter('credits_refunded_total', 'Credits given back to users.');
  private readonly creditsCommitted = this.counter('credits_committed_total', 'Credits charged for delivered images.');
  private readonly deliveryErrors = new Counter({
    name: `${PREFIX}discord_delivery_errors_total`,
    help: 'Failed attempts to deliver results to Discord, by HTTP status or failure kind.',
    labelNames: ['status'] as const,
    registers: [this.registry],
  });

  private readonly imagesChecked = new Counter({
    name: `${PREFIX}images_checked_total`,
    help: 'Images checked by the local classifier before posting, by verdict (failed: no verdict, treated as flagged).',
    labelNames: ['verdict'] as const,
    registers: [this.registry],
  });
  private readonly imageCheckDuration = new Histogram({
    name: `${PREFIX}image_check_duration_seconds`,
    help: 'Time from asking for an image check to its verdict, queue included.',
    buckets: IMAGE_CHECK_DURATION_BUCKETS,
    registers: [this.registry],
  });

  constructor(opts: MetricsOptions = {}) {
    this.clock = opts.clock ?? systemClock;
    this.gatewayGraceMs = opts.gatewayGraceMs ?? GATEWAY_GRACE_MS;
    collectDefaultMetrics({ register: this.registry });
    for (const outcome of JOB_OUTCOMES) this.jobs.labels({ outcome }).inc(0);
    for (const verdict of IMAGE_CHECK_VERDICTS) this.imagesChecked.labels({ verdict }).inc(0);
    this.setShards({ count: 1, shards: [0] });
    this.storageUp.set(0);
    this.breakerState.set(BREAKER_VALUE.closed);
    this.generationPaused.set(0);
  }

  /** Which shards this process runs (all down until they are ready); series of shards it no longer runs go away. */
  setShards(plan: { count: number; shards: readonly number[] }): void {
    this.shardCount = plan.count;
    for (const id of [...this.shards.keys()]) {
      if (plan.shards.includes(id)) continue;
      this.shards.delete(id);
      this.gatewayUp.remove({ shard: String(id) });
    }
    for (const id of plan.shards) if (!this.shards.has(id)) this.setShardUp(id, false);
  }

  setShardUp(shardId: number, up: boolean): void {
    const known = this.shards.get(shardId);
    if (!known || known.up !== up) this.shards.set(shardId, { up, since: this.clock.now(), wasUp: up || (known?.wasUp ?? false) });
    this.gatewayUp.labels({ shard: String(shardId) }).set(up ? 1 : 0);
  }

  /** Every shard of this process at once (the client as a whole connected, or destroyed). */
  setGatewayUp(up: boolean): void {
    for (const id of this.shards.keys()) this.setShardUp(id, up);
  }

  setStorageUp(up: boolean): void {
    this.state.storage = up;
    this.storageUp.set(up ? 1 : 0);
  }

  setQueue({ tasks, jobs }: { tasks: number; jobs: number }): void {
    setIfFinite(this.queueDepth, tasks);
    setIfFinite(this.jobsQueued, jobs);
  }

  setInFlight(n: number): void {
    setIfFinite(this.inFlight, n);
  }

  jobFinished(outcome: JobOutcome): void {
    this.jobs.labels({ outcome }).inc();
  }

  /** `reason` should come from a fixed set (e.g. `cooldown`, `daily_limit`, `word_filter`), never free text. */
  refused(reason: string): void {
    this.refusals.labels({ reason: this.bounded('reason', reason) }).inc();
  }

  /** `status` is the HTTP status (`'200'`, `'429'`) or a failure kind (`'timeout'`, `'connection'`). */
  segmindRequest(status: string, seconds: number): void {
    const label = { status: this.bounded('segmind_status', status) };
    this.segmindRequests.labels(label).inc();
    if (Number.isFinite(seconds)) this.segmindDuration.labels(label).observe(Math.max(0, seconds));
  }

  refunded(n: number): void {
    incIfPositive(this.creditsRefunded, n);
  }

  committed(n: number): void {
    incIfPositive(this.creditsCommitted, n);
  }

  setBreakerState(state: BreakerState): void {
    this.state.breaker = state;
    this.breakerState.set(BREAKER_VALUE[state]);
  }

  setGenerationPaused(paused: boolean): void {
    this.state.paused = paused;
    this.generationPaused.set(paused ? 1 : 0);
  }

  /** Dollars left on the Segmind account, as reported by the `x-remaining-credits` response header. */
  setRemainingCredits(n: number): void {
    setIfFinite(this.remainingCredits, n);
  }

  /** `status` is the Discord HTTP status (`'403'`, `'429'`) or a failure kind (`'timeout'`). */
  deliveryError(status: string): void {
    this.deliveryErrors.labels({ status: this.bounded('delivery_status', status) }).inc();
  }

  /**
   * One image checked before posting: its verdict (the `ImageChecker`'s answer, or its label) and its check's duration
   * in seconds, queue included. A verdict with a `failure` is counted as `failed`, though the image is treated as flagged.
   */
  imageChecked(verdict: ImageCheckVerdict | { flagged: boolean; failure?: string | undefined }, seconds: number): void {
    const label: ImageCheckVerdict = typeof verdict === 'string' ? verdict : verdict.failure ? 'failed' : verdict.flagged ? 'flagged' : 'ok';
    this.imagesChecked.labels({ verdict: label }).inc();
    if (Number.isFinite(seconds)) this.imageCheckDuration.observe(Math.max(0, seconds));
  }

  health(): HealthSnapshot {
    const now = this.clock.now();
    const shards = [...this.shards.entries()]
      .sort(([a], [b]) => a - b)
      .map(([id, shard]): ShardHealth => (shard.up ? { id, up: true } : { id, up: false, downSeconds: Math.max(0, Math.floor((now - shard.since) / 1000)) }));
    const gateway = [...this.shards.values()].every((s) => s.up || (s.wasUp && now - s.since < this.gatewayGraceMs));
    return { gateway, ...this.state, shardCount: this.shardCount, shards };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }

  private gauge(name: string, help: string): Gauge {
    return new Gauge({ name: `${PREFIX}${name}`, help, registers: [this.registry] });
  }

  private counter(name: string, help: string): Counter {
    return new Counter({ name: `${PREFIX}${name}`, help, registers: [this.registry] });
  }

  private bounded(key: string, value: string): string {
    let seen = this.labelValues.get(key);
    if (!seen) this.labelValues.set(key, (seen = new Set()));
    if (seen.has(value)) return value;
    if (seen.size >= MAX_LABEL_VALUES) return OVERFLOW_LABEL;
    seen.add(value);
    return value;
  }
}

function setIfFinite(gauge: Gauge, value: number): void {
  if (Number.isFinite(value)) gauge.set(value);
}

function incIfPositive(counter: Counter, value: number): void {
  if (Number.isFinite(value) && value > 0) counter.inc(value);
}
