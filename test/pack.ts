import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import t from 'tap';

import { decodeModel, loadModel } from '../lib/load';
import { DataType, Tensor, encodeModel, type Model, type TensorData } from '../lib/model';
import { GraphBuilder } from '../lib/model/builder';
import { createMessage, onnxTypes, type ModelProto, type TensorProto } from '../lib/model/proto';
import { LayerPlan } from '../lib/passes/layer-records';
import { PACK_MARK, packPass, type PackOptions } from '../lib/passes/codecs/pack';
import type { PassReport } from '../lib/passes/pass';
import { runPasses } from '../lib/passes/pass';
import { PageRelease, canReleasePages, inSharedMemory, releasePages } from '../lib/kernels/pages';
import { WorkerPool } from '../lib/pool';
import { inProcess, type TaskRunner } from '../lib/passes/tasks';
import { layerTable } from '../lib/layers';
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

/** The model after the pack pass alone, with `options`. */
async function packedWith(model: Model, options: PackOptions): Promise<Model> {
  await runPasses(model, [packPass(options)]);
  model.graph.pruneValueInfo();
  return model;
}

/**
 * Conv (Constant-node weights), depthwise Conv, ConvTranspose (group 1 and 2), Gemm transB 1 and 0,
 * MatMul: every weight layout redpp knows, with 2- to 6-bit indices.
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
  y = b.op('Conv', [y, few(b, 'conv6_w', [21, 32, 3, 3], 40)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  y = b.op('Conv', [y, few(b, 'conv6b_w', [32, 21, 3, 3], 40)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  y = b.op('ConvTranspose', [y, few(b, 'convt_w', [32, 16, 2, 2], 12)], { kernel_shape: [2, 2], strides: [2, 2] });
  y = b.op('ConvTranspose', [y, few(b, 'convt_g_w', [16, 8, 3, 3], 6)], { kernel_shape: [3, 3], strides: [2, 2], group: 2 });
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
  y = b.op('MatMul', [y, few(b, 'matmul_w', [32, 192], 6, { fp16: true, asNode: true })]);
  b.output(y, undefined, DataType.FLOAT16);
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

interface PackedLayer {
  op: string;
  dtype: string;
  codes: number;
  indexBits: number;
}

/** Packs a copy; returns the bytes before and after, the report and the packed layers' records. */
async function pack(model: Model): Promise<{ plain: Buffer; packed: Buffer; report: PassReport; layers: PackedLayer[] }> {
  const plain = encodeModel(model);
  const copy = decodeModel(plain);
  const plan = new LayerPlan(copy);
  const report = await packPass().run(copy, plan);
  copy.graph.pruneValueInfo();
  const layers = plan.records.flatMap((r) => (r.packed ? [{ op: r.op, dtype: r.dtype, ...r.packed }] : []));
  return { plain, packed: encodeModel(copy), report, layers };
}

/** Every weight in `plain` has the same bits in `other`. */
function sameWeights(t: Tap.Test, plain: Model, other: Model): void {
  let checked = 0;
  for (const { node } of layerTable(plain.graph)) {
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
  // Each opset form of the chain: Slice, Mod and ReduceSum's axes move from attributes to ops or inputs.
  for (const opset of [7, 9, 10, 13]) {
    const model = layoutsModel(opset);
    const { plain, packed, report, layers } = await pack(model);
    t.same(
      layers.map((l) => [l.op, l.indexBits]),
      [
        ['Conv', 4],
        ['Conv', 6],
        ['Conv', 6],
        ['ConvTranspose', 4],
        ['ConvTranspose', 3],
        ['Gemm', 2],
        ['Gemm', 3],
        ['MatMul', 3],
      ],
      `opset ${opset}: every layer but the depthwise conv packed, with the narrowest indices`,
    );
    t.match(report.skipped.map((s) => s.reason), [/would not save bytes/], 'the depthwise conv is too small to gain');
    t.ok(packed.byteLength < plain.byteLength * 0.5, `opset ${opset}: ${plain.byteLength} -> ${packed.byteLength} bytes`);
    sameBits(t, await run(plain, [1, 8, 6, 6]), await run(packed, [1, 8, 6, 6]), `opset ${opset}`);
    const back = decodeModel(packed);
    sameWeights(t, model, back);
    t.equal(back.graph.nodes.filter((n) => n.name.includes(PACK_MARK)).length, 0, 'no chain node left after loading');
    t.equal(Buffer.compare(encodeModel(back), plain), 0, `opset ${opset}: re-saving the loaded packed model gives the plain model byte for byte`);
  }
});

/**
 * One Gemm of `neurons` x `fanIn` (odd, so that words of several indices end padded) whose every neuron
 * has exactly `codes` distinct values.
 */
