import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import * as protobuf from 'protobufjs';
import t from 'tap';

import { DataType, RedppError, Tensor, decodeModel, loadModel, saveModel, encodeModel } from '../lib/index';
import { GraphBuilder } from '../lib/model/builder';
import { readFully } from '../lib/model/read';
import { encodedBytes } from '../lib/model/write';
import { numberToBfloat16Bits, numberToFloat16Bits } from '../lib/model/dtype';
import { ONNX_ML_PROTO } from '../lib/model/onnx-proto';
import { AttributeType, createMessage, onnxTypes, tensorValueInfo, type AttributeProto, type GraphProto, type NodeProto, type StringStringEntryProto, type TensorProto } from '../lib/model/proto';
import { ModelBuilder, OCR_MODELS, randomFloats, runModel, sameBits, tempDir, textImage } from './helpers/onnx-builder';

t.test('PP-OCRv4 models round-trip byte for byte and run bit-identically', async (t) => {
  const dir = tempDir(t);
  for (const [name, { file, shape }] of Object.entries(OCR_MODELS)) {
    const before = fs.statSync(file);
    const original = fs.readFileSync(file);
    const model = await loadModel(file);
    t.ok(model.graph.nodes.some((n) => n.opType === 'Constant'), `${name}: weights are Constant nodes`);
    const out = path.join(dir, `${name}.onnx`);
    const result = await saveModel(model, out);
    t.equal(result.externalTensors, 0, `${name}: no external data`);
    const written = fs.readFileSync(out);
    t.ok(written.equals(original), `${name}: re-encoded bytes are identical to the file`);
    const after = fs.statSync(file);
    t.equal(after.mtimeMs, before.mtimeMs, `${name}: input file untouched`);
    t.ok(fs.readFileSync(file).equals(original), `${name}: input bytes unchanged`);

    const x = textImage(shape);
    const a = await runModel(file, { x });
    const b = await runModel(out, { x });
    for (const k of Object.keys(a)) t.ok(sameBits(a[k], b[k]), `${name}: output ${k} bit-identical`);
  }
});

t.test('a synthetic model keeps metadata, doc strings, names, domains and node order', async (t) => {
  const b = new ModelBuilder({ opset: 13, opsets: { 'com.example': 1 } })
    .input('x', ['batch', 4])
    .initializer('w', [4, 3], randomFloats(12, 1))
    .constant('bias', [3], randomFloats(3, 2))
    .node('MatMul', ['x', 'w'], ['mm'], {}, { name: 'matmul' })
    .node('Add', ['mm', 'bias'], ['y'], {}, { name: 'add' })
    .output('y', ['batch', 3]);
  const m = b.model;
  m.proto.doc_string = 'model doc';
  m.proto.metadata_props.push(
    createMessage<StringStringEntryProto>(onnxTypes().StringStringEntry, { key: 'author', value: 'redpp' }),
  );
  m.graph.nodes[1].proto.doc_string = 'node doc';
  const bytes = b.bytes();
  const loaded = decodeModel(bytes);
  t.equal(loaded.proto.doc_string, 'model doc');
  t.same(loaded.proto.metadata_props.map((p) => [p.key, p.value]), [['author', 'redpp']]);
  t.same(loaded.opsetImports, [{ domain: '', version: 13 }, { domain: 'com.example', version: 1 }]);
  t.same(loaded.graph.nodes.map((n) => n.name), ['', 'matmul', 'add']);
  t.equal(loaded.graph.nodes[1].proto.doc_string, 'node doc');
  t.ok(encodeModel(loaded).equals(bytes), 'decode + encode is the identity on bytes');

  // A custom-domain node survives a round trip untouched, attributes included.
  const custom = new ModelBuilder({ opsets: { 'com.example': 1 } })
    .input('x', [2])
    .node('Frobnicate', ['x'], ['y'], { mode: 'fast', k: 3, scales: [0.5, 2] }, { domain: 'com.example', floats: ['scales'] })
    .output('y', [2]);
  const c = decodeModel(custom.bytes());
  const n = c.graph.nodes[0];
  t.equal(n.domain, 'com.example');
  t.equal(n.attrString('mode'), 'fast');
  t.equal(n.attrInt('k'), 3);
  t.same(n.attrFloats('scales'), [0.5, 2]);
  t.ok(encodeModel(c).equals(custom.bytes()));
});

