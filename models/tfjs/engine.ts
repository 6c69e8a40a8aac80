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
import { ModelLoadError } from '../../common/errors.ts';
import { fitGeometry, resolvePreprocess } from '../preprocess.ts';
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
import { ensureTfjsBackend, initTfjsBackend, type TfjsBackend, type TfjsBackendName } from './backend.ts';
import { openBackbone, type Backbone, type OpenedBackbone } from './backbone.ts';
import { readModelFolder } from './io.ts';
import { cachedResizeTaps, type ResizeTaps } from '../internal/resize-taps.ts';

export { DEFAULT_TOP_K } from '../internal/engine-common.ts';

/** State shared by a loaded model and the models `withHead` derives from it. */
interface Core extends SharedCore {
  backbone: Backbone;
  backend: TfjsBackendName;
  pre: Preprocess;
}

/** A linear classifier on GAP features, as tensors the owning model frees. */
interface Head extends EngineHead {
  /** Transposed weights `[C, k]`: rows gather per class. */
  wT: tf.Tensor2D;
  b: tf.Tensor1D;
  /** 'model': the backbone's logits output; 'classifier-input': it is the pooled vector; 'features': none. */
  logits: 'model' | 'classifier-input' | 'features';
  /**
   * An activated class-conv head (SqueezeNet: 1x1 conv -> ReLU -> GAP): maps are ReLU(W_c . f + b_c) and
   * logit_c is their mean (ref: Zhou et al. 2016, sec. 2, with the ReLU inside the maps).
   */
  activated?: boolean;
}

/** One axis of an NHWC batch resampled by tap tables: gather the taps, weigh them, sum. Call inside tf.tidy. */
function applyTaps(x: tf.Tensor4D, taps: ResizeTaps, axis: 1 | 2): tf.Tensor4D {
  const { outSize, taps: t } = taps;
  const gathered = tf.gather(x, tf.tensor2d(taps.indices, [outSize, t], 'int32'), axis);
  const w = axis === 2 ? tf.tensor3d(taps.weights, [outSize, t, 1]) : tf.tensor4d(taps.weights, [outSize, t, 1, 1]);
  return tf.sum(tf.mul(gathered, w), axis + 1) as tf.Tensor4D;
}

/** Resizes an NHWC batch to `size` with the model's filter (models/preprocess.ts). Call inside tf.tidy. */
function resizeBatch(x: tf.Tensor4D, size: [number, number], pre: Preprocess): tf.Tensor4D {
  const [, h, w] = x.shape;
  if (pre.resizeFilter === 'bilinear') {
    // Half-pixel centres: the sampling grid of OpenCV, PIL and ONNX Resize 'half_pixel'.
    return tf.image.resizeBilinear(x, size, false, true);
  }
  // The antialiasing pre-filter and the resampling in one: columns first, on the full-height frame.
  let y = w === size[1] ? x : applyTaps(x, cachedResizeTaps(w, size[1], pre.resizeFilter), 2);
  if (h !== size[0]) y = applyTaps(y, cachedResizeTaps(h, size[0], pre.resizeFilter), 1);
  return y;
}

