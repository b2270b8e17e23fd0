/**
 * readModel(): reads an ONNX file (or bytes) into a Model as the file has it, checking it on the way so
 * that a bad file fails here with a RedppError code rather than later inside a pass or onnxruntime.
 * (loadModel() in lib/load.ts also reads redpp's own packed weights back as plain tensors.)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as protobuf from 'protobufjs';

import { native } from '../binding';
import { RedppError } from '../errors';
import { moveBytes, moveBytesReference, sharedBytes, type ByteMove } from '../kernels/pages';
import { MAX_PROTOBUF_BYTES } from '../options/save';
import { inChunks, nextTurn, slices, stepsInTurns } from '../turns';
import { checkOps, checkOpsSteps } from './check-ops';
import { decodeModelInSlices } from './sliced-decode';
import { byteSize, dataTypeName, isDecodable, layoutOf } from './dtype';
import { Graph } from './graph';
import { Model, tensorSites, type TensorSite } from './model';
import { modelReader, onnxTypes, onnxTypesInTurns, toNumber, type ModelProto, type NodeProto, type TensorProto } from './proto';
import {
  allocOwnBytes,
  attachExternalBytes,
  checkTensorProto,
  elementCount,
  isExternal,
  markOwnBytes,
  ownBytes,
} from './tensor';

export interface LoadOptions {
  /**
   * Directory that external-data locations are relative to. Defaults to the model file's directory;
   * needed when loading bytes whose tensors live in external-data files.
   */
  baseDir?: string;
}

export { MAX_PROTOBUF_BYTES };

/**
 * Reads and checks a model from a file path or from the bytes of an .onnx file (read over several turns
 * of the event loop: bytes must not change until the promise settles).
 */
export async function readModel(source: string | Uint8Array, options: LoadOptions = {}): Promise<Model> {
  // The schema's first parse (some 25 ms, in turns) while libuv's threads read the file, from the next
  // turn: in this one it made one piece with the caller's start (a prune's options, its pool), 44 ms.
  const [{ bytes, filePath, baseDir, stat }] = await Promise.all([readSource(source, options), nextTurn().then(onnxTypesInTurns)]);
  // Decoding and the tensors' checks run in slices, each other step below whole on the main thread: the
  // event loop gets a turn between them (and within the schema's first parse), so that no two of them
  // make one long stall (ISNet's decode, sites, checks and moves were one 40-60 ms piece).
  await nextTurn();
  const proto = await decodeModelProtoInSlices(bytes, filePath ?? 'the model bytes');
  await nextTurn();
  const sites = tensorSites(proto);
  const pause = slices();
  for (const site of sites) {
    checkTensorProto(site.proto, site.where);
    await pause();
  }
  await nextTurn();
  const graph = checkModelGraph(proto);
  // Bytes read from a file are redpp's own: tensors stay in them, aligned in place; the caller's are copied.
  if (filePath === undefined) await copyViews(proto, bytes);
  else {
    await nextTurn();
    const moves = detachFrom(proto, sites, bytes, true);
    if (moves.length > 0) await applyMoves(bytes, moves, filePath, stat!);
  }
  const external = externalTensors(sites, baseDir);
  await readExternalData(external);
  const model = new Model(proto, { path: filePath, baseDir, externalFiles: externalFiles(external), graph });
  await nextTurn();
  await stepsInTurns(checkOpsSteps(model.graph));
  return model;
}

/** readModel() for bytes already in memory, synchronously (external data is read synchronously too). */
export function readModelBytes(bytes: Uint8Array, options: LoadOptions = {}): Model {
  if (!(bytes instanceof Uint8Array)) {
    throw new RedppError('INVALID_ARGUMENT', 'decodeModel: bytes must be a Buffer or Uint8Array');
  }
  const baseDir = options.baseDir === undefined ? undefined : path.resolve(options.baseDir);
  const proto = decodeModelProto(bytes, 'the model bytes');
  const sites = tensorSites(proto);
  for (const site of sites) checkTensorProto(site.proto, site.where);
  const graph = checkModelGraph(proto);
  detachFrom(proto, sites, bytes, false);
  const external = externalTensors(sites, baseDir);
  readExternalDataSync(external);
  const model = new Model(proto, { baseDir, externalFiles: externalFiles(external), graph });
  checkOps(model.graph);
  return model;
}

