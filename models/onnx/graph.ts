/**
 * Parsing an ONNX model and answering the questions discovery and extension ask of its graph: who
 * produces and who consumes a tensor, which tensors are constants (initializers or Constant nodes) and
 * what they hold, what the attributes of a node say, and what the model's single image input looks like.
 *
 * Nothing here runs the model; it only reads the protobuf.
 */
import { ModelLoadError } from '../../common/errors.ts';
import {
  DataType,
  onnx,
  toNumber,
  valueInfoDims,
  valueInfoElemType,
  type Dim,
  type Int64Like,
  type ModelProto,
  type NodeProto,
  type TensorProto,
} from './proto.ts';

/**
 * Decodes a serialized ModelProto. Throws ModelLoadError (naming `source`) when the bytes are not a
 * model with a graph, or when a tensor keeps its data in an external file (not supported: camstream loads
 * self-contained .onnx files).
 */
export function parseOnnxModel(bytes: Uint8Array, source: string): ModelProto {
  let model: ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes) as unknown as ModelProto;
  } catch (error) {
    throw new ModelLoadError(`${source} is not a valid ONNX model: ${(error as Error).message}`, { cause: error });
  }
  const graph = model.graph;
  if (!graph || graph.node.length === 0 || (model.opsetImport ?? []).length === 0) {
    throw new ModelLoadError(`${source} is not a valid ONNX model: it has no graph nodes or no opset import`);
  }
  for (const tensor of graph.initializer) {
    if (tensor.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
      throw new ModelLoadError(
        `${source}: initializer '${tensor.name}' keeps its data in an external file; camstream needs a ` +
          'self-contained .onnx (re-save it with onnx.save_model(model, path, save_as_external_data=False))',
      );
    }
  }
  return model;
}

/** The model's image input: name, element type and dims as declared (symbolic dims as strings). */
export interface GraphInput {
  name: string;
  elemType: number;
  dims: Dim[];
}

/** Read-only index over a model's main graph. */
export class GraphView {
  readonly model: ModelProto;
  /** Opset of the default ONNX domain. */
  readonly opset: number;
  private readonly producers = new Map<string, NodeProto>();
  private readonly consumers = new Map<string, NodeProto[]>();
  private readonly initializers = new Map<string, TensorProto>();
  private readonly outputs: Set<string>;

  constructor(model: ModelProto) {
    this.model = model;
    const graph = model.graph;
    const defaultOpset = model.opsetImport.find((o) => !o.domain || o.domain === 'ai.onnx');
    this.opset = toNumber(defaultOpset?.version as Int64Like);
    for (const t of graph.initializer) this.initializers.set(t.name, t);
    for (const n of graph.node) {
      for (const out of n.output) if (out) this.producers.set(out, n);
      for (const input of n.input) {
        if (!input) continue;
        const list = this.consumers.get(input);
        if (list) list.push(n);
        else this.consumers.set(input, [n]);
      }
    }
    this.outputs = new Set(graph.output.map((o) => o.name));
  }

  get nodes(): NodeProto[] {
    return this.model.graph.node;
  }

  producer(tensor: string): NodeProto | undefined {
    return this.producers.get(tensor);
  }

  consumersOf(tensor: string): NodeProto[] {
    return this.consumers.get(tensor) ?? [];
  }

  isGraphOutput(tensor: string): boolean {
    return this.outputs.has(tensor);
  }

  initializer(name: string): TensorProto | undefined {
    return this.initializers.get(name);
  }

  /** Whether any node, initializer or graph input/output uses this name. */
  hasName(name: string): boolean {
    return (
      this.producers.has(name) ||
      this.consumers.has(name) ||
      this.initializers.has(name) ||
      this.outputs.has(name) ||
      this.model.graph.input.some((i) => i.name === name)
    );
  }

