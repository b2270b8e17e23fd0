/**
 * saveModel() / encodeModel(): writes a Model back as ONNX.
 *
 * The ModelProto tree is encoded as it stands, so whatever no pass changed comes out as it was read.
 * The writer only decides where tensor bytes go: inside the protobuf, or in an external-data file beside
 * the model (tensors that were external stay external; more move out when the protobuf would pass the
 * 2 GiB limit). It swaps those fields in for the encode and restores them after, so the Model in memory
 * is left as it was. Files are written to a hidden staging folder in the target directory and renamed
 * into place, so a reader never sees a half-written model.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as protobuf from 'protobufjs';

import { RedppError } from '../errors';
import { resolveSaveOptions, type ExternalDataMode, type SaveOptions } from '../options/save';
import { allSteps, nextTurn, slices, stepsInTurns } from '../turns';
import { DataType } from './dtype';
import { tensorSites, type Model, type TensorSite } from './model';
import { NodeBatch } from './node-batch';
import { ioError } from './read';
import { createMessage, DataLocation, hasField, onnxTypes, tensorValueInfo, toNumber, type GraphProto, type ModelProto, type NodeProto, type StringStringEntryProto, type TensorProto } from './proto';
import { decodeTensor, externalBytesOf, wasReadAsExternal } from './tensor';

export interface SaveResult {
  path: string;
  /** Size of the .onnx file. */
  bytes: number;
  /** The external-data file, when tensors were written to one. */
  externalDataPath?: string;
  /** Number of tensors in the external-data file, and its size. */
  externalTensors: number;
  externalBytes: number;
}

/** Offsets in the external-data file are page-aligned so runtimes can mmap them. */
const EXTERNAL_ALIGNMENT = 4096;

/** Encodes the model with every tensor inside the protobuf (for onnxruntime sessions created from bytes). */
export function encodeModel(model: Model, options: EncodeOptions = {}): Buffer {
  const { initializersAsInputs: asInputs, ...save } = options;
  const limit = resolveSaveOptions(save).maxProtobufBytes;
  const graph = model.proto.graph!;
  const [initializers, inputs] = [graph.initializer, graph.input];
  // Swapped on the graph for the encode, not copied and then dropped: their bytes are never encoded.
  if (asInputs) {
    graph.initializer = initializers.filter((t) => !asInputs.has(t.name));
    graph.input = [...inputs, ...initializers.filter((t) => asInputs.has(t.name)).map((t) => tensorValueInfo(t.name, t.data_type, t.dims.map(toNumber)))];
  }
  try {
    const plan = planInline(tensorSites(model.proto));
    return withSwapped(plan, () => encodeWithin(model, limit));
  } finally {
    [graph.initializer, graph.input] = [initializers, inputs];
  }
}

/**
 * The size of encodeModel(model) without encoding it: the Writer's plan, whose tensor data is the
 * tensors' own arrays (chunksOf), is all that is made. No limit applies (a count, not a protobuf).
 */
export function encodedBytes(model: Model): number {
  return withSwapped(planInline(tensorSites(model.proto)), () => encodeProto(model.proto).len);
}

export interface EncodeOptions extends Pick<SaveOptions, 'maxProtobufBytes'> {
  /** Initializers encoded as graph inputs of their type and dims instead (the weights a probe model is fed). */
  initializersAsInputs?: ReadonlySet<string>;
}

/** Writes the model to `file` (and its external data beside it), atomically. */
export async function saveModel(model: Model, file: string, options: SaveOptions = {}): Promise<SaveResult> {
  return (await stageModel(model, file, options)).commit();
}

/**
 * A model written to a hidden folder beside its target, under its final names (so its external data
 * resolves): `path` can be loaded and checked, then `commit()` moves the files into place, or
 * `discard()` removes them. Until one of the two, the target is untouched.
 */
export interface StagedModel {
  /** The staged .onnx file, and its external-data file where it has one. */
  path: string;
  files: string[];
  /** What commit() returns: the final paths and sizes. */
  result: SaveResult;
  commit(): Promise<SaveResult>;
  discard(): Promise<void>;
}