/** The external-data files a model's tensors were read from, each once. */
function externalFiles(list: ExternalTensor[]): string[] {
  return [...new Set(list.map((t) => t.file))];
}

async function readSource(
  source: string | Uint8Array,
  options: LoadOptions,
): Promise<{ bytes: Uint8Array; filePath?: string; baseDir?: string; stat?: fs.Stats }> {
  if (options === null || typeof options !== 'object') {
    throw new RedppError('INVALID_ARGUMENT', 'loadModel: options must be an object');
  }
  if (source instanceof Uint8Array) {
    return { bytes: source, baseDir: options.baseDir === undefined ? undefined : path.resolve(options.baseDir) };
  }
  if (typeof source !== 'string' || source === '') {
    throw new RedppError('INVALID_ARGUMENT', 'loadModel: expected a file path or a Buffer/Uint8Array of an .onnx file');
  }
  const filePath = path.resolve(source);
  let size: number;
  let stat: fs.Stats;
  try {
    const st = await fs.promises.stat(filePath);
    if (!st.isFile()) throw new RedppError('IO_ERROR', `cannot read model '${filePath}': not a file`);
    size = st.size;
    stat = st;
  } catch (e) {
    throw ioError(e, `cannot read model '${filePath}'`);
  }
  if (size > MAX_PROTOBUF_BYTES) {
    throw new RedppError(
      'MODEL_TOO_LARGE',
      `'${filePath}' is ${size} bytes, but a protobuf cannot exceed 2 GiB: ` +
        'a model this large must keep its weights in external-data files',
    );
  }
  let bytes: Buffer;
  try {
    bytes = await readShared(filePath, size);
  } catch (e) {
    throw ioError(e, `cannot read model '${filePath}'`);
  }
  return { bytes, filePath, baseDir: path.resolve(options.baseDir ?? path.dirname(filePath)), stat };
}

/**
 * The file's bytes in shared memory: the tensors stay in this one allocation for the Model's life (see
 * detachFrom()), and a pool worker can hash a layer there in place, with no copy either way.
 */
async function readShared(filePath: string, size: number): Promise<Buffer> {
  const handle = await fs.promises.open(filePath, 'r');
  try {
    const bytes = sharedBytes(size);
    await readFully(handle, bytes, 0, () => new RedppError('IO_ERROR', `'${filePath}' changed while it was read`));
    return bytes;
  } finally {
    await handle.close();
  }
}

export function ioError(e: unknown, what: string): RedppError {
  if (e instanceof RedppError) return e;
  const err = e as NodeJS.ErrnoException;
  const reason = err.code === 'ENOENT' ? 'no such file or directory' : err.message;
  return new RedppError('IO_ERROR', `${what}: ${reason}`, { cause: e });
}

/** Wire type of every ModelProto field (0 varint, 2 length-delimited), to tell a cut-off model from noise. */
const MODEL_FIELDS: Record<number, number> = { 1: 0, 2: 2, 3: 2, 4: 2, 5: 0, 6: 2, 7: 2, 8: 2, 14: 2, 20: 2, 25: 2, 26: 2 };

/**
 * Why decoding failed, from the top-level fields: if each one so far is a ModelProto field of the right
 * wire type and the last runs past the end, the file was cut short; a wrong wire type means these bytes
 * are not a ModelProto; well-formed top-level fields mean the damage is inside one of them.
 */
function classifyDecodeFailure(bytes: Uint8Array): 'TRUNCATED_MODEL' | 'NOT_ONNX' | 'INVALID_MODEL' {
  const reader = protobuf.Reader.create(bytes);
  let known = 0;
  try {
    while (reader.pos < reader.len) {
      const tag = reader.uint32();
      const field = tag >>> 3;
      const wire = tag & 7;
      const expected = MODEL_FIELDS[field];
      if (field === 0 || (expected !== undefined && expected !== wire) || ![0, 1, 2, 5].includes(wire)) return 'NOT_ONNX';
      if (expected !== undefined) known++;
      reader.skipType(wire);
    }
  } catch {
    return known > 0 ? 'TRUNCATED_MODEL' : 'NOT_ONNX';
  }
  return known > 0 ? 'INVALID_MODEL' : 'NOT_ONNX';
}

