import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { SegmindError, type SegmindErrorKind } from '../segmind/segmind-errors.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Failures that say Segmind itself is in trouble (not our request): these trip the breaker. */
const OUTAGE_KINDS: ReadonlySet<SegmindErrorKind> = new Set(['server_error', 'timeout', 'connection']);
/** Failures an operator has to fix: generation pauses bot-wide until a probe sees Segmind accept the account again. */
const OPERATOR_KINDS: ReadonlySet<SegmindErrorKind> = new Set(['bad_api_key', 'out_of_credits']);

export interface GateOptions {
  clock: Clock;
  logger: Logger;
  /** Consecutive outage failures that open the breaker. */
  failureThreshold: number;
  /** First open period; doubles after each failed probe, up to maxOpenMs. */
  openMs: number;
  maxOpenMs: number;
  onBreakerChange?(state: BreakerState): void;
  /**
   * Called once when generation pauses bot-wide (to tell operators and servers' log channels): `message` is the
   * member-facing text, `detail` Segmind's status and reason for the operator.
   */
  onOperatorPause?(kind: SegmindErrorKind, message: string, detail: { status?: number; reason?: string }): void;
  /**
   * Asked every `pauseProbeMs` while paused: whether Segmind would take work again (the key is accepted; for
   * `out_of_credits`, there are credits). Throwing counts as "not yet". Without it the pause lasts until a restart.
   */
  probeOperatorPause?(kind: SegmindErrorKind): Promise<boolean>;
  /** Default 3 minutes: soon enough that members barely notice, rare enough to cost Segmind nothing. */
  pauseProbeMs?: number;
  /** Called once when a probe lifts the pause. */
  onOperatorResume?(kind: SegmindErrorKind): void;
}

export const DEFAULT_PAUSE_PROBE_MS = 3 * 60_000;

const PAUSE_LOG: Partial<Record<SegmindErrorKind, string>> = {
  bad_api_key: 'SEGMIND_API_KEY was rejected by Segmind',
  out_of_credits: 'the Segmind account is out of credits',
};

export type GateBlock =
  | { reason: 'restarting' }
  | { reason: 'operator_pause'; kind: SegmindErrorKind }
  | { reason: 'breaker_open'; retryAt: number };

/**
 * Whether Segmind may be called right now, bot-wide for this process: a circuit breaker for outages, a pause after
 * a rejected key or an empty account, and the shutdown switch.
 */
export class GenerationGate {
  private breaker: BreakerState = 'closed';
  private consecutiveFailures = 0;
  private openUntil = 0;
  private currentOpenMs: number;
  private probeOut = false;
  private operatorPause: { kind: SegmindErrorKind; at: number } | undefined;
  private accepting = true;
  /** Ends the pause probe's wait at shutdown, so no timer outlives the bot. */
  private readonly closed = new AbortController();
  private probing: Promise<void> | undefined;

  constructor(private readonly opts: GateOptions) {
    this.currentOpenMs = opts.openMs;
  }

  /** Why a new request must be refused now, if it must. */
  blockForNewRequest(): GateBlock | undefined {
    if (!this.accepting) return { reason: 'restarting' };
    if (this.operatorPause) return { reason: 'operator_pause', kind: this.operatorPause.kind };
    this.refresh();
    if (this.breaker === 'open') return { reason: 'breaker_open', retryAt: this.openUntil };
    return undefined;
  }

  /** Asked before each Segmind call; returns the error to fail it with instead of calling. */
  beforeCall(): SegmindError | undefined {
    if (this.operatorPause) return new SegmindError(this.operatorPause.kind);
    this.refresh();
    if (this.breaker === 'open') return new SegmindError('server_error', { reason: 'circuit breaker open' });
    if (this.breaker === 'half_open') {
      if (this.probeOut) return new SegmindError('server_error', { reason: 'circuit breaker probing' });
      this.probeOut = true;
    }
    return undefined;
  }