t.test('a graph of many nodes encodes to the bytes protobufjs writes, also with tensors and subgraphs among its nodes', async (t) => {
  // The writer encodes plain nodes in batches of its own (write.ts, encodeProto): 10,500 nodes is
  // two full batches and a partial one, broken at awkward places by Constant nodes, which hold tensors
  // (one of 64 KiB, which is written from the tensor's memory), and by an If whose branches are large
  // graphs themselves.
  const b = new ModelBuilder({ opset: 17 }).input('x', [1, 4]).constant('big', [4096, 4], randomFloats(4096 * 4, 9));
  let v = 'x';
  for (let i = 0; i < 10_500; i++) {
    if (i % 3001 === 7) {
      b.constant(`c${i}`, [1, 4], randomFloats(4, i));
      b.node('Add', [v, `c${i}`], [`a${i}`]);
      v = `a${i}`;
    }
    b.node('Relu', [v], [`r${i}`]);
    v = `r${i}`;
  }
  b.node('ReduceMean', ['big'], ['bigMean'], { axes: [0], keepdims: 1 });
  b.node('Add', [v, 'bigMean'], ['pre']);
  b.node('ReduceSum', ['pre'], ['total'], { keepdims: 0 });
  b.node('Greater', ['total', 'zero'], ['cond']);
  b.constant('zero', [], new Float32Array([0]));
  const branch = (name: string, op: string, n: number): GraphProto => {
    const node = Array.from({ length: n }, (_, i) =>
      createMessage<NodeProto>(onnxTypes().Node, { op_type: op, input: [i ? `${name}${i - 1}` : 'pre'], output: [`${name}${i}`] }),
    );
    return createMessage<GraphProto>(onnxTypes().Graph, { name, node, output: [tensorValueInfo(`${name}${n - 1}`, DataType.FLOAT, [1, 4])] });
  };
  const graphAttr = (name: string, g: GraphProto) => createMessage<AttributeProto>(onnxTypes().Attribute, { name, type: AttributeType.GRAPH, g });
  b.node('If', ['cond'], ['y']);
  const ifNode = b.model.graph.nodes[b.model.graph.nodes.length - 1];
  ifNode.proto.attribute.push(graphAttr('then_branch', branch('t', 'Relu', 5000)), graphAttr('else_branch', branch('e', 'Neg', 4097)));
  b.output('y', [1, 4]);
  // Topological order: the zero constant before the Greater that reads it.
  const nodes = b.model.proto.graph!.node;
  nodes.splice(nodes.length - 3, 0, nodes.splice(nodes.length - 2, 1)[0]);

  const count = nodes.length;
  const bytes = encodeModel(b.model);
  const plain = onnxTypes().Model.encode(b.model.proto as unknown as Record<string, unknown>).finish();
  t.ok(Buffer.from(plain).equals(bytes), 'the same bytes as protobufjs encodes');
  t.equal(b.model.proto.graph!.node, nodes, 'the node list is back in the proto after encoding');
  t.equal(nodes.length, count);
  const loaded = decodeModel(bytes);
  t.ok(encodeModel(loaded).equals(bytes), 'decode + encode is the identity on bytes');
  const dir = tempDir(t);
  const file = path.join(dir, 'many.onnx');
  await saveModel(loaded, file);
  t.ok(fs.readFileSync(file).equals(bytes), 'saved as encoded (chunks written from the tensors)');
  const x = new ort.Tensor('float32', randomFloats(4, 3), [1, 4]);
  const y = (await runModel(file, { x })).y;
  t.same([...(y.data as Float32Array)].length, 4, 'onnxruntime runs it');
});

