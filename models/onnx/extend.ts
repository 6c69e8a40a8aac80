/**
 * Rewrites an ONNX classifier so that one session run does preprocessing, the forward pass and CAM, and
 * only small tensors leave the session (ids, scores, probabilities, k maps at feature resolution, and the
 * GAP vector when fetched).
 *
 * Added inputs:
 * - `frames` uint8 `[N, height, width, 3]`: packed RGB frames, any size (all frames of one run share it).
 * - `cam_request` int64 `[N, m]`: per frame and slot j, a class index (>= 0) to map, or -1 for "the j-th
 *   best class". m, the number of maps, is the request's second dim and may exceed the class count when
 *   classes repeat (a -1 slot at j >= C maps class 0).
 * - `cam_weights` float `[C, k]`, `cam_bias` float `[C]`: the linear head on GAP features, fed at every run
 *   (row c of `cam_weights` is column c of the `[k, C]` classifier W). Feeding rather than baking them in
 *   lets one session serve the model's own head and any `withHead` classifier (paper sec. 4) with no second
 *   copy of the backbone; ONNX Runtime wraps the fed buffer without copying it.
 * - letterbox only: `cam_fit_pads` int64 `[8]` (ONNX Pad order for NHWC: 0, top, left, 0, 0, bottom,
 *   right, 0), and for the `bilinear` filter `cam_fit_size` int64 `[2]` (content height, width), computed
 *   per frame size by `fitGeometry` so both engines place the content identically.
 * - `triangle` and `area` filters (antialiased): `cam_col_taps` int64 `[outW, t]` with `cam_col_weights`
 *   float `[outW, 1, t]`, and `cam_row_taps` int64 `[outH, t']` with `cam_row_weights` float
 *   `[outH, 1, t']`: the tap tables of models/internal/resize-taps.ts for this frame size, fed per run.
 * - activated class-conv heads only: `cam_slope` float `[]`, the slope of the head's activation below 0:
 *   0 for the model's own ReLU head, 1 (no activation) for a linear `withHead` classifier on the same session.
 *
 * Added nodes, in the order of models/preprocess.ts: Cast to float -> resize (`bilinear`: Resize linear,
 * half_pixel, to the model size or the letterbox content size; otherwise, per axis, the axis moved to the
 * front, Gather its taps and one batched MatMul by their weights, first over columns, then over rows: a
 * separable antialiasing filter on any opset) -> [Pad with 0] -> [Gather channels 2,1,0 for bgr] -> [Mul
 * scale] -> [Sub mean] -> [Div std] -> the model's original input, with a Transpose to NCHW right after the
 * resize (and pad) for NCHW models. Resizing before the transpose keeps the full-size frame in its native
 * layout: only the small resized tensor is permuted. The order of channel reordering and normalization is
 * that of models/preprocess.ts; moving the (pixel-wise) transpose ahead of them changes no value.
 *
 * CAM (ref: Zhou et al. 2016, sec. 2): gap = the model's pooled features (or GAP of the features for
 * class-conv heads); logits = gap . W + b (Gemm); TopK(logits, m) gives the best ids; ids = where(request
 * < 0, topk ids, request); scores and probabilities are gathered from logits and softmax(logits); maps =
 * W[:, ids]^T . features, a batched MatMul of the gathered rows `[N, m, k]` with the features as
 * `[N, k, h * w]`, reshaped to `[N, m, h, w]`.
 *
 * Outputs: `cam_ids` int64 `[N, m]`, `cam_scores` and `cam_probs` float `[N, m]`, `cam_maps` float
 * `[N, m, h, w]`, `cam_gap` float `[N, k]` (fetch it only when needed). Nodes and initializers no output
 * needs (the model's own classifier, its softmax) are pruned.
 *
 * Opset: the model's own (11 or later; ops are chosen to exist from opset 11 on, and ReduceMean takes its
 * axes as an input from opset 18).
 */
import { ModelLoadError } from '../../common/errors.ts';
import { usesResizeTaps } from '../preprocess.ts';
import type { Preprocess } from '../types.ts';
import type { OnnxHead } from './discover.ts';
import type { OnnxInput } from './discover-input.ts';
import type { GraphView } from './graph.ts';
import {
  DataType,
  encodeModel,
  floatTensor,
  int64Tensor,
  node,
  valueInfo,
  type AttrValue,
  type IGraphProto,
  type INodeProto,
  type ITensorProto,
} from './proto.ts';