export async function stageModel(model: Model, file: string, options: SaveOptions = {}): Promise<StagedModel> {
  if (typeof file !== 'string' || file === '') {
    throw new RedppError('INVALID_ARGUMENT', 'saveModel: file must be a non-empty path');
  }
  const { externalData: mode, externalDataThreshold: threshold, maxProtobufBytes: limit, externalDataFile } = resolveSaveOptions(options);
  const target = path.resolve(file);
  const dataName = externalDataFile ?? `${path.basename(target)}.data`;
  const dataPath = path.join(path.dirname(target), dataName);

  const sites = tensorSites(model.proto);
  const { chosen: external, measured } = await stepsInTurns(externalSteps(sites, mode, threshold, limit, model, dataName));
  const layout = layoutExternal(external, dataName);
  const plan = [...planInline(sites.filter((s) => !layout.has(s.proto))), ...planExternal(layout)];
  // The encoding that chose the layout is that layout's: replayed, not encoded again. The writer's
  // operations hold the values swapped in, byte fields by reference: read over the turns below and
  // viewed by the chunks, so the Model must not change until the write is done. They are copied out
  // after the swap is undone, from the next turn.
  const writer = measured ?? checkedWriter(model, limit, await stepsInTurns(swappedSteps(plan, encodeSteps(model.proto))));
  await nextTurn();
  const encoded = await chunksOf(writer);

  const files: AtomicFile[] = [];
  if (layout.size > 0) files.push({ path: dataPath, chunks: dataChunks(layout) });
  files.push({ path: target, chunks: encoded.chunks });
  const staged = await stageFiles(files);
  const result: SaveResult = {
    path: target,
    bytes: encoded.bytes,
    ...(layout.size > 0 ? { externalDataPath: dataPath } : {}),
    externalTensors: layout.size,
    externalBytes: dataSize(layout),
  };
  return {
    path: staged.paths[staged.paths.length - 1],
    files: staged.paths,
    result,
    discard: staged.discard,
    async commit() {
      await staged.commit();
      return result;
    },
  };
}

/** One file staged beside its target, as stageModel stages a model: commit() renames it into place. */
export async function stageFile(file: string, bytes: Uint8Array): Promise<{ path: string; commit(): Promise<void>; discard(): Promise<void> }> {
  const staged = await stageFiles([{ path: path.resolve(file), chunks: [bytes] }]);
  return { path: staged.paths[0], commit: staged.commit, discard: staged.discard };
}

/**
 * Refuses targets that are one of the input files under another name: the same file (device and
 * inode: a hard link, a symlink) where the target exists, else the same real path.
 */
export function refuseOverwriting(targets: readonly string[], inputs: readonly string[]): void {
  const ids = new Map<string, string>();
  const reals = new Map<string, string>();
  for (const input of inputs) {
    try {
      const st = fs.statSync(input);
      ids.set(`${st.dev}:${st.ino}`, input);
      reals.set(fs.realpathSync(input), input);
    } catch {
      // an input that cannot be read was refused when it was read
    }
  }
  for (const target of targets) {
    let input: string | undefined;
    try {
      const st = fs.statSync(target);
      input = ids.get(`${st.dev}:${st.ino}`);
    } catch {
      let dir: string;
      try {
        dir = fs.realpathSync(path.dirname(path.resolve(target)));
      } catch {
        continue; // no such folder: the write says so
      }
      input = reals.get(path.join(dir, path.basename(target)));
    }
    if (input !== undefined) {
      throw new RedppError('INVALID_ARGUMENT', `the output '${target}' would overwrite the input file '${input}' (redpp never modifies its input)`);
    }
  }
}

function encodeWithin(model: Model, limit: number): Buffer {
  return checkedWriter(model, limit).finish() as Buffer;
}

function checkedWriter(model: Model, limit: number, encoded?: protobuf.Writer): protobuf.Writer {
  const writer = encoded ?? encodeProto(model.proto);
  if (writer.len > limit) {
    throw new RedppError(
      'MODEL_TOO_LARGE',
      `the model would encode to ${writer.len} bytes, over the protobuf limit of ${limit}: ` +
        "save it with externalData 'auto' or 'always' to move weights to an external-data file",
    );
  }
  return writer;
}

/** Bytes of nodes encoded together into one buffer by encodeProto() (a large graph's nodes are 30-40 bytes each). */
const NODE_BATCH_BYTES = 1 << 20;
/** Graphs with fewer nodes are encoded by protobufjs alone. */
const NODE_BATCH_MIN_NODES = 4096;