function decodeModelProto(bytes: Uint8Array, what: string): ModelProto {
  if (bytes.byteLength === 0) throw new RedppError('NOT_ONNX', `${what} is empty, not an ONNX model`);
  let proto: ModelProto;
  try {
    proto = onnxTypes().Model.decode(modelReader(bytes)) as unknown as ModelProto;
  } catch (e) {
    const message = (e as Error).message;
    const kind = classifyDecodeFailure(bytes);
    const detail =
      kind === 'TRUNCATED_MODEL'
        ? `ends in the middle of a message (${bytes.byteLength} bytes): the file is truncated`
        : kind === 'INVALID_MODEL'
          ? `is a corrupt ONNX model (protobuf decoding failed: ${message})`
          : `is not an ONNX model (protobuf decoding failed: ${message})`;
    throw new RedppError(kind, `${what} ${detail}`, { cause: e });
  }
  return checkHeader(proto, what);
}

/**
 * decodeModelProto() with the event loop served between slices of the graph (sliced-decode.ts). Where
 * the slices cannot do it, or fail, the whole decode runs: it gives a bad file its error.
 */
async function decodeModelProtoInSlices(bytes: Uint8Array, what: string): Promise<ModelProto> {
  let proto: ModelProto | undefined;
  try {
    proto = await decodeModelInSlices(onnxTypes(), bytes, slices());
  } catch {
    proto = undefined;
  }
  return proto === undefined ? decodeModelProto(bytes, what) : checkHeader(proto, what);
}

/** The decoded model has what every ONNX model has: a graph, and an IR version or opsets. */
function checkHeader(proto: ModelProto, what: string): ModelProto {
  const hasHeader = toNumber(proto.ir_version) > 0 || proto.opset_import.length > 0;
  if (!proto.graph) {
    if (!hasHeader) throw new RedppError('NOT_ONNX', `${what} is not an ONNX model (no ir_version, opset or graph)`);
    throw new RedppError('INVALID_MODEL', `${what} has no graph (the file may be truncated)`);
  }
  if (!hasHeader) throw new RedppError('NOT_ONNX', `${what} is not an ONNX model (no ir_version or opset_import)`);
  if (toNumber(proto.ir_version) >= 3 && proto.opset_import.length === 0) {
    throw new RedppError('INVALID_MODEL', `${what} imports no opset (the file may be truncated)`);
  }
  return proto;
}

/**
 * Unties the decoded model from the bytes it was decoded from. Decoding leaves every bytes field (tensor
 * raw_data, string attributes) a view of `source`, and a tensor whose raw_data is not aligned for its
 * element type would be copied on every decode.
 * - `owned` (bytes redpp read from a file, which nothing else sees): each raw_data is moved in place to
 *   an aligned offset, over its own field tag and length just before it, which decoding no longer needs;
 *   the tensors then decode as views and may be edited in place. The rest stay views.
 * - Otherwise (the caller's bytes): every view gets an allocation of its own (copyViews), so the Model
 *   never aliases memory the caller may change, and the caller's buffer is not kept alive by the Model.
 */
function detachFrom(proto: ModelProto, sites: readonly TensorSite[], source: Uint8Array, owned: boolean): ByteMove[] {
  const moves: ByteMove[] = [];
  if (owned) {
    // Only raw_data moves, and it is only in tensors: walking every message (a million nodes) for it cost a third of a second.
    for (const { proto: t } of sites) {
      const raw = t.raw_data;
      if (raw instanceof Uint8Array && raw.buffer === source.buffer) t.raw_data = aligned(source, raw, t.data_type, moves);
    }
    return moves;
  }
  for (const v of viewsOf(proto, source)) v.put(ownBytes(v.view));
  return moves;
}

/**
 * detachFrom() for the caller's bytes, the copies made in slices with the event loop served between
 * them: a copy here pays for memory touched the first time, VGG-16's 553 MB were a 2.4 s stall.
 */
