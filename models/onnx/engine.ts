/**
 * The ONNX Runtime engine: loads a .onnx classifier, finds its GAP head (discover.ts), rewrites the graph
 * so preprocessing and CAM run inside the session (extend.ts), and runs one session call per batch of
 * same-size frames. Only ids, scores, probabilities, the asked-for maps at feature resolution and, when
 * asked, the GAP vectors leave the session.
 *
 * Execution providers (`LoadOptions.backend`): `cpu` (default); `cuda` and `tensorrt` when this
 * onnxruntime-node has them (bundled, or their provider library installed beside the binding), else a
 * ConfigError naming the ones available; `webgpu` when a session can really be created on it (ONNX Runtime
 * fails without an adapter): otherwise the model runs on `cpu`, a process warning says so, and
 * `info.backend` reports `cpu`.
 *
 * Threads: `intraOpNumThreads` = min(asked, free cores), default all free cores
 * (`os.availableParallelism()`); one inter-op thread; graph optimization level `all`. `spinWait: false`
 * (LoadOptions) sets ORT's `session.intra_op.allow_spinning` to 0: idle pool threads sleep instead of
 * spinning, which costs a little alone but leaves the cores to ffmpeg in the video pipeline
 * (bench/ort-threads.ts measures both).
 *
 * Ownership: no tensor crosses the boundary (results are plain typed arrays the caller owns). The loaded
 * model owns the one session; `withHead` models share it (their W and b are fed at each run) and own
 * nothing native.
 */
import { readFile } from 'node:fs/promises';
import * as ort from 'onnxruntime-node';
import { ConfigError, ModelLoadError } from '../../common/errors.ts';
import { fitGeometry, resolvePreprocess, usesResizeTaps } from '../preprocess.ts';
import { cachedResizeTaps, type ResizeTaps } from '../internal/resize-taps.ts';
import type { CamResult, EngineLoader, Frame, InferOptions, LinearHead, ModelFileConfig, Preprocess, ResolvedSource } from '../types.ts';
import {
  checkLabelCount,
  checkSourceFormat,
  defaultLabels,
  engineRuntime,
  mergeFileConfig,
  resolveThreads,
} from '../internal/engine-common.ts';
import { EngineCamModel, type BackboneInfo, type EngineHead, type SharedCore } from '../internal/engine-model.ts';
import { discoverOnnxHead, type OnnxHead } from './discover.ts';
import { discoverOnnxInput, type OnnxInput } from './discover-input.ts';
import { CAM_IO, extendOnnxModel } from './extend.ts';
import { GraphView, parseOnnxModel } from './graph.ts';
import { createSession, resolveProvider } from './session.ts';

export { DEFAULT_TOP_K } from '../internal/engine-common.ts';

/** State shared by a loaded model and the `withHead` models derived from it. */
interface Core extends SharedCore {
  session: ort.InferenceSession;
  pre: Preprocess;
  /** Frames per session run (1 when the model fixes its batch to 1). */
  maxBatch: number;
  /** Runs started and not yet settled: `dispose` waits for them before releasing the session. */
  pending: Set<Promise<unknown>>;
  /** The graph has an activated class-conv head and takes `cam_slope` (extend.ts). */
  activated: boolean;
}

interface Head extends EngineHead {
  /** `[C, k]`, row c = W[:, c]: the layout `cam_weights` is fed in. */
  weightsT: Float32Array;
  bias: Float32Array;
}

/** `[rows, cols]` row-major -> `[cols, rows]`. */
function transpose(src: Float32Array, rows: number, cols: number): Float32Array {
  const dst = new Float32Array(src.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) dst[c * rows + r] = src[r * cols + c];
  return dst;
}

/** Groups frame indices by frame size (first-seen order), each group cut into runs of at most `max`. */
function runsBySize(frames: readonly Frame[], max: number): number[][] {
  const groups = new Map<string, number[]>();
  frames.forEach((f, i) => {
    const key = `${f.width}x${f.height}`;
    const g = groups.get(key);
    if (g) g.push(i);
    else groups.set(key, [i]);
  });
  const runs: number[][] = [];
  for (const g of groups.values()) for (let i = 0; i < g.length; i += max) runs.push(g.slice(i, i + max));
  return runs;
}