function codesModel(opset: number, codes: number, neurons: number, fanIn: number): Model {
  const b = new GraphBuilder(opset, codes);
  const x = b.input('x', [1, fanIn]);
  const data = new Float32Array(neurons * fanIn);
  for (let n = 0; n < neurons; n++) {
    const values = Array.from({ length: codes }, (_, i) => (i - codes / 2 + n) / codes);
    for (let c = 0; c < fanIn; c++) data[n * fanIn + c] = values[c < codes ? c : b.rng.int(codes)];
  }
  b.output(b.op('Gemm', [x, b.init('w', [neurons, fanIn], data), b.init('b', [neurons], new Float32Array(neurons))], { transB: 1 }));
  return b.build();
}

t.test('every index width, at every opset form, rebuilds the weights bit for bit in onnxruntime', async (t) => {
  // One value more than the width below holds: each width is chosen, and the widths between (5, 7, 9
  // to 11, 13 to 15 bits) take the next one up.
  const widths = [1, 2, 3, 4, 6, 8, 12, 16];
  for (const opset of [7, 10, 13]) {
    for (const [i, bits] of widths.entries()) {
      const codes = 2 ** (i ? widths[i - 1] : 0) + 1;
      const fanIn = Math.max(257, 8 * codes + 1);
      const model = codesModel(opset, codes, 3, fanIn);
      const { plain, packed, layers } = await pack(model);
      t.same(layers.map((l) => [l.codes, l.indexBits]), [[codes, bits]], `opset ${opset}: ${codes} codes -> ${bits}-bit indices`);
      sameBits(t, await run(plain, [1, fanIn]), await run(packed, [1, fanIn]), `opset ${opset}, ${bits} bits`);
      sameWeights(t, model, decodeModel(packed));
    }
  }
});