t.test("a large graph's nodes are written straight into buffers, in protobufjs's bytes", async (t) => {
  // Every form NodeBatch writes itself or leaves to protobufjs, over more nodes than one batch holds.
  const T = onnxTypes();
  const Node = (fields: Partial<NodeProto>) => createMessage<NodeProto>(T.Node, fields);
  const attr = (fields: Partial<AttributeProto>) => createMessage<AttributeProto>(T.Attribute, fields);
  const forms: ((i: number, x: string, y: string) => NodeProto)[] = [
    (i, x, y) => Node({ op_type: 'Relu', name: `n${i}`, input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Relu', name: '', input: [x], output: [y] }), // present though empty
    (i, x, y) => Object.assign(Node({ op_type: 'Relu', input: [x], output: [y] }), { name: null as unknown as string }), // own but null: not written
    (i, x, y) => Node({ op_type: 'Relu', input: [x], output: [y], doc_string: 'why', domain: 'ai.onnx', overload: '' }),
    (i, x, y) => Node({ op_type: 'Clip', input: [x, '', ''], output: [y], attribute: [attr({ name: 'min', type: AttributeType.FLOAT, f: -1.5 })] }),
    (i, x, y) =>
      Node({
        op_type: 'Custom',
        domain: 'my.domain',
        input: [x],
        output: [y],
        attribute: [
          attr({ name: 'ints', type: AttributeType.INTS, ints: [1, -2, 2 ** 40] }),
          attr({ name: 's', type: AttributeType.STRING, s: Buffer.from('snow ☃') }),
          attr({ name: 'tp', type: AttributeType.TYPE_PROTO, tp: { tensor_type: { elem_type: 1 } } } as Partial<AttributeProto>),
        ],
      }),
    // Not ASCII: short (protobufjs's own UTF-8 writer), long (Buffer's), a pair and a lone surrogate.
    (i, x, y) => Node({ op_type: 'Relu', name: `ñ${i}😀`, input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Relu', name: `名前${'é'.repeat(40)}${i}`, input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Relu', name: `lone\uD800${i}`, input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Relu', name: `lone\uDC00${'x'.repeat(45)}`, input: [x], output: [y] }),
    // Lengths at a byte's edges: names of 127 and 128 ASCII characters, a node over 128 and over 16384 bytes.
    (i, x, y) => Node({ op_type: 'Relu', name: 'a'.repeat(127), input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Relu', name: 'b'.repeat(128), input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Relu', name: 'c'.repeat(20000), input: [x], output: [y] }),
    (i, x, y) => Node({ op_type: 'Sum', input: [x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x], output: [y] }),
    // Left to protobufjs whole.
    (i, x, y) => Node({ op_type: 'Relu', input: [x], output: [y], metadata_props: [createMessage<StringStringEntryProto>(T.StringStringEntry, { key: 'k', value: `${i}` })] }),
  ];
  const nodes: NodeProto[] = [];
  for (let i = 0; i < 3 * 4096; i++) nodes.push(forms[i % forms.length](i, i ? `v${i - 1}` : 'x', `v${i}`));
  const proto = T.Model.fromObject({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'g', input: [{ name: 'x' }], output: [{ name: `v${nodes.length - 1}` }] } });
  (proto as unknown as { graph: GraphProto }).graph.node = nodes;
  const model = decodeModel(T.Model.encode(proto).finish());
  const protobufjs = () => Buffer.from(T.Model.encode(model.proto as unknown as protobuf.Message).finish());
  t.ok(protobufjs().equals(encodeModel(model)), 'the same bytes as protobufjs encodes');
  // Decoding replaced the lone surrogates (not UTF-8) and left out the null name: the names as they were made, put back.
  model.proto.graph!.node.forEach((n, i) => (n.name = nodes[i].name));
  t.ok(protobufjs().equals(encodeModel(model)), 'also with lone surrogates in names');
  // A save encodes in turns of the event loop, the batches between them: the same bytes.
  const file = path.join(tempDir(t), 'large.onnx');
  await saveModel(model, file);
  t.ok(fs.readFileSync(file).equals(protobufjs()), 'a save: the same bytes');
  // The same graph as an If's branch, encoded inside its node: batched as well, the same bytes.
  const branch = createMessage<GraphProto>(T.Graph, { name: 'then', node: model.proto.graph!.node, output: model.proto.graph!.output });
  const cond = createMessage<NodeProto>(T.Node, { op_type: 'If', input: ['c'], output: ['y'], attribute: [
    createMessage<AttributeProto>(T.Attribute, { name: 'then_branch', type: AttributeType.GRAPH, g: branch }),
    createMessage<AttributeProto>(T.Attribute, { name: 'else_branch', type: AttributeType.GRAPH, g: branch }),
  ] });
  const outer = T.Model.fromObject({ ir_version: 8, opset_import: [{ domain: '', version: 17 }], graph: { name: 'outer', input: [{ name: 'c' }, { name: 'x' }], output: [{ name: 'y' }] } });
  (outer as unknown as { graph: GraphProto }).graph.node = [cond];
  const nested = decodeModel(T.Model.encode(outer).finish());
  const nestedFile = path.join(tempDir(t), 'nested.onnx');
  await saveModel(nested, nestedFile);
  t.ok(fs.readFileSync(nestedFile).equals(Buffer.from(T.Model.encode(nested.proto as unknown as protobuf.Message).finish())), 'a subgraph: the same bytes');
});

t.test('two saves of one model at once, one moving its weights to external data: each file as saved alone, the model as it was', async (t) => {
  const b = new ModelBuilder().input('x', [1, 4]);
  let last = 'x';
  // 300 initializers: the encode of either save takes several turns, so the two interleave.
  for (let i = 0; i < 300; i++) {
    const n = i % 3 ? 5 : 1000 + i;
    b.initializer(`w${i}`, [n], randomFloats(n, i));
    b.node('ReduceSum', [`w${i}`], [`s${i}`], { keepdims: 0 });
    b.node('Add', [last, `s${i}`], [`a${i}`]);
    last = `a${i}`;
  }
  b.output(last, [1, 4]);
  const before = encodeModel(b.model);
  const dir = tempDir(t);
  const alone = { inline: path.join(dir, 'inline-alone.onnx'), external: path.join(dir, 'external-alone.onnx') };
  await saveModel(b.model, alone.inline, { externalData: 'never' });
  await saveModel(b.model, alone.external, { externalData: 'always', externalDataThreshold: 1024, externalDataFile: 'external.data' });
  const both = { inline: path.join(dir, 'inline.onnx'), external: path.join(dir, 'external.onnx') };
  await Promise.all([
    saveModel(b.model, both.external, { externalData: 'always', externalDataThreshold: 1024, externalDataFile: 'external.data' }),
    saveModel(b.model, both.inline, { externalData: 'never' }),
  ]);
  t.ok(fs.readFileSync(both.inline).equals(fs.readFileSync(alone.inline)), 'the inline save');
  t.ok(fs.readFileSync(both.external).equals(fs.readFileSync(alone.external)), 'the external save');
  t.ok(encodeModel(b.model).equals(before), 'the model in memory as it was');
});

t.test('a save writes the bytes encodeModel() gives: large tensors from their own memory between staged small fields', async (t) => {
  // Tensors of 64 KiB and more are written from their own arrays, everything else is staged in 1 MiB
  // buffers, resumed after each large tensor: small and large in every order, the stage filling up
  // mid-run, and a field longer than a stage (a 1.5 MB doc string).
  const b = new ModelBuilder().input('x', [1, 4]);
  let seed = 3;
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) >>> 0) >>> 8) % n;
  let last = 'x';
  for (let i = 0; i < 60; i++) {
    const large = rand(3) === 0;
    const n = large ? (64 << 10) / 4 + rand(40000) : 1 + rand(15000);
    b.initializer(`w${i}`, [n], randomFloats(n, i));
    b.node('ReduceSum', [`w${i}`], [`s${i}`], { keepdims: 0 });
    b.node('Add', [last, `s${i}`], [`a${i}`]);
    last = `a${i}`;
  }
  b.output(last, [1, 4]);
  b.model.proto.doc_string = 'd'.repeat(1_500_000);
  const bytes = encodeModel(b.model);
  const file = path.join(tempDir(t), 'staged.onnx');
  const saved = await saveModel(b.model, file, { externalData: 'never' });
  t.equal(saved.bytes, bytes.byteLength);
  t.ok(fs.readFileSync(file).equals(bytes), `${(bytes.byteLength / 1e6).toFixed(1)} MB, the same bytes`);
  t.equal(encodedBytes(b.model), bytes.byteLength, 'encodedBytes() counts them without encoding');
});