/** The per-run feeds for the frames `run` (all of one size): pixels, the request rows and the letterbox fit. */
function frameFeeds(frames: readonly Frame[], run: number[], row: readonly number[], pre: Preprocess): Record<string, ort.Tensor> {
  const { width, height } = frames[run[0]];
  const bytes = width * height * 3;
  let packed: Uint8Array;
  if (run.length === 1) {
    packed = frames[run[0]].data;
  } else {
    packed = new Uint8Array(run.length * bytes);
    run.forEach((idx, j) => packed.set(frames[idx].data, j * bytes));
  }
  const m = row.length;
  const request = new BigInt64Array(run.length * m);
  for (let j = 0; j < run.length; j++) for (let s = 0; s < m; s++) request[j * m + s] = BigInt(row[s]);
  const feeds: Record<string, ort.Tensor> = {
    [CAM_IO.frames]: new ort.Tensor('uint8', packed, [run.length, height, width, 3]),
    [CAM_IO.request]: new ort.Tensor('int64', request, [run.length, m]),
  };
  return { ...feeds, ...fitFeeds(width, height, pre) };
}

/** A tap table as the `cam_*_taps` / `cam_*_weights` feeds (weights as `[out, 1, t]`, the batched MatMul's left side). */
function tapFeeds(t: ResizeTaps, taps: string, weights: string): Record<string, ort.Tensor> {
  return {
    [taps]: new ort.Tensor('int64', BigInt64Array.from(t.indices, BigInt), [t.outSize, t.taps]),
    [weights]: new ort.Tensor('float32', t.weights, [t.outSize, 1, t.taps]),
  };
}

/**
 * The feeds placing a `width` x `height` frame in the extended graph's input (extend.ts): the letterbox fit and
 * the resize taps, as `pre` needs them. Exported for tools and tests that run the extended graph themselves.
 */
export function fitFeeds(width: number, height: number, pre: Preprocess): Record<string, ort.Tensor> {
  const feeds: Record<string, ort.Tensor> = {};
  const g = fitGeometry(width, height, pre);
  if (pre.resize === 'letterbox') {
    if (!usesResizeTaps(pre)) feeds[CAM_IO.fitSize] = new ort.Tensor('int64', BigInt64Array.from(g.contentSize, BigInt), [2]);
    const pads = [0, g.padTop, g.padLeft, 0, 0, g.padBottom, g.padRight, 0];
    feeds[CAM_IO.fitPads] = new ort.Tensor('int64', BigInt64Array.from(pads, BigInt), [8]);
  }
  if (usesResizeTaps(pre)) {
    const [h, w] = g.contentSize;
    Object.assign(
      feeds,
      tapFeeds(cachedResizeTaps(width, w, pre.resizeFilter), CAM_IO.colTaps, CAM_IO.colWeights),
      tapFeeds(cachedResizeTaps(height, h, pre.resizeFilter), CAM_IO.rowTaps, CAM_IO.rowWeights),
    );
  }
  return feeds;
}

/** Copies one run's outputs (`m` maps per frame, `k` features) into `results` at the frames' indices. */
function splitRun(out: ort.InferenceSession.ReturnType, run: number[], m: number, k: number, wantFeatures: boolean, results: CamResult[]): void {
  const ids = out[CAM_IO.ids].data as BigInt64Array;
  const scores = out[CAM_IO.scores].data as Float32Array;
  const probs = out[CAM_IO.probs].data as Float32Array;
  const mapsTensor = out[CAM_IO.maps];
  const maps = mapsTensor.data as Float32Array;
  const [mapH, mapW] = mapsTensor.dims.slice(2) as [number, number];
  const gap = wantFeatures ? (out[CAM_IO.gap].data as Float32Array) : undefined;
  const perMap = mapH * mapW;
  run.forEach((idx, j) => {
    const result: CamResult = {
      ids: Int32Array.from(ids.subarray(j * m, (j + 1) * m), Number),
      scores: scores.slice(j * m, (j + 1) * m),
      probabilities: probs.slice(j * m, (j + 1) * m),
      maps: maps.slice(j * m * perMap, (j + 1) * m * perMap),
      mapSize: [mapH, mapW],
    };
    if (gap) result.features = gap.slice(j * k, (j + 1) * k);
    results[idx] = result;
  });
}

class OnnxCamModel extends EngineCamModel<Core, Head> {
  protected readonly releasedCore = 'its session was released';

  constructor(core: Core, h: Head, info: BackboneInfo, ownsSession: boolean) {
    super(core, h, info, ownsSession);
  }

