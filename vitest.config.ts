import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real models, real ffmpeg and real sockets: generous timeouts (the suite must also pass with other
    // work on the 2 cores: with two busy loops beside it the longest video test takes over 2 minutes), and
    // files run in separate processes so one file's tfjs backend state cannot leak into another's.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // 2-core machines: two workers keep both cores busy without oversubscribing them.
    maxWorkers: 2,
  },
});
