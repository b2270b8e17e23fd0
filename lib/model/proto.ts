/**
 * The ONNX protobuf messages as protobufjs decodes them, typed by hand for the fields redpp reads.
 *
 * Messages stay protobufjs instances from decode to encode: a field the file did not set is not an own
 * property (its default comes from the prototype) and is not written back, so a round trip keeps field
 * presence. Names are the .proto's snake_case (keepCase) so they read like the ONNX spec.
 */
import * as protobuf from 'protobufjs';

import { ONNX_ML_PROTO } from './onnx-proto';

/** int64 fields decode as Long objects (protobufjs has `long` installed) and accept plain numbers on encode. */
export type Int64 = number | protobuf.Long;

export interface StringStringEntryProto {
  key: string;
  value: string;
}

export interface OperatorSetIdProto {
  domain: string;
  version: Int64;
}

export interface TensorProto {
  dims: Int64[];
  data_type: number;
  segment?: { begin: Int64; end: Int64 } | null;
  float_data: number[];
  int32_data: number[];
  string_data: Uint8Array[];
  int64_data: Int64[];
  name: string;
  doc_string: string;
  raw_data: Uint8Array;
  external_data: StringStringEntryProto[];
  data_location: number;
  double_data: number[];
  uint64_data: Int64[];
  metadata_props: StringStringEntryProto[];
}

export interface SparseTensorProto {
  values?: TensorProto | null;
  indices?: TensorProto | null;
  dims: Int64[];
}

export interface TensorShapeDimension {
  dim_value?: Int64;
  dim_param?: string;
  denotation: string;
  /** The oneof's virtual discriminator. */
  value?: 'dim_value' | 'dim_param';
}

export interface TensorShapeProto {
  dim: TensorShapeDimension[];
}

export interface TypeProto {
  tensor_type?: { elem_type: number; shape?: TensorShapeProto | null } | null;
  sequence_type?: { elem_type?: TypeProto | null } | null;
  map_type?: { key_type: number; value_type?: TypeProto | null } | null;
  optional_type?: { elem_type?: TypeProto | null } | null;
  sparse_tensor_type?: { elem_type: number; shape?: TensorShapeProto | null } | null;
  denotation: string;
}

export interface ValueInfoProto {
  name: string;
  type?: TypeProto | null;
  doc_string: string;
  metadata_props: StringStringEntryProto[];
}

export interface AttributeProto {
  name: string;
  ref_attr_name: string;
  doc_string: string;
  type: number;
  f: number;
  i: Int64;
  s: Uint8Array;
  t?: TensorProto | null;
  g?: GraphProto | null;
  sparse_tensor?: SparseTensorProto | null;
  floats: number[];
  ints: Int64[];
  strings: Uint8Array[];
  tensors: TensorProto[];
  graphs: GraphProto[];
  sparse_tensors: SparseTensorProto[];
}

export interface NodeProto {
  input: string[];
  output: string[];
  name: string;
  op_type: string;
  domain: string;
  overload: string;
  attribute: AttributeProto[];
  doc_string: string;
  metadata_props: StringStringEntryProto[];
}

export interface GraphProto {
  node: NodeProto[];
  name: string;
  initializer: TensorProto[];
  sparse_initializer: SparseTensorProto[];
  doc_string: string;
  input: ValueInfoProto[];
  output: ValueInfoProto[];
  value_info: ValueInfoProto[];
  metadata_props: StringStringEntryProto[];
}

export interface FunctionProto {
  name: string;
  input: string[];
  output: string[];
  node: NodeProto[];
  domain: string;
}

export interface TrainingInfoProto {
  initialization?: GraphProto | null;
  algorithm?: GraphProto | null;
}

export interface ModelProto {
  ir_version: Int64;
  opset_import: OperatorSetIdProto[];
  producer_name: string;
  producer_version: string;
  domain: string;
  model_version: Int64;
  doc_string: string;
  graph?: GraphProto | null;
  metadata_props: StringStringEntryProto[];
  training_info: TrainingInfoProto[];
  functions: FunctionProto[];
}

/** AttributeProto.AttributeType */
export const AttributeType = {
  UNDEFINED: 0,
  FLOAT: 1,
  INT: 2,
  STRING: 3,
  TENSOR: 4,
  GRAPH: 5,
  FLOATS: 6,
  INTS: 7,
  STRINGS: 8,
  TENSORS: 9,
  GRAPHS: 10,
  SPARSE_TENSOR: 11,
  SPARSE_TENSORS: 12,
  TYPE_PROTO: 13,
  TYPE_PROTOS: 14,
} as const;

/** TensorProto.DataLocation */
export const DataLocation = { DEFAULT: 0, EXTERNAL: 1 } as const;

export interface OnnxTypes {
  Model: protobuf.Type;
  Graph: protobuf.Type;
  Node: protobuf.Type;
  Attribute: protobuf.Type;
  Tensor: protobuf.Type;
  ValueInfo: protobuf.Type;
  TypeProto: protobuf.Type;
  StringStringEntry: protobuf.Type;
  OperatorSetId: protobuf.Type;
}

let types: OnnxTypes | undefined;

/** The schema, parsed once on first use (about 10 ms). */
export function onnxTypes(): OnnxTypes {
  if (types) return types;
  const root = protobuf.parse(ONNX_ML_PROTO, { keepCase: true }).root;
  const t = (name: string) => root.lookupType(`onnx.${name}`);
  types = {
    Model: t('ModelProto'),
    Graph: t('GraphProto'),
    Node: t('NodeProto'),
    Attribute: t('AttributeProto'),
    Tensor: t('TensorProto'),
    ValueInfo: t('ValueInfoProto'),
    TypeProto: t('TypeProto'),
    StringStringEntry: t('StringStringEntryProto'),
    OperatorSetId: t('OperatorSetIdProto'),
  };
  return types;
}

/**
 * A new message of `type` with only the given fields set (a protobufjs instance, so unset fields read as
 * their defaults and are not written).
 */
export function createMessage<T>(type: protobuf.Type, fields: Partial<T>): T {
  return type.create(fields as Record<string, unknown>) as unknown as T;
}

/** The ValueInfo of a tensor value: its element type and, where given, its dims (numbers, or names for symbolic ones). */
export function tensorValueInfo(name: string, elemType: number, shape?: readonly (number | string)[]): ValueInfoProto {
  return createMessage<ValueInfoProto>(onnxTypes().ValueInfo, {
    name,
    type: {
      tensor_type: {
        elem_type: elemType,
        ...(shape ? { shape: { dim: shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } : {}),
      },
    } as ValueInfoProto['type'],
  });
}

/** Whether the message has the field set (as opposed to reading the prototype's default). */
export function hasField(message: object, field: string): boolean {
  return Object.prototype.hasOwnProperty.call(message, field);
}

export function toNumber(v: Int64): number {
  if (typeof v === 'number') return v;
  return v.unsigned ? (v.high >>> 0) * 4294967296 + (v.low >>> 0) : v.high * 4294967296 + (v.low >>> 0);
}

export function toBigInt(v: Int64, unsigned = false): bigint {
  if (typeof v === 'number') return unsigned ? BigInt.asUintN(64, BigInt(v)) : BigInt(v);
  const x = (BigInt(v.high >>> 0) << 32n) | BigInt(v.low >>> 0);
  return unsigned ? x : BigInt.asIntN(64, x);
}
