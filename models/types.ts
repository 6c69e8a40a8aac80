/**
 * The engine boundary: one interface, two engines (TF.js and ONNX Runtime).
 *
 * Shapes and layouts used everywhere in camstream:
 * - A frame is packed RGB uint8, row-major, `height * width * 3` bytes, at any size: the engine resizes it
 *   to the model's input size itself (see `ResizeMode`).
 * - A map is the raw class activation map M_c(x, y) = sum_k w_k^c f_k(x, y) at feature resolution,
 *   row-major `[mapHeight, mapWidth]`, float32, not normalized (ref: Zhou et al. 2016, sec. 2).
 */

export type EngineName = 'tfjs' | 'onnx';

/** How a frame is fitted to the model input: `stretch` ignores aspect ratio; `letterbox` pads with zeros. */
export type ResizeMode = 'stretch' | 'letterbox';

/**
 * How a frame is resampled to the model input (models/internal/resize-taps.ts):
 * - `triangle` (default): antialiased, the tent filter over each output pixel's footprint, as PIL's
 *   `BILINEAR` and torchvision's `Resize(antialias=True)`;
 * - `area`: the box filter over the footprint (OpenCV `INTER_AREA`);
 * - `bilinear`: 2x2 taps with half-pixel centres and no antialiasing (TF `resizeBilinear`, ONNX `Resize`
 *   linear), for models trained on frames resized that way.
 */
export type ResizeFilter = 'triangle' | 'area' | 'bilinear';

/**
 * Named normalizations (`x = (pixel * scale - mean) / std`), see `NORMALIZATION_PRESETS` in
 * models/preprocess.ts: `imagenet` and `torchvision` (scale 1/255, ImageNet mean and std), `tf`
 * (x / 127.5 - 1), `raw` (pixels as they are, 0-255).
 */
export type NormalizationPreset = 'imagenet' | 'torchvision' | 'tf' | 'raw';

/** Which head was found and turned into CAM. */
export type HeadKind =
  | 'gap-dense' // GlobalAveragePooling2D -> [Dropout/Flatten/Activation] -> Dense (Keras)
  | 'class-conv-gap' // linear 1x1 conv with C filters -> GAP (NIN, Darknet)
  | 'class-conv-relu-gap' // 1x1 conv with C filters -> ReLU -> GAP (SqueezeNet): maps are post-ReLU
  | 'mean-matmul' // TF graph: Mean over H,W -> MatMul (+ BiasAdd/Add)
  | 'onnx-gap-gemm' // ONNX: GlobalAveragePool/ReduceMean -> Flatten/Reshape -> Gemm/MatMul (+ Add)
  | 'onnx-class-conv-gap' // ONNX: 1x1 Conv with C filters -> GlobalAveragePool/ReduceMean
  | 'onnx-class-conv-relu-gap' // ONNX: 1x1 Conv with C filters -> Relu -> GlobalAveragePool (SqueezeNet)
  | 'custom-head'; // replaced by `withHead` (a linear classifier trained on GAP features, paper sec. 4)

/** Input preprocessing: `x = (pixel * scale - mean[c]) / std[c]`, channels in `channelOrder`. */
export interface Preprocess {
  /** Input height and width in pixels. */
  inputSize: [number, number];
  channelOrder: 'rgb' | 'bgr';
  /** Layout of the model's input tensor. */
  layout: 'nhwc' | 'nchw';
  scale: number;
  mean: [number, number, number];
  std: [number, number, number];
  resize: ResizeMode;
  /** Resampling filter; `triangle` (antialiased) by default. */
  resizeFilter: ResizeFilter;
  /**
   * Where `scale`, `mean` and `std` came from: a preset's name, `custom` (camstream.json or options set
   * them), or `default` (nothing did: scale 1/255, mean 0, std 1).
   */
  normalization: NormalizationPreset | 'custom' | 'default';
}

/** The package that runs a model, for reports and manifests. */
export interface EngineRuntime {
  /** npm package name, e.g. `@tensorflow/tfjs-core` or `onnxruntime-node`. */
  package: string;
  /** Its installed version; null when it cannot be read. */
  version: string | null;
}

export interface CamModelInfo {
  engine: EngineName;
  /** What really runs: a tfjs backend (`wasm`, `cpu`, `tensorflow`) or an ORT execution provider. */
  backend: string;
  /** Intra-op threads in use (1 for single-threaded backends). */
  threads: number;
  /**
   * True when `infer()` computes synchronously on the calling JS thread (tfjs), so the event loop stalls
   * while it runs; false when the work happens on other threads (ONNX Runtime's pool, an InferPool's workers).
   */
  runsOnJsThread: boolean;
  /** How many `infer()` calls may usefully be in flight at once: 1 for a plain model, the worker count for an InferPool. */
  parallelism: number;
  /** The package behind the engine and its installed version. */
  runtime: EngineRuntime;
  /** Where the model came from (path or URL as given). */
  source: string;
  head: HeadKind;
  preprocess: Preprocess;
  /** Feature map shape `[h, w, k]` (k = channels feeding GAP). */
  featureShape: [number, number, number];
  numClasses: number;
  /** One label per class; `class_<i>` where the model ships none. */
  labels: string[];
}

export interface Frame {
  /** Packed RGB, `height * width * 3` bytes. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface InferOptions {
  /** Number of top classes to return maps for. Default 5, at most numClasses. Ignored when `classes` is set. */
  topK?: number;
  /** Return maps for exactly these class indices, in this order, instead of the top-k. */
  classes?: readonly number[];
  /** Also return the GAP feature vector (length k) per frame. Default false. */
  features?: boolean;
}

