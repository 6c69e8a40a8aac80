/**
 * A machine-speed probe: single-threaded ONNX Runtime sgemm throughput right now. On a machine shared
 * with other work it tells how much CPU the bench actually got; compare it between runs before comparing
 * their times.
 */
import * as ort from 'onnxruntime-node';
import { DataType, encodeModel, floatTensor, node, valueInfo } from '../../models/onnx/index.ts';
import { createRandom } from '../../lab/builders/index.ts';

const N = 512;

/** Best-of-`runs` GFLOP/s of a 512x512x512 MatMul on one thread (MLAS sgemm). */
export async function probeGflops(runs = 15): Promise<number> {
  const r = createRandom(1);
  const bytes = encodeModel({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'probe',
      node: [node('MatMul', ['x', 'w'], ['y'], 'matmul')],
      initializer: [floatTensor('w', [N, N], r.normalArray(N * N, 1))],
      input: [valueInfo('x', DataType.FLOAT, [N, N])],
      output: [valueInfo('y', DataType.FLOAT, [N, N])],
    },
  });
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const x = new ort.Tensor('float32', r.normalArray(N * N, 1), [N, N]);
    await session.run({ x });
    let best = Number.POSITIVE_INFINITY;
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await session.run({ x });
      best = Math.min(best, performance.now() - t0);
    }
    return (2 * N ** 3) / (best * 1e6);
  } finally {
    await session.release();
  }
}
