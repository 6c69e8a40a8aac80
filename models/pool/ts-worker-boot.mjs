// Entry of camstream's worker threads (the tfjs infer pool, the training replicas): worker threads do not
// inherit the tsx loader the main thread registered, so the worker registers it itself before importing
// its TypeScript body, named by `workerData.entry`.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
