import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Real models, real ffmpeg and real sockets: generous timeouts, and files run in separate processes
    // so one file's tfjs backend state cannot leak into another's.
    testTimeout: 120_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // 2-core machines: two workers keep both cores busy without oversubscribing them.
    maxWorkers: 2,
  },
});