t.test('a save of several write slices (flushed to disk while the rest is written) writes the same bytes', async (t) => {
  // 38 MB of weights and small tensors between them: three 16 MiB slices, two flushes before the last sync.
  const b = new ModelBuilder().input('x', [1, 4]);
  let last = 'x';
  for (let i = 0; i < 5; i++) {
    const n = i % 2 ? 97 : (12 << 20) / 4 + 13 * i;
    b.initializer(`w${i}`, [n], randomFloats(n, i + 40));
    b.node('ReduceSum', [`w${i}`], [`s${i}`], { keepdims: 0 });
    b.node('Add', [last, `s${i}`], [`a${i}`]);
    last = `a${i}`;
  }
  b.output(last, [1, 4]);
  const bytes = encodeModel(b.model);
  const file = path.join(tempDir(t), 'slices.onnx');
  const saved = await saveModel(b.model, file, { externalData: 'never' });
  t.ok(bytes.byteLength > 2 * (16 << 20), `${(bytes.byteLength / 1e6).toFixed(1)} MB`);
  t.equal(saved.bytes, bytes.byteLength);
  t.ok(fs.readFileSync(file).equals(bytes), 'the same bytes');
  t.same(fs.readdirSync(path.dirname(file)), ['slices.onnx'], 'no staging folder left');
});

t.test('element types: raw_data and typed fields decode to the right typed arrays', async (t) => {
  const T = onnxTypes().Tensor;
  const typed = (fields: Partial<TensorProto>) => new Tensor(createMessage<TensorProto>(T, fields));
  const cases: [string, Tensor, ArrayLike<number | bigint>][] = [
    ['float32 raw', Tensor.create('a', DataType.FLOAT, [2], new Float32Array([1.5, -2])), [1.5, -2]],
    ['float32 field', typed({ data_type: DataType.FLOAT, dims: [2], float_data: [1.5, -2] }), [1.5, -2]],
    ['float64 field', typed({ data_type: DataType.DOUBLE, dims: [1], double_data: [0.1] }), [0.1]],
    ['int8 field', typed({ data_type: DataType.INT8, dims: [2], int32_data: [-5, 7] }), [-5, 7]],
    ['uint8 raw', Tensor.create('u', DataType.UINT8, [2], new Uint8Array([200, 3])), [200, 3]],
    ['bool field', typed({ data_type: DataType.BOOL, dims: [2], int32_data: [1, 0] }), [1, 0]],
    ['int64 field', typed({ data_type: DataType.INT64, dims: [2], int64_data: [-3, 2 ** 40] }), [-3n, 2n ** 40n]],
    ['uint64 field', typed({ data_type: DataType.UINT64, dims: [1], uint64_data: [7] }), [7n]],
    ['uint32 field', typed({ data_type: DataType.UINT32, dims: [1], uint64_data: [4000000000] }), [4000000000]],
    ['float16 field (bits)', typed({ data_type: DataType.FLOAT16, dims: [1], int32_data: [numberToFloat16Bits(0.5)] }), [0x3800]],
    ['bfloat16 field (bits)', typed({ data_type: DataType.BFLOAT16, dims: [1], int32_data: [numberToBfloat16Bits(2)] }), [0x4000]],
  ];
  for (const [what, tensor, expected] of cases) t.same(Array.from(tensor.data as ArrayLike<number>), Array.from(expected), what);
  const h = typed({ data_type: DataType.FLOAT16, dims: [3], int32_data: [0x3c00, 0xc000, 0x3555] });
  t.same(Array.from(h.toFloat32()), [1, -2, Math.fround(0.333251953125)], 'float16 converts to float32');
  const bf = typed({ data_type: DataType.BFLOAT16, dims: [1], int32_data: [0x3fc0] });
  t.same(Array.from(bf.toFloat32()), [1.5], 'bfloat16 converts to float32');

  // A typed-field tensor that changes is rewritten as raw_data and reads back the same.
  const f = typed({ data_type: DataType.FLOAT, dims: [2], float_data: [1, 2] });
  const d = f.mutableData() as Float32Array;
  d[0] = 10;
  t.equal(f.changed, true);
  t.same(f.proto.float_data, []);
  t.same(Array.from(new Float32Array(Uint8Array.from(f.proto.raw_data).buffer)), [10, 2]);
});

t.test('a view of unaligned raw_data is copied, an aligned one is not', async (t) => {
  const det = await loadModel(OCR_MODELS.det.file);
  let views = 0;
  let copies = 0;
  for (const n of det.graph.nodes) {
    if (n.opType !== 'Constant') continue;
    const tensor = det.graph.constant(n.outputs[0])!;
    const raw = tensor.proto.raw_data;
    const d = tensor.data;
    if (raw.byteLength === 0) continue;
    if (d.buffer === raw.buffer) views++;
    else copies++;
  }
  t.ok(views > 0, `${views} tensors are views of the file bytes`);
  t.ok(copies > 0, `${copies} unaligned tensors were copied`);
});

