/**
 * The TF.js engine: loads a TF.js model folder, finds its CAM head, and runs preprocessing, the forward
 * pass and the class activation maps as tensor ops in one `tf.tidy` per batch. Only ids, scores,
 * probabilities, the asked-for maps (and GAP features) are read back.
 *
 * The CAM of class c at position (x, y) is M_c(x, y) = sum_k w_k^c f_k(x, y), with f the feature map that
 * feeds global average pooling and w^c the classifier's weights for c (ref: Zhou et al. 2016, sec. 2).
 * Since GAP is the mean over positions, mean_{x,y} M_c(x, y) + b_c is exactly the logit of c: the tests
 * check this identity for every head kind.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as tfc from '@tensorflow/tfjs-converter';
import { availableParallelism } from 'node:os';
import { CamstreamError, ConfigError, InputError, ModelLoadError } from '../../common/errors.ts';
import { fitGeometry, resolvePreprocess, type DiscoveredInput } from '../preprocess.ts';
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
import { ensureTfjsBackend, initTfjsBackend, type TfjsBackendName } from './backend.ts';
import { discoverGraphHead, type GraphNodeJson } from './discover-graph.ts';
import { discoverLayersHead, type DiscoveredHead } from './discover-layers.ts';
import { readModelFolder } from './io.ts';
import { checkFrames, checkLinearHead, defaultLabels, resolveRequest } from '../internal/engine-common.ts';

export { DEFAULT_TOP_K } from '../internal/engine-common.ts';


/** The network up to the features (and the model's own logits), shared by a model and its `withHead`s. */
interface Backbone {
  /**
   * One forward pass, synchronous: call it inside `tf.tidy`. Returns the NHWC feature map and, when
   * `withLogits`, the model's logits tensor (as the head's `LogitsSource` says where they are).
   */
  forward(x: tf.Tensor4D, withLogits: boolean): { features: tf.Tensor4D; logits?: tf.Tensor };
  /** Frees the model's weights. */
  dispose(): void;
}

class LayersBackbone implements Backbone {
  private readonly both: tfl.LayersModel;
  private featuresOnly: tfl.LayersModel | undefined;

  constructor(
    private readonly model: tfl.LayersModel,
    private readonly features: tfl.SymbolicTensor,
    logits: tfl.SymbolicTensor | undefined,
  ) {
    // One model with both outputs: a single pass computes the shared trunk once.
    this.both = tfl.model({ inputs: model.inputs, outputs: logits ? [features, logits] : [features] });
  }

  forward(x: tf.Tensor4D, withLogits: boolean): { features: tf.Tensor4D; logits?: tf.Tensor } {
    if (withLogits) {
      const out = this.both.apply(x, { training: false }) as tf.Tensor[];
      return { features: out[0] as tf.Tensor4D, logits: out[1] };
    }
    // A custom head needs only the features: skip the original classifier.
    this.featuresOnly ??= tfl.model({ inputs: this.model.inputs, outputs: this.features });
    return { features: this.featuresOnly.apply(x, { training: false }) as tf.Tensor4D };
  }

  dispose(): void {
    this.model.dispose();
  }
}

class GraphBackbone implements Backbone {
  private readonly input: string;

  constructor(
    private readonly model: tfc.GraphModel,
    private readonly features: string,
    private readonly featureLayout: 'nhwc' | 'nchw',
    private readonly logits: string | undefined,
  ) {
    this.input = model.inputs[0].name;
  }

