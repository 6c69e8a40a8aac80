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
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { CamstreamError, ConfigError, InputError, ModelLoadError } from '../../common/errors.ts';
import { fitGeometry, resolvePreprocess } from '../preprocess.ts';
import type {
  CamModel,
  CamModelInfo,
  CamResult,
  EngineLoader,
  Frame,
  HeadKind,
  InferOptions,
  LinearHead,
  LoadOptions,
  Preprocess,
  ResolvedSource,
} from '../types.ts';
import { discoverOnnxHead, discoverOnnxInput } from './discover.ts';
import { CAM_IO, extendOnnxModel } from './extend.ts';
import { checkFrames, checkLinearHead, defaultLabels, resolveRequest } from '../internal/engine-common.ts';

export { DEFAULT_TOP_K } from '../internal/engine-common.ts';
import { GraphView, parseOnnxModel } from './graph.ts';


/** Execution providers camstream can ask ONNX Runtime for. */
export const ONNX_PROVIDERS = Object.freeze(['cpu', 'cuda', 'tensorrt', 'webgpu'] as const);
export type OnnxProvider = (typeof ONNX_PROVIDERS)[number];

/** Where onnxruntime-node keeps its native libraries (provider libraries are installed beside them). */
function bindingFolder(): string {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

function providerLibraryPresent(name: string): boolean {
  const file =
    process.platform === 'win32'
      ? `onnxruntime_providers_${name}.dll`
      : process.platform === 'darwin'
        ? `libonnxruntime_providers_${name}.dylib`
        : `libonnxruntime_providers_${name}.so`;
  return existsSync(join(bindingFolder(), file));
}

/**
 * Providers this onnxruntime-node can use here: those it bundles, plus those whose provider library was
 * installed beside the binding (`cuda`, `tensorrt` come that way on Linux x64).
 */
export function availableOnnxProviders(): OnnxProvider[] {
  return ort
    .listSupportedBackends()
    .filter((b) => (ONNX_PROVIDERS as readonly string[]).includes(b.name))
    .filter((b) => b.bundled || providerLibraryPresent(b.name))
    .map((b) => b.name as OnnxProvider);
}

function resolveProvider(asked: string | undefined): OnnxProvider {
  const name = asked ?? 'cpu';
  if (!(ONNX_PROVIDERS as readonly string[]).includes(name)) {
    throw new ConfigError(
      `backend '${name}' is not an ONNX Runtime execution provider camstream uses; allowed: ${ONNX_PROVIDERS.join(', ')}`,
    );
  }
  const available = availableOnnxProviders();
  if (!(available as string[]).includes(name)) {
    throw new ConfigError(
      `ONNX Runtime execution provider '${name}' is not available in this installation; available: ${available.join(', ')}`,
    );
  }
  return name as OnnxProvider;
}

/** The provider list handed to ONNX Runtime (it places nodes a provider lacks on the CPU). */
function providerChain(p: OnnxProvider): string[] {
  if (p === 'tensorrt') return ['tensorrt', 'cuda', 'cpu'];
  if (p === 'cuda') return ['cuda', 'cpu'];
  if (p === 'webgpu') return ['webgpu', 'cpu'];
  return ['cpu'];
}

function resolveThreads(asked: number | undefined): number {
  const free = availableParallelism();
  if (asked === undefined) return free;
  if (!Number.isInteger(asked) || asked < 1) {
    throw new ConfigError(`threads must be a positive integer (at most ${free}, the cores here), got ${asked}`);
  }
  return Math.min(asked, free);
}

/** State shared by a loaded model and the `withHead` models derived from it. */
interface Core {
  session: ort.InferenceSession;
  where: string;
  pre: Preprocess;
  /** `[h, w, k]`. */
  featureShape: [number, number, number];
  /** Frames per session run (1 when the model fixes its batch to 1). */
  maxBatch: number;
  /** Runs started and not yet settled: `dispose` waits for them before releasing the session. */
  pending: Set<Promise<unknown>>;
  disposed: boolean;
}

interface Head {
  kind: HeadKind;
  /** `[C, k]`, row c = W[:, c]: the layout `cam_weights` is fed in. */
  weightsT: Float32Array;
  bias: Float32Array;
  labels: string[];
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

class OnnxCamModel implements CamModel {
  readonly info: CamModelInfo;
  private disposed = false;
  private released: Promise<void> | undefined;

  constructor(
    private readonly core: Core,
    private readonly h: Head,
    info: Omit<CamModelInfo, 'head' | 'numClasses' | 'labels'>,
    /** The loaded model owns the session; derived models own nothing native. */
    private readonly ownsSession: boolean,
  ) {
    this.info = Object.freeze({
      ...info,
      head: h.kind,
      numClasses: h.bias.length,
      labels: Object.freeze([...h.labels]) as string[],
    });
  }

  private assertUsable(): void {
    if (this.disposed || this.core.disposed) {
      throw new CamstreamError(
        'DISPOSED',
        `model ${this.core.where} was disposed${this.disposed ? '' : ' (its session was released with the model it was derived from)'}`,
      );
    }
  }

  async infer(frames: readonly Frame[], options: InferOptions = {}): Promise<CamResult[]> {
    this.assertUsable();
    checkFrames(frames);
    const numClasses = this.h.bias.length;
    const request = resolveRequest(options, numClasses);
    // The `cam_request` row: class ids, or -1 per top-k slot (see extend.ts).
    const row = request.classes ?? new Array<number>(request.k).fill(-1);
    const wantFeatures = options.features === true;
    const fetches: string[] = [CAM_IO.ids, CAM_IO.scores, CAM_IO.probs, CAM_IO.maps];
    if (wantFeatures) fetches.push(CAM_IO.gap);
    const [, , k] = this.core.featureShape;
    const weights = new ort.Tensor('float32', this.h.weightsT, [numClasses, k]);
    const bias = new ort.Tensor('float32', this.h.bias, [numClasses]);

    const results = new Array<CamResult>(frames.length);
    for (const run of runsBySize(frames, this.core.maxBatch)) {
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
        [CAM_IO.weights]: weights,
        [CAM_IO.bias]: bias,
      };
      if (this.core.pre.resize === 'letterbox') {
        const g = fitGeometry(width, height, this.core.pre);
        feeds[CAM_IO.fitSize] = new ort.Tensor('int64', BigInt64Array.from(g.contentSize, BigInt), [2]);
        const pads = [0, g.padTop, g.padLeft, 0, 0, g.padBottom, g.padRight, 0];
        feeds[CAM_IO.fitPads] = new ort.Tensor('int64', BigInt64Array.from(pads, BigInt), [8]);
      }
      this.assertUsable();
      const running = this.core.session.run(feeds, fetches);
      this.core.pending.add(running);
      let out: ort.InferenceSession.ReturnType;
      try {
        out = await running;
      } finally {
        this.core.pending.delete(running);
      }
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
    return results;
  }

  head(): LinearHead {
    this.assertUsable();
    const [, , k] = this.core.featureShape;
    return {
      weights: transpose(this.h.weightsT, this.h.bias.length, k),
      bias: this.h.bias.slice(),
      labels: [...this.h.labels],
    };
  }

  withHead(head: LinearHead): CamModel {
    this.assertUsable();
    const [, , k] = this.core.featureShape;
    const { numClasses: c, labels } = checkLinearHead(head, k);
    const { head: _kind, numClasses: _c, labels: _labels, ...rest } = this.info;
    return new OnnxCamModel(
      this.core,
      {
        kind: 'custom-head',
        weightsT: transpose(head.weights, k, c),
        bias: head.bias.slice(),
        labels,
      },
      rest,
      false,
    );
  }

  dispose(): Promise<void> {
    if (this.released) return this.released;
    this.disposed = true;
    if (!this.ownsSession || this.core.disposed) {
      this.released = Promise.resolve();
      return this.released;
    }
    this.core.disposed = true;
    // A run already queued still uses the session: release it once every run has settled.
    const pending = [...this.core.pending];
    this.released = Promise.allSettled(pending).then(() => this.core.session.release());
    return this.released;
  }
}

async function createSession(
  bytes: Uint8Array,
  provider: OnnxProvider,
  threads: number,
  where: string,
  spinWait: boolean,
): Promise<{ session: ort.InferenceSession; provider: OnnxProvider }> {
  const options: ort.InferenceSession.SessionOptions = {
    executionProviders: providerChain(provider),
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    executionMode: 'sequential',
    // ORT's session config keys are strings ('1' = spin, ORT's default).
    extra: { session: { intra_op: { allow_spinning: spinWait ? '1' : '0' } } },
  };
  try {
    return { session: await ort.InferenceSession.create(bytes, options), provider };
  } catch (err) {
    const message = (err as Error).message;
    if (provider === 'webgpu') {
      process.emitWarning(`camstream: WebGPU is not usable here (${message.split('\n')[0]}); running ${where} on cpu`);
      return createSession(bytes, 'cpu', threads, where, spinWait);
    }
    if (provider !== 'cpu') {
      throw new ConfigError(`ONNX Runtime execution provider '${provider}' failed to start for ${where}: ${message}`);
    }
    throw new ModelLoadError(`${where}: ONNX Runtime could not create a session: ${message}`, { cause: err });
  }
}

/**
 * Loads an ONNX classifier for CAM (see the file comment).
 * @throws ConfigError for a non-ONNX source, a bad backend or threads value, or bad preprocessing config.
 * @throws ModelLoadError when the file cannot be read or parsed, or ONNX Runtime rejects it.
 * @throws NoGapHeadError when no GAP head is found (the message names the last nodes and the
 *   camstream.json fields to set).
 */
export const loadOnnxModel: EngineLoader = async (source: ResolvedSource, options: LoadOptions) => {
  const where = source.original;
  if (source.format !== 'onnx') {
    throw new ConfigError(`${where}: the onnx engine reads .onnx files, this source is '${source.format}'`);
  }
  const provider = resolveProvider(options.backend);
  const threads = resolveThreads(options.threads);
  if (options.spinWait !== undefined && typeof options.spinWait !== 'boolean') {
    throw new ConfigError(`spinWait must be true or false, got ${String(options.spinWait)}`);
  }
  const spinWait = options.spinWait ?? true;
  // LoadOptions.config wins over camstream.json (ResolvedSource usually has them merged already).
  const fileConfig = { ...source.fileConfig, ...options.config };

  let bytes: Uint8Array;
  try {
    bytes = await readFile(source.path);
  } catch (err) {
    throw new ModelLoadError(`${where}: cannot read ${source.path}: ${(err as Error).message}`, { cause: err });
  }
  const view = new GraphView(parseOnnxModel(bytes, where));
  const input = discoverOnnxInput(view, fileConfig, where);
  if (input.fixedBatch !== undefined && input.fixedBatch !== 1) {
    throw new ModelLoadError(
      `${where}: input '${input.name}' fixes the batch to ${input.fixedBatch}; camstream needs a symbolic batch or 1`,
    );
  }
  const pre = resolvePreprocess(fileConfig, { inputSize: input.inputSize, layout: input.layout });
  const found = discoverOnnxHead(view, fileConfig, where);
  const extended = extendOnnxModel(view, input, found, pre);
  const created = await createSession(extended, provider, threads, where, spinWait);
  const session = created.session;

  // One run on a black frame at the model size: checks that the rewritten graph runs and reads the
  // feature map size, which the file need not state.
  const [inH, inW] = pre.inputSize;
  let featureShape: [number, number, number];
  try {
    const weightsT = transpose(found.weights, found.channels, found.numClasses);
    const feeds: Record<string, ort.Tensor> = {
      [CAM_IO.frames]: new ort.Tensor('uint8', new Uint8Array(inH * inW * 3), [1, inH, inW, 3]),
      [CAM_IO.request]: new ort.Tensor('int64', BigInt64Array.from([-1n]), [1, 1]),
      [CAM_IO.weights]: new ort.Tensor('float32', weightsT, [found.numClasses, found.channels]),
      [CAM_IO.bias]: new ort.Tensor('float32', found.bias, [found.numClasses]),
    };
    if (pre.resize === 'letterbox') {
      feeds[CAM_IO.fitSize] = new ort.Tensor('int64', BigInt64Array.from([BigInt(inH), BigInt(inW)]), [2]);
      feeds[CAM_IO.fitPads] = new ort.Tensor('int64', new BigInt64Array(8), [8]);
    }
    const out = await session.run(feeds, [CAM_IO.maps, CAM_IO.gap]);
    const [, , mapH, mapW] = out[CAM_IO.maps].dims;
    const k = out[CAM_IO.gap].dims[1];
    if (k !== found.channels) {
      throw new Error(`the features have ${k} channels, the classifier expects ${found.channels}`);
    }
    featureShape = [mapH, mapW, k];
  } catch (err) {
    await session.release();
    throw new ModelLoadError(
      `${where}: head ${found.path.join(' -> ')} does not run as CAM: ${(err as Error).message}`,
      { cause: err },
    );
  }

  if (source.labels !== undefined && source.labels.length !== found.numClasses) {
    await session.release();
    throw new ConfigError(
      `${where}: ${source.labels.length} labels for ${found.numClasses} classes; the labels file needs one line per class`,
    );
  }
  const core: Core = {
    session,
    where,
    pre,
    featureShape,
    maxBatch: input.fixedBatch === 1 ? 1 : Number.POSITIVE_INFINITY,
    pending: new Set(),
    disposed: false,
  };
  return new OnnxCamModel(
    core,
    {
      kind: found.kind,
      weightsT: transpose(found.weights, found.channels, found.numClasses),
      bias: found.bias,
      labels: source.labels ? [...source.labels] : defaultLabels(found.numClasses),
    },
    {
      engine: 'onnx',
      backend: created.provider,
      threads,
      source: where,
      preprocess: pre,
      featureShape,
    },
    true,
  );
};
