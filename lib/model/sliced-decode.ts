/**
 * Decoding a ModelProto with the event loop served between slices. The graph's top-level fields (nodes,
 * initializers, value infos) are decoded a batch at a time and the partial GraphProtos merged, as
 * protobuf merges concatenated encodings of one message: repeated fields appended in order, the last
 * scalar kept. Decoded whole, ISNet's graph was one 20-50 ms piece of the main thread, the load's
 * longest. Anything this does not handle (no graph or two, a group, a malformed field) is left to the
 * whole decode, which also gives the error a bad file gets.
 */
import * as protobuf from 'protobufjs';

import type { GraphProto, ModelProto, OnnxTypes } from './proto';

/** ModelProto.graph's field number. */
const GRAPH_FIELD = 7;
const LENGTH_DELIMITED = 2;
/** Graph fields decoded a call: a node or a tensor's header takes some 10-20 us, so a call takes a ms or so. */
const FIELDS_PER_CALL = 64;

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

/**
 * The model decoded as onnxTypes().Model.decode(bytes) decodes it, in slices with `pause()` awaited
 * between them; undefined where the whole decode must do it (see above).
 */
export async function decodeModelInSlices(
  types: OnnxTypes,
  bytes: Uint8Array,
  pause: () => Promise<void> | undefined,
): Promise<ModelProto | undefined> {
  const graphs = topLevelFields(bytes)?.filter((f) => f.field === GRAPH_FIELD);
  if (graphs?.length !== 1 || graphs[0].wire !== LENGTH_DELIMITED) return undefined;
  const { start, payload, end } = graphs[0];
  const graphBytes = bytes.subarray(payload, end);
  const fields = topLevelFields(graphBytes);
  if (!fields) return undefined;
  let graph = types.Graph.decode(graphBytes.subarray(0, 0)) as unknown as GraphProto;
  for (let i = 0; i < fields.length; i += FIELDS_PER_CALL) {
    const last = fields[Math.min(fields.length, i + FIELDS_PER_CALL) - 1];
    graph = mergeInto(graph, types.Graph.decode(graphBytes.subarray(fields[i].start, last.end)) as unknown as GraphProto);
    await pause();
  }
  // The model's other fields, before and after the graph: small (opsets, metadata).
  const model = types.Model.decode(bytes.subarray(0, start)) as unknown as ModelProto;
  mergeInto(model, types.Model.decode(bytes.subarray(end)) as unknown as ModelProto);
  model.graph = graph;
  return model;
}

/** Each top-level field of a message's bytes; undefined where one is malformed or a group. */
function topLevelFields(bytes: Uint8Array): Field[] | undefined {
  const reader = protobuf.Reader.create(bytes);
  const fields: Field[] = [];
  try {
    while (reader.pos < reader.len) {
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
      fields.push({ start, field: tag >>> 3, wire, payload, end: reader.pos });
    }
  } catch {
    return undefined;
  }
  return fields;
}

/**
 * `part`, decoded from the bytes after `target`'s, merged into `target` as protobuf merges them. A message
 * field decoded in both would need a recursive merge: none of GraphProto's fields is one, and
 * ModelProto's graph is not in the parts merged here, so that throws (the whole decode then does it).
 */
function mergeInto<T extends object>(target: T, part: T): T {
  const into = target as Record<string, unknown>;
  for (const [key, value] of Object.entries(part)) {
    if (Array.isArray(value)) {
      const list = into[key] as unknown[];
      for (const v of value) list.push(v);
    } else if (value instanceof protobuf.Message && Object.prototype.hasOwnProperty.call(into, key)) {
      throw new Error(`redpp internal error: message field '${key}' in two slices`);
    } else into[key] = value;
  }
  return target;
}
