import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Real models, real ffmpeg and real sockets: generous timeouts (the suite must also pass with other
    // work on the 2 cores: with two busy loops beside it the longest video test takes over 2 minutes), and
    // files run in separate processes so one file's tfjs backend state cannot leak into another's.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    pool: 'forks',
    // 2-core machines: two workers keep both cores busy without oversubscribing them.
    maxWorkers: 2,
    projects: [
      { extends: true, test: { name: 'unit-integration', sequence: { groupOrder: 0 }, include: ['test/**/*.test.ts'], exclude: ['test/e2e/**'] } },
      // The browser tests each run a headless Chromium with several pages beside a server and a model in
      // one process; two of them at once, or one beside a video test, starve each other's pages of CPU.
      // They run last, one file at a time.
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } } },
    ],
  },
});
