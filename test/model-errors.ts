import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { DataType, RedppError, decodeModel, loadModel, saveModel, encodeModel } from '../lib/index';
import { createMessage, onnxTypes, type StringStringEntryProto, type TensorProto } from '../lib/model/proto';
import { ModelBuilder, OCR_MODELS, randomFloats, tempDir } from './helpers/onnx-builder';

const small = () =>
  new ModelBuilder()
    .input('x', [1, 4])
    .initializer('w', [4, 2], randomFloats(8, 1))
    .node('MatMul', ['x', 'w'], ['y'], {}, { name: 'mm' })
    .output('y', [1, 2]);

t.test('bytes that are not ONNX: NOT_ONNX', async (t) => {
  await t.rejects(loadModel(Buffer.alloc(0)), { code: 'NOT_ONNX', message: /empty/ });
  await t.rejects(loadModel(Buffer.from('{"not": "a model"}')), { code: 'NOT_ONNX' });
  await t.rejects(loadModel(Buffer.from(randomFloats(1000, 9).buffer)), { code: 'NOT_ONNX' });
  // A valid protobuf that is not a ModelProto (a bare TensorProto).
  const tensor = onnxTypes().Tensor.encode(
    createMessage<TensorProto>(onnxTypes().Tensor, { name: 'w', data_type: 1, dims: [1], float_data: [1] }),
  ).finish();
  await t.rejects(loadModel(tensor), { code: 'NOT_ONNX' });
  const dir = tempDir(t);
  const text = path.join(dir, 'model.onnx');
  fs.writeFileSync(text, 'ir_version: 8\ngraph { }\n');
  await t.rejects(loadModel(text), { code: 'NOT_ONNX' });
  await t.rejects(loadModel(text), RedppError);
});

t.test('a truncated file: TRUNCATED_MODEL', async (t) => {
  const bytes = fs.readFileSync(OCR_MODELS.cls.file);
  for (const keep of [100, 4096, bytes.length >> 1, bytes.length - 1]) {
    await t.rejects(loadModel(bytes.subarray(0, keep)), { code: 'TRUNCATED_MODEL' }, `first ${keep} bytes`);
  }
});

t.test('an ONNX file damaged inside its graph: INVALID_MODEL', async (t) => {
  const bytes = Buffer.from(fs.readFileSync(OCR_MODELS.cls.file));
  // The graph's node list starts near the beginning; scribble over a node's fields there.
  bytes.fill(0xff, 40, 60);
  await t.rejects(loadModel(bytes), { code: 'INVALID_MODEL', message: /corrupt/ });
});

t.test('a graph that reads an undefined value: MISSING_VALUE', async (t) => {
  const m = small().model;
  m.graph.nodes[0].setInput(1, 'nowhere');
  await t.rejects(loadModel(encodeModel(m)), { code: 'MISSING_VALUE', message: /node 'mm' \(MatMul\) reads 'nowhere'/ });
  const out = small().model;
  out.proto.graph!.output[0].name = 'ghost';
  await t.rejects(loadModel(encodeModel(out)), { code: 'MISSING_VALUE', message: /graph output 'ghost'/ });
  // A subgraph may read values of the enclosing graph; one that reads nothing defined fails.
  const sub = small().model;
  const body = small().model.proto.graph!;
  body.input.length = 0;
  body.node[0].input[0] = 'y';
  body.output[0].name = 'y2';
  body.node[0].output[0] = 'y2';
  sub.graph.addNode({ opType: 'If', inputs: ['cond'], outputs: ['z'] });
  sub.graph.nodes[1].proto.attribute.push(
    createMessage(onnxTypes().Attribute, { name: 'then_branch', type: 5, g: body }),
  );
  await t.rejects(loadModel(encodeModel(sub)), { code: 'MISSING_VALUE', message: /'cond'/ });
});

t.test('element types: UNSUPPORTED_DTYPE for unknown ones, and on access for undecodable ones', async (t) => {
  const m = small().model;
  m.graph.initializers.get('w')!.proto.data_type = 99;
  await t.rejects(loadModel(encodeModel(m)), { code: 'UNSUPPORTED_DTYPE', message: /element type 99/ });
  const zero = small().model;
  zero.graph.initializers.get('w')!.proto.data_type = DataType.UNDEFINED;
  await t.rejects(loadModel(encodeModel(zero)), { code: 'UNSUPPORTED_DTYPE' });

  // complex64 cannot be decoded, but the model loads and round-trips untouched.
  const c = small().model;
  const w = c.graph.initializers.get('w')!.proto;
  w.data_type = DataType.COMPLEX64;
  w.dims = [4, 1];
  const bytes = encodeModel(c);
  const loaded = await loadModel(bytes);
  t.throws(() => loaded.graph.initializers.get('w')!.data, { code: 'UNSUPPORTED_DTYPE', message: /COMPLEX64/ });
  t.ok(encodeModel(loaded).equals(bytes));
});

t.test('tensor data that does not fill its dims: INVALID_MODEL', async (t) => {
  const m = small().model;
  m.graph.initializers.get('w')!.proto.dims = [4, 3];
  await t.rejects(loadModel(encodeModel(m)), { code: 'INVALID_MODEL', message: /raw_data has 32 bytes/ });
});

t.test('external data that is missing or out of reach', async (t) => {
  const dir = tempDir(t);
  const file = path.join(dir, 'm.onnx');
  await saveModel(small().build(), file, { externalData: 'always', externalDataThreshold: 0 });
  fs.rmSync(`${file}.data`);
  await t.rejects(loadModel(file), { code: 'EXTERNAL_DATA_MISSING', message: /m\.onnx\.data/ });

  await saveModel(small().build(), file, { externalData: 'always', externalDataThreshold: 0 });
  fs.truncateSync(`${file}.data`, 8);
  await t.rejects(loadModel(file), { code: 'INVALID_MODEL', message: /has 8 bytes/ });

  const m = small().model;
  const w = m.graph.initializers.get('w')!.proto;
  const S = onnxTypes().StringStringEntry;
  w.raw_data = new Uint8Array(0);
  delete (w as Partial<TensorProto>).raw_data;
  w.data_location = 1;
  w.external_data = [createMessage<StringStringEntryProto>(S, { key: 'location', value: '../../etc/passwd' })];
  await t.rejects(loadModel(encodeModel(m), { baseDir: dir }), { code: 'INVALID_MODEL', message: /inside the model's directory/ });
});

t.test('unreadable paths and bad arguments', async (t) => {
  await t.rejects(loadModel('/nonexistent/model.onnx'), { code: 'IO_ERROR', message: /no such file/ });
  await t.rejects(loadModel(42 as unknown as string), { code: 'INVALID_ARGUMENT' });
  t.throws(() => decodeModel('x' as unknown as Uint8Array), { code: 'INVALID_ARGUMENT' });
  const dir = tempDir(t);
  await t.rejects(saveModel(small().build(), path.join(dir, 'no', 'such', 'dir.onnx')), { code: 'IO_ERROR' });
  await t.rejects(saveModel(small().build(), path.join(dir, 'm.onnx'), { externalData: 'sometimes' as 'auto' }), {
    code: 'INVALID_OPTION',
  });
  t.same(fs.readdirSync(dir), [], 'failed saves leave nothing behind');
});
