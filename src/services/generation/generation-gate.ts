import type { Clock } from '../../clock.js';
import type { Logger } from '../../logger.js';
import { SegmindError, type SegmindErrorKind } from '../segmind/segmind-errors.js';

export type BreakerState = 'closed' | 'open' | 'half_open';

/** Failures that say Segmind itself is in trouble (not our request): these trip the breaker. */
const OUTAGE_KINDS: ReadonlySet<SegmindErrorKind> = new Set(['server_error', 'timeout', 'connection']);
/** Failures an operator has to fix: generation pauses bot-wide until the bot is restarted with a fix. */
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
  /** Called once when generation pauses bot-wide (to tell operators and servers' log channels). */
  onOperatorPause?(kind: SegmindErrorKind, message: string): void;
}

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
    if (OPERATOR_KINDS.has(error.kind) && !this.operatorPause) {
      this.operatorPause = { kind: error.kind, at: this.opts.clock.now() };
      this.opts.logger.error(
        { kind: error.kind, status: error.status },
        'generation paused bot-wide: the Segmind account needs an operator (fix the key or add credits, then restart the bot)',
      );
      this.opts.onOperatorPause?.(error.kind, error.message);
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

  get paused(): boolean {
    return this.operatorPause !== undefined;
  }

  state(): BreakerState {
    this.refresh();
    return this.breaker;
  }

  stopAccepting(): void {
    this.accepting = false;
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