t.test("a model read from the caller's bytes owns its tensors: the bytes changed after leave it as it was", async (t) => {
  // Tensors past one slice of the copy (1 MiB) and small ones, float data and a string attribute.
  const b = new ModelBuilder().input('x', [1, 4]);
  const sizes = [3, (1 << 20) + 5, 70_000, 1];
  sizes.forEach((n, i) => {
    b.initializer(`w${i}`, [n], randomFloats(n, 20 + i));
    b.node('ReduceSum', [`w${i}`], [`s${i}`], { keepdims: 0 });
  });
  b.node('Identity', ['x'], ['y']).output('y', [1, 4]);
  const bytes = encodeModel(b.build());
  const want = encodeModel(decodeModel(bytes));
  for (const [name, read] of [['loadModel', () => loadModel(bytes)], ['decodeModel', async () => decodeModel(bytes)]] as const) {
    const copy = Buffer.from(bytes);
    const model = await read();
    bytes.fill(0xee);
    t.ok(encodeModel(model).equals(want), `${name}: the model encodes as before the bytes changed`);
    sizes.forEach((n, i) => t.equal(model.graph.constant(`w${i}`)!.data.buffer === bytes.buffer, false, `${name}: w${i} (${n}) is not a view of the bytes`));
    copy.copy(bytes);
  }
});

t.test('a file of many read pieces (4 MiB) is read two pieces at a time, every byte in place, external data too', async (t) => {
  const n = ((64 << 20) + 12_344) / 4; // whole pieces and a partial last one, past the .onnx header's offset
  const big = new Float32Array(n);
  for (let i = 0; i < n; i++) big[i] = i * 0.5 - 7;
  const b = new ModelBuilder()
    .input('x', [1, 4])
    .initializer('inline', [n], big)
    .initializer('early', [n + 9000], Float32Array.from({ length: n + 9000 }, (_, i) => i % 1000))
    .initializer('outside', [n + 8192], Float32Array.from({ length: n + 8192 }, (_, i) => -i))
    .node('ReduceSum', ['inline'], ['s'], { keepdims: 0 })
    .node('ReduceSum', ['outside'], ['u'], { keepdims: 0 })
    .node('Identity', ['x'], ['y'])
    .output('y', [1, 4]);
  const model = b.build();
  const outside = model.graph.initializers.get('outside')!;
  const file = path.join(tempDir(t), 'pieces.onnx');
  // The threshold between the large sizes: 'early' and 'outside' (32 KiB and more larger) go to
  // external data, 'outside' at an offset in it.
  await saveModel(model, file, { externalData: 'always', externalDataThreshold: (64 << 20) + 20_000 });
  const loaded = await loadModel(file);
  t.equal(loaded.graph.initializers.get('inline')!.external, false, 'the large inline tensor stayed in the .onnx');
  t.ok(Buffer.from((loaded.graph.initializers.get('inline')!.data as Float32Array).buffer, (loaded.graph.initializers.get('inline')!.data as Float32Array).byteOffset, n * 4).equals(Buffer.from(big.buffer)), 'the inline tensor, byte for byte');
  const ext = loaded.graph.initializers.get('outside')!;
  t.equal(ext.external, true, 'the other one was in external data');
  t.ok(Number(ext.proto.external_data.find((e) => e.key === 'offset')?.value) > 0, 'at an offset');
  t.ok(Buffer.from((ext.data as Float32Array).buffer, (ext.data as Float32Array).byteOffset, (n + 8192) * 4).equals(Buffer.from((outside.data as Float32Array).buffer, (outside.data as Float32Array).byteOffset, (n + 8192) * 4)), 'the external tensor, byte for byte');
});

t.test('readFully: short reads finished where they stopped; a failure stops both readers and is the one thrown', async (t) => {
  const source = Buffer.from(Array.from({ length: (9 << 20) + 77 }, (_, i) => (i * 7) % 251));
  const reads: number[] = [];
  // A file that gives at most 1 MiB + 3 bytes a call, from position 5 of `source`.
  const handle = (fail?: number) => ({
    read: async (into: Uint8Array, offset: number, length: number, position: number) => {
      reads.push(position);
      await new Promise((r) => setImmediate(r));
      if (fail !== undefined && position >= fail) throw new Error(`EIO at ${position}`);
      const n = Math.min(length, (1 << 20) + 3, source.byteLength - position);
      into.set(source.subarray(position, position + n), offset);
      return { bytesRead: n, buffer: into };
    },
  });
  const ended = () => new RedppError('IO_ERROR', 'ended');
  const bytes = new Uint8Array(source.byteLength - 5);
  await readFully(handle() as never, bytes, 5, ended);
  t.ok(Buffer.from(bytes).equals(source.subarray(5)), `every byte in place (${reads.length} reads)`);
  await t.rejects(readFully(handle() as never, new Uint8Array(source.byteLength), 5, ended), { code: 'IO_ERROR', message: 'ended' }, 'a file that ends first');
  reads.length = 0;
  await t.rejects(readFully(handle(4 << 20) as never, new Uint8Array(source.byteLength - 5), 5, ended), { message: /^EIO at / });
  const after = reads.filter((p) => p >= (8 << 20) + 5);
  t.same(after, [], 'no piece is claimed after the failure');
});

