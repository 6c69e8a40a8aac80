/**
 * Body of one infer-pool worker (infer-pool.ts): loads its own copy of the model (its own tfjs runtime and
 * wasm instance: module state is per worker thread) and answers `infer` messages one at a time.
 *
 * Messages in:  { type: 'infer', id, frames, options } | { type: 'tensors', id } | { type: 'dispose', id }
 * Messages out: { type: 'ready', info, head } | { type: 'error', id?, code, message }
 *               | { type: 'result', id, results } | { type: 'tensors', id, count } | { type: 'disposed', id, count }
 * Result arrays are transferred, not copied. `count` is tfjs' live tensor count in this worker (the leak check).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { CamstreamError } from '../../../common/errors.ts';
import { load } from '../../load/index.ts';
import type { CamModel, LoadOptions } from '../../types.ts';

interface WorkerInput {
  source: string;
  options: LoadOptions;
}

const port = parentPort!;
const { source, options } = workerData as WorkerInput & { entry: string };

async function tensorCount(): Promise<number> {
  // This worker's own tfjs instance (module state is per thread); ORT models hold no tensors between calls.
  if ((model?.info.engine ?? 'tfjs') !== 'tfjs') return 0;
  const tf = await import('@tensorflow/tfjs-core');
  return tf.memory().numTensors;
}

function errorMessage(id: number | undefined, err: unknown): Record<string, unknown> {
  const e = err as Error;
  return { type: 'error', id, code: err instanceof CamstreamError ? err.code : 'WORKER_ERROR', message: e?.message ?? String(err) };
}

let model: CamModel | undefined;
try {
  model = await load(source, options);
  const head = model.head();
  port.postMessage({ type: 'ready', info: model.info, head }, [head.weights.buffer as ArrayBuffer, head.bias.buffer as ArrayBuffer]);
} catch (err) {
  port.postMessage(errorMessage(undefined, err));
}

port.on('message', (m: { type: string; id: number; frames?: Array<{ data: Uint8Array; width: number; height: number }>; options?: object }) => {
  void (async () => {
    try {
      if (!model) throw new CamstreamError('DISPOSED', `worker model ${source} is not loaded`);
      if (m.type === 'infer') {
        const results = await model.infer(m.frames!, m.options);
        const transfer = results.flatMap((r) => [r.ids.buffer, r.scores.buffer, r.probabilities.buffer, r.maps.buffer, ...(r.features ? [r.features.buffer] : [])]);
        port.postMessage({ type: 'result', id: m.id, results }, [...new Set(transfer)] as ArrayBuffer[]);
      } else if (m.type === 'tensors') {
        port.postMessage({ type: 'tensors', id: m.id, count: await tensorCount() });
      } else if (m.type === 'dispose') {
        await model.dispose();
        port.postMessage({ type: 'disposed', id: m.id, count: await tensorCount() });
      }
    } catch (err) {
      port.postMessage(errorMessage(m.id, err));
    }
  })();
});
