/**
 * `openInferPool`: a CamModel backed by N worker threads, each holding its own copy of the model. For
 * engines that compute on one thread: TF.js's wasm backend runs single-threaded in Node (tfjs disables
 * wasm threads there), so one wasm instance per worker and different frames on different workers is how
 * it uses more than one core. Each worker runs one `infer()` at a time; calls beyond that wait in a FIFO
 * queue. `info.parallelism` is the worker count and `info.runsOnJsThread` false, so `inferCams` keeps up to
 * that many batches in flight, results in order.
 *
 * Costs: N copies of the weights (memory) and a copy of each frame into a worker (model-size frames,
 * ~150 kB at 224x224). Results come back transferred (no copy). No tensor crosses a thread: workers
 * return the plain arrays of CamResult.
 *
 * Teardown: `dispose()` waits for calls in flight, disposes every worker's model, then terminates the
 * workers; `tensorCounts()` reports each worker's live tfjs tensors (the leak check).
 */
import { Worker } from 'node:worker_threads';
import { CamstreamError, ConfigError, type ErrorCode } from '../../common/errors.ts';
import type { CamModel, CamModelInfo, CamResult, Frame, InferOptions, LinearHead, LoadOptions } from '../types.ts';
import { TS_WORKER_BOOT } from './worker-boot.ts';

export interface InferPoolConfig {
  /** Worker threads, each with its own model copy, an integer in [1, 16]. Default 2. */
  workers?: number;
  /** Passed to `load()` in each worker (functions such as `onProgress` cannot cross threads and are dropped). */
  load?: Omit<LoadOptions, 'onProgress'>;
}

export const DEFAULT_INFER_POOL_CONFIG = Object.freeze({ workers: 2 });

interface Job {
  id: number;
  message: Record<string, unknown>;
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  busy: Job | undefined;
}

const ENTRY = new URL('./internal/infer-worker.ts', import.meta.url).href;

function toError(m: { code?: ErrorCode; message?: string }): Error {
  return new CamstreamError(m.code ?? 'WORKER_ERROR', m.message ?? 'infer worker failed');
}

/** A model in N worker threads (see the file comment). Implements CamModel; `withHead` is not offered. */
export class InferPool implements CamModel {
  readonly info: CamModelInfo;
  /** How many `infer()` calls run at the same time (one per worker); also `info.parallelism`. */
  readonly parallelism: number;
  private readonly queue: Job[] = [];
  private nextId = 1;
  private disposing: Promise<void> | undefined;

  private constructor(
    private readonly slots: Slot[],
    info: CamModelInfo,
    private readonly linearHead: LinearHead,
  ) {
    this.info = info;
    this.parallelism = slots.length;
    for (const slot of slots) {
      slot.worker.on('message', (m: { type: string; id?: number; results?: CamResult[]; count?: number; code?: ErrorCode; message?: string }) => {
        const job = slot.busy;
        if (!job || m.id !== job.id) return;
        slot.busy = undefined;
        if (m.type === 'error') job.reject(toError(m));
        else job.resolve(m.type === 'result' ? m.results : m.count);
        this.pump();
      });
      slot.worker.on('error', (err) => {
        const job = slot.busy;
        slot.busy = undefined;
        job?.reject(err);
      });
    }
  }