t.test('external data: written beside the model, read back, and run by onnxruntime', async (t) => {
  const dir = tempDir(t);
  const w = randomFloats(64 * 32, 3);
  const b = new ModelBuilder()
    .input('x', [1, 64])
    .initializer('w', [64, 32], w)
    .initializer('small', [32], randomFloats(32, 4))
    .node('MatMul', ['x', 'w'], ['mm'])
    .node('Add', ['mm', 'small'], ['y'])
    .output('y', [1, 32]);
  const model = b.build();
  const file = path.join(dir, 'ext.onnx');
  const r = await saveModel(model, file, { externalData: 'always', externalDataThreshold: 1024 });
  t.equal(r.externalTensors, 1, 'only the tensor over the threshold goes out');
  t.equal(r.externalDataPath, path.join(dir, 'ext.onnx.data'));
  t.ok(fs.statSync(r.externalDataPath!).size >= w.byteLength);
  t.equal(model.graph.initializers.get('w')!.external, false, 'the in-memory model is left as it was');

  const loaded = await loadModel(file);
  const wt = loaded.graph.initializers.get('w')!;
  t.equal(wt.external, true);
  t.same(Array.from(wt.data as Float32Array), Array.from(w));
  const x = new ort.Tensor('float32', randomFloats(64, 5), [1, 64]);
  const expected = await runModel(model, { x });
  t.ok(sameBits((await runModel(file, { x })).y, expected.y), 'onnxruntime reads the external data');

  // Saving the loaded model elsewhere keeps the tensor external ('auto'); 'never' brings it inline.
  const again = path.join(dir, 'again.onnx');
  t.equal((await saveModel(loaded, again)).externalTensors, 1);
  const inline = path.join(dir, 'inline.onnx');
  const ri = await saveModel(loaded, inline, { externalData: 'never' });
  t.equal(ri.externalTensors, 0);
  t.ok(sameBits((await runModel(inline, { x })).y, expected.y));
  t.ok(sameBits((await runModel(encodeModel(loaded), { x })).y, expected.y), 'encodeModel inlines external data');
  t.equal(encodedBytes(loaded), encodeModel(loaded).byteLength, 'encodedBytes() counts external data inline, as encodeModel writes it');

  // Bytes with external data need the directory; with it they load.
  const bytes = fs.readFileSync(file);
  await t.rejects(loadModel(bytes), { code: 'EXTERNAL_DATA_MISSING' });
  t.same(Array.from((await loadModel(bytes, { baseDir: dir })).graph.initializers.get('w')!.data as Float32Array), Array.from(w));
});

t.test('a model over the protobuf limit moves weights out (auto) or fails cleanly (never)', async (t) => {
  const dir = tempDir(t);
  const model = new ModelBuilder()
    .input('x', [1, 256])
    .initializer('w1', [256, 256], randomFloats(256 * 256, 6))
    .initializer('w2', [256, 8], randomFloats(256 * 8, 7))
    .node('MatMul', ['x', 'w1'], ['h'])
    .node('MatMul', ['h', 'w2'], ['y'])
    .output('y', [1, 8])
    .build();
  const limit = 100_000; // w1 alone is 262144 bytes
  const file = path.join(dir, 'big.onnx');
  const r = await saveModel(model, file, { maxProtobufBytes: limit });
  t.equal(r.externalTensors, 1, 'the largest tensor went to external data');
  t.ok(r.bytes <= limit);
  const x = new ort.Tensor('float32', randomFloats(256, 8), [1, 256]);
  t.ok(sameBits((await runModel(file, { x })).y, (await runModel(model, { x })).y));

  const never = path.join(dir, 'never.onnx');
  await t.rejects(saveModel(model, never, { externalData: 'never', maxProtobufBytes: limit }), { code: 'MODEL_TOO_LARGE' });
  t.notOk(fs.existsSync(never), 'no file is written');
  t.throws(() => encodeModel(model, { maxProtobufBytes: limit }), { code: 'MODEL_TOO_LARGE' });
  t.same(fs.readdirSync(dir).sort(), ['big.onnx', 'big.onnx.data'], 'no temporary files left');
});

t.test('saving is atomic: temp file in the target directory, then rename', async (t) => {
  const dir = tempDir(t);
  const model = await loadModel(OCR_MODELS.rec.file);
  const target = path.join(dir, 'rec.onnx');
  fs.writeFileSync(target, 'old contents');
  const size = fs.statSync(OCR_MODELS.rec.file).size;

  // Watch the target while the save runs: it must only ever hold the old or the complete new bytes.
  const seen = new Set<number>();
  let polling = true;
  const poll = async () => {
    while (polling) {
      seen.add(fs.statSync(target).size);
      await new Promise((r) => setImmediate(r));
    }
  };
  const renames: [string, string][] = [];
  const realRename = fs.promises.rename;
  fs.promises.rename = async (from, to) => {
    renames.push([String(from), String(to)]);
    t.equal(fs.readFileSync(target, 'utf8'), 'old contents', 'the target is untouched until the rename');
    return realRename(from, to);
  };
  try {
    const poller = poll();
    await saveModel(model, target);
    polling = false;
    await poller;
  } finally {
    fs.promises.rename = realRename;
  }
  t.same([...seen].filter((s) => s !== 'old contents'.length && s !== size), [], 'never a partial file');
  t.equal(renames.length, 1);
  t.equal(path.dirname(path.dirname(renames[0][0])), dir, 'the staged file is in a folder in the target directory');
  t.equal(path.basename(renames[0][0]), 'rec.onnx', 'under its final name');
  t.equal(fs.statSync(target).size, size);

  // A failure before the rename leaves the old file and no temp file behind.
  fs.promises.rename = async () => {
    throw Object.assign(new Error('disk on fire'), { code: 'EIO' });
  };
  try {
    await t.rejects(saveModel(model, target), { code: 'IO_ERROR' });
  } finally {
    fs.promises.rename = realRename;
  }
  t.same(fs.readdirSync(dir), ['rec.onnx']);
  t.equal(fs.statSync(target).size, size);
});

