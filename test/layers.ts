/**
 * The layer table: every op's weight layout against the ONNX layouts written out by hand, weights
 * behind transforms, and a layer kind registered from outside that is hashed, counted and packed like a
 * built-in one.
 */
import * as ort from 'onnxruntime-node';
import t from 'tap';

import { fromRows, layerTable, registerLayerKind, scaleNeurons, toRows, type NeuronLayout } from '../lib/layers';
import { scaleRowsReference } from '../lib/layers/grid';
import { decodeModel } from '../lib/load';
import { GraphBuilder } from '../lib/model/builder';
import { OpMap } from '../lib/model/op-map';
import { encodeModel } from '../lib/model/write';
import { PACK_MARK } from '../lib/passes/codecs/pack';
import { prune } from '../lib/prune';
import { Rng } from '../lib/rng';

/** A layer of each kind with an arange weight, and the layout of its weight. */
function layout(op: string, dims: number[], attributes: Record<string, number | number[]> = {}): NeuronLayout {
  const b = new GraphBuilder(13, 1);
  // Conv inputs keep no declared shape: these weights are laid out by hand, not to fit an input.
  const x = b.input('x', op.startsWith('Conv') ? undefined : [1, 4]);
  const size = dims.reduce((a, d) => a * d, 1);
  b.output(b.op(op, [x, b.init('w', dims, Float32Array.from({ length: size }, (_, i) => i))], attributes));
  const [layer] = layerTable(b.build().graph);
  const l = layer.layout();
  if ('skip' in l) throw new Error(l.skip);
  return l;
}

/** Rows from the ONNX weight layouts written out by hand: element index of (neuron, place). */
async function check(t: Tap.Test, l: NeuronLayout, neurons: number, fanIn: number, element: (n: number, c: number) => number, what: string): Promise<void> {
  t.equal(l.neurons, neurons, `${what}: neurons`);
  t.equal(l.fanIn, fanIn, `${what}: fan-in`);
  const data = l.tensor.toFloat32();
  const rows = toRows(l.grid, data);
  const want = new Float32Array(neurons * fanIn);
  for (let n = 0; n < neurons; n++) for (let c = 0; c < fanIn; c++) want[n * fanIn + c] = element(n, c);
  t.same(rows, want, `${what}: rows`);
  t.same(fromRows(l.grid, rows), data, `${what}: fromRows inverts toRows`);
  // Scaling neuron n by n + 1 scales exactly its row.
  const scaled = Float32Array.from(data);
  await scaleNeurons(l.grid, scaled, Float64Array.from({ length: neurons }, (_, n) => n + 1));
  t.same(toRows(l.grid, scaled), want.map((v, i) => v * (Math.floor(i / fanIn) + 1)), `${what}: scaleNeurons scales each row`);
}

t.test('each weight layout as rows, against the ONNX layouts written out by hand', async (t) => {
  await check(t, layout('Conv', [6, 2, 3, 3]), 6, 18, (n, c) => n * 18 + c, 'Conv [O, I, k, k]');
  await check(t, layout('Gemm', [5, 4], { transB: 1 }), 5, 4, (n, c) => n * 4 + c, 'Gemm transB=1 [N, K]');
  await check(t, layout('Gemm', [4, 5], { transB: 0 }), 5, 4, (n, c) => c * 5 + n, 'Gemm transB=0 [K, N]');
  await check(t, layout('MatMul', [4, 7]), 7, 4, (n, c) => c * 7 + n, 'MatMul [K, N]');
  // ConvTranspose [C_in, C_out / group, k, k]: output channel g * C_out/group + o reads W[g * C_in/group + i, o].
  for (const group of [1, 2]) {
    const [cin, outPer, k] = [4, 3, 2 * 2];
    const inPer = cin / group;
    await check(
      t,
      layout('ConvTranspose', [cin, outPer, 2, 2], { group }),
      group * outPer,
      inPer * k,
      (n, c) => ((Math.floor(n / outPer) * inPer + Math.floor(c / k)) * outPer + (n % outPer)) * k + (c % k),
      `ConvTranspose group ${group}`,
    );
  }
});

