import { describe, expect, it } from 'vitest';
import type { FluxDevParams } from '../../src/services/flux-params.js';
import { buildResultMessage, type BatchImage, type BatchResult } from '../../src/services/result-message.js';
import { SegmindError } from '../../src/services/segmind-errors.js';

const params: FluxDevParams = {
  prompt: 'a *bold* fox',
  aspect_ratio: '16:9',
  guidance: 3.5,
  steps: 30,
  samples: 3,
  seed: 100,
  output_format: 'png',
  output_quality: 80,
  prompt_strength: 0.8,
};

function image(index: number, size = 10): BatchImage {
  return { index, seed: 100 + index, bytes: Buffer.alloc(size), format: 'png', status: 200, attempts: 1, durationMs: 5 };
}

describe('result message', () => {
  it('attaches every image and shows it through an attachment:// embed', () => {
    const result: BatchResult = { images: [image(0), image(1), image(2)], failures: [], durationMs: 21_340 };
    const message = buildResultMessage({ ...params }, result, 1000);
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png', 'flux-101.png', 'flux-102.png']);
    expect(message.embeds.map((e) => e.image?.url)).toEqual([
      'attachment://flux-100.png',
      'attachment://flux-101.png',
      'attachment://flux-102.png',
    ]);
    // same url on every embed: Discord renders them as one gallery
    expect(new Set(message.embeds.map((e) => e.url)).size).toBe(1);
    const fields = Object.fromEntries(message.embeds[0]!.fields!.map((f) => [f.name, f.value]));
    expect(fields).toMatchObject({
      Seeds: '1: `100`\n2: `101`\n3: `102`',
      Steps: '30',
      Guidance: '3.5',
      'Aspect ratio': '16:9',
      Format: 'png',
      Time: '21.3 s',
    });
    expect(message.embeds[0]!.description).toBe('a \\*bold\\* fox');
    expect(message.content).toBe('');
  });

  it('posts what succeeded and says which image failed and why', () => {
    const failure = { index: 1, seed: 101, error: new SegmindError('server_error', { status: 500 }) };
    const message = buildResultMessage(params, { images: [image(0), image(2)], failures: [failure], durationMs: 1 }, 1000);
    expect(message.files).toHaveLength(2);
    expect(message.content).toBe('⚠️ Image 2 of 3 (seed 101) failed: Segmind had a server error. Try again in a moment.');
    expect(message.embeds[0]!.fields![0]!.value).toContain('2: `101` (failed)');
  });

  it('leaves out an image over the upload limit and explains it', () => {
    const message = buildResultMessage(
      { ...params, samples: 2 },
      { images: [image(0, 10), image(1, 3 * 1024 * 1024)], failures: [], durationMs: 1 },
      2 * 1024 * 1024,
    );
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png']);
    expect(message.oversized.map((i) => i.seed)).toEqual([101]);
    expect(message.content).toContain("3.0 MiB, over this server's 2.0 MiB upload limit");
  });

  it('mentions the quality only for lossy formats', () => {
    const webp = buildResultMessage({ ...params, samples: 1, output_format: 'webp', output_quality: 55 }, { images: [{ ...image(0), format: 'webp' }], failures: [], durationMs: 1 }, 1000);
    expect(webp.embeds[0]!.fields!.find((f) => f.name === 'Format')!.value).toBe('webp (quality 55)');
    expect(webp.embeds[0]!.fields!.find((f) => f.name === 'Seed')!.value).toBe('`100`');
  });

  it('keeps one message under Discord’s 25 MiB in all, and says which image did not fit', () => {
    const nine = 9 * 1024 * 1024;
    const message = buildResultMessage(
      { ...params, samples: 3 },
      { images: [image(0, nine), image(1, nine), image(2, nine)], failures: [], durationMs: 1 },
      10 * 1024 * 1024,
    );
    expect(message.files.map((f) => f.name)).toEqual(['flux-100.png', 'flux-101.png']);
    expect(message.oversized.map((i) => i.seed)).toEqual([102]);
    expect(message.content).toContain('Image 3 of 3 (seed 102) did not fit in one message');
  });
});
