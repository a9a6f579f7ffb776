import { describe, expect, it } from 'vitest';
import { IMAGE_CHECK_DURATION_BUCKETS, IMAGE_CHECK_VERDICTS, Metrics } from '../../../src/services/metrics.js';
import type { ImageVerdict } from '../../../src/services/safety/image-checker.js';

/** One series' value from the Prometheus text (enough of the format for prom-client's output), or undefined. */
async function value(metrics: Metrics, name: string, labels: Record<string, string> = {}): Promise<number | undefined> {
  const wanted = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(',');
  const prefix = wanted === '' ? `${name} ` : `${name}{${wanted}} `;
  const line = (await metrics.render()).body.split('\n').find((l) => l.startsWith(prefix));
  return line === undefined ? undefined : Number(line.slice(prefix.length));
}

describe('Metrics: image checks', () => {
  it('exports every verdict at 0 from the start, so rate() works before the first image', async () => {
    const metrics = new Metrics();
    for (const verdict of IMAGE_CHECK_VERDICTS) expect(await value(metrics, 'flux_bot_images_checked_total', { verdict })).toBe(0);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_count')).toBe(0);
  });

  it('counts each checked image under its verdict and observes its duration', async () => {
    const metrics = new Metrics();
    metrics.imageChecked('ok', 0.04);
    metrics.imageChecked('ok', 0.07);
    metrics.imageChecked('flagged', 0.2);
    metrics.imageChecked('failed', 15);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'ok' })).toBe(2);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'flagged' })).toBe(1);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'failed' })).toBe(1);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_count')).toBe(4);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_sum')).toBeCloseTo(15.31, 9);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_bucket', { le: '0.05' })).toBe(1);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_bucket', { le: '0.1' })).toBe(2);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_bucket', { le: '15' })).toBe(4);
  });

  it('has buckets from tens of milliseconds (a free worker) to past the 15 s timeout', () => {
    expect(IMAGE_CHECK_DURATION_BUCKETS[0]).toBeLessThanOrEqual(0.05);
    expect(IMAGE_CHECK_DURATION_BUCKETS.at(-1)).toBeGreaterThan(15);
  });

  it('still counts an image whose duration is not a number, without observing it', async () => {
    const metrics = new Metrics();
    metrics.imageChecked('failed', Number.NaN);
    metrics.imageChecked('ok', -1);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'failed' })).toBe(1);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_count')).toBe(1);
    expect(await value(metrics, 'flux_bot_image_check_duration_seconds_bucket', { le: '0.025' })).toBe(1);
  });
});

describe('Metrics.imageChecked with the checker\'s verdict', () => {
  it('counts a verdict ok, flagged, or failed when it has a failure (though a failed check is flagged)', async () => {
    const metrics = new Metrics();
    const verdicts: ImageVerdict[] = [
      { flagged: false, durationMs: 50 },
      { flagged: true, durationMs: 50 },
      { flagged: true, failure: 'timeout', durationMs: 15_000 },
      { flagged: true, failure: 'queue_full', durationMs: 0 },
    ];
    for (const verdict of verdicts) metrics.imageChecked(verdict, verdict.durationMs / 1000);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'ok' })).toBe(1);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'flagged' })).toBe(1);
    expect(await value(metrics, 'flux_bot_images_checked_total', { verdict: 'failed' })).toBe(2);
  });
});
