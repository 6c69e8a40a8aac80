/** URL of the worker entry that loads a TypeScript body (`workerData.entry`) through tsx; see ts-worker-boot.mjs. */
export const TS_WORKER_BOOT = new URL('./ts-worker-boot.mjs', import.meta.url);
