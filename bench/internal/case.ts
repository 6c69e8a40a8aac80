/**
 * One bench case (engine x backend x model), run in its own process so that its peak RSS is its own and
 * no engine state (tfjs' global backend, ORT's thread pools) carries over between cases.
 *
 * Per case it times, interleaved:
 * - `forward`: the plain network alone. ORT: a plain session on the un-extended ONNX file fed an already
 *   preprocessed float NCHW tensor. TF.js: `model.predict` in `tf.tidy`, logits read with `dataSync`.
 * - `inferModel`: camstream's `infer()` on a frame already at the model's input size (uint8 -> float,
 *   normalization, forward, CAM, top-k, maps read back; no resampling).
 * - `inferFrame`: the same on a larger frame (default 640x480), so bilinear resizing is included.
 * - `forwardFolded` (tfjs): the plain forward pass of the batchnorm-folded network, to show what folding
 *   at load would gain (tfjs-layers runs each BatchNormalization as its own pass; ORT folds by itself).
 */
import { readFile } from 'node:fs/promises';
import { load, type CamModel, type EngineName, type Frame } from '../../models/index.ts';
import { createRandom } from '../../lab/builders/index.ts';
import { BENCH_PREPROCESS, type BenchModelName } from './models.ts';
import { type MeasurePlan, type Operation, type Timing, measureInterleaved, peakRssMiB, timed } from './measure.ts';

export interface CaseSpec {
  engine: EngineName;
  /** tfjs backend or ORT execution provider. */
  backend: string;
  model: BenchModelName;
  /** Model file: the tfjs folder or the .onnx file. */
  path: string;
  /** tfjs only: the batchnorm-folded variant's folder, timed as `forwardFolded`. */
  foldedPath?: string;
  inputSize: [number, number];
  /** Intra-op threads asked for (ORT; tfjs backends decide their own). */
  threads: number;
  /** ORT only: spin-waiting pool threads (both sessions alike). Default true (ORT's default). */
  spinWait?: boolean;
  /** Frame size `[width, height]` of the resizing case. */
  frameSize: [number, number];
  topK: number;
  plan: MeasurePlan;
}

export interface CaseResult {
  engine: EngineName;
  /** What camstream reports running (backend or execution provider). */
  backend: string;
  model: BenchModelName;
  /** Intra-op threads camstream reports. */
  threads: number;
  /** Threads of the plain forward session (ORT: as set; tfjs: the backend's). */
  forwardThreads: number;
  /** Loading the plain model, and camstream's `load()` (discovery, graph extension, warm-up pass). */
  forwardLoadMs: number;
  camLoadMs: number;
  forward: Timing;
  /** tfjs only: the plain forward pass of the batchnorm-folded network (same function, fewer layers). */
  forwardFolded?: Timing;
  inferModel: Timing;
  inferFrame: Timing;
  /** (inferModel - forward) / forward: what camstream adds (uint8 input, normalization, CAM, top-k, read-back). */
  camShare: number;
  /** (inferFrame - forward) / forward: the same with resizing a `frameSize` frame. */
  camShareWithResize: number;
  /** camShare from the fastest runs (min times): less sensitive to outside load than the medians. */
  camShareMin: number;
  /** Peak resident set of the case's process, MiB. */
  peakRssMiB: number;
  /** TF.js only: tensors alive after the timed runs minus before (0 means no leak). */
  tensorLeak?: number;
  /** The logits spread of the plain forward pass: a sanity check that the random network is not degenerate. */
  logitsStd: number;
}

function randomFrame(seed: number, width: number, height: number): Frame {
  const r = createRandom(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = r.int(256);
  return { data, width, height };
}

function std(values: ArrayLike<number>): number {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < values.length; i++) {
    s += values[i];
    s2 += values[i] * values[i];
  }
  const m = s / values.length;
  return Math.sqrt(Math.max(s2 / values.length - m * m, 0));
}

/** A plain forward pass: `run` gives the logits; `dispose` frees everything. */
interface PlainForward {
  run(): Promise<Float32Array>;
  threads: number;
  dispose(): Promise<void>;
  tensors?: () => number;
}

