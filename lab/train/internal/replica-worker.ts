/**
 * Body of a training replica's worker thread (see ../replica.ts and trainGapNet's `replicas`). It starts
 * the backend the main thread trains on, builds its own replica (same seed, so the same initial weights)
 * and answers one message per step.
 *
 * Messages in:  { type: 'step', step, apply?: { lr, grads, stats } } (apply the previous step's average,
 *               then compute this step's shard) | { type: 'close' }
 * Messages out: { type: 'ready' } | { type: 'shard', step, loss, grads, stats } | { type: 'error', message }
 */
import { parentPort, workerData } from 'node:worker_threads';
import { initTfjsBackend } from '../../../models/tfjs/backend.ts';
import type { ResolvedTrainConfig } from '../train.ts';
import { prepareTraining } from '../train.ts';
import { Replica, type ShardResult } from '../replica.ts';

interface ReplicaWorkerData {
  config: ResolvedTrainConfig;
  index: number;
  count: number;
  backend: string;
}

type Message =
  | { type: 'step'; step: number; apply?: { lr: number; grads: Float32Array; stats: Float32Array } }
  | { type: 'close' };

const port = parentPort!;
const { config, index, count, backend } = workerData as ReplicaWorkerData;

try {
  await initTfjsBackend(backend);
  prepareTraining();
  const replica = new Replica(config, index, count);
  port.on('message', (m: Message) => {
    if (m.type === 'close') {
      replica.disposeOptimizer();
      replica.model.dispose();
      port.close();
      return;
    }
    try {
      if (m.apply) replica.apply(m.apply.lr, m.apply);
      const shard = replica.computeGradients(m.step) as ShardResult;
      port.postMessage({ type: 'shard', step: m.step, ...shard }, [shard.grads.buffer as ArrayBuffer, shard.stats.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ type: 'error', message: (err as Error)?.message ?? String(err) });
    }
  });
  port.postMessage({ type: 'ready' });
} catch (err) {
  port.postMessage({ type: 'error', message: (err as Error)?.message ?? String(err) });
}