/** Preprocessing for one batch (see models/preprocess.ts for the definition). Call inside tf.tidy. */
function toModelInput(frames: readonly Frame[], pre: Preprocess): tf.Tensor4D {
  const [inH, inW] = pre.inputSize;
  const fit = (x: tf.Tensor4D, width: number, height: number): tf.Tensor4D => {
    const g = fitGeometry(width, height, pre);
    let y = x;
    if (g.contentSize[0] !== height || g.contentSize[1] !== width) y = resizeBatch(y, g.contentSize, pre);
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

/**
 * One batch through the backbone and the CAM head, synchronous (it runs its own `tf.tidy`). Returns
 * `[ids, scores, probabilities, maps]` (plus the GAP features when `wantFeatures`): tensors the caller frees.
 */
function camTensors(
  frames: readonly Frame[],
  core: Core,
  head: Head,
  request: { classes?: number[]; k: number; wantFeatures: boolean },
): tf.Tensor[] {
  const n = frames.length;
  const { classes, k } = request;
  const numClasses = head.numClasses;
  return tf.tidy(() => {
    const x = toModelInput(frames, core.pre);
    const { features, logits: raw } = core.backbone.forward(x, head.logits !== 'features');
    const [, fh, fw, fk] = features.shape;
    const flat = tf.reshape(features, [n, fh * fw, fk]);
    let gap: tf.Tensor2D | undefined;
    let logits: tf.Tensor2D;
    if (head.logits === 'model') {
      logits = tf.reshape(raw!, [n, numClasses]);
    } else if (head.activated) {
      // Tensors named in camstream.json: logit_c = mean over positions of ReLU(W_c . f + b_c).
      logits = tf.mean(tf.relu(tf.add(tf.matMul(flat, head.wT, false, true), head.b)), 1) as tf.Tensor2D;
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
    let maps: tf.Tensor3D = tf.matMul(wSel, flat, false, true);
    if (head.activated) maps = tf.relu(tf.add(maps, tf.reshape(tf.gather(head.b, tf.reshape(ids, [n * k])), [n, k, 1]))) as tf.Tensor3D;
    const result: tf.Tensor[] = [ids, scores, probabilities, maps];
    if (request.wantFeatures) result.push(gap ?? tf.mean(features, [1, 2]));
    return result;
  });
}

class TfjsCamModel extends EngineCamModel<Core, Head> {
  protected readonly releasedCore = 'its backbone was disposed';

  constructor(core: Core, h: Head, info: BackboneInfo, ownsBackbone: boolean) {
    super(core, h, info, ownsBackbone);
  }

  async infer(frames: readonly Frame[], options: InferOptions = {}): Promise<CamResult[]> {
    const request = this.checkInfer(frames, options);
    await ensureTfjsBackend(this.core.backend);
    this.assertUsable();
    const outs = camTensors(frames, this.core, this.h, request);
    try {
      const data = await Promise.all(outs.map((t) => t.data()));
      const [idsD, scoresD, probsD, mapsD, featD] = data as [Int32Array, Float32Array, Float32Array, Float32Array, Float32Array?];
      const [fh, fw, fk] = this.core.featureShape;
      const k = request.k;
      const per = fh * fw * k;
      return Array.from({ length: frames.length }, (_, i): CamResult => {
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

  protected customHead(head: LinearHead, k: number, c: number, labels: string[]): Head {
    return {
      kind: 'custom-head',
      numClasses: c,
      wT: tf.tidy(() => tf.transpose(tf.tensor2d(head.weights, [k, c]))),
      b: tf.tensor1d(head.bias),
      logits: 'features',
      labels,
    };
  }

  protected derive(h: Head, info: BackboneInfo): TfjsCamModel {
    return new TfjsCamModel(this.core, h, info, false);
  }

  protected freeHead(): void {
    tf.dispose([this.h.wT, this.h.b]);
  }

  protected async freeCore(): Promise<void> {
    this.core.backbone.dispose();
  }
}

/**
 * Loads a TF.js model folder (layers or graph) as a `CamModel`. See `EngineLoader`.
 * Backend: `options.backend`, else tensorflow (if installed) > wasm > cpu. `options.threads` is checked
 * (see `resolveThreads`); the backend runs its own thread count, which `info.threads` reports.
 * @throws ModelLoadError (files), NoGapHeadError (no head), ConfigError (options, camstream.json, labels).
 */
export const loadTfjsModel: EngineLoader = async (source: ResolvedSource, options = {}) => {
  const where = source.original || source.path;
  checkSourceFormat(source, 'tfjs', 'TF.js model folders (model.json)', where);
  resolveThreads(options.threads);
  const backend = await initTfjsBackend(options.backend);
  const fileConfig = mergeFileConfig(source, options);
  const { artifacts, kind } = await readModelFolder(source.path);
  const opened = await openBackbone(artifacts, kind, fileConfig, where);
  try {
    return assembleModel(opened, source, fileConfig, backend, where);
  } catch (err) {
    tf.dispose([opened.found.weights, opened.found.bias]);
    opened.backbone.dispose();
    throw err;
  }
};

/** From a backbone and its discovered head to the loaded model (which then owns both). */
function assembleModel(
  opened: OpenedBackbone,
  source: ResolvedSource,
  fileConfig: ModelFileConfig,
  backend: TfjsBackend,
  where: string,
): TfjsCamModel {
  const { backbone, found } = opened;
  const pre = resolvePreprocess(fileConfig, opened.input);
  const numClasses = found.weights.shape[1];
  const labels = source.labels ?? defaultLabels(numClasses);
  checkLabelCount(labels, numClasses, where);
  const featureShape = warmUp(opened, pre, where);
  const logitsFrom = found.logits.from;
  const head: Head = {
    kind: found.kind,
    numClasses,
    wT: tf.tidy(() => tf.transpose(found.weights)),
    b: found.bias,
    logits: logitsFrom === 'tensor' ? 'model' : logitsFrom,
    ...(found.activation === 'relu' ? { activated: true } : {}),
    labels,
  };
  found.weights.dispose();
  const core: Core = { backbone, backend: backend.name, pre, featureShape, disposed: false, where };
  const info: BackboneInfo = {
    engine: 'tfjs',
    backend: backend.name,
    threads: backend.threads,
    runsOnJsThread: true,
    parallelism: 1,
    runtime: engineRuntime('@tensorflow/tfjs-core'),
    source: where,
    preprocess: pre,
    featureShape,
  };
  return new TfjsCamModel(core, head, info, true);
}

/**
 * A warm-up pass on a black input: learns the feature shape (models may take any input size), checks that
 * the head found fits the features and the logits, and lets backends compile their kernels before real
 * frames. Returns `[h, w, k]`.
 * @throws ModelLoadError when the features or the logits do not fit the classifier.
 */
function warmUp(opened: OpenedBackbone, pre: Preprocess, where: string): [number, number, number] {
  const { backbone, found } = opened;
  const logitsFrom = found.logits.from;
  const [inH, inW] = pre.inputSize;
  const shapes = tf.tidy(() => {
    const zeros = tf.zeros(pre.layout === 'nchw' ? [1, 3, inH, inW] : [1, inH, inW, 3]) as tf.Tensor4D;
    const { features, logits } = backbone.forward(zeros, logitsFrom !== 'features');
    return { features: features.shape, logits: logits?.shape };
  });
  const [k, numClasses] = found.weights.shape;
  if (shapes.features.length !== 4 || shapes.features[3] !== k) {
    throw new ModelLoadError(`${where}: head ${found.description}: features have shape ${JSON.stringify(shapes.features)}, the classifier expects ${k} channels`);
  }
  const logitSize = shapes.logits ? shapes.logits.slice(1).reduce((a, b) => a * b, 1) : undefined;
  const expected = logitsFrom === 'classifier-input' ? k : numClasses;
  if (logitSize !== undefined && logitSize !== expected) {
    throw new ModelLoadError(`${where}: head ${found.description}: the model's logits tensor has shape ${JSON.stringify(shapes.logits)}, expected ${expected} values per frame`);
  }
  return [shapes.features[1], shapes.features[2], shapes.features[3]];
}