t.test("redpp's NodeProto decoder gives the messages protobufjs's generated one gives", async (t) => {
  // A second schema root: its types keep protobufjs's generated decoders.
  const generated = protobuf.parse(ONNX_ML_PROTO, { keepCase: true }).root.lookupType('onnx.ModelProto');
  const ours = onnxTypes().Model;
  const nodesOf = (m: protobuf.Message): NodeProto[] => {
    const out: NodeProto[] = [];
    const visit = (g: GraphProto) => {
      for (const n of g.node) {
        out.push(n);
        for (const a of n.attribute) for (const sub of [...(a.g ? [a.g] : []), ...a.graphs]) visit(sub);
      }
    };
    visit((m as unknown as { graph: GraphProto }).graph);
    return out;
  };
  // Nodes with no, one and several inputs and outputs, optional '' inputs, names and doc strings or none,
  // attributes, metadata, an If with subgraphs, and a field number the schema does not know.
  const branch = (name: string) => ({ name, node: [{ op_type: 'Identity', input: ['x'], output: [`${name}_y`] }], output: [{ name: `${name}_y` }] });
  const handMade = onnxTypes().Model.encode(
    onnxTypes().Model.fromObject({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        input: [{ name: 'x' }, { name: 'c' }],
        node: [
          { op_type: 'Relu', input: ['x'], output: ['a'] },
          { op_type: 'Clip', name: 'clip', doc_string: 'why', input: ['a', '', 'c'], output: ['b'], domain: 'ai.onnx' },
          { op_type: 'Split', input: ['b'], output: ['s0', 's1', 's2'], attribute: [{ name: 'axis', type: 2, i: 1 }], metadata_props: [{ key: 'k', value: 'v' }] },
          { op_type: 'If', input: ['c'], output: ['y'], attribute: [{ name: 'then_branch', type: 5, g: branch('t') }, { name: 'else_branch', type: 5, g: branch('e') }] },
          { op_type: 'Custom', domain: 'my.domain', overload: 'o' },
        ],
        output: [{ name: 'y' }],
      },
    }),
  ).finish();
  // Field 15 (a varint) appended to the first node, bytes put together by hand: both decoders must skip it.
  const unknownField = (() => {
    const T = onnxTypes();
    const m = T.Model.decode(handMade) as unknown as { graph: GraphProto };
    const nodes = m.graph.node.map((n) => T.Node.encode(n as unknown as protobuf.Message).finish());
    nodes[0] = Uint8Array.from([...nodes[0], 15 << 3, 7]);
    const rest = T.Graph.encode(T.Graph.fromObject({ ...T.Graph.toObject(m.graph as unknown as protobuf.Message), node: [] })).finish();
    const graph = protobuf.Writer.create();
    for (const n of nodes) graph.uint32((1 << 3) | 2).bytes(n);
    const model = protobuf.Writer.create();
    model.uint32(1 << 3).int64(8);
    model.uint32((8 << 3) | 2).bytes(T.OperatorSetId.encode(T.OperatorSetId.fromObject({ domain: '', version: 17 })).finish());
    model.uint32((7 << 3) | 2).bytes(Uint8Array.from([...graph.finish(), ...rest]));
    return model.finish();
  })();
  // Inputs that name recent outputs (decoded as that output's string) or nearly do: non-ASCII, 127 and
  // 128 characters long, a prefix and an extension of one, further back than the decoder looks, empty.
  const long = 'v'.repeat(126);
  const names = ['a', 'é', `${long}1`, `${long}12`, 'ab', 'abc', ...Array.from({ length: 9 }, (_, i) => `p${i}`)];
  const readsBack = onnxTypes().Model.encode(
    onnxTypes().Model.fromObject({
      ir_version: 8,
      opset_import: [{ domain: '', version: 17 }],
      graph: {
        name: 'g',
        input: [{ name: 'x' }],
        node: [
          ...names.map((o, i) => ({ op_type: 'Relu', input: [i ? names[i - 1] : 'x'], output: [o] })),
          { op_type: 'Sum', input: ['p8', 'ab', 'abc', 'é', '', `${long}1`, `${long}12`, 'a', 'p0', 'ab'], output: ['y'] },
          { op_type: 'Relu', input: ['a'], output: ['ab'] },
          { op_type: 'Relu', input: ['abcd', 'p', 'y'], output: ['z'] },
        ],
        output: [{ name: 'z' }],
      },
    }),
  ).finish();
  const cases: [string, Uint8Array][] = [
    ['hand-made', handMade],
    ['inputs naming recent outputs', readsBack],
    // A plain Uint8Array: protobufjs's Reader rather than its BufferReader.
    ['inputs naming recent outputs, not a Buffer', Uint8Array.from(readsBack)],
    ['an unknown field', unknownField],
    ...Object.entries(OCR_MODELS).map(([name, { file }]) => [name, fs.readFileSync(file)] as [string, Uint8Array]),
  ];
  for (const [name, bytes] of cases) {
    const a = ours.decode(bytes);
    const b = generated.decode(bytes);
    const [na, nb] = [nodesOf(a), nodesOf(b)];
    t.equal(na.length, nb.length, `${name}: as many nodes`);
    t.ok(na.every((n) => n instanceof onnxTypes().Node.ctor), `${name}: every node a NodeProto instance`);
    // The generated constructor gives every node its own metadata_props and device_configurations
    // lists; ours only the nodes the file fills them for (made when met, so later in the key order),
    // the rest read the prototype's empty list.
    const ownedWhenFilled = ['metadata_props', 'device_configurations'];
    const keys = (n: NodeProto, filled: boolean) =>
      Object.keys(n).filter((k) => !ownedWhenFilled.includes(k) || (filled && (n as unknown as Record<string, unknown[]>)[k].length > 0));
    t.ok(
      na.every((n, i) => JSON.stringify(keys(n, false)) === JSON.stringify(keys(nb[i], false))),
      `${name}: the same own fields in the same order (field presence kept)`,
    );
    t.ok(
      na.every((n, i) => JSON.stringify(keys(n, true).sort()) === JSON.stringify(keys(nb[i], true).sort())),
      `${name}: metadata_props and device_configurations own lists where filled`,
    );
    const opts = { longs: String, bytes: String, defaults: false };
    t.same(ours.toObject(a, opts), generated.toObject(b, opts), `${name}: the same content`);
    t.ok(Buffer.from(ours.encode(a).finish()).equals(Buffer.from(generated.encode(b).finish())), `${name}: the same bytes once encoded`);
  }
  // Errors where the generated decoder has them: a node cut short, and nesting past the limit.
  const truncated = handMade.subarray(0, handMade.length - 40);
  t.throws(() => generated.decode(truncated));
  t.throws(() => ours.decode(truncated));
  // Cut at every byte of the last nodes (inside names that match a recent output among them): an
  // error from both or the same messages.
  const outcome = (type: protobuf.Type, bytes: Uint8Array) => {
    try {
      return JSON.stringify(type.toObject(type.decode(bytes), { longs: String, bytes: String, defaults: false }));
    } catch {
      return 'error';
    }
  };
  const differ: number[] = [];
  for (let cut = readsBack.length - 400; cut < readsBack.length; cut++) {
    for (const bytes of [readsBack.subarray(0, cut), Uint8Array.from(readsBack.subarray(0, cut))]) {
      if (outcome(ours, bytes) !== outcome(generated, bytes)) differ.push(cut);
    }
  }
  t.same(differ, [], 'cut short anywhere in its last 400 bytes: the same outcome from both decoders');
});

