/**
 * Decoding a ModelProto with the event loop served between slices. The graph's top-level fields (nodes,
 * initializers, value infos) are decoded a batch at a time and the partial GraphProtos merged, as
 * protobuf merges concatenated encodings of one message: repeated fields appended in order, the last
 * scalar kept. Decoded whole, ISNet's graph was one 20-50 ms piece of the main thread, the load's
 * longest. Anything this does not handle (no graph or two, a group, a malformed field) is left to the
 * whole decode, which also gives the error a bad file gets.
 */
import * as protobuf from 'protobufjs';

import { hasField, modelReader, type GraphProto, type ModelProto, type OnnxTypes } from './proto';

/** ModelProto.graph's field number. */
const GRAPH_FIELD = 7;
const LENGTH_DELIMITED = 2;
/** Graph fields decoded a call: a node or a tensor's header takes some 10-20 us, so a call takes a ms or so. */
const FIELDS_PER_CALL = 64;
/** The graph's nesting depth in the model, as the whole decode passes it down (protobufjs's recursion limit counts from 0). */
const GRAPH_DEPTH = 1;

interface Field {
  /** Offset of its tag. */
  start: number;
  field: number;
  wire: number;
  /** Offset of its payload (after the tag, and the length where it has one). */
  payload: number;
  /** Offset just past it. */
  end: number;
}

type Decode = (reader: protobuf.Reader, length?: number, endTag?: number, depth?: number) => unknown;

/**
 * The model decoded as onnxTypes().Model.decode(bytes) decodes it, in slices with `pause()` awaited
 * between them; undefined where the whole decode must do it (see above). A failure part way throws
 * (the caller decodes whole for the error).
 */
export async function decodeModelInSlices(
  types: OnnxTypes,
  bytes: Uint8Array,
  pause: () => Promise<void> | undefined,
): Promise<ModelProto | undefined> {
  const graphs = topLevelFields(bytes)?.filter((f) => f.field === GRAPH_FIELD);
  if (graphs?.length !== 1 || graphs[0].wire !== LENGTH_DELIMITED) return undefined;
  const { start, payload, end } = graphs[0];
  // The model's other fields, before and after the graph: opsets and metadata (training graphs and
  // functions, which few models have, decoded whole with them). protobufjs reads a known field whatever
  // its wire type, so a damaged one can hide a graph inside: then the whole decode, which keeps the last.
  const model = types.Model.decode(modelReader(bytes.subarray(0, start))) as unknown as ModelProto;
  const after = types.Model.decode(modelReader(bytes.subarray(end))) as unknown as ModelProto;
  if (hasField(model, 'graph') || hasField(after, 'graph')) return undefined;
  mergeInto(model, after);
  const decodeGraph = types.Graph.decode as Decode;
  const graphBytes = bytes.subarray(payload, end);
  let graph = decodeGraph.call(types.Graph, modelReader(graphBytes.subarray(0, 0)), undefined, undefined, GRAPH_DEPTH) as GraphProto;
  // The fields are found a slice at a time too: a million nodes' list would be one piece of its own.
  const reader = protobuf.Reader.create(graphBytes);
  while (reader.pos < reader.len) {
    const from = reader.pos;
    for (let k = 0; k < FIELDS_PER_CALL && reader.pos < reader.len; k++) {
      if (!nextField(reader)) return undefined;
    }
    graph = mergeInto(graph, decodeGraph.call(types.Graph, modelReader(graphBytes.subarray(from, reader.pos)), undefined, undefined, GRAPH_DEPTH) as GraphProto);
    await pause();
  }
  model.graph = graph;
  return model;
}

/** Each top-level field of a message's bytes; undefined where one is malformed or a group. */
function topLevelFields(bytes: Uint8Array): Field[] | undefined {
  const reader = protobuf.Reader.create(bytes);
  const fields: Field[] = [];
  while (reader.pos < reader.len) {
    const f = nextField(reader);
    if (!f) return undefined;
    fields.push(f);
  }
  return fields;
}

/** The field at the reader's place, read past; undefined where it is malformed or a group. */
function nextField(reader: protobuf.Reader): Field | undefined {
  try {
    const start = reader.pos;
    const tag = reader.uint32();
    const wire = tag & 7;
    if (wire === 3 || wire === 4) return undefined;
    let payload = reader.pos;
    if (wire === LENGTH_DELIMITED) {
      const length = reader.uint32();
      payload = reader.pos;
      reader.skip(length);
    } else reader.skipType(wire);
    return { start, field: tag >>> 3, wire, payload, end: reader.pos };
  } catch {
    return undefined;
  }
}

/**
 * `part`, decoded from the bytes after `target`'s, merged into `target` as protobuf merges them. A message
 * field decoded in both would need a recursive merge: none of GraphProto's fields is one, and the model's
 * graph is checked for before its parts are merged, so that throws (the whole decode then does it).
 */
function mergeInto<T extends object>(target: T, part: T): T {
  const into = target as Record<string, unknown>;
  for (const [key, value] of Object.entries(part)) {
    if (Array.isArray(value)) {
      const list = into[key] as unknown[];
      for (const v of value) list.push(v);
    } else if (value instanceof protobuf.Message && hasField(into, key)) {
      throw new Error(`redpp internal error: message field '${key}' in two slices`);
    } else into[key] = value;
  }
  return target;
}
