/**
 * The ONNX protobuf messages as protobufjs decodes them, typed by hand for the fields redpp reads.
 *
 * Messages stay protobufjs instances from decode to encode: a field the file did not set is not an own
 * property (its default comes from the prototype) and is not written back, so a round trip keeps field
 * presence. Names are the .proto's snake_case (keepCase) so they read like the ONNX spec.
 */
import * as protobuf from 'protobufjs';

import { nextTurn } from '../turns';
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
/** The schema parsed, its types not all set up yet (onnxTypesInTurns() in progress). */
let parsed: { root: protobuf.Root; pending: protobuf.Type[] } | undefined;

/** The schema, parsed once on first use, its decoders generated (about 45 ms). */
export function onnxTypes(): OnnxTypes {
  if (types) return types;
  const { root, pending } = parseSchema();
  for (const t of pending.splice(0)) setUpCodecs(t);
  return finishTypes(root);
}

/**
 * onnxTypes() for an async caller, in turns of the event loop: the parse in one (about 10 ms), then a
 * few types' encoders and decoders a turn (all at once was a 35-45 ms stretch, the longest of a small
 * model's prune; with the pool's threads starting beside it on two cores, 60-80 ms).
 */
export async function onnxTypesInTurns(): Promise<OnnxTypes> {
  if (types) return types;
  const { root, pending } = parseSchema();
  while (pending.length > 0) {
    await nextTurn();
    // onnxTypes() may have finished the work meanwhile, for another caller.
    if (types) return types;
    for (const t of pending.splice(0, TYPES_PER_TURN)) setUpCodecs(t);
  }
  return types ?? finishTypes(root);
}

const TYPES_PER_TURN = 4;

/**
 * A type's encoder and decoder, generated as protobufjs's Type.setup() generates them, without the
 * verifier and the two object converters that setup() generates beside them and redpp never calls:
 * those were 60 % of the schema's setup, 15-20 ms of every process's start on the main thread. A first
 * call of one of them (a test's fromObject) still runs setup() in full, which makes the same codecs again
 * (NodeProto's then keeps redpp's decoder: compactNodeDecoding()).
 */
function setUpCodecs(t: protobuf.Type): void {
  const types = t.fieldsArray.map((f) => f.resolve().resolvedType);
  const generated = (codegen: ReturnType<typeof protobuf.encoder>, scope: object) => codegen(scope) as never;
  t.encode = generated(protobuf.encoder(t), { Writer: protobuf.Writer, types, util: protobuf.util });
  t.decode = generated(protobuf.decoder(t), { Reader: protobuf.Reader, types, util: protobuf.util });
}

/** The schema parsed (once), with the types still to set up. */
function parseSchema(): NonNullable<typeof parsed> {
  if (parsed) return parsed;
  const root = protobuf.parse(ONNX_ML_PROTO, { keepCase: true }).root;
  // protobufjs generates a type's decoder on its first decode; all of them here, so that a model's
  // first read does not spend half its decoding time there. NodeProto is compactNodeDecoding()'s.
  const pending: protobuf.Type[] = [];
  const walk = (ns: protobuf.NamespaceBase): void => {
    for (const nested of ns.nestedArray) {
      if (nested instanceof protobuf.Type && nested.fullName !== '.onnx.NodeProto') pending.push(nested);
      if (nested instanceof protobuf.Namespace || nested instanceof protobuf.Type) walk(nested);
    }
  };
  walk(root.lookup('onnx') as protobuf.Namespace);
  parsed = { root, pending };
  return parsed;
}