async function copyViews(proto: ModelProto, source: Uint8Array): Promise<void> {
  const pause = slices();
  for (const v of viewsOf(proto, source)) {
    const copy = allocOwnBytes(v.view.byteLength);
    await inChunks(v.view.byteLength, (from, to) => copy.set(v.view.subarray(from, to), from), { pause });
    v.put(copy);
  }
}

/** Every bytes field of `proto` that views `source`, with how to put a copy in its place. */
function viewsOf(proto: ModelProto, source: Uint8Array): { view: Uint8Array; put(copy: Buffer): void }[] {
  const views: { view: Uint8Array; put(copy: Buffer): void }[] = [];
  const ofSource = (v: unknown): v is Uint8Array => v instanceof Uint8Array && v.buffer === source.buffer;
  const visit = (message: Record<string, unknown>): void => {
    for (const key of Object.keys(message)) {
      const v = message[key];
      if (ofSource(v)) views.push({ view: v, put: (copy) => (message[key] = copy) });
      else if (v instanceof protobuf.Message) visit(v as unknown as Record<string, unknown>);
      else if (Array.isArray(v)) {
        for (let i = 0; i < v.length; i++) {
          const x: unknown = v[i];
          if (ofSource(x)) views.push({ view: x, put: (copy) => (v[i] = copy) });
          else if (x instanceof protobuf.Message) visit(x as unknown as Record<string, unknown>);
        }
      }
    }
  };
  visit(proto as unknown as Record<string, unknown>);
  return views;
}

/**
 * Carries out the moves: in memory where the addon is loaded, all of them in one native call on a
 * libuv thread (moveBytes). Without it, a JavaScript copy in shared memory goes byte by byte on this
 * thread, several times slower than reading each stretch again from the file (still in the page cache)
 * to its new place, MOVERS reads at a time (most moves are small: one at a time, each waited its round
 * trip to a libuv thread); if the file changed since it was read, the bytes are moved in memory after all.
 */
async function applyMoves(source: Uint8Array, moves: ByteMove[], filePath: string, stat: fs.Stats): Promise<void> {
  if (native()) return moveBytes(source, moves);
  const buf = Buffer.from(source.buffer, source.byteOffset, source.byteLength);
  const inMemory = () => moveBytesReference(source, moves);
  let handle: fs.promises.FileHandle;
  try {
    handle = await fs.promises.open(filePath, 'r');
  } catch {
    return inMemory();
  }
  try {
    const same = async () => {
      const now = await handle.stat();
      return now.size === stat.size && now.mtimeMs === stat.mtimeMs && now.ino === stat.ino;
    };
    if (!(await same())) return inMemory();
    const changed = () => new RedppError('IO_ERROR', `'${filePath}' changed while it was read`);
    await readRanges(handle, moves.map((m) => ({ bytes: buf.subarray(m.to, m.to + m.length), position: m.from })), MOVERS, changed);
    if (!(await same())) throw changed();
  } finally {
    await handle.close();
  }
}

/** TensorProto.raw_data is field 9, length-delimited: its tag byte. */
const RAW_DATA_TAG = (9 << 3) | 2;

/**
 * raw_data (a view of `source`) at an offset aligned for its element type: to be moved down over its own
 * tag and length varint (which decoding no longer needs) when those are where they must be and leave
 * room, the move queued in `moves`; else copied to memory of its own.
 */
function aligned(source: Uint8Array, raw: Uint8Array, dataType: number, moves: ByteMove[]): Uint8Array {
  const align = isDecodable(dataType) ? layoutOf(dataType, 'raw_data').array.BYTES_PER_ELEMENT : 1;
  const at = raw.byteOffset - source.byteOffset;
  const shift = raw.byteOffset % align;
  if (shift === 0) return markOwnBytes(raw);
  let varint = 1;
  for (let n = raw.byteLength; n >= 0x80; n = Math.floor(n / 0x80)) varint++;
  const header = at - varint - 1;
  if (varint + 1 < shift || header < 0 || source[header] !== RAW_DATA_TAG) return ownBytes(raw);
  let len = 0;
  for (let i = 0; i < varint; i++) len += (source[header + 1 + i] & 0x7f) * 2 ** (7 * i);
  if (len !== raw.byteLength) return ownBytes(raw);
  moves.push({ from: at, to: at - shift, length: raw.byteLength });
  return markOwnBytes(source.subarray(at - shift, at - shift + raw.byteLength));
}