  forward(x: tf.Tensor4D, withLogits: boolean): { features: tf.Tensor4D; logits?: tf.Tensor } {
    const names = withLogits && this.logits ? [this.features, this.logits] : [this.features];
    const out = this.model.execute({ [this.input]: x }, names) as tf.Tensor[];
    let features = out[0] as tf.Tensor4D;
    if (this.featureLayout === 'nchw') features = tf.transpose(features, [0, 2, 3, 1]);
    return { features, logits: out[1] };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** State shared by a loaded model and the models `withHead` derives from it. */
interface Core {
  backbone: Backbone;
  backend: TfjsBackendName;
  pre: Preprocess;
  /** `[h, w, k]` */
  featureShape: [number, number, number];
  disposed: boolean;
  where: string;
}

/** A linear classifier on GAP features, as tensors the owning model frees. */
interface Head {
  kind: HeadKind;
  /** Transposed weights `[C, k]`: rows gather per class. */
  wT: tf.Tensor2D;
  b: tf.Tensor1D;
  /** 'model': the backbone's logits output; 'classifier-input': it is the pooled vector; 'features': none. */
  logits: 'model' | 'classifier-input' | 'features';
  labels: string[];
}

/** Preprocessing for one batch (see models/preprocess.ts for the definition). Call inside tf.tidy. */
function toModelInput(frames: readonly Frame[], pre: Preprocess): tf.Tensor4D {
  const [inH, inW] = pre.inputSize;
  const fit = (x: tf.Tensor4D, width: number, height: number): tf.Tensor4D => {
    const g = fitGeometry(width, height, pre);
    let y = x;
    if (g.contentSize[0] !== height || g.contentSize[1] !== width) {
      // Half-pixel centres: the sampling grid of OpenCV, PIL and ONNX Resize 'half_pixel'.
      y = tf.image.resizeBilinear(y, g.contentSize, false, true);
    }
    if (g.padTop + g.padBottom + g.padLeft + g.padRight > 0) {
      y = tf.pad(y, [[0, 0], [g.padTop, g.padBottom], [g.padLeft, g.padRight], [0, 0]], 0);
    }
    return y;
  };
  const first = frames[0];
  const sameSize = frames.every((f) => f.width === first.width && f.height === first.height);
  let x: tf.Tensor4D;
  if (sameSize) {
    // One upload and one resize for the whole batch; bytes become floats while copying.
    const per = first.width * first.height * 3;
    const buf = new Float32Array(per * frames.length);
    frames.forEach((f, i) => buf.set(f.data, i * per));
    x = fit(tf.tensor4d(buf, [frames.length, first.height, first.width, 3]), first.width, first.height);
  } else {
    x = tf.concat(
      frames.map((f) => fit(tf.tensor4d(Float32Array.from(f.data), [1, f.height, f.width, 3]), f.width, f.height)),
      0,
    );
  }
  if (x.shape[1] !== inH || x.shape[2] !== inW) throw new Error(`internal: fitted batch ${x.shape} != ${pre.inputSize}`);
  if (pre.channelOrder === 'bgr') x = tf.reverse(x, 3);
  const a = pre.std.map((s) => pre.scale / s);
  const c = pre.mean.map((m, i) => -m / pre.std[i]);
  if (c.every((v) => v === 0) && a.every((v) => v === a[0])) {
    x = tf.mul(x, tf.scalar(a[0]));
  } else {
    x = tf.add(tf.mul(x, tf.tensor1d(a)), tf.tensor1d(c));
  }
  if (pre.layout === 'nchw') x = tf.transpose(x, [0, 3, 1, 2]);
  return x;
}

class TfjsCamModel implements CamModel {
  readonly info: CamModelInfo;
  private disposed = false;

  constructor(
    private readonly core: Core,
    private readonly h: Head,
    info: Omit<CamModelInfo, 'head' | 'numClasses' | 'labels'>,
    /** The loaded model owns the backbone; derived models only their head. */
    private readonly ownsBackbone: boolean,
  ) {
    this.info = Object.freeze({
      ...info,
      head: h.kind,
      numClasses: h.wT.shape[0],
      labels: Object.freeze([...h.labels]) as string[],
    });
  }

  private assertUsable(): void {
    if (this.disposed || this.core.disposed) {
      throw new CamstreamError('DISPOSED', `model ${this.core.where} was disposed${this.disposed ? '' : ' (its backbone was disposed with the model it was derived from)'}`);
    }
  }

  async infer(frames: readonly Frame[], options: InferOptions = {}): Promise<CamResult[]> {
    this.assertUsable();
    checkFrames(frames);
    const numClasses = this.h.wT.shape[0];
    const { classes, k } = resolveRequest(options, numClasses);
    const wantFeatures = options.features === true;
    await ensureTfjsBackend(this.core.backend);
    this.assertUsable();

    const n = frames.length;
    const { backbone, pre } = this.core;
    const head = this.h;
    const outs = tf.tidy(() => {
      const x = toModelInput(frames, pre);
      const { features, logits: raw } = backbone.forward(x, head.logits !== 'features');
      const [, fh, fw, fk] = features.shape;
      const flat = tf.reshape(features, [n, fh * fw, fk]);
      let gap: tf.Tensor2D | undefined;
      let logits: tf.Tensor2D;
      if (head.logits === 'model') {
        logits = tf.reshape(raw!, [n, numClasses]);
      } else {
        const pooled = head.logits === 'classifier-input' ? tf.reshape(raw!, [n, fk]) : (gap = tf.mean(features, [1, 2]) as tf.Tensor2D);
        logits = tf.add(tf.matMul(pooled, head.wT, false, true), head.b);
      }
      let ids: tf.Tensor2D;
      let scores: tf.Tensor2D;
      // No gather with batchDims here: tfjs-backend-wasm 4.22's GatherV2 returns wrong values (or reads out
      // of bounds) with batchDims = 1. Same-for-all-frames classes gather along axis 1; per-frame ids gather
      // rows of W^T from a flat index list.
      if (classes) {
        const idx = tf.tensor1d(classes, 'int32');
        scores = tf.gather(logits, idx, 1) as tf.Tensor2D;
        ids = tf.tile(tf.expandDims(idx, 0), [n, 1]) as tf.Tensor2D;
      } else {
        const top = tf.topk(logits, k);
        ids = top.indices as tf.Tensor2D;
        scores = top.values as tf.Tensor2D;
      }
      // softmax(logits)[c] = exp(logit_c - logsumexp(logits)), for the returned classes only.
      const probabilities = tf.exp(tf.sub(scores, tf.logSumExp(logits, 1, true)));
      // M = W[:, ids]^T . f at every position (K returned classes, C feature channels):
      // [n, K, C] x [n, h*w, C]^T -> [n, K, h*w].
      const wSel = tf.reshape(tf.gather(head.wT, tf.reshape(ids, [n * k])), [n, k, fk]) as tf.Tensor3D;
      const maps = tf.matMul(wSel, flat, false, true);
      const result: tf.Tensor[] = [ids, scores, probabilities, maps];
      if (wantFeatures) result.push(gap ?? tf.mean(features, [1, 2]));
      return result;
    });
    try {
      const data = await Promise.all(outs.map((t) => t.data()));
      const [idsD, scoresD, probsD, mapsD, featD] = data as [Int32Array, Float32Array, Float32Array, Float32Array, Float32Array?];
      const [fh, fw, fk] = this.core.featureShape;
      const per = fh * fw * k;
      return Array.from({ length: n }, (_, i): CamResult => {
        const r: CamResult = {
          ids: idsD.slice(i * k, (i + 1) * k),
          scores: scoresD.slice(i * k, (i + 1) * k),
          probabilities: probsD.slice(i * k, (i + 1) * k),
          maps: mapsD.slice(i * per, (i + 1) * per),
          mapSize: [fh, fw],
        };
        if (featD) r.features = featD.slice(i * fk, (i + 1) * fk);
        return r;
      });
    } finally {
      tf.dispose(outs);
    }
  }

  head(): LinearHead {
    this.assertUsable();
    // A synchronous read: head() is a plain accessor, called rarely (review, export), never per frame.
    const t = tf.transpose(this.h.wT);
    let weights: Float32Array;
    try {
      weights = (t.dataSync() as Float32Array).slice();
    } finally {
      t.dispose();
    }
    return {
      weights,
      bias: this.h.b.dataSync().slice() as Float32Array,
      labels: [...this.h.labels],
    };
  }

  withHead(head: LinearHead): CamModel {
    this.assertUsable();
    const [, , k] = this.core.featureShape;
    const { numClasses: c, labels } = checkLinearHead(head, k);
    const h: Head = {
      kind: 'custom-head',
      wT: tf.tidy(() => tf.transpose(tf.tensor2d(head.weights, [k, c]))),
      b: tf.tensor1d(head.bias),
      logits: 'features',
      labels,
    };
    const { head: _h, numClasses: _n, labels: _l, ...rest } = this.info;
    return new TfjsCamModel(this.core, h, rest, false);
  }

  async dispose(): Promise<void> {
    if (this.disposed) return;
    this.disposed = true;
    tf.dispose([this.h.wT, this.h.b]);
    if (this.ownsBackbone && !this.core.disposed) {
      this.core.disposed = true;
      this.core.backbone.dispose();
    }
  }
}

function layersInput(model: tfl.LayersModel, where: string): DiscoveredInput {
  const shape = model.inputs[0]?.shape;
  if (model.inputs.length !== 1 || shape === undefined || shape.length !== 4) {
    throw new ModelLoadError(`${where}: camstream needs one image input [N, H, W, 3], the model has inputs ${JSON.stringify(model.inputs.map((i) => i.shape))}`);
  }
  const channelsLast = shape[3] === 3;
  const channelsFirst = !channelsLast && shape[1] === 3;
  const [h, w] = channelsFirst ? [shape[2], shape[3]] : [shape[1], shape[2]];
  return {
    inputSize: typeof h === 'number' && typeof w === 'number' && h > 0 && w > 0 ? [h, w] : undefined,
    layout: channelsFirst ? 'nchw' : 'nhwc',
  };
}

function graphInput(model: tfc.GraphModel, where: string): DiscoveredInput {
  if (model.inputs.length !== 1) {
    throw new ModelLoadError(`${where}: camstream needs one image input, the graph has ${model.inputs.length}: ${model.inputs.map((i) => i.name).join(', ')}`);
  }
  const shape = model.inputs[0].shape;
  if (shape === undefined || shape.length !== 4) return { layout: 'nhwc' };
  const channelsFirst = shape[3] !== 3 && shape[1] === 3;
  const [h, w] = channelsFirst ? [shape[2], shape[3]] : [shape[1], shape[2]];
  return { inputSize: h > 0 && w > 0 ? [h, w] : undefined, layout: channelsFirst ? 'nchw' : 'nhwc' };
}

/**
 * Loads a TF.js model folder (layers or graph) as a `CamModel`. See `EngineLoader`.
 * Backend: `options.backend`, else tensorflow (if installed) > wasm > cpu.
 * @throws ModelLoadError (files), NoGapHeadError (no head), ConfigError (options, camstream.json, labels).
 */
export const loadTfjsModel: EngineLoader = async (source: ResolvedSource, options: LoadOptions = {}): Promise<CamModel> => {
  const where = source.original || source.path;
  if (source.format !== 'tfjs') {
    throw new ConfigError(`${where}: the tfjs engine reads TF.js model folders (model.json), this source is '${source.format}'`);
  }
  if (options.threads !== undefined && (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > availableParallelism())) {
    throw new ConfigError(`threads must be an integer from 1 to ${availableParallelism()} (the cores here), got ${options.threads}`);
  }
  const backend = await initTfjsBackend(options.backend);
  const fileConfig = { ...source.fileConfig, ...options.config };
  const { artifacts, kind } = await readModelFolder(source.path);

  let backbone: Backbone | undefined;
  let found: DiscoveredHead<unknown> | undefined;
  let dispose = (): void => {};
  try {
    let discovered: DiscoveredInput;
    if (kind === 'layers') {
      let model: tfl.LayersModel;
      try {
        model = await tfl.loadLayersModel(tf.io.fromMemory(artifacts));
      } catch (err) {
        throw new ModelLoadError(`${where}: TF.js could not build the layers model: ${(err as Error).message}`, { cause: err });
      }
      dispose = () => model.dispose();
      discovered = layersInput(model, where);
      const head = discoverLayersHead(model, fileConfig, where);
      found = head;
      backbone = new LayersBackbone(model, head.features, head.logits.from === 'features' ? undefined : head.logits.tensor);
    } else {
      let model: tfc.GraphModel;
      try {
        model = await tfc.loadGraphModel(tf.io.fromMemory(artifacts));
      } catch (err) {
        throw new ModelLoadError(`${where}: TF.js could not build the graph model: ${(err as Error).message}`, { cause: err });
      }
      dispose = () => model.dispose();
      discovered = graphInput(model, where);
      const nodes = ((artifacts.modelTopology as { node?: GraphNodeJson[] }).node ?? []) as GraphNodeJson[];
      const head = discoverGraphHead(nodes, model.outputNodes[0], model.weights, fileConfig, where);
      found = head;
      backbone = new GraphBackbone(model, head.features, head.featureLayout, head.logits.from === 'features' ? undefined : head.logits.tensor);
    }
    const pre = resolvePreprocess(fileConfig, discovered);
    const numClasses = found.weights.shape[1];
    const labels = source.labels ?? defaultLabels(numClasses);
    if (labels.length !== numClasses) {
      throw new ConfigError(`${where}: ${labels.length} labels for ${numClasses} classes; the labels file needs one line per class`);
    }

    // A warm-up pass: learns the feature shape (models may take any input size), checks that the head
    // found fits the features and the logits, and lets backends compile their kernels before real frames.
    const logitsFrom = found.logits.from;
    const bb = backbone;
    const [inH, inW] = pre.inputSize;
    const shapes = tf.tidy(() => {
      const zeros = tf.zeros(pre.layout === 'nchw' ? [1, 3, inH, inW] : [1, inH, inW, 3]) as tf.Tensor4D;
      const { features, logits } = bb.forward(zeros, logitsFrom !== 'features');
      return { features: features.shape, logits: logits?.shape };
    });
    const k = found.weights.shape[0];
    if (shapes.features.length !== 4 || shapes.features[3] !== k) {
      throw new ModelLoadError(`${where}: head ${found.description}: features have shape ${JSON.stringify(shapes.features)}, the classifier expects ${k} channels`);
    }
    const logitSize = shapes.logits ? shapes.logits.slice(1).reduce((a, b) => a * b, 1) : undefined;
    const expected = logitsFrom === 'classifier-input' ? k : numClasses;
    if (logitSize !== undefined && logitSize !== expected) {
      throw new ModelLoadError(`${where}: head ${found.description}: the model's logits tensor has shape ${JSON.stringify(shapes.logits)}, expected ${expected} values per frame`);
    }

    const head: Head = {
      kind: found.kind,
      wT: tf.tidy(() => tf.transpose(found!.weights)),
      b: found.bias,
      logits: logitsFrom === 'tensor' ? 'model' : logitsFrom,
      labels,
    };
    found.weights.dispose();
    const core: Core = {
      backbone,
      backend: backend.name,
      pre,
      featureShape: [shapes.features[1], shapes.features[2], shapes.features[3]],
      disposed: false,
      where,
    };
    return new TfjsCamModel(
      core,
      head,
      {
        engine: 'tfjs',
        backend: backend.name,
        threads: backend.threads,
        source: where,
        preprocess: pre,
        featureShape: core.featureShape,
      },
      true,
    );
  } catch (err) {
    if (found) tf.dispose([found.weights, found.bias]);
    dispose();
    throw err;
  }
};