/**
 * ModelProto.encode(), with the nodes of each large graph written by NodeBatch into buffers of their
 * own, each queued on the Writer as one operation. The bytes are the same (protobufjs writes fields in
 * number order, and `node` is GraphProto's field 1, so the nodes come first either way), but a graph of
 * a million nodes no longer queues some 16 million operations that all live until the end: the
 * collector's copying of them, and making them, were most of a large graph's save. Nodes holding a
 * tensor or a graph are queued by protobufjs as before, so tensor data is still written from the
 * tensors' own memory (chunksOf()).
 */
function encodeProto(proto: ModelProto): protobuf.Writer {
  return allSteps(encodeSteps(proto));
}

/** Nodes or initializers of the main graph encoded between two of encodeSteps()' yields. */
const ENCODE_STEP_ITEMS = 64;

/**
 * encodeProto() in steps, yielding between slices of the main graph's nodes and initializers: a save
 * runs it in turns of the event loop (ISNet's packed graph, 908 nodes and 1039 initializers, was one
 * piece of 15-18 ms). The fields around them are encoded by the types' own encoders, given only those
 * fields, in number order: the same bytes. Nothing may change the model between the steps (reading it
 * is fine).
 */
function* encodeSteps(proto: ModelProto): Generator<void, protobuf.Writer> {
  const T = onnxTypes();
  const writer = protobuf.Writer.create();
  const encode = (type: protobuf.Type, message: object, depth: number) => batchingGraphs(() => (type.encode as Encoder)(message, writer, depth));
  if (!hasField(proto, 'graph') || !proto.graph) {
    encode(T.Model, proto, 0);
    return writer;
  }
  const graph = proto.graph;
  encode(T.Model, fieldsBetween(T.Model, proto, 0, MODEL_GRAPH), 0);
  writer.uint32(tag(MODEL_GRAPH)).fork();
  if (graph.node.length >= NODE_BATCH_MIN_NODES && canBatch()) {
    yield* batchedNodeSteps(graph.node, writer);
  } else {
    for (const [i, node] of graph.node.entries()) {
      batchingGraphs(() => (T.Node.encode as Encoder)(node, writer.uint32(tag(GRAPH_NODE)).fork(), 2).ldelim());
      if (i % ENCODE_STEP_ITEMS === ENCODE_STEP_ITEMS - 1) yield;
    }
  }
  encode(T.Graph, fieldsBetween(T.Graph, graph, GRAPH_NODE + 1, GRAPH_INITIALIZER), 1);
  for (const [i, tensor] of graph.initializer.entries()) {
    (T.Tensor.encode as Encoder)(tensor, writer.uint32(tag(GRAPH_INITIALIZER)).fork(), 2).ldelim();
    if (i % ENCODE_STEP_ITEMS === ENCODE_STEP_ITEMS - 1) yield;
  }
  encode(T.Graph, fieldsBetween(T.Graph, graph, GRAPH_INITIALIZER + 1, Infinity), 1);
  writer.ldelim();
  encode(T.Model, fieldsBetween(T.Model, proto, MODEL_GRAPH + 1, Infinity), 0);
  return writer;
}

/** A generated encoder with its depth argument (protobufjs checks nesting against util.recursionLimit). */
type Encoder = (message: unknown, writer: protobuf.Writer, depth?: number) => protobuf.Writer;

/** The field numbers encodeSteps() writes around (onnx.proto). */
const [MODEL_GRAPH, GRAPH_NODE, GRAPH_INITIALIZER] = [7, 1, 5];

/** A length-delimited field's key. */
const tag = (field: number) => ((field << 3) | 2) >>> 0;

/** The fields of `message` numbered in [from, to): a shallow copy, for its type's encoder to write those alone. */
function fieldsBetween(type: protobuf.Type, message: object, from: number, to: number): Record<string, unknown> {
  const m = message as Record<string, unknown>;
  const part: Record<string, unknown> = {};
  // Own fields only: the encoder writes a field that is set (own) or a repeated one with elements, and a
  // message's unset repeated fields are empty arrays on its prototype.
  for (const f of type.fieldsArray) if (f.id >= from && f.id < to && Object.hasOwn(m, f.name)) part[f.name] = m[f.name];
  return part;
}

/**
 * `fn` with every large graph it encodes (a subgraph in a node's attribute) written by NodeBatch: the
 * graph type's encoder replaced for the call, synchronously, so no other encode sees it.
 */