/** Structural checks of a decoded model's graph (its tensors checked before); returns it, indexed on the way, for the Model. */
function checkModelGraph(proto: ModelProto): Graph {
  const graph = new Graph(proto.graph!);
  checkGraph(graph, () => false, `graph '${proto.graph!.name}'`);
  return graph;
}

/**
 * Every value a node or graph output names is defined, once, by a node, graph input or initializer (or
 * an enclosing graph's, for a subgraph). Through the graph's own index: the producers mapped here, and
 * whether file order is topological, are what topological order and shape inference use next, each
 * found once for a million nodes.
 */
function checkGraph(graph: Graph, outer: (value: string) => boolean, where: string): void {
  const g = graph.proto;
  const inputs = new Set(g.input.map((v) => v.name));
  const initializers = new Set<string>();
  for (const t of [...g.initializer, ...g.sparse_initializer.flatMap((s) => (s.values ? [s.values] : []))]) {
    if (initializers.has(t.name)) throw new RedppError('INVALID_MODEL', `${where}: two initializers are named '${t.name}'`);
    initializers.add(t.name);
  }
  const nodeName = (n: NodeProto) => n.name || n.op_type;
  for (const node of graph.nodes) {
    const n = node.proto;
    for (const o of n.output) {
      if (!o) continue;
      if (initializers.has(o) || inputs.has(o)) {
        throw new RedppError(
          'INVALID_MODEL',
          `${where}: node '${nodeName(n)}' (${n.op_type}) writes '${o}', which is already ${initializers.has(o) ? 'an initializer' : 'a graph input'}`,
        );
      }
      if (n.input.includes(o)) {
        throw new RedppError('INVALID_MODEL', `${where}: node '${nodeName(n)}' (${n.op_type}) reads its own output '${o}'`);
      }
    }
  }
  const twice = graph.producedTwice();
  if (twice) {
    throw new RedppError(
      'INVALID_MODEL',
      `${where}: value '${twice.value}' is produced twice (by node '${nodeName(twice.first.proto)}' and node '${nodeName(twice.second.proto)}')`,
    );
  }
  const declared = (v: string) => inputs.has(v) || initializers.has(v) || outer(v);
  const missing = graph.firstUndefinedInput(declared);
  const defined = (v: string) => graph.producer(v) !== undefined || declared(v);
  // Node by node, a node's inputs before its subgraphs: the subgraphs of the nodes before the first
  // missing input are checked before it is reported, so the first error in the file is the one told.
  const nodes = graph.nodes;
  const end = missing ? nodes.indexOf(missing.node) : nodes.length;
  for (let i = 0; i < end; i++) {
    for (const sub of nodes[i].subgraphs()) checkGraph(sub, defined, `${where} node '${nodeName(nodes[i].proto)}' subgraph`);
  }
  if (missing) {
    const n = missing.node.proto;
    throw new RedppError('MISSING_VALUE', `${where}: node '${nodeName(n)}' (${n.op_type}) reads '${missing.value}', which no node, graph input or initializer defines`);
  }
  for (const o of g.output) {
    if (!defined(o.name)) {
      throw new RedppError('MISSING_VALUE', `${where}: graph output '${o.name}' is not produced by any node or input`);
    }
  }
}

interface ExternalTensor {
  proto: TensorProto;
  baseDir: string;
  file: string;
  location: string;
  offset: number;
  length: number | undefined;
}

