import * as fs from 'node:fs';

import t from 'tap';

import { RedppError, decodeModel, encodeModel, loadModel, type Model } from '../lib/index';
import { createMessage, onnxTypes, tensorValueInfo, type GraphProto, type ModelProto, type NodeProto, type TensorProto } from '../lib/model/proto';
import { decodeModelInSlices } from '../lib/model/sliced-decode';
import { OCR_MODELS, tempDir } from './helpers/onnx-builder';

const T = onnxTypes();
const encode = (m: ModelProto): Buffer => Buffer.from(T.Model.encode(m as never).finish());
const noPause = (): undefined => undefined;

/** A graph of `n` Relu nodes in a chain, each with a small initializer beside it (fields of both kinds, interleaved). */
function chainGraph(n: number, name = 'g'): GraphProto {
  const node: NodeProto[] = [];
  const initializer: TensorProto[] = [];
  for (let i = 0; i < n; i++) {
    node.push(createMessage<NodeProto>(T.Node, { op_type: 'Relu', name: `r${i}`, input: [i === 0 ? 'x' : `v${i - 1}`], output: [`v${i}`] }));
    initializer.push(createMessage<TensorProto>(T.Tensor, { name: `w${i}`, data_type: 1, dims: [2], raw_data: new Uint8Array(new Float32Array([i, -i]).buffer) }));
  }
  return createMessage<GraphProto>(T.Graph, {
    name,
    node,
    initializer,
    input: [tensorValueInfo('x', 1, [1, 4])],
    output: [tensorValueInfo(`v${n - 1}`, 1, [1, 4])],
  });
}

const header = (extra: Partial<ModelProto> = {}): ModelProto =>
  createMessage<ModelProto>(T.Model, { ir_version: 8, opset_import: [{ domain: '', version: 13 } as never], ...extra });

/** Decodes both ways and checks the sliced result re-encodes to the whole decode's bytes. */
async function sameAsWhole(t: Tap.Test, bytes: Uint8Array, what: string): Promise<ModelProto> {
  let calls = 0;
  const sliced = await decodeModelInSlices(T, bytes, () => {
    calls++;
    return undefined;
  });
  t.ok(sliced, `${what}: decoded in slices`);
  const whole = T.Model.decode(bytes) as unknown as ModelProto;
  t.ok(encode(sliced!).equals(encode(whole)), `${what}: the same model as the whole decode`);
  t.same(sliced, whole, `${what}: the same fields`);
  // Bytes fields stay views of the bytes decoded, at the same offsets: the read moves tensor data in place.
  const views = (m: ModelProto) => m.graph!.initializer.map((i) => [i.raw_data?.buffer === bytes.buffer, i.raw_data?.byteOffset]);
  t.same(views(sliced!), views(whole), `${what}: raw_data views the same bytes`);
  t.ok(views(sliced!).every(([same]) => same), `${what}: of the source`);
  const fields = whole.graph!.node.length + whole.graph!.initializer.length + whole.graph!.input.length + whole.graph!.output.length;
  t.ok(calls >= Math.ceil(fields / 64), `${what}: a pause every 64 graph fields at least (${calls} for ${fields})`);
  return sliced!;
}

t.test('sliced decoding gives the whole decode', async (t) => {
  for (const [name, { file }] of Object.entries(OCR_MODELS)) await sameAsWhole(t, fs.readFileSync(file), `PP-OCRv4 ${name}`);
  await sameAsWhole(t, encode(header({ graph: chainGraph(1) })), 'one node');
  await sameAsWhole(t, encode(header({ graph: chainGraph(200), doc_string: 'd', producer_name: 'p' })), '200 nodes');
  // No graph fields at all, and an empty graph.
  const empty = await sameAsWhole(t, encode(header({ graph: createMessage<GraphProto>(T.Graph, {}) })), 'an empty graph');
  t.equal(empty.graph!.node.length, 0);
});