function batchingGraphs<T>(fn: () => T): T {
  const graphType = onnxTypes().Graph;
  if (!canBatch()) return fn();
  // Its encoder is set up with the schema (onnxTypes()); setup() would generate all its functions again.
  const encodeGraph = graphType.encode;
  graphType.encode = (message, writer = protobuf.Writer.create()) => {
    const graph = message as unknown as GraphProto;
    const nodes = graph.node;
    // (encodeSteps() encodes the main graph's other fields alone: no nodes there.)
    if (!nodes || nodes.length < NODE_BATCH_MIN_NODES) return encodeGraph.call(graphType, message, writer);
    allSteps(batchedNodeSteps(nodes, writer));
    graph.node = [];
    try {
      return encodeGraph.call(graphType, message, writer);
    } finally {
      graph.node = nodes;
    }
  };
  try {
    return fn();
  } finally {
    graphType.encode = encodeGraph;
  }
}

/** Whether NodeBatch's buffers can be queued on a Writer (its internal _push, protobufjs 6 and 7). */
const canBatch = () => typeof (protobuf.Writer.prototype as unknown as { _push?: unknown })._push === 'function';

/** A graph's nodes as GraphProto's field 1, through NodeBatch (see encodeProto), yielding between batches. */
function* batchedNodeSteps(nodes: NodeProto[], writer: protobuf.Writer): Generator<void, void> {
  const T = onnxTypes();
  // Room past the flush threshold for the node that crosses it, so a batch does not grow to take it.
  const batch = new NodeBatch(NODE_BATCH_BYTES + 4096);
  const flush = () => {
    if (batch.length === 0) return;
    const bytes = batch.take();
    (writer as unknown as { _push(fn: (val: Uint8Array, buf: Uint8Array, pos: number) => void, len: number, val: Uint8Array): void })._push(copyBytes, bytes.byteLength, bytes);
  };
  for (const node of nodes) {
    if (!holdsData(node)) {
      batch.add(node);
      if (batch.length >= NODE_BATCH_BYTES) {
        flush();
        yield;
      }
    } else {
      flush();
      batchingGraphs(() => T.Node.encode(node as unknown as Record<string, unknown>, writer.uint32(tag(GRAPH_NODE)).fork()).ldelim());
    }
  }
  flush();
}

function copyBytes(val: Uint8Array, buf: Uint8Array, pos: number): void {
  buf.set(val, pos);
}

/** Whether a node's attributes hold a tensor or a graph (which a batch would copy). */
function holdsData(node: NodeProto): boolean {
  return node.attribute.some((a) => a.t || a.tensors.length > 0 || a.sparse_tensor || a.sparse_tensors.length > 0 || a.g || a.graphs.length > 0);
}

/** Byte fields at least this long are written from the tensor's own memory rather than copied. */
const DIRECT_BYTES = 64 << 10;
/** Size of the buffers that collect everything else (tags, lengths, names, small tensors). */
const STAGING_BYTES = 1 << 20;

/** Operations replayed between looks at the clock (slices()). */
const OPS_PER_CHECK = 4096;

/** One queued write of a protobufjs Writer (its internal operation list, which finish() replays). */
interface WriterOp {
  fn: (val: unknown, buf: Uint8Array, pos: number) => void;
  len: number;
  val: unknown;
  next: WriterOp | null;
}

/**
 * The same bytes as encodeWithin(), as a list of chunks to write in order: large byte fields (tensor
 * data) are the model's own arrays, not copies, so saving a model never holds a second copy of its
 * weights. Replays the Writer's operation list the way Writer#finish() does, into small staging
 * buffers, with the event loop served between slices; falls back to finish() if that list is not there.
 */