/** Result for one frame. Plain JS arrays: no tensor crosses this boundary. */
export interface CamResult {
  /** Class indices, best first (or in the order asked for). */
  ids: Int32Array;
  /** Class logits (pre-softmax) for `ids`. */
  scores: Float32Array;
  /** Softmax probabilities for `ids`. */
  probabilities: Float32Array;
  /** `ids.length` raw maps, each `mapSize[0] * mapSize[1]` floats, row-major. */
  maps: Float32Array;
  /** `[height, width]` of each map (the feature resolution). */
  mapSize: [number, number];
  /** GAP feature vector (length featureShape[2]) when asked for. */
  features?: Float32Array;
}

/** The linear classifier on GAP features: logits = gap(f) . W + b. */
export interface LinearHead {
  /** Row-major `[k, numClasses]`. */
  weights: Float32Array;
  /** Length `numClasses`. */
  bias: Float32Array;
  /** Labels for the new classes (defaults to `class_<i>`). */
  labels?: string[];
}

export interface CamModel {
  readonly info: CamModelInfo;
  /**
   * One forward pass for a batch of frames, CAM computed on the engine's device.
   * Only ids, scores, probabilities, the asked-for maps (and features) are read back.
   */
  infer(frames: readonly Frame[], options?: InferOptions): Promise<CamResult[]>;
  /** The classifier weights used for CAM (copies). */
  head(): LinearHead;
  /**
   * A model sharing this one's backbone whose CAM comes from another linear classifier on the GAP features
   * (paper sec. 4). Disposing the derived model does not dispose the backbone.
   */
  withHead(head: LinearHead): CamModel;
  /** Frees weights and sessions. The model is unusable afterwards. */
  dispose(): Promise<void>;
}

export interface LoadOptions {
  /** Engine; default chosen by the spec (`.onnx` -> onnx, model.json -> tfjs). */
  engine?: EngineName;
  /** tfjs backend (`tensorflow`, `wasm`, `cpu`) or ORT execution provider (`cpu`, `cuda`, `tensorrt`, `webgpu`). */
  backend?: string;
  /**
   * Intra-op threads, an integer >= 1 (ConfigError otherwise); default all free cores, and larger values are
   * clamped to them. ONNX Runtime uses this many; tfjs backends fix their own count (wasm and cpu: 1, native
   * TF: the cores). `CamModelInfo.threads` reports what really runs.
   */
  threads?: number;
  /**
   * ONNX Runtime only: let idle intra-op threads spin-wait for the next operator (`true`, ORT's default)
   * or sleep (`false`). Spinning is fastest on otherwise idle cores; beside other busy processes (the video
   * pipeline's ffmpeg encoder) it burns the cores they need. Default true. Ignored by tfjs.
   */
  spinWait?: boolean;
  /** Cache folder for URL models; default `~/.cache/camstream` (the CLI reads CAMSTREAM_CACHE). */
  cacheDir?: string;
  /** Download progress (bytes so far, total bytes or undefined when unknown). */
  onProgress?: (event: { url: string; loaded: number; total: number | undefined }) => void;
  /** Overrides for what `camstream.json` beside the model would say. */
  config?: ModelFileConfig;
}

/**
 * `camstream.json` beside a model: what discovery cannot know. Every field optional.
 * Example: `{ "inputSize": [224, 224], "channelOrder": "bgr", "layout": "nchw", "scale": 1,
 *            "mean": [103.9, 116.8, 123.7], "std": [1, 1, 1], "labels": "labels.txt",
 *            "featureTensor": "conv5_block3_out", "weights": "predictions/kernel", "bias": "predictions/bias" }`
 */
export interface ModelFileConfig {
  inputSize?: [number, number];
  channelOrder?: 'rgb' | 'bgr';
  layout?: 'nhwc' | 'nchw';
  scale?: number;
  mean?: [number, number, number];
  std?: [number, number, number];
  resize?: ResizeMode;
  /** Resampling filter (default `triangle`); `bilinear` for models trained on non-antialiased resizes. */
  resizeFilter?: ResizeFilter;
  /** Named normalization; `scale`, `mean` and `std` set beside it override its values. */
  preset?: NormalizationPreset;
  /** Labels file (one label per line), relative to the model folder. */
  labels?: string;
  /** Name of the feature tensor / layer / node feeding GAP. */
  featureTensor?: string;
  /** Name of the classifier weight (kernel / initializer). */
  weights?: string;
  /** Name of the classifier bias. */
  bias?: string;
  /**
   * Written by `camstream quantize`: how the INT8 model was made and how close it stays to fp32 (top-1
   * agreement, top-5 overlap, CAM Pearson r mean and worst, speedup). Informational; loading ignores it.
   */
  quantization?: Record<string, unknown>;
}

/**
 * A model spec after the loader has fetched it (URL -> cache) and read `camstream.json`: what an engine's
 * loader receives. Produced by `models/load/`.
 */
export interface ResolvedSource {
  /** Which format the files are in. */
  format: 'tfjs' | 'onnx';
  /** Local path: the folder holding model.json (tfjs), or the .onnx file (onnx). */
  path: string;
  /** The spec as the user gave it (path or URL), for reports. */
  original: string;
  /** camstream.json beside the model merged with LoadOptions.config (the latter wins). */
  fileConfig: ModelFileConfig;
  /** Labels read from fileConfig.labels (or a labels file found beside the model), if any. */
  labels?: string[];
  /** Without labels: the local model folder's only `*.txt` and its line count (named in a warning, never used). */
  labelsCandidate?: { path: string; lines: number };
}

/** What each engine module exports (models/tfjs/index.ts, models/onnx/index.ts). */
export type EngineLoader = (source: ResolvedSource, options: LoadOptions) => Promise<CamModel>;