/** Names of the inputs and outputs the extension adds. */
export const CAM_IO = Object.freeze({
  frames: 'frames',
  request: 'cam_request',
  weights: 'cam_weights',
  bias: 'cam_bias',
  fitSize: 'cam_fit_size',
  fitPads: 'cam_fit_pads',
  colTaps: 'cam_col_taps',
  colWeights: 'cam_col_weights',
  rowTaps: 'cam_row_taps',
  rowWeights: 'cam_row_weights',
  slope: 'cam_slope',
  ids: 'cam_ids',
  scores: 'cam_scores',
  probs: 'cam_probs',
  maps: 'cam_maps',
  gap: 'cam_gap',
});

/** Lowest default-domain opset the extension supports (Resize with half_pixel, Pad and TopK as today). */
export const MIN_OPSET = 11;

/** Every tensor name a node (or a subgraph inside it, for If/Loop bodies) reads. */
function readsOf(n: INodeProto, out: Set<string>): void {
  for (const i of n.input ?? []) if (i) out.add(i);
  for (const a of n.attribute ?? []) {
    const graphs = [...(a.g ? [a.g] : []), ...(a.graphs ?? [])];
    for (const g of graphs) for (const inner of g.node ?? []) readsOf(inner, out);
  }
}

/**
 * Collects the nodes and initializers the extension adds, with names that are fresh in the model. Node
 * names say which part a node belongs to (`cam/pre/...` or `cam/...`), so profiles can split them.
 */
class GraphBuilder {
  readonly prep: INodeProto[] = [];
  readonly cam: INodeProto[] = [];
  readonly inits: ITensorProto[] = [];
  private counter = 0;

  constructor(private readonly view: GraphView) {}

  /** A name the model does not use yet: `cam/<what>_<n>`. */
  fresh(what: string): string {
    let name: string;
    do name = `cam/${what}_${this.counter++}`;
    while (this.view.hasName(name));
    return name;
  }

  /** Adds a preprocessing node; returns its output (`out`, or a fresh name). */
  pre(type: string, inputs: string[], attrs?: Record<string, AttrValue | undefined>, out?: string): string {
    return this.add(this.prep, `pre/${type}`, type, inputs, attrs, out);
  }

  /** Adds a CAM node; returns its output (`out`, or a fresh name). */
  op(type: string, inputs: string[], attrs?: Record<string, AttrValue | undefined>, out?: string): string {
    return this.add(this.cam, type, type, inputs, attrs, out);
  }

  /** An int64 initializer; returns its name. */
  ints(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const');
    this.inits.push(int64Tensor(name, dims, values));
    return name;
  }

  /** A float initializer; returns its name. */
  floats(values: number[], dims: number[] = [values.length]): string {
    const name = this.fresh('const');
    this.inits.push(floatTensor(name, dims, values));
    return name;
  }

  private add(
    list: INodeProto[],
    label: string,
    type: string,
    inputs: string[],
    attrs: Record<string, AttrValue | undefined> | undefined,
    out: string | undefined,
  ): string {
    const output = out ?? this.fresh(type.toLowerCase());
    list.push(node(type, inputs, [output], this.fresh(label), attrs));
    return output;
  }
}

/**
 * The extended model, serialized (see the file comment). `pre` is the resolved preprocessing (its
 * `inputSize` and `layout` describe the model input).
 * @throws ModelLoadError for opsets below 11 or when the model already uses one of the added names.
 */