t.test("coded in the pool's workers or in place: the same file, whether the weights are in shared memory or not", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-pack-'));
  const pool = new WorkerPool(2);
  t.teardown(async () => {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const plain = encodeModel(layoutsModel(13));
  const file = path.join(dir, 'layouts.onnx');
  fs.writeFileSync(file, plain);
  const packed = async (model: Model, options: PackOptions) => encodeModel(await packedWith(model, options));
  const inPlace = await packed(decodeModel(plain), {});
  const fromFile = await loadModel(file);
  const gemm = fromFile.graph.nodes.find((n) => n.opType === 'Gemm')!;
  t.ok(fromFile.graph.constant(gemm.input(1))!.data.buffer instanceof SharedArrayBuffer, 'a model read from a file is in shared memory');
  t.equal(Buffer.compare(await packed(fromFile, { runner: pool.tasks() }), inPlace), 0, 'shared memory, read in place by the workers');
  const fromBytes = decodeModel(plain);
  const bias = fromBytes.graph.constant(fromBytes.graph.nodes.find((n) => n.opType === 'Gemm')!.input(2))!;
  const biasBits = Uint8Array.from(new Uint8Array(bias.data.buffer, bias.data.byteOffset, bias.data.byteLength));
  t.equal(Buffer.compare(await packed(fromBytes, { runner: pool.tasks() }), inPlace), 0, 'plain buffers, copied for the workers');
  // Nothing was moved away from the model: tensors beside the packed ones are intact.
  t.same(new Uint8Array(bias.data.buffer, bias.data.byteOffset, bias.data.byteLength), biasBits, 'a bias in the same buffer is still there');

  // Releasing each original as its form replaces it (prune's way): the same file; the replaced weights
  // read as zeros through views taken before (their memory went back; where it cannot, they stay as
  // they were) and their Tensors refuse to be read; every other tensor, in the same shared file
  // buffer, is as it was.
  for (const [what, model] of [['shared memory', await loadModel(file)], ['plain buffers', decodeModel(plain)]] as const) {
    const tensors = [...model.graph.initializers.values(), ...model.graph.nodes.filter((n) => n.opType === 'Constant').map((n) => model.graph.constant(n.outputs[0])!)];
    const views = tensors.map(({ data: d }) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
    const before = views.map((v) => Uint8Array.from(v));
    t.equal(Buffer.compare(await packed(model, { runner: pool.tasks(), releaseReplaced: true }), inPlace), 0, `${what}, originals released: the same file`);
    let replaced = 0;
    tensors.forEach((x, i) => {
      const gone = model.graph.constant(x.name) !== x;
      if (gone) replaced++;
      const expected = gone && canReleasePages() ? new Uint8Array(before[i].length) : before[i];
      if (Buffer.compare(views[i], expected) !== 0) t.fail(`${what}: '${x.name}' ${gone ? 'replaced, not as expected' : 'kept, but changed'}`);
      if (gone && canReleasePages()) t.throws(() => x.data, /read after releasableBytes/, `${what}: '${x.name}' refuses to be read`);
    });
    t.ok(replaced >= 6, `${what}: ${replaced} replaced weights, ${tensors.length - replaced} others unchanged`);
  }
});

t.test('releasing originals: layers larger than the bound are coded one at a time, on 2 threads, the file the same', async (t) => {
  const plain = encodeModel(layoutsModel(13));
  const inPlace = encodeModel(await packedWith(decodeModel(plain), {}));
  for (const [bound, most] of [[1, 1], [2000, 2], [12_000, 3], [1e12, 8]] as const) {
    // At any time: one layer larger than the bound, and smaller ones of at most the bound in all.
    let [active, max, large, small, overBound] = [0, 0, 0, 0, false];
    const runner: TaskRunner = {
      ...inProcess,
      threads: 2,
      async code(task) {
        const bytes = task.bits.byteLength;
        max = Math.max(max, ++active);
        if (bytes > bound) large++;
        else small += bytes;
        if (large > 1 || small > bound) overBound = true;
        try {
          return await inProcess.code(task);
        } finally {
          active--;
          if (bytes > bound) large--;
          else small -= bytes;
        }
      },
    };
    // Layers larger than the bound are coded on the runner's 2 threads.
    const model = await packedWith(decodeModel(plain), { runner, releaseReplaced: true, inFlightBytes: bound });
    t.equal(Buffer.compare(encodeModel(model), inPlace), 0, `bound ${bound} B: the same file`);
    t.ok(max >= most && !overBound, `bound ${bound} B: ${max} layers coded at once, within the bound`);
  }
  t.throws(() => packPass({ inFlightBytes: Number.NaN }), { code: 'INVALID_ARGUMENT' });
});

t.test('inSharedMemory(): an array in shared memory as it is, any other copied there, of the same type and values', async (t) => {
  const shared = new Float32Array(new SharedArrayBuffer(64), 8, 5);
  t.equal(inSharedMemory(shared), shared, 'shared already: itself');
  const odd = new Uint8Array(7).map((_, i) => i + 1);
  const arrays: ArrayBufferView[] = [
    new Float32Array([1.5, -0, NaN, 3]),
    new Float64Array([Math.PI, -1e300]),
    new BigInt64Array([-(2n ** 63n), 5n]),
    new Uint16Array(new ArrayBuffer(20), 6, 3).fill(0xfbff),
    odd.subarray(1, 6),
    Buffer.from('a model\u0000 in bytes'),
  ];
  for (const a of arrays) {
    const s = inSharedMemory(a);
    const what = `${a.constructor.name} of ${a.byteLength} bytes`;
    t.ok(s.buffer instanceof SharedArrayBuffer, `${what}: in shared memory`);
    t.equal(s.constructor, a.constructor, `${what}: the same type`);
    t.equal(s.byteLength, a.byteLength, `${what}: the same length`);
    t.same(Buffer.from(s.buffer, s.byteOffset, s.byteLength), Buffer.from(a.buffer, a.byteOffset, a.byteLength), `${what}: the same bytes`);
    t.equal(s.byteOffset % 8, 0, `${what}: aligned`);
  }
});

t.test('releasableBytes(): only memory nothing but the tensor sees, given back in batches', { skip: !canReleasePages() && 'pages are given back with the addon, on Linux' }, async (t) => {
  const page = 4096;
  const array = new Float32Array(8 * page).fill(1.5);
  const own = Tensor.create('w', DataType.FLOAT, [8 * page], array);
  const bytes = own.releasableBytes();
  t.equal(bytes?.byteLength, array.byteLength, "a tensor's own array: its bytes");
  t.throws(() => own.data, /read after releasableBytes/, 'and the tensor refuses to be read at once');
  t.ok((await releasePages([bytes!])) >= 8 * page * 4 - 2 * page, 'its pages given back');
  t.ok(array.every((v) => v === 0), 'which read as zeros');
  // A TensorProto holding a caller's bytes as raw_data, and a Tensor over it: those bytes are not its to give.
  const callers = Buffer.alloc(8 * page * 4, 7);
  const proto = createMessage<TensorProto>(onnxTypes().Tensor, { name: 'c', data_type: DataType.FLOAT, dims: [8 * page], raw_data: callers });
  const viewing = new Tensor(proto);
  t.equal(viewing.editableInPlace, false);
  t.equal(viewing.releasableBytes(), undefined, "a view of the caller's bytes: nothing");
  t.ok(callers.every((v) => v === 7) && viewing.data.length === 8 * page, "the caller's bytes as they were, still readable");

  // Batches: small arrays gathered into one call until 8 MiB, a large one closing its batch at once.
  const small = Array.from({ length: 40 }, () => new Uint8Array(new SharedArrayBuffer(4 * page)).fill(3));
  const large = new Uint8Array(new SharedArrayBuffer(40 << 20)).fill(5);
  const calls: number[] = [];
  const counting = (views: readonly Uint8Array[]) => {
    calls.push(views.length);
    return releasePages(views);
  };
  const release = new PageRelease(counting);
  for (const a of small) release.add(a);
  t.same(calls, [], 'small arrays wait in the batch');
  release.add(large);
  t.same(calls, [41], 'the large one closes the batch: one call for all 41');
  release.add(small[0].subarray(0, 0));
  const given = await release.done();
  t.same(calls, [41, 1], 'done() gives back the rest');
  t.ok([...small, large].every((a) => a.every((v) => v === 0)), 'every byte of the batch reads as zero');
  t.ok(given >= (40 << 20) - 2 * page && given <= (40 << 20) + 40 * 4 * page, `${given} bytes given back in all`);
  const empty: number[] = [];
  t.equal(await new PageRelease((v) => (empty.push(v.length), releasePages(v))).done(), 0, 'an empty batch: nothing');
  t.same(empty, [], 'and no call');
});

t.test('fp16 weights pack into fp16 codebooks, bit-identical', async (t) => {
  const model = fp16Model();
  const { plain, packed, layers } = await pack(model);
  t.same(layers.map((l) => [l.op, l.dtype, l.indexBits]), [['Conv', 'FLOAT16', 4], ['MatMul', 'FLOAT16', 3]]);
  t.ok(packed.byteLength < plain.byteLength * 0.7, `${plain.byteLength} -> ${packed.byteLength} bytes`);
  sameBits(t, await run(plain, [1, 8, 6, 6], true), await run(packed, [1, 8, 6, 6], true), 'fp16');
  sameWeights(t, model, decodeModel(packed));
});

t.test('layers whose codebooks would not be smaller stay dense', async (t) => {
  const b = new GraphBuilder(13, 9);
  const x = b.input('x', [1, 64]);
  b.output(b.op('Gemm', [x, b.weights('w', [32, 64])], { transB: 1 })); // every weight distinct
  const { plain, packed, report, layers } = await pack(b.build());
  t.equal(layers.length, 0);
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
  const options = { beta: 0.05, minFanIn: 0, threads: 2, inputShapes: { x: [1, 3, 48, 192] } };
  const hashed = await prune(CLS, { ...options, pack: false });
  const out = path.join(dir, 'cls.packed.onnx');
  const packed = await prune(CLS, { ...options, pack: true, output: out });
  const plain = encodeModel(hashed.model);
  const packedBytes = fs.readFileSync(out);
  const layers = packed.report.layers.filter((l) => l.packed);
  // The narrow depthwise layers gain nothing: their codebooks and the chain outweigh their few weights.
  t.ok(layers.length >= 15, `${layers.length} layers packed`);
  t.ok(layers.every((l) => l.packed!.bytes.after < l.packed!.bytes.before), 'each packed layer is smaller, the chain counted');
  t.ok(layers.every((l) => l.hash), 'only hashed layers');
  t.equal(packed.report.file.after, packedBytes.byteLength);
  t.ok(packed.report.file.after < hashed.report.file.after, `file ${hashed.report.file.after} -> ${packed.report.file.after}`);
  t.same(packed.report.ops, hashed.report.ops, 'the split counts are those of the plain hashed weights');
  t.match(summaryTable(packed.report), /packed {10}\d+ layers \(\d+ palette\): weights/);
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

t.test('the cls PP-OCR model at the default budget: every form exact against the dense coded model, folded at load', async (t) => {
  const options = { threads: 2, inputShapes: { x: [1, 3, 48, 192] } };
  const dense = await prune(CLS, { ...options, pack: false });
  const packed = await prune(CLS, options);
  const forms = new Set(packed.report.layers.flatMap((l) => (l.packed ? [l.packed.form] : [])));
  t.ok(forms.size >= 2, `forms: ${[...forms].join(', ')}`);
  t.same(
    packed.report.layers.map((l) => l.codec),
    dense.report.layers.map((l) => l.codec),
    'the budget chooses the same codecs with and without packing',
  );
  const [plain, packedBytes] = [encodeModel(dense.model), encodeModel(packed.model)];
  t.ok(packedBytes.byteLength < plain.byteLength / 2, `${plain.byteLength} -> ${packedBytes.byteLength} bytes`);
  sameBits(t, await run(plain, [1, 3, 48, 192]), await run(packedBytes, [1, 3, 48, 192]), 'cls at the budget');
  t.equal(Buffer.compare(encodeModel(decodeModel(packedBytes)), plain), 0, 'reads back as the dense coded model byte for byte');
  const opt = await optimizedOps(packedBytes);
  t.notOk(opt.names.some((n) => n.includes(PACK_MARK)), 'onnxruntime folded every chain');
});