t.test("the schema set up in turns: the event loop runs between them, and every caller gets onnxTypes()'s types", async (t) => {
  // In processes of their own: this one's schema is set up already.
  const proto = path.join(__dirname, '..', 'dist', 'lib', 'model', 'proto.js');
  const run = (middle: string) => {
    const script = `
      const { onnxTypes, onnxTypesInTurns } = require(${JSON.stringify(proto)});
      let turns = 0;
      let counting = true;
      const count = () => { turns++; if (counting) setImmediate(count); };
      setImmediate(count);
      (async () => {
        const first = onnxTypesInTurns();
        const second = onnxTypesInTurns();
        ${middle}
        const [a, b] = await Promise.all([first, second]);
        counting = false;
        const c = onnxTypes();
        const m = a.Model.fromObject({ ir_version: 8, graph: { node: [{ op_type: 'Relu', input: ['x'], output: ['y'] }] } });
        process.stdout.write(JSON.stringify({ turns, same: a === b && b === c, decoder: a.Node.decode.name, opType: a.Model.decode(a.Model.encode(m).finish()).graph.node[0].op_type }));
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { turns: number; same: boolean; decoder: string; opType: string };
  };
  const inTurns = run('');
  t.ok(inTurns.turns >= 4, `the event loop turned ${inTurns.turns} times while the schema was set up`);
  // A synchronous caller while the turns go on: it finishes the setup, the others take its types.
  const interrupted = run('await new Promise((r) => setImmediate(() => setImmediate(r))); onnxTypes();');
  for (const [what, out] of [['two callers in turns', inTurns], ['a synchronous caller between turns', interrupted]] as const) {
    t.ok(out.same, `${what}: one set of types for every caller`);
    t.equal(out.decoder, 'decodeNode', `${what}: redpp's NodeProto decoder in place`);
    t.equal(out.opType, 'Relu', `${what}: a model round-trips`);
  }
});

t.test('reading a model keeps the compact NodeProto decoder in place', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'relus.onnx');
  const b = new GraphBuilder(13, 1);
  let x = b.input('x', [1, 4]);
  for (let i = 0; i < 3; i++) x = b.op('Relu', [x]);
  b.output(x, [1, 4]);
  await saveModel(b.model(), file);
  const model = await loadModel(file);
  t.same(model.graph.nodes.map((n) => n.opType), ['Relu', 'Relu', 'Relu'], 'the nodes are read');
  // protobufjs's setup() generates a type's decoder afresh: run after redpp's was installed, it put the
  // generated one back (300 MB more at 10^6 nodes).
  t.equal(onnxTypes().Node.decode.name, 'decodeNode', "redpp's decoder is the one in place after a read");
  // The type is set up with its codecs only; the first verify() or fromObject() runs protobufjs's setup().
  const Node = onnxTypes().Node;
  t.equal(Node.verify({ op_type: 'Relu' }), null, 'verify() works');
  t.equal((Node.fromObject({ op_type: 'Relu', input: ['a'] }) as unknown as NodeProto).op_type, 'Relu', 'fromObject() works');
  t.equal(Node.decode.name, 'decodeNode', "redpp's decoder still in place after protobufjs's setup()");
  Node.setup();
  t.equal(Node.decode.name, 'decodeNode', 'and after another setup()');
  t.same((await loadModel(file)).graph.nodes.map((n) => n.opType), ['Relu', 'Relu', 'Relu'], 'and reads the model');
});