t.test('merged as protobuf merges concatenated encodings', async (t) => {
  // A graph field whose encoding is two GraphProtos one after the other: nodes appended in order, the
  // last name kept, wherever the slices are cut (300 fields: the two names in different slices).
  const first = Buffer.from(T.Graph.encode(chainGraph(150, 'first') as never).finish());
  const second = Buffer.from(T.Graph.encode(createMessage<GraphProto>(T.Graph, { name: 'second', doc_string: 'doc' })).finish());
  const graphBytes = Buffer.concat([first, second]);
  // The model's fields on both sides of the graph, a repeated one (metadata) on each side.
  const before = encode(header({ metadata_props: [{ key: 'a', value: '1' } as never], producer_name: 'early' }));
  const after = encode(createMessage<ModelProto>(T.Model, { metadata_props: [{ key: 'b', value: '2' } as never], producer_name: 'late' }));
  const graphField = Buffer.concat([Buffer.from([(7 << 3) | 2]), varint(graphBytes.length), graphBytes]);
  const bytes = Buffer.concat([before, graphField, after]);
  const m = await sameAsWhole(t, bytes, 'a graph in two encodings, model fields around it');
  t.equal(m.graph!.name, 'second');
  t.equal(m.graph!.node.length, 150);
  t.equal(m.producer_name, 'late');
  t.same(m.metadata_props.map((p) => p.key), ['a', 'b']);
});

t.test('left to the whole decode', async (t) => {
  const one = encode(header({ graph: chainGraph(3) }));
  const graphOnly = encode(createMessage<ModelProto>(T.Model, { graph: chainGraph(2) }));
  t.equal(await decodeModelInSlices(T, encode(header()), noPause), undefined, 'no graph');
  t.equal(await decodeModelInSlices(T, Buffer.concat([one, graphOnly]), noPause), undefined, 'two graph fields (merged by the whole decode)');
  t.equal(await decodeModelInSlices(T, one.subarray(0, one.length - 3), noPause), undefined, 'cut short');
  t.equal(await decodeModelInSlices(T, Buffer.concat([one, Buffer.from([(9 << 3) | 3, (9 << 3) | 4])]), noPause), undefined, 'a group');
  t.equal(await decodeModelInSlices(T, Buffer.from([(7 << 3) | 0, 5]), noPause), undefined, 'a graph that is not length-delimited');
});

t.test('bad files get the whole decode errors', async (t) => {
  const dir = tempDir(t);
  const file = `${dir}/bad.onnx`;
  /** What loading `bytes` from a file (sliced) and decoding them synchronously (whole) each give: a model's encoding, or `CODE: message`. */
  const outcomes = async (bytes: Uint8Array): Promise<[string, string]> => {
    fs.writeFileSync(file, bytes);
    const outcome = async (load: () => Promise<unknown>): Promise<string> => {
      try {
        return `model ${encodeModel((await load()) as Model).toString('hex')}`;
      } catch (e) {
        return `${(e as RedppError).code}: ${(e as Error).message.replace(file, 'X').replace('the model bytes', 'X')}`;
      }
    };
    return [await outcome(() => loadModel(file)), await outcome(async () => decodeModel(bytes))];
  };
  const good = encode(header({ graph: chainGraph(300) }));
  // Cut inside the graph: the model's fields do not scan, the whole decode names the truncation.
  const [cutFromFile, cutFromBytes] = await outcomes(good.subarray(0, Math.floor(good.length * 0.6)));
  t.match(cutFromFile, /^TRUNCATED_MODEL: /, cutFromFile);
  t.equal(cutFromFile, cutFromBytes, 'the same message as the synchronous decode');
  // A field of wire type 7 in the last node: the slices before it are decoded (with pauses between),
  // that one throws, and the file gets the whole decode's error.
  const late = Buffer.from(good);
  late[late.lastIndexOf(Buffer.from('Relu')) - 2] = (15 << 3) | 7;
  let pauses = 0;
  const sliced = decodeModelInSlices(T, late, () => {
    pauses++;
    return undefined;
  });
  await t.rejects(sliced, /wire type 7/, 'the slices fail at the damaged node');
  t.ok(pauses >= 3, `after slices decoded (${pauses} pauses)`);
  const [lateFromFile, lateFromBytes] = await outcomes(late);
  t.match(lateFromFile, /^[A-Z_]+: /, lateFromFile);
  t.equal(lateFromFile, lateFromBytes, 'the whole decode error');
  // A node's op_type length damaged (0xff: a varint running on into the op type itself), so that the
  // string runs past the node's end: protobufjs's Buffer reader read the rest of the node, 'elu', and
  // the model loaded with a different op. Now an error, the same both ways.
  const bad = Buffer.from(good);
  bad[bad.indexOf(Buffer.from('Relu')) - 1] = 0xff;
  const [badFromFile, badFromBytes] = await outcomes(bad);
  t.match(badFromFile, /^INVALID_MODEL: .*index out of range/, badFromFile);
  t.equal(badFromFile, badFromBytes, 'the same error as the synchronous decode');
});