async function plainOnnx(spec: CaseSpec): Promise<PlainForward> {
  const ort = await import('onnxruntime-node');
  const bytes = await readFile(spec.path);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: [spec.backend],
    intraOpNumThreads: spec.threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    extra: { session: { intra_op: { allow_spinning: spec.spinWait === false ? '0' : '1' } } },
  });
  const [h, w] = spec.inputSize;
  // Already "preprocessed": unit-normal floats, NCHW as the ONNX builder lays the input out.
  const input = new ort.Tensor('float32', createRandom(3).normalArray(3 * h * w, 1), [1, 3, h, w]);
  const feeds = { [session.inputNames[0]]: input };
  const output = session.outputNames[0];
  return {
    async run() {
      const out = await session.run(feeds);
      const logits = out[output].data as Float32Array;
      for (const t of Object.values(out)) t.dispose();
      return logits;
    },
    threads: spec.threads,
    dispose: () => session.release(),
  };
}

async function plainTfjs(spec: CaseSpec, path: string): Promise<PlainForward> {
  const tf = await import('@tensorflow/tfjs-core');
  const tfl = await import('@tensorflow/tfjs-layers');
  const { initTfjsBackend, folderLoadHandler } = await import('../../models/tfjs/index.ts');
  const backend = await initTfjsBackend(spec.backend);
  const model = await tfl.loadLayersModel(folderLoadHandler(path));
  const [h, w] = spec.inputSize;
  const x = tf.tensor4d(createRandom(3).normalArray(h * w * 3, 1), [1, h, w, 3]);
  return {
    async run() {
      return tf.tidy(() => (model.predict(x) as import('@tensorflow/tfjs-core').Tensor).dataSync() as Float32Array);
    },
    threads: backend.threads,
    async dispose() {
      x.dispose();
      model.dispose();
    },
    tensors: () => tf.memory().numTensors,
  };
}

/** Runs one case in this process. */
export async function runCase(spec: CaseSpec): Promise<CaseResult> {
  const plainLoad = await timed(() => (spec.engine === 'onnx' ? plainOnnx(spec) : plainTfjs(spec, spec.path)));
  const plain = plainLoad.value;
  let cam: CamModel | undefined;
  let folded: PlainForward | undefined;
  try {
    if (spec.engine === 'tfjs' && spec.foldedPath) folded = await plainTfjs(spec, spec.foldedPath);
    const camLoad = await timed(() =>
      load(spec.path, { engine: spec.engine, backend: spec.backend, threads: spec.threads, spinWait: spec.spinWait, config: BENCH_PREPROCESS }),
    );
    cam = camLoad.value;
    const model = cam;
    const [h, w] = spec.inputSize;
    const atModelSize = randomFrame(1, w, h);
    const larger = randomFrame(2, spec.frameSize[0], spec.frameSize[1]);
    const options = { topK: spec.topK };
    let logits: Float32Array = new Float32Array();
    const ops: Record<string, Operation> = {
      forward: async () => {
        logits = await plain.run();
      },
      inferModel: () => model.infer([atModelSize], options),
      inferFrame: () => model.infer([larger], options),
    };
    const foldedModel = folded;
    if (foldedModel) ops.forwardFolded = () => foldedModel.run();
    // Tensors alive once everything has run (steady state) vs after the timed runs: a leak shows.
    let before: number | undefined;
    const t = await measureInterleaved(ops, spec.plan, () => {
      before = plain.tensors?.();
    });
    const after = plain.tensors?.();
    return {
      engine: spec.engine,
      backend: model.info.backend,
      model: spec.model,
      threads: model.info.threads,
      forwardThreads: plain.threads,
      forwardLoadMs: plainLoad.ms,
      camLoadMs: camLoad.ms,
      forward: t.forward,
      ...(t.forwardFolded ? { forwardFolded: t.forwardFolded } : {}),
      inferModel: t.inferModel,
      inferFrame: t.inferFrame,
      camShare: (t.inferModel.medianMs - t.forward.medianMs) / t.forward.medianMs,
      camShareWithResize: (t.inferFrame.medianMs - t.forward.medianMs) / t.forward.medianMs,
      camShareMin: (t.inferModel.minMs - t.forward.minMs) / t.forward.minMs,
      peakRssMiB: peakRssMiB(),
      ...(before !== undefined && after !== undefined ? { tensorLeak: after - before } : {}),
      logitsStd: std(logits),
    };
  } finally {
    await cam?.dispose();
    await folded?.dispose();
    await plain.dispose();
  }
}