t.test('scaleNeurons in slices: rows and columns of a layer of several slices, as the reference scales them', async (t) => {
  const rng = new Rng(5);
  // 700,001 neurons of 3 weights: 2.1 M weights, three slices of about a million.
  const [neurons, fanIn] = [700_001, 3];
  const factors = Float64Array.from({ length: neurons }, () => 1 + rng.next());
  const data = rng.normals(neurons * fanIn, 1);
  const want = Float32Array.from(data);
  scaleRowsReference(want, fanIn, factors);
  const rows = Float32Array.from(data);
  let turns = 0;
  const counted = () => {
    turns++;
    return undefined;
  };
  await scaleNeurons({ dims: [neurons, fanIn], neuronAxes: [0] }, rows, factors, counted);
  t.same(new Uint32Array(rows.buffer), new Uint32Array(want.buffer), 'rows: the same floats');
  t.equal(turns, 3, 'three slices');
  // The same weights stored [fanIn, neurons] (a Gemm's [K, N]): element (n, c) at c * neurons + n.
  const columns = new Float32Array(neurons * fanIn);
  for (let n = 0; n < neurons; n++) for (let c = 0; c < fanIn; c++) columns[c * neurons + n] = data[n * fanIn + c];
  await scaleNeurons({ dims: [fanIn, neurons], neuronAxes: [1] }, columns, factors);
  let same = true;
  for (let n = 0; n < neurons && same; n++) for (let c = 0; c < fanIn; c++) same &&= Object.is(columns[c * neurons + n], want[n * fanIn + c]);
  t.ok(same, 'columns: the same floats');
});

t.test('layers whose weights sit behind weight transforms are layers, counted before folding', async (t) => {
  const b = new GraphBuilder(13, 1);
  let x = b.input('x', [1, 8, 8, 8]);
  // A conv weight stored [k, k, C_in, C_out] and transposed; a bias stored [1, C_out] and reshaped.
  const w = b.op('Transpose', [b.weights('wt', [3, 3, 8, 16])], { perm: [3, 2, 0, 1] });
  const bias = b.op('Reshape', [b.weights('b', [1, 16]), b.ints('s', [16])]);
  x = b.op('Conv', [x, w, bias], { kernel_shape: [3, 3] });
  x = b.op('Flatten', [b.op('GlobalAveragePool', [x])]);
  // A Linear weight stored [K, N] transposed for transB, its bias behind an Identity.
  const y = b.op('Gemm', [x, b.op('Transpose', [b.weights('gw', [16, 10])]), b.op('Identity', [b.weights('gb', [10])])], { transB: 1 });
  b.output(y);
  const { report } = await prune(b.build(), { beta: 0, threads: 1 });
  t.same(
    report.layers.map((l) => [l.op, l.neurons.before, l.fanIn, l.params.before, l.params.after]),
    [
      ['Conv', 16, 72, 16 * 72 + 16, 16 * 72 + 16],
      ['Gemm', 10, 16, 170, 170],
    ],
    'weights and biases are counted before folding as after',
  );
  t.equal(report.params.before, report.params.after, 'folding transforms keeps every parameter');
  t.equal(report.macs.before, 16 * 6 * 6 * 72 + 10 * 16);
  t.equal(report.macs.after, report.macs.before);
});

