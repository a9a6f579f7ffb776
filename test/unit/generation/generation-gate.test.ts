import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { Clock } from '../../../src/clock.js';
import { createLogger } from '../../../src/logger.js';
import { GenerationGate, type GateOptions } from '../../../src/services/generation/generation-gate.js';
import { SegmindError, type SegmindErrorKind } from '../../../src/services/segmind/segmind-errors.js';

/** A clock whose sleeps end only when the test moves time past them. */
class ManualClock implements Clock {
  at = 1_000_000;
  private sleepers: Array<{ until: number; resolve: () => void }> = [];

  now = () => this.at;

  sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new Error('aborted'));
      const sleeper = { until: this.at + ms, resolve };
      this.sleepers.push(sleeper);
      signal?.addEventListener('abort', () => {
        this.sleepers = this.sleepers.filter((s) => s !== sleeper);
        reject(new Error('aborted'));
      });
    });

  pending(): number {
    return this.sleepers.length;
  }

  /** Moves time on and lets whatever was waiting run (and settle its promises). */
  async advance(ms: number): Promise<void> {
    this.at += ms;
    const due = this.sleepers.filter((s) => s.until <= this.at);
    this.sleepers = this.sleepers.filter((s) => s.until > this.at);
    for (const s of due) s.resolve();
    for (let i = 0; i < 10; i++) await Promise.resolve();
    await new Promise((r) => setImmediate(r));
  }
}

function setup(overrides: Partial<GateOptions> = {}) {
  const clock = new ManualClock();
  const lines: Array<{ level: number; msg: string }> = [];
  const logger = createLogger({
    level: 'debug',
    secrets: [],
    destination: new Writable({
      write(chunk: Buffer, _e, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) lines.push(JSON.parse(line) as { level: number; msg: string });
        done();
      },
    }),
  });
  const events: string[] = [];
  const probes: SegmindErrorKind[] = [];
  let answer: boolean | Error = false;
  const gate = new GenerationGate({
    clock,
    logger,
    failureThreshold: 3,
    openMs: 30_000,
    maxOpenMs: 300_000,
    pauseProbeMs: 60_000,
    onOperatorPause: (kind) => events.push(`paused:${kind}`),
    onOperatorResume: (kind) => events.push(`resumed:${kind}`),
    probeOperatorPause: (kind) => {
      probes.push(kind);
      return answer instanceof Error ? Promise.reject(answer) : Promise.resolve(answer);
    },
    ...overrides,
  });
  return { clock, gate, lines, events, probes, setAnswer: (a: boolean | Error) => (answer = a) };
}

describe('GenerationGate operator pause', () => {
  it('pauses on a rejected key, probes every pauseProbeMs, and resumes by itself once the probe succeeds', async () => {
    const { clock, gate, events, probes, setAnswer, lines } = setup();
    gate.afterCall(new SegmindError('bad_api_key', { status: 401, reason: 'Invalid API key' }));
    expect(gate.paused).toBe(true);
    expect(gate.blockForNewRequest()).toEqual({ reason: 'operator_pause', kind: 'bad_api_key' });
    expect(gate.beforeCall()?.kind).toBe('bad_api_key');
    expect(events).toEqual(['paused:bad_api_key']);
    const error = lines.find((l) => l.level === 50)!;
    expect(error.msg).toContain('generation paused bot-wide: SEGMIND_API_KEY was rejected by Segmind: Invalid API key');
    expect(error.msg).toContain('resumes by itself');
    expect(error.msg).not.toContain('restart');

    await clock.advance(59_999);
    expect(probes).toEqual([]);
    await clock.advance(1);
    expect(probes).toEqual(['bad_api_key']);
    expect(gate.paused).toBe(true);

    setAnswer(new Error('connection refused')); // a failing probe is "not yet", never a crash
    await clock.advance(60_000);
    expect(probes).toHaveLength(2);
    expect(gate.paused).toBe(true);

    setAnswer(true);
    await clock.advance(60_000);
    expect(probes).toHaveLength(3);
    expect(gate.paused).toBe(false);
    expect(gate.blockForNewRequest()).toBeUndefined();
    expect(gate.beforeCall()).toBeUndefined();
    expect(events).toEqual(['paused:bad_api_key', 'resumed:bad_api_key']);
    expect(lines.some((l) => l.msg === 'Segmind accepts the account again: generation resumed')).toBe(true);
    // no probe left waiting once resumed
    expect(clock.pending()).toBe(0);
  });

  it('pauses once for many failures, and again (with a new probe) after a resume', async () => {
    const { clock, gate, events, probes, setAnswer } = setup();
    gate.afterCall(new SegmindError('out_of_credits', { status: 406 }));
    gate.afterCall(new SegmindError('out_of_credits', { status: 406 }));
    gate.pause(new SegmindError('bad_api_key', { status: 401 }));
    expect(events).toEqual(['paused:out_of_credits']);
    expect(clock.pending()).toBe(1);
    setAnswer(true);
    await clock.advance(60_000);
    expect(probes).toEqual(['out_of_credits']);
    gate.afterCall(new SegmindError('bad_api_key', { status: 401 }));
    expect(events).toEqual(['paused:out_of_credits', 'resumed:out_of_credits', 'paused:bad_api_key']);
    await clock.advance(60_000);
    expect(gate.paused).toBe(false);
  });

  it('treats a forbidden balance read at start-up as a rejected key', () => {
    const { gate, events } = setup();
    gate.pause(new SegmindError('forbidden', { status: 403 }));
    expect(gate.blockForNewRequest()).toEqual({ reason: 'operator_pause', kind: 'bad_api_key' });
    expect(events).toEqual(['paused:bad_api_key']);
  });

  it('stops probing when closed, and a close during a probe does not resume', async () => {
    const { clock, gate, probes } = setup();
    gate.pause(new SegmindError('bad_api_key', { status: 401 }));
    expect(clock.pending()).toBe(1);
    await gate.close();
    expect(clock.pending()).toBe(0);
    await clock.advance(600_000);
    expect(probes).toEqual([]);
    expect(gate.paused).toBe(true);
  });

  it('without a probe, stays paused and says a restart is needed', async () => {
    const { clock, gate, lines } = setup({ probeOperatorPause: undefined });
    gate.afterCall(new SegmindError('out_of_credits', { status: 406 }));
    await clock.advance(3_600_000);
    expect(gate.paused).toBe(true);
    expect(lines.find((l) => l.level === 50)?.msg).toBe('generation paused bot-wide: the Segmind account is out of credits — fix it, then restart the bot');
  });

  it('does not pause for errors that are not the operator\'s (the breaker handles outages)', () => {
    const { gate, events } = setup();
    for (let i = 0; i < 3; i++) gate.afterCall(new SegmindError('server_error', { status: 503 }));
    expect(gate.paused).toBe(false);
    expect(gate.state()).toBe('open');
    expect(events).toEqual([]);
  });
});