  async infer(frames: readonly Frame[], options: InferOptions = {}): Promise<CamResult[]> {
    const request = this.checkInfer(frames, options);
    // The `cam_request` row: class ids, or -1 per top-k slot (see extend.ts).
    const row = request.classes ?? new Array<number>(request.k).fill(-1);
    const fetches: string[] = [CAM_IO.ids, CAM_IO.scores, CAM_IO.probs, CAM_IO.maps];
    if (request.wantFeatures) fetches.push(CAM_IO.gap);
    const [, , k] = this.core.featureShape;
    const numClasses = this.h.numClasses;
    const headFeeds: Record<string, ort.Tensor> = {
      [CAM_IO.weights]: new ort.Tensor('float32', this.h.weightsT, [numClasses, k]),
      [CAM_IO.bias]: new ort.Tensor('float32', this.h.bias, [numClasses]),
    };
    // Activated graphs: the model's own head keeps its ReLU (slope 0); a withHead classifier is linear.
    if (this.core.activated) headFeeds[CAM_IO.slope] = new ort.Tensor('float32', Float32Array.of(this.h.kind === 'custom-head' ? 1 : 0), []);
    const results = new Array<CamResult>(frames.length);
    for (const run of runsBySize(frames, this.core.maxBatch)) {
      const feeds = { ...frameFeeds(frames, run, row, this.core.pre), ...headFeeds };
      this.assertUsable();
      const out = await this.runSession(feeds, fetches);
      splitRun(out, run, row.length, k, request.wantFeatures, results);
    }
    return results;
  }

  /** One session run, tracked in `pending` so that `dispose` waits for it. */
  private async runSession(feeds: Record<string, ort.Tensor>, fetches: string[]): Promise<ort.InferenceSession.ReturnType> {
    const running = this.core.session.run(feeds, fetches);
    this.core.pending.add(running);
    try {
      return await running;
    } finally {
      this.core.pending.delete(running);
    }
  }

  head(): LinearHead {
    this.assertUsable();
    const [, , k] = this.core.featureShape;
    return {
      weights: transpose(this.h.weightsT, this.h.numClasses, k),
      bias: this.h.bias.slice(),
      labels: [...this.h.labels],
    };
  }

  protected customHead(head: LinearHead, k: number, c: number, labels: string[]): Head {
    return { kind: 'custom-head', numClasses: c, weightsT: transpose(head.weights, k, c), bias: head.bias.slice(), labels };
  }

  protected derive(h: Head, info: BackboneInfo): OnnxCamModel {
    return new OnnxCamModel(this.core, h, info, false);
  }

  protected freeHead(): void {
    // The head is plain arrays, fed at each run: nothing native to free.
  }

  protected async freeCore(): Promise<void> {
    // A run already queued still uses the session: release it once every run has settled.
    const pending = [...this.core.pending];
    await Promise.allSettled(pending);
    await this.core.session.release();
  }
}

/**
 * Loads an ONNX classifier for CAM (see the file comment).
 * @throws ConfigError for a non-ONNX source, a bad backend or threads value, or bad preprocessing config.
 * @throws ModelLoadError when the file cannot be read or parsed, or ONNX Runtime rejects it.
 * @throws NoGapHeadError when no GAP head is found (the message names the last nodes and the
 *   camstream.json fields to set).
 */
export const loadOnnxModel: EngineLoader = async (source: ResolvedSource, options) => {
  const where = source.original;
  checkSourceFormat(source, 'onnx', '.onnx files', where);
  const provider = resolveProvider(options.backend);
  const threads = resolveThreads(options.threads);
  if (options.spinWait !== undefined && typeof options.spinWait !== 'boolean') {
    throw new ConfigError(`spinWait must be true or false, got ${String(options.spinWait)}`);
  }
  const spinWait = options.spinWait ?? true;
  // LoadOptions.config wins over camstream.json (ResolvedSource usually has them merged already).
  const fileConfig = mergeFileConfig(source, options);
  const bytes = await readModelBytes(source, where);
  const { input, pre, found, extended } = prepareGraph(bytes, fileConfig, where);
  warnDefaultNormalization(pre, where);
  const created = await createSession(extended, provider, threads, where, spinWait);
  const session = created.session;
  try {
    const featureShape = await probeFeatureShape(session, found, pre, where);
    if (source.labels !== undefined) checkLabelCount(source.labels, found.numClasses, where);
    const core: Core = {
      session,
      where,
      pre,
      featureShape,
      maxBatch: input.fixedBatch === 1 ? 1 : Number.POSITIVE_INFINITY,
      pending: new Set(),
      disposed: false,
      activated: found.activation === 'relu',
    };
    const head: Head = {
      kind: found.kind,
      numClasses: found.numClasses,
      weightsT: transpose(found.weights, found.channels, found.numClasses),
      bias: found.bias,
      labels: source.labels ? [...source.labels] : defaultLabels(found.numClasses),
    };
    const info: BackboneInfo = {
      engine: 'onnx',
      backend: created.provider,
      threads,
      runsOnJsThread: false,
      parallelism: 1,
      runtime: engineRuntime('onnxruntime-node'),
      source: where,
      preprocess: pre,
      featureShape,
    };
    return new OnnxCamModel(core, head, info, true);
  } catch (err) {
    await session.release();
    throw err;
  }
};