async function chunksOf(writer: protobuf.Writer): Promise<{ chunks: Uint8Array[]; bytes: number }> {
  const head = (writer as unknown as { head?: WriterOp }).head;
  if (!head || typeof head.fn !== 'function' || !('next' in head)) {
    const all = writer.finish();
    return { chunks: [all], bytes: all.byteLength };
  }
  const chunks: Uint8Array[] = [];
  let stage = Buffer.allocUnsafe(Math.min(STAGING_BYTES, writer.len));
  // The bytes staged since the last chunk are [start, pos): a chunk written from a tensor's own memory
  // ends one, and the staging goes on in the same buffer (a new 1 MiB buffer after each of those: 77 of
  // them on a packed ResNet-50, and the collector's work for them, in one piece of its save).
  let start = 0;
  let pos = 0;
  const flush = () => {
    if (pos > start) chunks.push(stage.subarray(start, pos));
    start = pos;
  };
  let total = 0;
  // The event loop gets turns between slices: ISNet's packed graph is some 100k operations, 20-30 ms.
  const pause = slices();
  let count = 0;
  for (let op = head.next; op; op = op.next) {
    if (++count % OPS_PER_CHECK === 0) await pause();
    total += op.len;
    if (op.len >= DIRECT_BYTES && op.val instanceof Uint8Array && op.val.byteLength === op.len) {
      flush();
      chunks.push(op.val);
      continue;
    }
    if (pos + op.len > stage.length) {
      flush();
      stage = Buffer.allocUnsafe(Math.max(STAGING_BYTES, op.len));
      start = pos = 0;
    }
    op.fn(op.val, stage, pos);
    pos += op.len;
  }
  flush();
  if (total !== writer.len) {
    throw new Error(`redpp internal error: encoding wrote ${total} bytes where ${writer.len} were planned`);
  }
  return { chunks, bytes: total };
}

/** The bytes of a tensor's data for external storage, or undefined for types held only in fields (strings). */
function tensorBytes(proto: TensorProto): Uint8Array | undefined {
  const ext = externalBytesOf(proto);
  if (ext) return ext;
  if (hasField(proto, 'raw_data')) return proto.raw_data;
  if (proto.data_type === DataType.STRING) return undefined;
  try {
    const d = decodeTensor(proto);
    return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
  } catch {
    return undefined; // a type redpp cannot decode stays where it is
  }
}

/**
 * The tensors to store externally, and the encoding of the model with exactly those external at
 * `location` when one was made to decide (undefined with mode 'never': the caller encodes, and checks
 * the limit); in steps (encodeSteps()).
 */
function* externalSteps(
  sites: TensorSite[],
  mode: ExternalDataMode,
  threshold: number,
  limit: number,
  model: Model,
  location: string,
): Generator<void, { chosen: Map<TensorProto, Uint8Array>; measured?: protobuf.Writer }> {
  const chosen = new Map<TensorProto, Uint8Array>();
  if (mode === 'never') return { chosen };
  for (const s of sites) {
    // External when read stays external, also after a pass rewrote it (it is inline in memory then).
    const wasExternal = externalBytesOf(s.proto) !== undefined || wasReadAsExternal(s.proto);
    if (mode === 'auto' && !wasExternal) continue;
    const bytes = tensorBytes(s.proto);
    if (bytes && (wasExternal || bytes.byteLength >= threshold)) chosen.set(s.proto, bytes);
  }
  // Move the largest remaining tensors out until the protobuf fits (initializers before attributes).
  let measured = yield* encodeWith(model, sites, chosen, location);
  if (measured.len <= limit) return { chosen, measured };
  const candidates = sites
    .filter((s) => !chosen.has(s.proto))
    .map((s) => ({ site: s, bytes: tensorBytes(s.proto) }))
    .filter((c): c is { site: TensorSite; bytes: Uint8Array } => c.bytes !== undefined && c.bytes.byteLength > 0)
    .sort((a, b) => Number(a.site.kind !== 'initializer') - Number(b.site.kind !== 'initializer') || b.bytes.byteLength - a.bytes.byteLength);
  while (measured.len > limit && candidates.length > 0) {
    let saved = 0;
    while (candidates.length > 0 && saved <= measured.len - limit) {
      const c = candidates.shift()!;
      chosen.set(c.site.proto, c.bytes);
      saved += c.bytes.byteLength;
    }
    measured = yield* encodeWith(model, sites, chosen, location);
  }
  if (measured.len > limit) checkedWriter(model, limit, measured);
  return { chosen, measured };
}

/** The model encoded with `external` stored at `location` (its Writer: the size, and the bytes to replay). */
function encodeWith(model: Model, sites: TensorSite[], external: Map<TensorProto, Uint8Array>, location: string): Generator<void, protobuf.Writer> {
  const layout = layoutExternal(external, location);
  const plan = [...planInline(sites.filter((s) => !layout.has(s.proto))), ...planExternal(layout)];
  return swappedSteps(plan, encodeSteps(model.proto));
}

