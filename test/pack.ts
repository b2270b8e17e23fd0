import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import t from 'tap';

import { DataType, decodeModel, encodeModel, loadModel, type Model, type TensorData } from '../lib/model';
import { GraphBuilder } from '../lib/model/builder';
import { onnxTypes, type ModelProto } from '../lib/model/proto';
import { PACK_MARK, packPass, type PackPassReport } from '../lib/passes/pack';
import { isWeighted } from '../lib/passes/weight-layout';
import { prune } from '../lib/prune';
import { summaryTable } from '../lib/report';

const CLS = path.join(__dirname, '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/** Weights whose every element is one of `pool` random values (as hashing leaves them), as float32 or fp16 bits. */
function few(b: GraphBuilder, base: string, dims: number[], pool: number, opts: { asNode?: boolean; fp16?: boolean } = {}): string {
  const values = b.rng.normals(pool, 0.3);
  const n = dims.reduce((a, c) => a * c, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = values[b.rng.int(pool)];
  if (!opts.fp16) return b.init(base, dims, data, { asNode: opts.asNode });
  const bits = new Uint16Array(n);
  const f16 = new Map(Array.from(values, (v, i) => [v, 0x3000 + i * 37])); // distinct fp16 bit patterns near 0.1..1
  for (let i = 0; i < n; i++) bits[i] = f16.get(data[i])!;
  return b.init(base, dims, bits, { asNode: opts.asNode, dataType: DataType.FLOAT16 });
}

/**
 * Conv (Constant-node weights), depthwise Conv, ConvTranspose (group 1 and 2), Gemm transB 1 and 0,
 * MatMul: every weight layout redpp knows.
 */
function layoutsModel(opset: number): Model {
  const b = new GraphBuilder(opset, 7);
  const x = b.input('x', [1, 8, 6, 6]);
  let y = b.op('Conv', [x, few(b, 'conv_w', [32, 8, 3, 3], 16, { asNode: true }), few(b, 'conv_b', [32], 32, { asNode: true })], {
    kernel_shape: [3, 3],
    pads: [1, 1, 1, 1],
  });
  y = b.op('Relu', [y]);
  y = b.op('Conv', [y, few(b, 'dw_w', [32, 1, 3, 3], 3)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: 32 });
  y = b.op('ConvTranspose', [y, few(b, 'convt_w', [32, 16, 2, 2], 12)], { kernel_shape: [2, 2], strides: [2, 2] });
  y = b.op('ConvTranspose', [y, few(b, 'convt_g_w', [16, 8, 2, 2], 6)], { kernel_shape: [2, 2], strides: [2, 2], group: 2 });
  y = b.op('Flatten', [b.op('GlobalAveragePool', [y])]);
  y = b.op('Gemm', [y, few(b, 'gemm_t_w', [64, 16], 4), few(b, 'gemm_t_b', [64], 64)], { transB: 1 });
  y = b.op('Gemm', [y, few(b, 'gemm_w', [64, 64], 8), few(b, 'gemm_b', [64], 64)], { transB: 0 });
  y = b.op('MatMul', [y, few(b, 'matmul_w', [64, 32], 8)]);
  b.output(y);
  return b.build();
}

/** fp16 weights end to end (Conv and MatMul). */
function fp16Model(): Model {
  const b = new GraphBuilder(13, 3);
  const x = b.input('x', [1, 8, 6, 6], DataType.FLOAT16);
  let y = b.op('Conv', [x, few(b, 'conv_w', [32, 8, 3, 3], 10, { fp16: true })], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  y = b.op('Flatten', [b.op('GlobalAveragePool', [y])]);
  y = b.op('MatMul', [y, few(b, 'matmul_w', [32, 48], 6, { fp16: true, asNode: true })]);
  b.output(y, undefined, DataType.FLOAT16);
  return b.build();
}

/** One Gemm whose neurons have 300 distinct values each (more than uint8 indices address). */
function wideCodesModel(): Model {
  const b = new GraphBuilder(13, 5);
  const x = b.input('x', [1, 1024]);
  b.output(b.op('Gemm', [x, few(b, 'w', [4, 1024], 300)], { transB: 1 }));
  return b.build();
}

/** Runs a model on a fixed input; returns every output's bits. */
async function run(bytes: Uint8Array, shape: number[], fp16 = false, options: ort.InferenceSession.SessionOptions = {}): Promise<Uint32Array[] | Uint16Array[]> {
  const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, ...options });
  const n = shape.reduce((a, c) => a * c, 1);
  const input = new Float32Array(n).map((_, i) => Math.sin(i * 0.37) + 0.1 * Math.cos(i * 1.3));
  const feed = fp16
    ? new ort.Tensor('float16', Uint16Array.from(input, (v) => 0x3c00 + Math.round(v * 100) * 4), shape)
    : new ort.Tensor('float32', input, shape);
  const out = await s.run({ [s.inputNames[0]]: feed });
  await s.release();
  return s.outputNames.map((name) => {
    const d = out[name].data as Float32Array | Uint16Array;
    return d instanceof Uint16Array ? d : new Uint32Array(d.buffer, d.byteOffset, d.length);
  }) as Uint32Array[];
}

function sameBits(t: Tap.Test, a: ArrayLike<number>[], b: ArrayLike<number>[], what: string): void {
  let diff = 0;
  let total = 0;
  for (let o = 0; o < a.length; o++) {
    total += a[o].length;
    for (let i = 0; i < a[o].length; i++) if (a[o][i] !== b[o][i]) diff++;
  }
  t.ok(a.length === b.length && total > 0 && diff === 0, `${what}: ${diff} of ${total} output elements differ`);
}

function bitsOf(d: TensorData): Uint8Array {
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

/** Packs a copy; returns the bytes before and after and the report. */
async function pack(model: Model): Promise<{ plain: Buffer; packed: Buffer; report: PackPassReport }> {
  const plain = encodeModel(model);
  const copy = decodeModel(plain);
  const report = (await packPass().run(copy)) as PackPassReport;
  copy.graph.pruneValueInfo();
  return { plain, packed: encodeModel(copy), report };
}

/** Every weight in `plain` has the same bits in `other`. */
function sameWeights(t: Tap.Test, plain: Model, other: Model): void {
  let checked = 0;
  for (const node of plain.graph.nodes) {
    if (!isWeighted(node)) continue;
    const a = plain.graph.constant(node.input(1))!;
    const b = other.graph.constant(node.input(1));
    if (!b || a.dataType !== b.dataType || a.dims.join() !== b.dims.join() || Buffer.compare(bitsOf(a.data), bitsOf(b.data)) !== 0) {
      t.fail(`${node.label}: weight '${node.input(1)}' not restored`);
    }
    checked++;
  }
  t.ok(checked > 0, `${checked} weights restored bit for bit`);
}

t.test('every weight layout packs, and the packed model computes the same bits', async (t) => {
  for (const opset of [13, 9]) {
    const model = layoutsModel(opset);
    const { plain, packed, report } = await pack(model);
    const form = opset >= 11 ? 'GatherElements' : 'Gather';
    t.same(
      report.layers.map((l) => [l.op, l.geometry, l.gather, l.indexType]),
      [
        ['Conv', 'rows', form, 'uint8'],
        ['Conv', 'rows', form, 'uint8'],
        ['ConvTranspose', 'transposed', form, 'uint8'],
        ['ConvTranspose', 'transposed', form, 'uint8'],
        ['Gemm', 'rows', form, 'uint8'],
        ['Gemm', 'columns', form, 'uint8'],
        ['MatMul', 'columns', form, 'uint8'],
      ],
      `opset ${opset}: all seven layers packed with ${form}`,
    );
    t.ok(packed.byteLength < plain.byteLength * 0.6, `opset ${opset}: ${plain.byteLength} -> ${packed.byteLength} bytes`);
    sameBits(t, await run(plain, [1, 8, 6, 6]), await run(packed, [1, 8, 6, 6]), `opset ${opset}`);
    const back = decodeModel(packed);
    sameWeights(t, model, back);
    t.equal(back.graph.nodes.filter((n) => n.name.includes(PACK_MARK)).length, 0, 'no chain node left after loading');
    t.equal(Buffer.compare(encodeModel(back), plain), 0, `opset ${opset}: re-saving the loaded packed model gives the plain model byte for byte`);
  }
});

t.test('fp16 weights pack into fp16 codebooks, bit-identical', async (t) => {
  const model = fp16Model();
  const { plain, packed, report } = await pack(model);
  t.same(report.layers.map((l) => [l.op, l.dtype, l.geometry]), [['Conv', 'FLOAT16', 'rows'], ['MatMul', 'FLOAT16', 'columns']]);
  // 1-byte indices for 2-byte weights: above half the size, whatever the codebooks.
  t.ok(packed.byteLength < plain.byteLength * 0.85, `${plain.byteLength} -> ${packed.byteLength} bytes`);
  sameBits(t, await run(plain, [1, 8, 6, 6], true), await run(packed, [1, 8, 6, 6], true), 'fp16');
  sameWeights(t, model, decodeModel(packed));
});

t.test('more than 256 values per neuron: uint16 indices', async (t) => {
  const model = wideCodesModel();
  const { plain, packed, report } = await pack(model);
  t.equal(report.layers.length, 1);
  t.equal(report.layers[0].indexType, 'uint16');
  t.ok(report.layers[0].codes > 256, `${report.layers[0].codes} codes`);
  sameBits(t, await run(plain, [1, 1024]), await run(packed, [1, 1024]), 'uint16');
  sameWeights(t, model, decodeModel(packed));
});

t.test('layers whose codebooks would not be smaller stay dense', async (t) => {
  const b = new GraphBuilder(13, 9);
  const x = b.input('x', [1, 64]);
  b.output(b.op('Gemm', [x, b.weights('w', [32, 64])], { transB: 1 })); // every weight distinct
  const { plain, packed, report } = await pack(b.build());
  t.equal(report.layers.length, 0);
  t.match(report.skipped[0].reason, /would not save bytes/);
  t.equal(Buffer.compare(plain, packed), 0, 'the model is unchanged');
});

/** Op types in onnxruntime's optimized copy of a model (basic level: constant folding). */
async function optimizedOps(bytes: Uint8Array): Promise<{ ops: string[]; names: string[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-pack-'));
  try {
    const file = path.join(dir, 'optimized.onnx');
    const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, graphOptimizationLevel: 'basic', optimizedModelFilePath: file });
    await s.release();
    const proto = onnxTypes().Model.decode(fs.readFileSync(file)) as unknown as ModelProto;
    return { ops: proto.graph!.node.map((n) => n.op_type), names: proto.graph!.node.map((n) => n.name) };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

t.test('onnxruntime folds the packed chains at session creation', async (t) => {
  for (const [what, model] of [['opset 13', layoutsModel(13)], ['opset 9', layoutsModel(9)], ['fp16', fp16Model()]] as const) {
    const { plain, packed } = await pack(model);
    const before = await optimizedOps(plain);
    const after = await optimizedOps(packed);
    t.same(after.ops, before.ops, `${what}: the optimized graphs have the same ops`);
    t.notOk(after.ops.includes('GatherElements') || after.ops.includes('Gather'), `${what}: no gather left`);
    t.notOk(after.names.some((n) => n.includes(PACK_MARK)), `${what}: no chain node left`);
  }
});

t.test('the cls PP-OCR model: prune --pack is exact against the unpacked hashed model', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-pack-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const options = { minFanIn: 0, threads: 2, inputShapes: { x: [1, 3, 48, 192] } };
  const hashed = await prune(CLS, options);
  const out = path.join(dir, 'cls.packed.onnx');
  const packed = await prune(CLS, { ...options, pack: true, output: out });
  const plain = encodeModel(hashed.model);
  const packedBytes = fs.readFileSync(out);
  const layers = packed.report.layers.filter((l) => l.packed);
  t.ok(layers.length >= 20, `${layers.length} layers packed`);
  t.ok(layers.every((l) => l.hash && l.packed!.gather === 'Gather'), 'only hashed layers, with Gather (opset 9)');
  t.equal(packed.report.file.after, packedBytes.byteLength);
  t.ok(packed.report.file.after < hashed.report.file.after, `file ${hashed.report.file.after} -> ${packed.report.file.after}`);
  t.same(packed.report.ops, hashed.report.ops, 'the split counts are those of the plain hashed weights');
  t.match(summaryTable(packed.report), /packed {10}\d+ layers: weights/);
  sameBits(t, await run(plain, [1, 3, 48, 192]), await run(packedBytes, [1, 3, 48, 192]), 'cls');
  const back = await loadModel(out);
  sameWeights(t, hashed.model, back);
  t.equal(Buffer.compare(encodeModel(back), plain), 0, 'loading the packed file gives the hashed model byte for byte');
  const opt = await optimizedOps(packedBytes);
  t.notOk(opt.names.some((n) => n.includes(PACK_MARK)), 'onnxruntime folded every chain');
  // Pruning a packed model again works on the plain weights.
  const again = await prune(out, { ...options, beta: 0 });
  t.equal(again.report.params.before, hashed.report.params.after);
});