/** Sources already warned about (the warning is printed once per model per process). */
const warnedDefaults = new Set<string>();

/**
 * ONNX files carry no normalization: a model run on camstream's defaults (x/255, mean 0, std 1) with no
 * camstream.json, preset or scale/mean/std is very likely fed the wrong numbers (a torchvision export wants
 * the `imagenet` preset). Says so once, as a process warning (stderr).
 */
function warnDefaultNormalization(pre: Preprocess, where: string): void {
  if (pre.normalization !== 'default' || warnedDefaults.has(where)) return;
  warnedDefaults.add(where);
  process.emitWarning(
    `camstream: ${where} has no camstream.json normalization and runs on the defaults (x/255, mean 0, std 1); ` +
      'torchvision and timm exports need --preset imagenet (or "preset": "imagenet" in camstream.json), ' +
      'Keras "tf"-mode models --preset tf',
    { code: 'CAMSTREAM_DEFAULT_NORMALIZATION' },
  );
}

async function readModelBytes(source: ResolvedSource, where: string): Promise<Uint8Array> {
  try {
    return await readFile(source.path);
  } catch (err) {
    throw new ModelLoadError(`${where}: cannot read ${source.path}: ${(err as Error).message}`, { cause: err });
  }
}

/** Parses the model, finds its input and head, and rewrites it for CAM (extend.ts). */
function prepareGraph(
  bytes: Uint8Array,
  fileConfig: ModelFileConfig,
  where: string,
): { input: OnnxInput; pre: Preprocess; found: OnnxHead; extended: Uint8Array } {
  const view = new GraphView(parseOnnxModel(bytes, where));
  const input = discoverOnnxInput(view, fileConfig, where);
  if (input.fixedBatch !== undefined && input.fixedBatch !== 1) {
    throw new ModelLoadError(
      `${where}: input '${input.name}' fixes the batch to ${input.fixedBatch}; camstream needs a symbolic batch or 1`,
    );
  }
  const pre = resolvePreprocess(fileConfig, { inputSize: input.inputSize, layout: input.layout });
  const found = discoverOnnxHead(view, fileConfig, where);
  return { input, pre, found, extended: extendOnnxModel(view, input, found, pre) };
}

/**
 * One run on a black frame at the model size: checks that the rewritten graph runs and reads the feature
 * map size, which the file need not state. Returns `[h, w, k]`.
 * @throws ModelLoadError naming the head when the run fails or the channels do not fit the classifier.
 */
async function probeFeatureShape(session: ort.InferenceSession, found: OnnxHead, pre: Preprocess, where: string): Promise<[number, number, number]> {
  const [inH, inW] = pre.inputSize;
  try {
    const weightsT = transpose(found.weights, found.channels, found.numClasses);
    const feeds: Record<string, ort.Tensor> = {
      [CAM_IO.frames]: new ort.Tensor('uint8', new Uint8Array(inH * inW * 3), [1, inH, inW, 3]),
      [CAM_IO.request]: new ort.Tensor('int64', BigInt64Array.from([-1n]), [1, 1]),
      [CAM_IO.weights]: new ort.Tensor('float32', weightsT, [found.numClasses, found.channels]),
      [CAM_IO.bias]: new ort.Tensor('float32', found.bias, [found.numClasses]),
      ...fitFeeds(inW, inH, pre),
    };
    if (found.activation === 'relu') feeds[CAM_IO.slope] = new ort.Tensor('float32', Float32Array.of(0), []);
    const out = await session.run(feeds, [CAM_IO.maps, CAM_IO.gap]);
    const [, , mapH, mapW] = out[CAM_IO.maps].dims;
    const k = out[CAM_IO.gap].dims[1];
    if (k !== found.channels) {
      throw new Error(`the features have ${k} channels, the classifier expects ${found.channels}`);
    }
    return [mapH, mapW, k];
  } catch (err) {
    throw new ModelLoadError(
      `${where}: head ${found.path.join(' -> ')} does not run as CAM: ${(err as Error).message}`,
      { cause: err },
    );
  }
}