interface Placement {
  bytes: Uint8Array;
  offset: number;
  location: string;
}

function layoutExternal(chosen: Map<TensorProto, Uint8Array>, location: string): Map<TensorProto, Placement> {
  const out = new Map<TensorProto, Placement>();
  let offset = 0;
  for (const [proto, bytes] of chosen) {
    offset = Math.ceil(offset / EXTERNAL_ALIGNMENT) * EXTERNAL_ALIGNMENT;
    out.set(proto, { bytes, offset, location });
    offset += bytes.byteLength;
  }
  return out;
}

/** Bytes of the external-data file the layout makes. */
function dataSize(layout: Map<TensorProto, Placement>): number {
  let end = 0;
  for (const { bytes, offset } of layout.values()) end = Math.max(end, offset + bytes.byteLength);
  return end;
}

function dataChunks(layout: Map<TensorProto, Placement>): Chunk[] {
  const chunks: Chunk[] = [];
  let at = 0;
  for (const { bytes, offset } of layout.values()) {
    if (offset > at) chunks.push({ zeros: offset - at });
    chunks.push(bytes);
    at = offset + bytes.byteLength;
  }
  return chunks;
}

/** A field assignment made for one encode and undone after. */
interface Swap {
  proto: TensorProto;
  fields: Partial<Record<keyof TensorProto, unknown>>;
}

/** Tensors that were external, brought inline as raw_data. */
function planInline(sites: TensorSite[]): Swap[] {
  const swaps: Swap[] = [];
  for (const { proto } of sites) {
    const bytes = externalBytesOf(proto);
    if (!bytes) continue;
    swaps.push({ proto, fields: { raw_data: bytes, external_data: [], data_location: undefined } });
  }
  return swaps;
}

function planExternal(layout: Map<TensorProto, Placement>): Swap[] {
  const S = onnxTypes().StringStringEntry;
  const entry = (key: string, value: string) => createMessage<StringStringEntryProto>(S, { key, value });
  const swaps: Swap[] = [];
  for (const [proto, p] of layout) {
    swaps.push({
      proto,
      fields: {
        raw_data: undefined,
        float_data: [],
        int32_data: [],
        int64_data: [],
        double_data: [],
        uint64_data: [],
        data_location: DataLocation.EXTERNAL,
        external_data: [
          entry('location', p.location),
          entry('offset', String(p.offset)),
          entry('length', String(p.bytes.byteLength)),
        ],
      },
    });
  }
  return swaps;
}

/** Applies the swaps; returns what restores every field (own or inherited) as it was. */
function applySwaps(swaps: Swap[]): () => void {
  const saved: { proto: Record<string, unknown>; key: string; own: boolean; value: unknown }[] = [];
  const restore = () => {
    for (let i = saved.length - 1; i >= 0; i--) {
      const s = saved[i];
      if (s.own) s.proto[s.key] = s.value;
      else delete s.proto[s.key];
    }
  };
  try {
    for (const { proto, fields } of swaps) {
      const p = proto as unknown as Record<string, unknown>;
      for (const [key, value] of Object.entries(fields)) {
        saved.push({ proto: p, key, own: hasField(p, key), value: p[key] });
        if (value === undefined) delete p[key];
        else p[key] = value;
      }
    }
  } catch (e) {
    restore();
    throw e;
  }
  return restore;
}

/** Runs `fn` with the swaps applied, then restores every field as it was. */
function withSwapped<T>(swaps: Swap[], fn: () => T): T {
  const restore = applySwaps(swaps);
  try {
    return fn();
  } finally {
    restore();
  }
}

/**
 * `steps` with the swaps applied during each step and undone before each yield: between the steps the
 * model is as it was, for whatever else reads it meanwhile (another save of the same model, whose own
 * swaps would otherwise interleave with these and leave the wrong values behind).
 */
function* swappedSteps<T>(swaps: Swap[], steps: Generator<void, T>): Generator<void, T> {
  for (;;) {
    const restore = applySwaps(swaps);
    let step: IteratorResult<void, T>;
    try {
      step = steps.next();
    } finally {
      restore();
    }
    if (step.done) return step.value;
    yield;
  }
}

type Chunk = Uint8Array | { zeros: number };

interface AtomicFile {
  path: string;
  chunks: Chunk[];
}