  /** The constant behind a tensor name: an initializer, or the `value` of a Constant node. */
  constant(name: string): TensorProto | undefined {
    const init = this.initializers.get(name);
    if (init) return init;
    const producer = this.producers.get(name);
    if (producer?.opType === 'Constant') {
      const value = producer.attribute.find((a) => a.name === 'value');
      if (value?.t) return value.t;
      const ints = producer.attribute.find((a) => a.name === 'value_ints');
      if (ints) return onnx.TensorProto.create({ dims: [ints.ints.length], dataType: DataType.INT64, int64Data: ints.ints });
      const intOne = producer.attribute.find((a) => a.name === 'value_int');
      if (intOne) return onnx.TensorProto.create({ dims: [], dataType: DataType.INT64, int64Data: [intOne.i] });
      const floats = producer.attribute.find((a) => a.name === 'value_floats');
      if (floats) return onnx.TensorProto.create({ dims: [floats.floats.length], dataType: DataType.FLOAT, floatData: floats.floats });
      const floatOne = producer.attribute.find((a) => a.name === 'value_float');
      if (floatOne) return onnx.TensorProto.create({ dims: [], dataType: DataType.FLOAT, floatData: [floatOne.f] });
    }
    return undefined;
  }

  /** Integer attribute, or `fallback` when absent. */
  intAttr(n: NodeProto, name: string, fallback: number): number {
    const a = n.attribute.find((x) => x.name === name);
    return a ? toNumber(a.i as Int64Like) : fallback;
  }

  floatAttr(n: NodeProto, name: string, fallback: number): number {
    const a = n.attribute.find((x) => x.name === name);
    return a ? a.f : fallback;
  }

  intsAttr(n: NodeProto, name: string): number[] | undefined {
    const a = n.attribute.find((x) => x.name === name);
    return a ? a.ints.map((v) => toNumber(v as Int64Like)) : undefined;
  }

  /** Inputs that are not initializers (IR < 4 models list initializers among the inputs too). */
  dataInputs(): GraphInput[] {
    return this.model.graph.input
      .filter((i) => !this.initializers.has(i.name))
      .map((i) => ({ name: i.name, elemType: valueInfoElemType(i), dims: valueInfoDims(i) ?? [] }));
  }

  /** The last `count` nodes in graph order, as `name (OpType)` (the output name stands in for a missing name). */
  describeLastNodes(count: number): string[] {
    return this.nodes.slice(-count).map((n) => `${n.name || n.output[0] || '?'} (${n.opType})`);
  }
}

/** Dims of a tensor proto as numbers. */
export function tensorDims(t: TensorProto): number[] {
  return t.dims.map((d) => toNumber(d as Int64Like));
}

/**
 * A fresh, aligned ArrayBuffer holding `bytes`. Decoded `raw_data` is a view into the model buffer (a Node
 * Buffer's `slice()` is a view too), at any byte offset, so typed arrays over it need a copy.
 */
function copyBytes(bytes: Uint8Array): ArrayBuffer {
  return new Uint8Array(bytes).buffer;
}

/** Float values of a FLOAT (or DOUBLE) tensor, from raw_data, float_data or double_data; a fresh array. */
export function tensorFloats(t: TensorProto): Float32Array {
  const count = tensorDims(t).reduce((a, b) => a * b, 1);
  let out: Float32Array;
  if (t.dataType === DataType.FLOAT) {
    if (t.rawData && t.rawData.length > 0) {
      out = new Float32Array(copyBytes(t.rawData));
    } else {
      out = Float32Array.from(t.floatData);
    }
  } else if (t.dataType === DataType.DOUBLE) {
    out =
      t.rawData && t.rawData.length > 0
        ? Float32Array.from(new Float64Array(copyBytes(t.rawData)))
        : Float32Array.from(t.doubleData);
  } else {
    throw new ModelLoadError(`tensor '${t.name}' has data type ${t.dataType}, expected float32`);
  }
  if (out.length !== count) {
    throw new ModelLoadError(`tensor '${t.name}' holds ${out.length} values but its dims say ${count}`);
  }
  return out;
}

/** Integer values of an INT64 or INT32 tensor (axes, shapes). */
export function tensorInts(t: TensorProto): number[] {
  if (t.dataType === DataType.INT64) {
    if (t.rawData && t.rawData.length > 0) {
      return Array.from(new BigInt64Array(copyBytes(t.rawData)), (v) => Number(v));
    }
    return t.int64Data.map((v) => toNumber(v as Int64Like));
  }
  if (t.dataType === DataType.INT32) {
    if (t.rawData && t.rawData.length > 0) return Array.from(new Int32Array(copyBytes(t.rawData)));
    return t.int32Data.slice();
  }
  throw new ModelLoadError(`tensor '${t.name}' has data type ${t.dataType}, expected int64 or int32`);
}
