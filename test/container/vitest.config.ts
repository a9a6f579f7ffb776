import { defineConfig } from 'vitest/config';

// The Dockerfile's steps, replayed (`.ci/run`): minutes of npm installs, so not part of `npm test`.
export default defineConfig({
  test: {
    root: `${import.meta.dirname}/../..`,
    include: ['test/container/**/*.container.ts'],
    testTimeout: 240_000,
    hookTimeout: 900_000,
  },
});