t.test('a layer kind registered from outside is hashed, counted and packed, and the packed file runs bit-identically', async (t) => {
  // RNN: W [directions, hidden, input] holds one neuron per hidden unit (R and B stay as they are).
  const restore = registerLayerKind({
    opType: 'RNN',
    domain: '',
    weightInput: 1,
    axes: (dims) => (dims.length === 3 ? { outputs: 1, inputs: 2, group: 1, outputsPerGroup: false } : `RNN W of rank ${dims.length}`),
    grid: (dims) => ({ dims: [...dims], neuronAxes: [0, 1] }),
    macs: (node, fanIn, shapeOf) => {
      const x = shapeOf(node.input(0));
      const hidden = node.attrInt('hidden_size', 0)!;
      return x ? x[0] * x[1] * hidden * fanIn : null;
    },
  });
  t.teardown(restore);
  const [seq, batch, input, hidden] = [5, 2, 300, 24];
  const b = new GraphBuilder(13, 3);
  const x = b.input('x', [seq, batch, input]);
  const w = b.weights('w', [1, hidden, input], 0.1);
  const r = b.weights('r', [1, hidden, hidden], 0.1);
  b.node('RNN', [x, w, r], ['y', 'h'], { hidden_size: hidden });
  b.output('y', [seq, 1, batch, hidden]);
  const model = b.build();

  const hashed = await prune(model, { threads: 1, beta: 0.05, pack: false });
  const packed = await prune(model, { threads: 1, beta: 0.05 });
  const [layer] = packed.report.layers;
  t.equal(packed.report.layers.length, 1, 'one layer: the RNN');
  t.same([layer.op, layer.neurons.before, layer.fanIn, layer.params.before], ['RNN', hidden, input, hidden * input]);
  t.equal(layer.macs.before, seq * batch * hidden * input, 'its MACs from the kind');
  t.ok(layer.hash && layer.weightError!.relative > 0, 'hashed');
  t.ok(layer.distinctPerNeuron.max < input, `${layer.distinctPerNeuron.max} distinct values per neuron of ${input}`);
  t.ok(layer.packed && layer.packed.bytes.after < layer.packed.bytes.before, 'packed, and smaller');
  t.ok(packed.model.graph.nodes.some((n) => n.name.includes(PACK_MARK)), 'the packed file rebuilds W in the graph');

  const feeds = { x: new ort.Tensor('float32', new Rng(4).normals(seq * batch * input), [seq, batch, input]) };
  const run = async (bytes: Uint8Array) => {
    const s = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3 });
    const out = (await s.run(feeds)).y.data as Float32Array;
    await s.release();
    return Buffer.from(out.buffer, out.byteOffset, out.byteLength);
  };
  const plain = encodeModel(hashed.model);
  t.equal(Buffer.compare(await run(encodeModel(packed.model)), await run(plain)), 0, 'the packed file computes the hashed model bit for bit');
  t.equal(Buffer.compare(encodeModel(decodeModel(encodeModel(packed.model))), plain), 0, 'and reads back as the hashed model');

  // The budget codes it too, measuring the RNN with its weights fed as inputs.
  const budget = await prune(model, { threads: 1, maxDeviation: 0.02 });
  const coded = budget.report.layers[0];
  t.ok(coded.codec && coded.codec.codec !== 'dense' && coded.packed, `the budget stores it as ${coded.codec?.codec} ${coded.codec?.bits ?? ''} (${coded.packed?.form})`);
  t.ok(budget.report.budget!.measured <= 0.02);
});

t.test('OpMap: ai.onnx is the default domain, and each set restores what it replaced', async (t) => {
  const m = new OpMap<number>();
  const undoFirst = m.set('', 'Conv', 1);
  t.equal(m.get('ai.onnx', 'Conv'), 1, "'ai.onnx' reads the default domain");
  t.equal(m.get('com.example', 'Conv'), undefined, 'another domain is apart');
  const undoSecond = m.set('ai.onnx', 'Conv', 2);
  t.equal(m.get('', 'Conv'), 2, 'replaced');
  undoSecond();
  t.equal(m.get('', 'Conv'), 1, 'the replaced entry is back');
  undoFirst();
  t.equal(m.get('', 'Conv'), undefined, 'and removed');
  t.same(m.opTypes(''), [], 'no op types left');
});
