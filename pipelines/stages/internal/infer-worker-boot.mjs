// Worker entry of the infer pool (infer-pool.ts): worker threads do not inherit the tsx loader the main
// thread registered, so the worker registers it itself before importing the TypeScript worker body.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
await import(workerData.entry);