export function extendOnnxModel(view: GraphView, input: OnnxInput, head: OnnxHead, pre: Preprocess): Uint8Array {
  checkExtendable(view);
  const b = new GraphBuilder(view);
  addPreprocessing(b, view.opset, input, pre);
  addCam(b, view.opset, head);
  const graph = view.model.graph;
  const k = head.channels;
  const outputs = [
    valueInfo(CAM_IO.ids, DataType.INT64, ['cam_batch', 'cam_count']),
    valueInfo(CAM_IO.scores, DataType.FLOAT, ['cam_batch', 'cam_count']),
    valueInfo(CAM_IO.probs, DataType.FLOAT, ['cam_batch', 'cam_count']),
    valueInfo(CAM_IO.maps, DataType.FLOAT, ['cam_batch', 'cam_count', 'map_height', 'map_width']),
    valueInfo(CAM_IO.gap, DataType.FLOAT, ['cam_batch', k]),
  ];
  const inputs = [
    valueInfo(CAM_IO.frames, DataType.UINT8, ['cam_batch', 'frame_height', 'frame_width', 3]),
    valueInfo(CAM_IO.request, DataType.INT64, ['cam_batch', 'cam_count']),
    valueInfo(CAM_IO.weights, DataType.FLOAT, ['cam_classes', k]),
    valueInfo(CAM_IO.bias, DataType.FLOAT, ['cam_classes']),
    ...(pre.resize === 'letterbox' && !usesResizeTaps(pre) ? [valueInfo(CAM_IO.fitSize, DataType.INT64, [2])] : []),
    ...(pre.resize === 'letterbox' ? [valueInfo(CAM_IO.fitPads, DataType.INT64, [8])] : []),
    ...(usesResizeTaps(pre)
      ? [
          valueInfo(CAM_IO.colTaps, DataType.INT64, ['cam_out_width', 'cam_col_count']),
          valueInfo(CAM_IO.colWeights, DataType.FLOAT, ['cam_out_width', 1, 'cam_col_count']),
          valueInfo(CAM_IO.rowTaps, DataType.INT64, ['cam_out_height', 'cam_row_count']),
          valueInfo(CAM_IO.rowWeights, DataType.FLOAT, ['cam_out_height', 1, 'cam_row_count']),
        ]
      : []),
    ...(head.activation === 'relu' ? [valueInfo(CAM_IO.slope, DataType.FLOAT, [])] : []),
  ];
  const { kept, needed } = pruneNodes([...b.prep, ...graph.node, ...b.cam], outputs.map((o) => o.name as string));
  const initializers: ITensorProto[] = [...graph.initializer, ...b.inits].filter((t) => needed.has(t.name as string));
  const extended: IGraphProto = {
    name: `${graph.name || 'model'}+cam`,
    node: kept,
    initializer: initializers,
    input: inputs,
    output: outputs,
    valueInfo: graph.valueInfo.filter((v) => needed.has(v.name) && v.name !== input.name),
  };
  return encodeModel({
    irVersion: view.model.irVersion,
    opsetImport: view.model.opsetImport,
    producerName: 'camstream',
    graph: extended,
    functions: view.model.functions,
  });
}

/** Throws ModelLoadError for opsets below MIN_OPSET or a model already using a name the extension adds. */
function checkExtendable(view: GraphView): void {
  const opset = view.opset;
  if (opset < MIN_OPSET) {
    throw new ModelLoadError(
      `model opset ${opset} is too old for camstream (needs ${MIN_OPSET} or later); convert it with ` +
        "onnx.version_converter.convert_version(model, 13)",
    );
  }
  for (const name of Object.values(CAM_IO)) {
    if (view.hasName(name)) throw new ModelLoadError(`the model already uses the tensor name '${name}' that camstream adds`);
  }
}

/** Preprocessing nodes: `frames` -> the model's input (in the order of models/preprocess.ts). */
function addPreprocessing(b: GraphBuilder, opset: number, input: OnnxInput, pre: Preprocess): void {
  const letterbox = pre.resize === 'letterbox';
  const [inH, inW] = pre.inputSize;
  let x = b.pre('Cast', [CAM_IO.frames], { to: DataType.FLOAT });
  if (usesResizeTaps(pre)) {
    // Rows first: for one frame, moving the row axis to the front moves only a dimension of 1 (a copy, no
    // shuffle), and the column pass, which needs a real transpose, then runs on the fewer rows.
    x = addTapResize(b, x, CAM_IO.rowTaps, CAM_IO.rowWeights, 1);
    x = addTapResize(b, x, CAM_IO.colTaps, CAM_IO.colWeights, 2);
  } else {
    const batch = b.pre('Slice', [b.pre('Shape', [CAM_IO.frames]), b.ints([0]), b.ints([1])]);
    const sizes = letterbox
      ? b.pre('Concat', [batch, CAM_IO.fitSize, b.ints([3])], { axis: 0 })
      : b.pre('Concat', [batch, b.ints([inH, inW, 3])], { axis: 0 });
    // Opset 11-12 Resize has required roi and scales inputs (empty when sizes is given); 13+ takes ''.
    const unused = opset >= 13 ? ['', ''] : [b.floats([], [0]), b.floats([], [0])];
    x = b.pre('Resize', [x, ...unused, sizes], { mode: 'linear', coordinate_transformation_mode: 'half_pixel' });
  }
  if (letterbox) {
    // Padding is black in pixel space, before normalization (models/preprocess.ts, LETTERBOX_PAD_VALUE).
    x = b.pre('Pad', [x, CAM_IO.fitPads, b.floats([0], [])], { mode: 'constant' });
  }
  // For NCHW models, transpose first: per-channel constants then broadcast over whole contiguous planes
  // ([3, 1, 1]), which ONNX Runtime does several times faster than a [3] vector over interleaved pixels.
  const nchw = pre.layout === 'nchw';
  if (nchw) x = b.pre('Transpose', [x], { perm: [0, 3, 1, 2] });
  const perChannel = nchw ? [3, 1, 1] : [3];
  if (pre.channelOrder === 'bgr') x = b.pre('Gather', [x, b.ints([2, 1, 0])], { axis: nchw ? 1 : 3 });
  if (pre.scale !== 1) x = b.pre('Mul', [x, b.floats([pre.scale], [])]);
  if (pre.mean.some((m) => m !== 0)) x = b.pre('Sub', [x, b.floats([...pre.mean], perChannel)]);
  if (pre.std.some((s) => s !== 1)) x = b.pre('Div', [x, b.floats([...pre.std], perChannel)]);
  // A Reshape to the input's own shape moves no data, but it gives ONNX Runtime's shape inference the rank
  // and sizes that the fed tap tables and computed Resize sizes hide. Without them its layout optimizers
  // skip the network: an INT8 graph kept its QLinearConvs in NCHW and its MaxPool in a uint8 reference
  // kernel (ResNet-50, 1 thread: 30.0 ms a frame against 22.5 for the plain int8 graph).
  b.pre('Reshape', [x, b.ints(nchw ? [-1, 3, inH, inW] : [-1, inH, inW, 3])]);
  // The last preprocessing node now produces the tensor the model's first layers read.
  b.prep[b.prep.length - 1].output = [input.name];
}