function finishTypes(root: protobuf.Root): OnnxTypes {
  const t = (name: string) => root.lookupType(`onnx.${name}`);
  const done: OnnxTypes = {
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
  compactNodeDecoding(done.Node);
  types = done;
  parsed = undefined;
  return done;
}

/** The NodeProto fields compactNodeDecoding() reads, by field number: the schema's, checked when it is installed. */
const NODE_FIELDS: Record<number, [name: string, type: string, repeated: boolean]> = {
  1: ['input', 'string', true],
  2: ['output', 'string', true],
  3: ['name', 'string', false],
  4: ['op_type', 'string', false],
  5: ['attribute', 'AttributeProto', true],
  6: ['doc_string', 'string', false],
  7: ['domain', 'string', false],
  8: ['overload', 'string', false],
  9: ['metadata_props', 'StringStringEntryProto', true],
  10: ['device_configurations', 'NodeDeviceConfigurationProto', true],
};

/**
 * Strings decoded lately, for a string field whose bytes are one of them: that string itself is
 * taken, with no bytes decoded and no string made. Only ASCII strings are kept, which are their bytes
 * char for char.
 */
class RecentStrings {
  private readonly kept: string[];
  private next = 0;

  constructor(size: number) {
    this.kept = new Array<string>(size).fill('');
  }

  note(v: string): string {
    if (v.length === 0 || v.length > 127) return v;
    for (let k = 0; k < v.length; k++) if (v.charCodeAt(k) > 127) return v;
    this.kept[this.next] = v;
    this.next = (this.next + 1) % this.kept.length;
    return v;
  }

  /** The string field at the reader's place, if it is a kept string (and then read past), else undefined. */
  read(r: protobuf.Reader): string | undefined {
    const buf = r.buf;
    const at = r.pos + 1;
    const len = buf[r.pos];
    // A length below 128 is its own one-byte varint; a field cut short is left to r.string() and its checks.
    if (len === 0 || len > 127 || at + len > r.len) return undefined;
    for (const v of this.kept) {
      if (v.length !== len) continue;
      let j = 0;
      while (j < len && v.charCodeAt(j) === buf[at + j]) j++;
      if (j === len) {
        r.pos = at + len;
        return v;
      }
    }
    return undefined;
  }
}

/**
 * The last outputs decoded: most nodes read what a node just before them wrote, and such an input is
 * then that output's string itself (24 bytes a read saved on a million-node graph, and the index's
 * lookups of it meet the very key they look for).
 */
const recentOutputs = new RecentStrings(8);

/** Op types and domains: a graph of a million nodes names a few dozen (a string each per node was 24 bytes, and a call to decode it). */
const recentOpNames = new RecentStrings(8);
const opNames = new Map<string, string>();
const MAX_OP_NAMES = 4096;

/** The one copy of an op type or domain; past MAX_OP_NAMES distinct ones (no real model), the string itself. */
function interned(v: string): string {
  const seen = opNames.get(v);
  if (seen !== undefined) return seen;
  if (opNames.size < MAX_OP_NAMES) opNames.set(v, v);
  return v;
}

/**
 * Replaces protobufjs's generated NodeProto decoder by one that gives each node input and output lists
 * of their exact length. The generated one pushes onto arrays made for the purpose (room for 17 names
 * each, after two empty ones made and dropped): on a graph of a million nodes that was 620 bytes a node,
 * 40 % of them spare array slots, and the collector's time to copy them. The messages are the same:
 * instances of the same class, the same field values, field presence and errors (test/model-io.ts compares
 * the two decoders); only the two lists no model fills are the prototype's until the file fills them.
 */
function compactNodeDecoding(Node: protobuf.Type): void {
  const fields = Node.fieldsArray;
  const matches =
    fields.length === Object.keys(NODE_FIELDS).length &&
    fields.every((f) => NODE_FIELDS[f.id]?.[0] === f.name && NODE_FIELDS[f.id][1] === f.type && NODE_FIELDS[f.id][2] === f.repeated);
  if (!matches) throw new Error('NodeProto in onnx-proto.ts no longer has the fields compactNodeDecoding() reads');
  // Its codecs only, as every other type's (setUpCodecs): the verifier and converters that setup()
  // generates beside them were 10-25 ms of a prune's first turns. A later setup() (a first fromObject()
  // or verify() runs one) generates a decoder afresh: it is made to put the one below back.
  setUpCodecs(Node);
  const Reader = protobuf.Reader as typeof protobuf.Reader & { recursionLimit: number };
  const ctorProto = Node.ctor.prototype as object;
  const [attribute, metadata, device] = [5, 9, 10].map((id) => Node.fieldsById[id].resolvedType as protobuf.Type);
  // The generated constructor's own properties, in its order, but for metadata_props and
  // device_configurations: a node owns those lists only when the file gives it entries, and otherwise
  // reads the prototype's, protobufjs's frozen empty list (two empty lists a node were 80 of its 370
  // bytes; no real model sets them). `attribute` stays a list of each node's own, for callers that push
  // onto it. Made by a constructor, a node holds its fields in the object itself (Object.create() gave
  // it four such slots and a separate array for the rest).
  const Compact = function (this: Record<string, unknown>) {
    this.input = null; // replaced by the lists below
    this.output = null;
    this.attribute = [];
  } as unknown as new () => Record<string, unknown>;
  Compact.prototype = ctorProto;
  // The generated decoder's signature: reader or bytes, length, end-group tag, nesting depth.
  const decodeNode = function decodeNode(this: protobuf.Type, reader: protobuf.Reader | Uint8Array, length?: number, endTag?: number, depth = 0) {
    const r = reader instanceof Reader ? reader : Reader.create(reader);
    if (depth > Reader.recursionLimit) throw Error('maximum nesting depth exceeded');
    let end: number;
    let outerLength: number | undefined;
    if (length === undefined) end = r.len;
    else {
      end = r.pos + length;
      if (end > r.len) throw RangeError('index out of range');
      outerLength = r.len;
      r.len = end;
    }
    const m = new Compact();
    const attributes = m.attribute as unknown[];
    let metadataProps: unknown[] | undefined;
    let deviceConfigurations: unknown[] | undefined;
    // Most nodes have one input and one output: held as a string until a second one comes.
    let in0: string | undefined;
    let ins: string[] | undefined;
    let out0: string | undefined;
    let outs: string[] | undefined;
    while (r.pos < end) {
      const tag = r.uint32();
      if (tag === endTag) break;
      switch (tag >>> 3) {
        case 1: {
          const v = recentOutputs.read(r) ?? r.string();
          if (ins) ins.push(v);
          else if (in0 === undefined) in0 = v;
          else ins = [in0, v];
          break;
        }
        case 2: {
          const v = recentOutputs.note(r.string());
          if (outs) outs.push(v);
          else if (out0 === undefined) out0 = v;
          else outs = [out0, v];
          break;
        }
        case 4:
        case 7:
          m[NODE_FIELDS[tag >>> 3][0]] = recentOpNames.read(r) ?? recentOpNames.note(interned(r.string()));
          break;
        case 3:
        case 6:
        case 8:
          m[NODE_FIELDS[tag >>> 3][0]] = r.string();
          break;
        case 5:
          attributes.push(attribute.decode(r, r.uint32(), undefined, depth + 1));
          break;
        case 9:
          (metadataProps ??= m.metadata_props = []).push(metadata.decode(r, r.uint32(), undefined, depth + 1));
          break;
        case 10:
          (deviceConfigurations ??= m.device_configurations = []).push(device.decode(r, r.uint32(), undefined, depth + 1));
          break;
        default:
          r.skipType(tag & 7, depth);
          break;
      }
    }
    m.input = ins ? ins.slice() : in0 === undefined ? [] : [in0];
    m.output = outs ? outs.slice() : out0 === undefined ? [] : [out0];
    if (outerLength !== undefined) {
      if (r.pos !== end) throw RangeError('index out of range');
      r.len = outerLength;
    }
    return m as unknown as protobuf.Message;
  } as typeof Node.decode;
  Node.decode = decodeNode;
  const setup = Node.setup;
  Node.setup = function (this: protobuf.Type) {
    setup.call(this);
    this.decode = decodeNode;
    return this;
  };
}

/**
 * protobufjs's reader of a Node Buffer ends a string whose length runs past the message at the message's
 * end, where its reader of other arrays, and of every bytes field, throws: a damaged length byte made a
 * node's op_type 'Relu' read as 'elu', and the file a different model. This one throws there too.
 */
class CheckedBufferReader extends protobuf.BufferReader {
  override string(): string {
    const at = this.pos;
    const length = this.uint32();
    if (this.pos + length > this.len) throw RangeError(`index out of range: ${this.pos} + ${length} > ${this.len}`);
    this.pos = at;
    return super.string();
  }
}

/** The reader a model's bytes (or a part of them) are decoded with: every string's length checked. */
export function modelReader(bytes: Uint8Array): protobuf.Reader {
  return Buffer.isBuffer(bytes) ? new CheckedBufferReader(bytes) : protobuf.Reader.create(bytes);
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
