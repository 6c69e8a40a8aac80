/**
 * The QDQ rewrite (see qdq-graph.ts for the choices): given the prepared fp32 model and the calibrated
 * ranges, removes the folded rectifiers, puts a QuantizeLinear -> DequantizeLinear pair on every
 * calibrated activation, and replaces each quantized Conv's weight by int8 per-channel values and its
 * bias by int32 values, each behind a DequantizeLinear.
 */
import { ModelLoadError } from '../../common/errors.ts';
import { GraphView, parseOnnxModel, tensorDims, tensorFloats } from './graph.ts';
import { DataType, encodeModel, floatTensor, node, type IModelProto, type INodeProto, type ITensorProto, type NodeProto } from './proto.ts';
import { SHARED_PARAMS_OPS, activationParams, isQuantized, quantizeWeights, type Range } from './qdq-graph.ts';

interface QParams {
  scale: number;
  zeroPoint: number;
}

/** A raw little-endian initializer over any typed array. */
function rawTensor(name: string, dims: number[], dataType: number, data: ArrayBufferView): ITensorProto {
  return { name, dims, dataType, rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice() };
}

/** Removes each folded Relu / Clip and lets its producer write the rectifier's output name directly. */
function dropFoldedRectifiers(view: GraphView, folded: readonly string[]): NodeProto[] {
  const removed = new Set<NodeProto>();
  for (const name of folded) {
    const rectifier = view.producer(name);
    const producer = rectifier ? view.producer(rectifier.input[0]) : undefined;
    if (!rectifier || !producer) throw new ModelLoadError(`quantize: folded activation '${name}' is not in the prepared model`);
    producer.output = [name];
    removed.add(rectifier);
  }
  return view.nodes.filter((n) => !removed.has(n));
}

/** Quantization parameters per activation: from its range, or its input's for MaxPool outputs. */
function activationTable(view: GraphView, ranges: ReadonlyMap<string, Range>): Map<string, QParams> {
  const table = new Map<string, QParams>();
  for (const [name, range] of ranges) table.set(name, activationParams(range));
  for (const n of view.nodes) {
    const shared = SHARED_PARAMS_OPS.has(n.opType) ? table.get(n.input[0]) : undefined;
    if (shared && table.has(n.output[0])) table.set(n.output[0], shared);
  }
  return table;
}

/** The int8 weight and int32 bias of a quantized conv, each behind a DequantizeLinear (axis 0). */
function quantizeConvParams(view: GraphView, conv: NodeProto, inputScale: number, out: { nodes: INodeProto[]; inits: ITensorProto[] }): void {
  const base = conv.name || conv.output[0];
  const w = view.constant(conv.input[1])!;
  const dims = tensorDims(w);
  const channels = dims[0];
  const { q, scales } = quantizeWeights(tensorFloats(w), channels);
  out.inits.push(
    rawTensor(`${base}/w_q`, dims, DataType.INT8, q),
    floatTensor(`${base}/w_scale`, [channels], scales),
    rawTensor(`${base}/w_zp`, [channels], DataType.INT8, new Int8Array(channels)),
  );
  out.nodes.push(node('DequantizeLinear', [`${base}/w_q`, `${base}/w_scale`, `${base}/w_zp`], [`${base}/w_dq`], `${base}/w_dq`, { axis: 0 }));
  const inputs = [conv.input[0], `${base}/w_dq`];
  const biasTensor = conv.input[2] ? view.constant(conv.input[2]) : undefined;
  if (biasTensor) {
    const bias = tensorFloats(biasTensor);
    const biasScales = scales.map((s) => s * inputScale);
    const bq = Int32Array.from(bias, (b, o) => Math.max(-2147483647, Math.min(2147483647, Math.round(b / biasScales[o]))));
    out.inits.push(
      rawTensor(`${base}/b_q`, [channels], DataType.INT32, bq),
      floatTensor(`${base}/b_scale`, [channels], biasScales),
      rawTensor(`${base}/b_zp`, [channels], DataType.INT32, new Int32Array(channels)),
    );
    out.nodes.push(node('DequantizeLinear', [`${base}/b_q`, `${base}/b_scale`, `${base}/b_zp`], [`${base}/b_dq`], `${base}/b_dq`, { axis: 0 }));
    inputs.push(`${base}/b_dq`);
  }
  conv.input = inputs;
}

/** The Q -> DQ pair of one activation; consumers are rewired to `<name>/dq` afterwards. */
function qdqPair(name: string, p: QParams, inits: ITensorProto[]): INodeProto[] {
  inits.push(floatTensor(`${name}/scale`, [], [p.scale]), rawTensor(`${name}/zp`, [], DataType.UINT8, Uint8Array.of(p.zeroPoint)));
  return [
    node('QuantizeLinear', [name, `${name}/scale`, `${name}/zp`], [`${name}/q`], `${name}/q`),
    node('DequantizeLinear', [`${name}/q`, `${name}/scale`, `${name}/zp`], [`${name}/dq`], `${name}/dq`),
  ];
}

/**
 * The quantized model, serialized. `prepared` is `QdqPlan.model`; `ranges` holds a range for every
 * `QdqPlan.tensors` entry; `headConv` names the class conv to keep in fp32 (if any).
 * @throws ModelLoadError when the prepared model does not match the plan.
 */
export function insertQdq(prepared: Uint8Array, folded: readonly string[], ranges: ReadonlyMap<string, Range>, headConv: string | undefined): Uint8Array {
  const model = parseOnnxModel(prepared, 'quantize');
  model.graph.node = dropFoldedRectifiers(new GraphView(model), folded);
  const view = new GraphView(model);
  const table = activationTable(view, ranges);
  const inits: ITensorProto[] = [];
  const weightNodes: INodeProto[] = [];
  for (const n of view.nodes) {
    const input = table.get(n.input[0]);
    if (n.opType === 'Conv' && input && isQuantized(view, n, headConv)) quantizeConvParams(view, n, input.scale, { nodes: weightNodes, inits });
  }
  const rename = (t: string) => (table.has(t) ? `${t}/dq` : t);
  const nodes: INodeProto[] = [...weightNodes];
  for (const name of view.dataInputs().map((i) => i.name)) if (table.has(name)) nodes.push(...qdqPair(name, table.get(name)!, inits));
  for (const n of view.nodes) {
    n.input = n.input.map(rename);
    nodes.push(n);
    for (const out of n.output) if (table.has(out)) nodes.push(...qdqPair(out, table.get(out)!, inits));
  }
  const used = new Set(nodes.flatMap((n) => n.input ?? []));
  const kept = [...model.graph.initializer, ...inits].filter((t) => used.has(t.name as string));
  return encodeModel({ ...(model as IModelProto), graph: { ...model.graph, node: nodes, initializer: kept } } as IModelProto);
}
