/**
 * Run by `image-classifier.test.ts` the way `npm run dev` runs the bot (tsx): starts the real image checker,
 * checks one generated image and prints the verdict as one JSON line, so the test sees that the worker's TypeScript
 * entry loads in a tsx process (not only under vitest).
 */
import { pino } from 'pino';
import sharp from 'sharp';
import { createImageChecker } from '../../src/services/safety/classifier-pool.js';

const checker = await createImageChecker({ threads: 1, threshold: 0.6, logger: pino({ level: 'silent' }) });
try {
  const image = await sharp({ create: { width: 512, height: 512, channels: 3, background: { r: 40, g: 120, b: 200 } } })
    .webp()
    .toBuffer();
  process.stdout.write(`${JSON.stringify(await checker.check(image))}\n`);
} finally {
  await checker.close();
}