function externalTensors(sites: readonly TensorSite[], baseDir: string | undefined): ExternalTensor[] {
  const out: ExternalTensor[] = [];
  for (const { proto: t, where } of sites) {
    if (!isExternal(t)) continue;
    const what = `${where} tensor '${t.name}'`;
    const entries = new Map(t.external_data.map((e) => [e.key, e.value]));
    const location = entries.get('location');
    if (!location) throw new RedppError('INVALID_MODEL', `${what} is external but names no location`);
    const normalized = path.normalize(location);
    if (path.isAbsolute(location) || normalized.split(path.sep).includes('..')) {
      throw new RedppError(
        'INVALID_MODEL',
        `${what}: external-data location '${location}' must be a relative path inside the model's directory`,
      );
    }
    if (baseDir === undefined) {
      throw new RedppError(
        'EXTERNAL_DATA_MISSING',
        `${what} is stored in external file '${location}'; pass options.baseDir (the model's directory) ` +
          'when loading from bytes',
      );
    }
    const offset = parseCount(entries.get('offset') ?? '0', `${what} external-data offset`);
    const length = entries.has('length') ? parseCount(entries.get('length')!, `${what} external-data length`) : undefined;
    const expected = byteSize(t.data_type, elementCount(t.dims.map(toNumber)));
    if (length !== undefined && expected !== undefined && length !== expected) {
      throw new RedppError(
        'INVALID_MODEL',
        `${what}: external-data length ${length} does not match dims [${t.dims.map(toNumber)}] of ` +
          `${dataTypeName(t.data_type)} (${expected} bytes)`,
      );
    }
    out.push({ proto: t, baseDir, file: path.join(baseDir, normalized), location, offset, length: length ?? expected });
  }
  return out;
}

function parseCount(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n)) {
    throw new RedppError('INVALID_MODEL', `${what} '${text}' is not a byte count`);
  }
  return n;
}

/** Reads in chunks below the 2 GiB limit of one fs read. */
const READ_CHUNK = 1 << 30;

/**
 * readFully()'s pieces, and how many are read at once. A piece is one read call, which the kernel does
 * without giving its core up: with 32 MiB pieces two readers held both cores for ~100 ms at a time and
 * the main thread's timers waited as long (stalls of 96-130 ms loading VGG-16, against 41-62 ms with
 * one reader); 4 MiB pieces keep them under 45 ms.
 */
const READ_PIECE = 4 << 20;
const READERS = 2;
/** applyMoves()' reads at a time: all of libuv's threads (its stretches are small, and cached). */
const MOVERS = 4;

/**
 * Fills `bytes` from the file at `position`, in pieces read READERS at a time on libuv's threads: memory
 * written for the first time costs most of a read here (the kernel faults it in, ~3 ms/MB on the
 * 2-core VM), and two threads fault it in side by side (VGG-16's load 1.9-2.0 -> 1.14-1.18 s). `ended`
 * is the failure where the file ends first. Each load holds two of libuv's four threads meanwhile.
 * @internal exported for its test
 */
export async function readFully(handle: Pick<fs.promises.FileHandle, 'read'>, bytes: Uint8Array, position: number, ended: () => RedppError): Promise<void> {
  await readRanges(handle, [{ bytes, position }], READERS, ended);
}

/**
 * Fills each range's `bytes` from the file at its `position`, in pieces of at most READ_PIECE, `readers`
 * pieces at a time (the ranges' pieces in order, whichever reader is free).
 */
async function readRanges(
  handle: Pick<fs.promises.FileHandle, 'read'>,
  ranges: readonly { bytes: Uint8Array; position: number }[],
  readers: number,
  ended: () => RedppError,
): Promise<void> {
  let range = 0;
  let next = 0;
  // The first failure, in time: no reader claims a piece after it.
  let failure: { error: unknown } | undefined;
  const reader = async () => {
    for (;;) {
      while (range < ranges.length && next >= ranges[range].bytes.byteLength) {
        range++;
        next = 0;
      }
      if (failure || range === ranges.length) return;
      const { bytes, position } = ranges[range];
      const at = next;
      const n = Math.min(READ_PIECE, bytes.byteLength - at);
      next += n;
      try {
        for (let done = 0; done < n; ) {
          const { bytesRead } = await handle.read(bytes, at + done, n - done, position + at + done);
          if (bytesRead === 0) throw ended();
          done += bytesRead;
        }
      } catch (e) {
        failure ??= { error: e };
      }
    }
  };
  // Every reader settles before the caller may close the handle.
  await Promise.all(Array.from({ length: readers }, reader));
  if (failure) throw failure.error;
}

/**
 * Opening flags for external data: O_NONBLOCK so that a FIFO put where a file should be cannot block
 * the open (it is refused by the fstat that follows), O_NOFOLLOW on the resolved path.
 */
const OPEN_EXTERNAL = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0);

/**
 * The real path of an external-data file, which must lie inside the model's real folder: a location
 * that reaches outside it through a symlink (of the file or of a folder on the way) is refused, as
 * ONNX does since 1.16.
 */
