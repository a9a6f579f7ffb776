import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 20_000,
    hookTimeout: 20_000,
    // End-to-end files each start their own fakes on ephemeral ports; two cores run them well in parallel.
    pool: 'forks',
    // Vitest's default, one fewer than the cores, is a single worker on 2 cores: the files then ran one by one while
    // most of the suite waits (bot processes, fakes' latency, timers). Three at once: 163 s instead of 348 s (the sum
    // of the files' times) on this 2-core machine; `--maxWorkers=1` brings the old behaviour back.
    maxWorkers: 3,
  },
});