t.test('nesting depth counted as the whole decode counts it', async (t) => {
  // A graph input of nested sequence types: each level two messages deeper, ending in a type with a
  // tensor type (one message more) or without (none), so that one of the two ends exactly at the limit
  // whatever the parity. Past protobufjs's limit the whole decode refuses the model; the slices, which
  // decode the graph on its own, must too. Written by hand: protobufjs's encoder has a depth limit of its own.
  const field = (tag: number, payload: Buffer) => Buffer.concat([Buffer.from([tag]), varint(payload.length), payload]);
  const nested = (levels: number, innermost: object): Buffer => {
    let type = Buffer.from(T.TypeProto.encode(T.TypeProto.fromObject(innermost)).finish());
    for (let i = 0; i < levels; i++) type = field((4 << 3) | 2, field((1 << 3) | 2, type)); // TypeProto.sequence_type.elem_type
    const input = Buffer.concat([field((1 << 3) | 2, Buffer.from('x')), field((2 << 3) | 2, type)]); // ValueInfoProto name, type
    const graph = Buffer.concat([Buffer.from(T.Graph.encode(chainGraph(100) as never).finish()), field((11 << 3) | 2, input)]);
    return Buffer.concat([encode(header()), field((7 << 3) | 2, graph)]);
  };
  for (const innermost of [{ tensor_type: { elem_type: 1 } }, { denotation: 'IMAGE' }]) {
    const what = Object.keys(innermost)[0];
    let deepest = 0;
    while (deepest < 200) {
      try {
        T.Model.decode(nested(deepest + 1, innermost));
      } catch {
        break;
      }
      deepest++;
    }
    t.ok(deepest > 10 && deepest < 200, `${what}: the whole decode takes ${deepest} levels and refuses ${deepest + 1}`);
    await sameAsWhole(t, nested(deepest, innermost), `${what}: at the limit`);
    await t.rejects(decodeModelInSlices(T, nested(deepest + 1, innermost), noPause), /maximum nesting depth/, `${what}: one past it, refused by the slices too`);
  }
});

t.test('a graph hidden in a damaged model field: left to the whole decode', async (t) => {
  // After the graph, a field 1 (ir_version, a varint) given as length-delimited: protobufjs reads its
  // payload as a ModelProto's fields, and a graph inside it is the last one, the one the whole decode keeps.
  const hidden = encode(createMessage<ModelProto>(T.Model, { graph: chainGraph(1, 'hidden') }));
  const bytes = Buffer.concat([encode(header({ graph: chainGraph(3, 'real') })), Buffer.from([(1 << 3) | 2]), varint(hidden.length), hidden]);
  t.equal(await decodeModelInSlices(T, bytes, noPause), undefined, 'not decoded in slices');
});

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
