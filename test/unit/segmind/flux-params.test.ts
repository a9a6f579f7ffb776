import { describe, expect, it } from 'vitest';
import { splitIntoSingleImageRequests, type FluxDevParams } from '../../../src/services/segmind/flux-params.js';
import { detectImageFormat } from '../../../src/services/segmind/image-format.js';

const base: FluxDevParams = {
  prompt: 'p',
  aspect_ratio: '1:1',
  guidance: 3.5,
  steps: 25,
  samples: 3,
  seed: 46588,
  output_format: 'webp',
  output_quality: 80,
  prompt_strength: 0.8,
};

describe('splitting samples into single-image requests', () => {
  it('asks for one image per request with consecutive seeds', () => {
    const bodies = splitIntoSingleImageRequests(base);
    expect(bodies.map((b) => [b.samples, b.seed])).toEqual([
      [1, 46588],
      [1, 46589],
      [1, 46590],
    ]);
    expect(bodies[0]).toEqual({ ...base, samples: 1 });
  });

  it('wraps seeds inside the 32-bit range', () => {
    const bodies = splitIntoSingleImageRequests({ ...base, seed: 2 ** 32 - 2 });
    expect(bodies.map((b) => b.seed)).toEqual([2 ** 32 - 2, 2 ** 32 - 1, 0]);
  });
});

describe('image format detection by magic bytes', () => {
  it('recognises PNG, JPEG and WebP headers', () => {
    expect(detectImageFormat(Buffer.from('89504e470d0a1a0a0000', 'hex'))).toBe('png');
    expect(detectImageFormat(Buffer.from('ffd8ffe000104a464946', 'hex'))).toBe('jpg');
    expect(detectImageFormat(Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1'))).toBe('webp');
  });

  it('rejects HTML, RIFF audio and short bodies', () => {
    expect(detectImageFormat(Buffer.from('<html>error</html>'))).toBeUndefined();
    expect(detectImageFormat(Buffer.from('RIFF\x10\x00\x00\x00WAVEfmt ', 'latin1'))).toBeUndefined();
    expect(detectImageFormat(Buffer.from('ffd8', 'hex'))).toBeUndefined();
  });
});