/**
 * One axis of the NHWC frames `[N, H, W, 3]` resampled by fed tap tables: the axis moved to the front,
 * Gather by the `[out, t]` index table (`[out, t, rest...]`, flattened to `[out, t, R]`), then one batched
 * MatMul with the `[out, 1, t]` weights (`[out, 1, R]`), reshaped and moved back. Measured on a 640x480 frame
 * to 224x224 (triangle, ORT CPU, 2 threads): 3-4 ms against 26 ms for Gather, broadcast Mul and a ReduceSum
 * over the tap axis, which ran element by element.
 */
function addTapResize(b: GraphBuilder, x: string, taps: string, weights: string, axis: 1 | 2): string {
  const toFront = axis === 2 ? [2, 0, 1, 3] : [1, 0, 2, 3];
  const back = axis === 2 ? [1, 2, 0, 3] : [1, 0, 2, 3];
  const front = b.pre('Transpose', [x], { perm: toFront });
  const gathered = b.pre('Reshape', [b.pre('Gather', [front, taps], { axis: 0 }), b.ints([0, 0, -1])]);
  const summed = b.pre('MatMul', [weights, gathered]);
  // [out, N, ., 3]: the tap table's length, then the other three dimensions of the moved frames.
  const outAxis = b.pre('Slice', [b.pre('Shape', [taps]), b.ints([0]), b.ints([1])]);
  const rest = b.pre('Slice', [b.pre('Shape', [front]), b.ints([1]), b.ints([4])]);
  const shaped = b.pre('Reshape', [summed, b.pre('Concat', [outAxis, rest], { axis: 0 })]);
  return b.pre('Transpose', [shaped], { perm: back });
}