  afterCall(error: SegmindError | undefined): void {
    const wasProbe = this.breaker === 'half_open' && this.probeOut;
    this.probeOut = false;
    if (error === undefined) {
      this.consecutiveFailures = 0;
      if (this.breaker !== 'closed') {
        this.currentOpenMs = this.opts.openMs;
        this.setBreaker('closed');
        this.opts.logger.info('Segmind recovered: circuit breaker closed');
      }
      return;
    }
    if (OPERATOR_KINDS.has(error.kind)) {
      this.pause(error);
      return;
    }
    if (!OUTAGE_KINDS.has(error.kind)) return;
    this.consecutiveFailures++;
    if (wasProbe) {
      this.currentOpenMs = Math.min(this.opts.maxOpenMs, this.currentOpenMs * 2);
      this.open();
    } else if (this.breaker === 'closed' && this.consecutiveFailures >= this.opts.failureThreshold) {
      this.open();
    }
  }

  /**
   * Pauses generation bot-wide for an error only the operator can fix (a rejected key, an empty account): from a
   * Segmind call, or from the balance read at start-up. Once; then probes until Segmind accepts work again.
   */
  pause(error: SegmindError): void {
    if (this.operatorPause || this.closed.signal.aborted) return;
    const kind = OPERATOR_KINDS.has(error.kind) ? error.kind : 'bad_api_key';
    this.operatorPause = { kind, at: this.opts.clock.now() };
    const probeMs = this.opts.pauseProbeMs ?? DEFAULT_PAUSE_PROBE_MS;
    const next = this.opts.probeOperatorPause
      ? `Segmind is asked again every ${Math.round(probeMs / 1000)} s and generation resumes by itself once it works`
      : 'fix it, then restart the bot';
    this.opts.logger.error(
      { kind, status: error.status, reason: error.detail.reason },
      `generation paused bot-wide: ${PAUSE_LOG[kind] ?? 'Segmind refused the account'}${error.detail.reason ? `: ${error.detail.reason}` : ''} — ${next}`,
    );
    this.opts.onOperatorPause?.(kind, error.message, {
      ...(error.status !== undefined ? { status: error.status } : {}),
      ...(error.detail.reason !== undefined ? { reason: error.detail.reason } : {}),
    });
    if (this.opts.probeOperatorPause) this.probing = this.probeUntilResumed(this.operatorPause, probeMs);
  }

  get paused(): boolean {
    return this.operatorPause !== undefined;
  }

  /** Stops the pause probe (shutdown). */
  async close(): Promise<void> {
    this.closed.abort();
    await this.probing;
  }

  state(): BreakerState {
    this.refresh();
    return this.breaker;
  }

  stopAccepting(): void {
    this.accepting = false;
  }

  private async probeUntilResumed(pause: { kind: SegmindErrorKind; at: number }, probeMs: number): Promise<void> {
    const { clock, logger } = this.opts;
    while (this.operatorPause === pause) {
      try {
        await clock.sleep(probeMs, this.closed.signal);
      } catch {
        return; // closed
      }
      let recovered = false;
      try {
        recovered = await this.opts.probeOperatorPause!(pause.kind);
      } catch (error) {
        logger.debug({ err: error, kind: pause.kind }, 'pause probe failed; asking again later');
      }
      if (this.closed.signal.aborted || this.operatorPause !== pause) return;
      if (!recovered) {
        logger.info({ kind: pause.kind, retryInMs: probeMs }, 'Segmind still refuses the account: generation stays paused');
        continue;
      }
      this.operatorPause = undefined;
      logger.info({ kind: pause.kind, pausedForMs: clock.now() - pause.at }, 'Segmind accepts the account again: generation resumed');
      this.opts.onOperatorResume?.(pause.kind);
      return;
    }
  }

  private open(): void {
    this.openUntil = this.opts.clock.now() + this.currentOpenMs;
    this.setBreaker('open');
    this.opts.logger.warn(
      { failures: this.consecutiveFailures, openForMs: this.currentOpenMs },
      'Segmind keeps failing: circuit breaker open, new requests refused for a while',
    );
  }

  private refresh(): void {
    if (this.breaker === 'open' && this.opts.clock.now() >= this.openUntil) this.setBreaker('half_open');
  }

  private setBreaker(state: BreakerState): void {
    if (this.breaker === state) return;
    this.breaker = state;
    this.opts.onBreakerChange?.(state);
  }
}