function resolveExternal(t: ExternalTensor, realBase: string): string {
  let real: string;
  try {
    real = fs.realpathSync(t.file);
  } catch (e) {
    throw missingExternal(e, t);
  }
  if (!real.startsWith(realBase + path.sep)) {
    throw new RedppError(
      'INVALID_MODEL',
      `tensor '${t.proto.name}': external-data location '${t.location}' leads outside the model's folder (to '${real}')`,
    );
  }
  return real;
}

function checkRegularFile(st: fs.Stats, t: ExternalTensor): void {
  if (!st.isFile()) {
    throw new RedppError('INVALID_MODEL', `tensor '${t.proto.name}': external-data location '${t.location}' is not a regular file`);
  }
}

function realBaseOf(list: ExternalTensor[]): string {
  if (list.length === 0) return '';
  try {
    return fs.realpathSync(list[0].baseDir);
  } catch (e) {
    throw ioError(e, `cannot read the model's folder '${list[0].baseDir}'`);
  }
}

async function readExternalData(list: ExternalTensor[]): Promise<void> {
  const realBase = realBaseOf(list);
  for (const [file, tensors] of groupByFile(list)) {
    let handle: fs.promises.FileHandle;
    try {
      handle = await fs.promises.open(resolveExternal(tensors[0], realBase), OPEN_EXTERNAL);
    } catch (e) {
      throw missingExternal(e, tensors[0]);
    }
    try {
      const st = await handle.stat();
      checkRegularFile(st, tensors[0]);
      const size = st.size;
      for (const t of tensors) {
        const length = checkExtent(t, size);
        const bytes = allocOwnBytes(length);
        await readFully(handle, bytes, t.offset, () => new RedppError('INVALID_MODEL', `external-data file '${file}' ended early`));
        attachExternalBytes(t.proto, bytes);
      }
    } finally {
      await handle.close();
    }
  }
}

function readExternalDataSync(list: ExternalTensor[]): void {
  const realBase = realBaseOf(list);
  for (const [file, tensors] of groupByFile(list)) {
    let fd: number;
    try {
      fd = fs.openSync(resolveExternal(tensors[0], realBase), OPEN_EXTERNAL);
    } catch (e) {
      throw missingExternal(e, tensors[0]);
    }
    try {
      const st = fs.fstatSync(fd);
      checkRegularFile(st, tensors[0]);
      const size = st.size;
      for (const t of tensors) {
        const length = checkExtent(t, size);
        const bytes = allocOwnBytes(length);
        for (let done = 0; done < length; ) {
          const n = fs.readSync(fd, bytes, done, Math.min(READ_CHUNK, length - done), t.offset + done);
          if (n === 0) throw new RedppError('INVALID_MODEL', `external-data file '${file}' ended early`);
          done += n;
        }
        attachExternalBytes(t.proto, bytes);
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

function groupByFile(list: ExternalTensor[]): Map<string, ExternalTensor[]> {
  const byFile = new Map<string, ExternalTensor[]>();
  for (const t of list) {
    const group = byFile.get(t.file);
    if (group) group.push(t);
    else byFile.set(t.file, [t]);
  }
  return byFile;
}

function checkExtent(t: ExternalTensor, fileSize: number): number {
  const length = t.length ?? fileSize - t.offset;
  if (t.offset > fileSize || t.offset + length > fileSize) {
    throw new RedppError(
      'INVALID_MODEL',
      `tensor '${t.proto.name}': external-data file '${t.file}' has ${fileSize} bytes, ` +
        `but the tensor needs bytes ${t.offset} to ${t.offset + length}`,
    );
  }
  return length;
}

function missingExternal(e: unknown, t: ExternalTensor): RedppError {
  const err = e as NodeJS.ErrnoException;
  if (e instanceof RedppError) return e;
  if (err.code === 'ENOENT') {
    return new RedppError(
      'EXTERNAL_DATA_MISSING',
      `tensor '${t.proto.name}' is stored in external file '${t.location}', which does not exist (looked for '${t.file}')`,
      { cause: e },
    );
  }
  return ioError(e, `cannot read external-data file '${t.file}'`);
}