  /** Starts the workers and loads the model in each; rejects (workers terminated) if any load fails. */
  static async open(source: string, config: InferPoolConfig = {}): Promise<InferPool> {
    const workers = config.workers ?? DEFAULT_INFER_POOL_CONFIG.workers;
    if (!Number.isInteger(workers) || workers < 1 || workers > 16) {
      throw new ConfigError(`workers must be an integer in [1, 16], got ${String(workers)}`);
    }
    const { onProgress: _dropped, ...load } = (config.load ?? {}) as LoadOptions;
    const started = Array.from({ length: workers }, () => new Worker(TS_WORKER_BOOT, { workerData: { entry: ENTRY, source, options: load } }));
    const ready = started.map(
      (worker) =>
        new Promise<{ info: CamModelInfo; head: LinearHead }>((resolve, reject) => {
          worker.once('message', (m: { type: string; info: CamModelInfo; head: LinearHead; code?: ErrorCode; message?: string }) =>
            m.type === 'ready' ? resolve(m) : reject(toError(m)),
          );
          worker.once('error', reject);
          worker.once('exit', (code) => reject(new CamstreamError('WORKER_ERROR', `infer worker for ${source} exited with code ${code} before loading`)));
        }),
    );
    try {
      const loaded = await Promise.all(ready);
      // Only the listeners added here: Worker keeps internal ones (newListener) that start its message port.
      for (const w of started) for (const event of ['message', 'error', 'exit']) w.removeAllListeners(event);
      // The workers compute off this thread, one call each at a time.
      const info = Object.freeze({ ...loaded[0].info, runsOnJsThread: false, parallelism: workers }) as CamModelInfo;
      return new InferPool(started.map((worker) => ({ worker, busy: undefined })), info, loaded[0].head);
    } catch (err) {
      await Promise.all(started.map((w) => w.terminate()));
      throw err;
    }
  }

  private send<T>(message: Record<string, unknown>, slot?: Slot): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const job: Job = { id: this.nextId++, message, resolve: resolve as (v: unknown) => void, reject };
      if (slot) {
        // A message for one given worker (tensor counts, dispose): only sent while that worker is idle.
        this.queue.push(Object.assign(job, { slot }));
      } else {
        this.queue.push(job);
      }
      this.pump();
    });
  }

  /** Hands queued jobs to idle workers, FIFO. */
  private pump(): void {
    for (let i = 0; i < this.queue.length; ) {
      const job = this.queue[i] as Job & { slot?: Slot };
      const slot = job.slot ?? this.slots.find((s) => s.busy === undefined);
      if (!slot || slot.busy !== undefined) {
        i++;
        continue;
      }
      this.queue.splice(i, 1);
      slot.busy = job;
      slot.worker.postMessage({ ...job.message, id: job.id });
    }
  }

  async infer(frames: readonly Frame[], options: InferOptions = {}): Promise<CamResult[]> {
    if (this.disposing) throw new CamstreamError('DISPOSED', `infer pool for ${this.info.source} was disposed`);
    // Copies of the pixels go to the worker (structured clone); the caller's frames stay untouched.
    const plain = frames.map((f) => ({ data: f.data, width: f.width, height: f.height }));
    return this.send<CamResult[]>({ type: 'infer', frames: plain, options });
  }

  head(): LinearHead {
    return { weights: this.linearHead.weights.slice(), bias: this.linearHead.bias.slice(), ...(this.linearHead.labels ? { labels: [...this.linearHead.labels] } : {}) };
  }

  withHead(_head: LinearHead): CamModel {
    throw new ConfigError(`withHead is not available on an infer pool (${this.info.source}); load the model in this thread for custom heads`);
  }

  /** Live tfjs tensors in each worker (0 for ORT models). */
  tensorCounts(): Promise<number[]> {
    return Promise.all(this.slots.map((slot) => this.send<number>({ type: 'tensors' }, slot)));
  }

  /** Waits for calls in flight, disposes each worker's model, terminates the workers. */
  dispose(): Promise<void> {
    this.disposing ??= (async () => {
      await Promise.allSettled(this.slots.map((slot) => this.send<number>({ type: 'dispose' }, slot)));
      await Promise.all(this.slots.map((s) => s.worker.terminate()));
    })();
    return this.disposing;
  }
}

/** Opens an InferPool (see the file comment). Caller owns it and disposes it. */
export function openInferPool(source: string, config: InferPoolConfig = {}): Promise<InferPool> {
  return InferPool.open(source, config);
}
