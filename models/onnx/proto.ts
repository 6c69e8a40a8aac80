/**
 * Thin helpers over the ONNX protobuf classes (onnx-proto, generated from onnx v1.10 by protobufjs): making
 * tensors, attributes, nodes and value infos, and reading numbers back out of them. Shared by the ONNX
 * builder (models/builders/to-onnx.ts), discovery and the graph extension.
 *
 * Byte order: ONNX `raw_data` is little-endian; camstream runs on little-endian hosts (x86-64, arm64), so
 * typed-array views are used directly.
 */
import onnxProto from 'onnx-proto';

export const { onnx } = onnxProto;

export type TensorProto = onnxProto.onnx.TensorProto;
export type ValueInfoProto = onnxProto.onnx.ValueInfoProto;
export type IModelProto = onnxProto.onnx.IModelProto;
export type IGraphProto = onnxProto.onnx.IGraphProto;
export type INodeProto = onnxProto.onnx.INodeProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;
export type IValueInfoProto = onnxProto.onnx.IValueInfoProto;
export type IAttributeProto = onnxProto.onnx.IAttributeProto;

/*
 * The generated classes type nested messages as optional interfaces. A decoded message always has its
 * repeated fields (empty arrays when absent), strings ('' when absent) and numbers; only singular
 * sub-messages may be null. These types say so, for the models `parseOnnxModel` returns.
 */

/** A decoded AttributeProto. */
export interface AttributeProto {
  name: string;
  type: number;
  f: number;
  i: Int64Like;
  s: Uint8Array;
  t: TensorProto | null;
  g: GraphProto | null;
  floats: number[];
  ints: Int64Like[];
  graphs: GraphProto[];
}

/** A decoded NodeProto. */
export interface NodeProto {
  name: string;
  opType: string;
  domain: string;
  input: string[];
  output: string[];
  attribute: AttributeProto[];
}

/** A decoded GraphProto. */
export interface GraphProto {
  name: string;
  node: NodeProto[];
  initializer: TensorProto[];
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  valueInfo: ValueInfoProto[];
}

/** A decoded ModelProto. */
export interface ModelProto {
  irVersion: Int64Like;
  opsetImport: Array<{ domain: string; version: Int64Like }>;
  graph: GraphProto;
  functions: onnxProto.onnx.IFunctionProto[];
}

export const DataType = onnx.TensorProto.DataType;
const AttrType = onnx.AttributeProto.AttributeType;

/** protobufjs decodes int64 fields as `Long` objects (the `long` package is installed) or numbers. */
export type Int64Like = number | { toNumber(): number } | null | undefined;

/** A decoded int64 as a JS number (all dims, axes and attribute values camstream reads fit in 53 bits). */
export function toNumber(value: Int64Like): number {
  if (value === null || value === undefined) return 0;
  return typeof value === 'number' ? value : value.toNumber();
}

/** A dimension of a value info: a number when static, the symbol name (or '?') when not. */
export type Dim = number | string;

/** An attribute argument of `node()`: numbers become INT unless `floatAttr` wraps them. */
export type AttrValue =
  | number
  | string
  | number[]
  | { float: number }
  | { floats: number[] }
  | { tensor: ITensorProto };

/** Wraps a number so `node()` stores it as a FLOAT attribute (plain numbers are INT). */
export function floatAttr(value: number): { float: number } {
  return { float: value };
}

/** An AttributeProto from a JS value (see `AttrValue`). */
export function attribute(name: string, value: AttrValue): IAttributeProto {
  if (typeof value === 'number') return { name, type: AttrType.INT, i: value };
  if (typeof value === 'string') return { name, type: AttrType.STRING, s: new TextEncoder().encode(value) };
  if (Array.isArray(value)) return { name, type: AttrType.INTS, ints: value };
  if ('float' in value) return { name, type: AttrType.FLOAT, f: value.float };
  if ('floats' in value) return { name, type: AttrType.FLOATS, floats: value.floats };
  return { name, type: AttrType.TENSOR, t: value.tensor };
}

/** A NodeProto in the default domain. Attributes with `undefined` values are left out. */
export function node(
  opType: string,
  inputs: string[],
  outputs: string[],
  name: string,
  attrs: Record<string, AttrValue | undefined> = {},
): INodeProto {
  const attribute_: IAttributeProto[] = [];
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== undefined) attribute_.push(attribute(key, value));
  }
  return { opType, input: inputs, output: outputs, name, attribute: attribute_ };
}

/** A float32 initializer stored as raw little-endian bytes (the compact form every runtime reads). */
export function floatTensor(name: string, dims: number[], data: Float32Array | number[]): ITensorProto {
  const values = data instanceof Float32Array ? data : Float32Array.from(data);
  const expected = dims.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    throw new RangeError(`tensor '${name}': ${values.length} values for dims [${dims.join(', ')}]`);
  }
  return {
    name,
    dims,
    dataType: DataType.FLOAT,
    rawData: new Uint8Array(values.buffer, values.byteOffset, values.byteLength),
  };
}

/** An int64 initializer (shapes, axes, indices). */
export function int64Tensor(name: string, dims: number[], data: number[]): ITensorProto {
  const values = BigInt64Array.from(data, (v) => BigInt(v));
  const expected = dims.reduce((a, b) => a * b, 1);
  if (values.length !== expected) {
    throw new RangeError(`tensor '${name}': ${values.length} values for dims [${dims.join(', ')}]`);
  }
  return { name, dims, dataType: DataType.INT64, rawData: new Uint8Array(values.buffer) };
}

/** A tensor value info (graph input or output) with static or symbolic dims. */
export function valueInfo(name: string, elemType: number, dims: Dim[]): IValueInfoProto {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

/** Dims of a value info's tensor type (`undefined` when it has no shape). */
export function valueInfoDims(info: IValueInfoProto): Dim[] | undefined {
  const shape = info.type?.tensorType?.shape;
  if (!shape) return undefined;
  return (shape.dim ?? []).map((d) => {
    if (d.dimParam) return d.dimParam;
    // dimValue 0 with no param means "unknown" in practice (an unset oneof).
    const v = toNumber(d.dimValue as Int64Like);
    return v > 0 ? v : '?';
  });
}

/** Element type of a value info's tensor type (0 when unknown). */
export function valueInfoElemType(info: IValueInfoProto): number {
  return info.type?.tensorType?.elemType ?? 0;
}

/** Serializes a model. */
export function encodeModel(model: onnxProto.onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(model)).finish();
}