/** Writes in slices so one write call stays well under the 2 GiB limit and the event loop gets turns. */
const WRITE_SLICE = 16 << 20;

/** Staging folders not yet committed or discarded: removed by removePendingWrites() on a signal. */
const pending = new Set<string>();

/**
 * Removes, synchronously, every staging folder of a write in progress: for a signal handler, which
 * must leave nothing behind and cannot wait (the CLI's on SIGINT and SIGTERM).
 */
export function removePendingWrites(): void {
  for (const dir of pending) fs.rmSync(dir, { recursive: true, force: true });
  pending.clear();
}

/** Writes of this process whose files are all in place (commit() done with its renames). */
let committed = 0;

/** How many writes of this process have put their files in place: for a signal handler to tell finished work from work to undo. */
export function committedWrites(): number {
  return committed;
}

/**
 * Writes every file, flushed, to a hidden staging folder in its target directory (one directory for
 * all: external data sits beside its model), under its final name. commit() renames them into place
 * in order (external data before the model that points at it); on failure nothing is left behind and
 * no target is touched unless its rename already happened.
 */
async function stageFiles(files: AtomicFile[]): Promise<{ paths: string[]; commit(): Promise<void>; discard(): Promise<void> }> {
  const target = files[files.length - 1].path;
  const dir = path.dirname(target);
  if (!files.every((f) => path.dirname(f.path) === dir)) throw new Error('stageFiles: the files must share a directory');
  const fail = (e: unknown) => ioError(e, `cannot write '${target}'`);
  let stage: string;
  try {
    // Made and registered in one step of the main thread: made asynchronously, a folder whose mkdir had
    // finished on a libuv thread before its callback ran was in no list, and a SIGINT between the two
    // left it behind (test/hostile-api.ts saw one in CI, the machine loaded). One mkdir: microseconds.
    stage = fs.mkdtempSync(path.join(dir, `.${path.basename(target)}.${process.pid}.`));
  } catch (e) {
    throw fail(e);
  }
  pending.add(stage);
  const discard = async () => {
    pending.delete(stage);
    await fs.promises.rm(stage, { recursive: true, force: true }).catch(() => undefined);
  };
  const paths = files.map((f) => path.join(stage, path.basename(f.path)));
  try {
    for (let i = 0; i < files.length; i++) await writeChunks(paths[i], files[i].chunks);
  } catch (e) {
    await discard();
    throw fail(e);
  }
  return {
    paths,
    discard,
    async commit() {
      try {
        for (let i = 0; i < files.length; i++) await fs.promises.rename(paths[i], files[i].path);
        committed++;
      } catch (e) {
        throw fail(e);
      } finally {
        await discard();
      }
    },
  };
}

async function writeChunks(file: string, chunks: Chunk[]): Promise<void> {
  const handle = await fs.promises.open(file, 'wx');
  // The disk takes what is written so far while the rest is written: a flush (fdatasync, on another of
  // libuv's threads) after each slice, one at a time, and the last sync() waits only for what came
  // after it (saves 97-101 ms against 101-130 on ISNet's 34 MB, 133-150 against 170-180 on VGG-16's,
  // 0.54 s against 0.66 on the Gemms' 3 GB). A failed flush fails the write, as the last sync would.
  let flushing: Promise<void> | undefined;
  let flushFailure: { error: unknown } | undefined;
  let unflushed = 0;
  const wrote = (bytes: number) => {
    unflushed += bytes;
    if (unflushed < WRITE_SLICE || flushing) return;
    unflushed = 0;
    flushing = handle.datasync().then(
      () => {
        flushing = undefined;
      },
      (error: unknown) => {
        flushFailure ??= { error };
        flushing = undefined;
      },
    );
  };
  try {
    for (const c of chunks) {
      if ('zeros' in c) {
        await handle.write(Buffer.alloc(c.zeros));
        wrote(c.zeros);
        continue;
      }
      for (let at = 0; at < c.byteLength; at += WRITE_SLICE) {
        const n = Math.min(WRITE_SLICE, c.byteLength - at);
        let done = 0;
        while (done < n) {
          const { bytesWritten } = await handle.write(c, at + done, n - done);
          done += bytesWritten;
        }
        wrote(n);
      }
    }
    await flushing;
    if (flushFailure) throw flushFailure.error;
    await handle.sync();
  } finally {
    await flushing;
    await handle.close();
  }
}
