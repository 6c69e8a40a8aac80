/**
 * Builds the web client into client/dist (served by `camstream serve`). `npm run build:client`, also run
 * by `prepare` on `npm install`. Relative asset paths, so the client works under any mount point.
 */
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    sourcemap: true,
    // No inline module-preload polyfill: the server's CSP allows scripts from 'self' only.
    modulePreload: { polyfill: false },
    // Pages: the live client (index.html), the review UI (review.html, /review), the job queue (jobs.html, /jobs).
    rollupOptions: {
      input: {
        main: fileURLToPath(new URL('index.html', import.meta.url)),
        review: fileURLToPath(new URL('review.html', import.meta.url)),
        jobs: fileURLToPath(new URL('jobs.html', import.meta.url)),
      },
    },
  },
});