/** CAM nodes: GAP, logits, the requested ids, their scores and probabilities, and the maps (file comment). */
function addCam(b: GraphBuilder, opset: number, head: OnnxHead): void {
  const f = head.featureTensor;
  const k = head.channels;
  const relu = head.activation === 'relu';
  if (head.pooledTensor) {
    b.op('Flatten', [head.pooledTensor], { axis: 1 }, CAM_IO.gap);
  } else if (head.featureLayout === 'nchw') {
    b.op('Flatten', [b.op('GlobalAveragePool', [f])], { axis: 1 }, CAM_IO.gap);
  } else {
    b.op('Flatten', [spatialMean(b, opset, f, [1, 2])], { axis: 1 }, CAM_IO.gap);
  }
  // Features as [N, k, h * w], and their spatial size.
  let flat: string;
  let spatial: string;
  if (head.featureLayout === 'nchw') {
    flat = b.op('Reshape', [f, b.ints([0, k, -1])]);
    spatial = b.op('Slice', [b.op('Shape', [f]), b.ints([2]), b.ints([4])]);
  } else {
    flat = b.op('Transpose', [b.op('Reshape', [f, b.ints([0, -1, k])])], { perm: [0, 2, 1] });
    spatial = b.op('Slice', [b.op('Shape', [f]), b.ints([1]), b.ints([3])]);
  }
  // An activated class-conv head (SqueezeNet: conv -> ReLU -> GAP) has logit_c = mean(ReLU(W_c . f + b_c)):
  // every class map is needed for the logits. Max(z, slope * z) is that ReLU for slope 0 and no activation
  // for slope 1 (a linear withHead classifier fed to the same session).
  const biasColumn = relu ? b.op('Reshape', [CAM_IO.bias, b.ints([-1, 1])]) : '';
  const activate = (z: string): string => b.op('Max', [z, b.op('Mul', [z, CAM_IO.slope])]);
  const logits = relu
    ? b.op('Flatten', [spatialMean(b, opset, activate(b.op('Add', [b.op('MatMul', [CAM_IO.weights, flat]), biasColumn])), [2])], { axis: 1 })
    : b.op('Gemm', [CAM_IO.gap, CAM_IO.weights, CAM_IO.bias], { transB: 1 });
  addTopIds(b, logits);
  b.op('GatherElements', [logits, CAM_IO.ids], { axis: 1 }, CAM_IO.scores);
  const probs = b.op('Softmax', [logits], { axis: 1 });
  b.op('GatherElements', [probs, CAM_IO.ids], { axis: 1 }, CAM_IO.probs);
  // Rows of W^T for the chosen classes: [N, m, k].
  const rows = b.op('Gather', [CAM_IO.weights, CAM_IO.ids], { axis: 0 });
  let mapsFlat = b.op('MatMul', [rows, flat]);
  if (relu) mapsFlat = activate(b.op('Add', [mapsFlat, b.op('Gather', [biasColumn, CAM_IO.ids], { axis: 0 })]));
  const mapShape = b.op('Concat', [b.ints([0, 0]), spatial], { axis: 0 });
  b.op('Reshape', [mapsFlat, mapShape], {}, CAM_IO.maps);
}

/** Mean of `x` over `axes`, kept as size-1 dims (ReduceMean takes its axes as an input from opset 18). */
function spatialMean(b: GraphBuilder, opset: number, x: string, axes: number[]): string {
  return opset >= 18 ? b.op('ReduceMean', [x, b.ints(axes)], { keepdims: 1 }) : b.op('ReduceMean', [x], { axes, keepdims: 1 });
}

/** `cam_ids`: per slot the requested class, or for -1 the slot's rank among the top logits. */
function addTopIds(b: GraphBuilder, logits: string): void {
  // TopK's K is min(m, C): a request may hold more slots than there are classes (the same class asked
  // twice). The top ids are then padded back to m columns with class 0, so a -1 slot past the class count
  // maps class 0 (the engine never asks for more top slots than classes). Less + Where rather than Min:
  // Min takes int64 only from opset 12.
  const count = b.op('Slice', [b.op('Shape', [CAM_IO.request]), b.ints([1]), b.ints([2])]);
  const classes = b.op('Slice', [b.op('Shape', [logits]), b.ints([1]), b.ints([2])]);
  const topCount = b.op('Where', [b.op('Less', [classes, count]), classes, count]);
  const topValues = b.fresh('topk_values');
  const topIds = b.fresh('topk_ids');
  b.cam.push(node('TopK', [logits, topCount], [topValues, topIds], b.fresh('TopK'), { axis: 1, largest: 1, sorted: 1 }));
  const padWidth = b.op('Concat', [b.ints([0, 0, 0]), b.op('Sub', [count, topCount])], { axis: 0 });
  const topPadded = b.op('Pad', [topIds, padWidth, b.ints([0], [])], { mode: 'constant' });
  const wantsTop = b.op('Less', [CAM_IO.request, b.ints([0], [])]);
  b.op('Where', [wantsTop, topPadded, CAM_IO.request], {}, CAM_IO.ids);
}

/** Keeps the nodes `outputs` need (walking back from them); returns them in order and every name read. */
function pruneNodes(all: INodeProto[], outputs: string[]): { kept: INodeProto[]; needed: Set<string> } {
  const needed = new Set(outputs);
  const kept: INodeProto[] = [];
  for (let i = all.length - 1; i >= 0; i--) {
    const n = all[i];
    if ((n.output ?? []).some((o) => needed.has(o))) {
      kept.push(n);
      readsOf(n, needed);
    }
  }
  kept.reverse();
  return { kept, needed };
}
