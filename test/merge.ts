import * as path from 'node:path';

import t from 'tap';

import { hashWeights } from '../lib/hash';
import { decodeModel, loadModel } from '../lib/load';
import { DataType, encodeModel, type Model } from '../lib/model';
import { analyzeChannels, type ChannelAnalysis, type ChannelGroup } from '../lib/passes/channels';
import { mergeOutputs, mergePass, type MergeOptions, type MergePassReport, type MergeReport } from '../lib/passes/merge';
import { runPasses } from '../lib/passes/pass';
import { WorkerPool } from '../lib/pool';
import { fromRows, layerTable, toRows } from '../lib/layers';
import { Rng } from '../lib/rng';
import { GraphBuilder, buildResNet50 } from './helpers/graph-builder';
import {
  PPOCR,
  PPOCR_ASSETS,
  exposeLogits,
  plantDead,
  plantDuplicate,
  plantNearDuplicate,
  randomFeeds,
  relativeDeviation,
  runModel,
} from './helpers/merge-check';

/** The group whose producers include the weight `w`. */
function groupOf(a: ChannelAnalysis, w: string): ChannelGroup {
  const g = a.groups.find((x) => x.producers.some((s) => s.value === w));
  if (!g) throw new Error(`no group produced by '${w}'`);
  return g;
}

function dims(model: Model, value: string): number[] {
  const c = model.graph.constant(value);
  if (!c) throw new Error(`'${value}' is not a constant`);
  return c.dims;
}

interface Case {
  model: Model;
  report: MergeReport;
  deviation: number;
}

// The pass as prune() runs it: the channels' fingerprints computed in the pool's workers.
const pool = new WorkerPool(2);
t.teardown(() => pool.close());

/**
 * Plants, runs before, merges, runs after. The same merge as a pass on the pool must give the same
 * model, byte for byte, and the same totals.
 */
async function mergeAndCompare(
  b: GraphBuilder,
  plant: (model: Model, a: ChannelAnalysis) => void,
  options: MergeOptions = {},
): Promise<Case> {
  const model = b.build();
  plant(model, analyzeChannels(model));
  const twin = decodeModel(encodeModel(model));
  const feeds = randomFeeds(model, 7);
  const before = await runModel(model, feeds);
  const report = mergeOutputs(model, options);
  const after = await runModel(model, feeds);
  const [pass] = (await runPasses(twin, [mergePass(options, pool.tasks())])) as MergePassReport[];
  if (!Buffer.from(encodeModel(twin)).equals(Buffer.from(encodeModel(model)))) throw new Error('the merge on the pool made another model');
  if (JSON.stringify(pass.merge.totals) !== JSON.stringify(report.totals)) throw new Error('the merge on the pool reported other totals');
  return { model, report, deviation: relativeDeviation(after, before) };
}

const EXACT = 1e-5;

t.test('Conv -> Relu -> Conv with duplicated filters', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', [1, 3, 8, 8]);
  const c1 = b.conv(x, 3, 16);
  const r = b.op('Relu', [c1.y]);
  const c2 = b.conv(r, 16, 4);
  b.node('Identity', [c2.y], ['y']);
  b.output('y', [1, 4, 8, 8]);
  const { model, report, deviation } = await mergeAndCompare(b, (m, a) => {
    const g = groupOf(a, c1.w);
    plantDuplicate(m, g, 5, 3);
    plantDuplicate(m, g, 5, 7);
    plantDuplicate(m, g, 2, 10);
  });
  t.ok(deviation <= EXACT, `outputs equal (relative deviation ${deviation.toExponential(2)})`);
  t.same(dims(model, c1.w), [13, 3, 3, 3], 'three filters of conv1 deleted');
  t.same(dims(model, c1.b!), [13]);
  t.same(dims(model, c2.w), [4, 13, 3, 3], 'conv2 reads 13 channels');
  t.equal(report.totals.exact, 3);
  t.equal(report.lossy, false);
  const layer = report.layers.find((l) => l.outputs);
  t.same(layer?.outputs, [16, 13]);
  const g2 = report.groups.find((g) => g.before === 4)!;
  t.match(g2.blocked.join(), /graph output 'y'/, 'the last conv is blocked by the graph output');
});

t.test('duplicated filters of a layer whose fingerprints the pass takes from the pool (256 KiB and more)', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', [1, 64, 6, 6]);
  // 128 filters of 64 x 3 x 3: 288 KiB of weights (the pass fingerprints those here from 256 KiB, in
  // the pool); the bias and the second conv's weights are fingerprinted on the main thread.
  const c1 = b.conv(x, 64, 128);
  const r = b.op('Relu', [c1.y]);
  const c2 = b.conv(r, 128, 4);
  b.node('Identity', [c2.y], ['y']);
  b.output('y', [1, 4, 6, 6]);
  const { model, report, deviation } = await mergeAndCompare(b, (m, a) => {
    const g = groupOf(a, c1.w);
    plantDuplicate(m, g, 5, 3);
    plantDuplicate(m, g, 5, 100);
    plantDuplicate(m, g, 127, 0);
  });
  t.ok(deviation <= EXACT, `outputs equal (relative deviation ${deviation.toExponential(2)})`);
  t.equal(report.totals.exact, 3, 'three filters merged');
  t.same(dims(model, c1.w), [125, 64, 3, 3]);
});

t.test('the same filters merge when the weights are Constant nodes', async (t) => {
  const b = new GraphBuilder(11);
  const x = b.input('x', [1, 3, 6, 6]);
  const c1 = b.conv(x, 3, 8, 3, { asNode: true });
  const r = b.op('Relu', [c1.y]);
  const c2 = b.conv(r, 8, 2, 1, { asNode: true });
  b.node('Identity', [c2.y], ['y']);
  b.output('y');
  const { model, deviation } = await mergeAndCompare(b, (m, a) => plantDuplicate(m, groupOf(a, c1.w), 0, 6));
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.same(dims(model, c2.w), [2, 7, 1, 1]);
});

t.test('residual Add: both branches must agree', async (t) => {
  const build = () => {
    const b = new GraphBuilder(13, 3);
    const x = b.input('x', [1, 4, 6, 6]);
    const a = b.conv(x, 4, 8);
    const ra = b.op('Relu', [a.y]);
    const c = b.conv(x, 4, 8, 1);
    const sum = b.op('Add', [ra, c.y]);
    const r = b.op('Relu', [sum]);
    const d = b.conv(r, 8, 3);
    b.node('Identity', [d.y], ['y']);
    b.output('y');
    return { b, a, c, d };
  };
  {
    const { b, a, d } = build();
    const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
      const g = groupOf(an, a.w);
      plantDuplicate(m, { ...g, producers: g.producers.filter((s) => s.value === a.w) }, 1, 4);
    });
    t.ok(deviation <= EXACT, 'one branch only: unchanged output');
    t.equal(report.totals.exact, 0, 'one branch only: nothing merges');
    t.same(dims(model, d.w), [3, 8, 3, 3]);
  }
  {
    const { b, a, c, d } = build();
    const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
      const g = groupOf(an, a.w);
      t.ok(g.producers.some((s) => s.value === c.w), 'both convs produce the same group');
      plantDuplicate(m, g, 1, 4);
      plantDuplicate(m, g, 2, 7);
    });
    t.ok(deviation <= EXACT, `both branches: outputs equal (${deviation.toExponential(2)})`);
    t.equal(report.totals.exact, 2);
    t.same(dims(model, a.w), [6, 4, 3, 3]);
    t.same(dims(model, c.w), [6, 4, 1, 1]);
    t.same(dims(model, d.w), [3, 6, 3, 3]);
  }
});

t.test('Concat on channels shifts offsets; an input from outside stays as it is', async (t) => {
  const b = new GraphBuilder(13, 5);
  const x = b.input('x', [1, 3, 6, 6]);
  const z = b.input('z', [1, 2, 6, 6]);
  const a = b.conv(x, 3, 6);
  const c = b.conv(x, 3, 5, 1);
  const cat = b.op('Concat', [b.op('Relu', [a.y]), z, c.y], { axis: 1 });
  const d = b.conv(cat, 13, 4);
  b.node('Identity', [d.y], ['y']);
  b.output('y');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    plantDuplicate(m, groupOf(an, a.w), 0, 4);
    plantDuplicate(m, groupOf(an, c.w), 1, 3);
    plantDuplicate(m, groupOf(an, c.w), 1, 4);
  });
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.equal(report.totals.exact, 3);
  t.same(dims(model, a.w), [5, 3, 3, 3]);
  t.same(dims(model, c.w), [3, 3, 1, 1]);
  t.same(dims(model, d.w), [4, 10, 3, 3], '5 + 2 (outside input) + 3');
});

t.test('a depthwise conv between two convs must agree too', async (t) => {
  const build = () => {
    const b = new GraphBuilder(13, 9);
    const x = b.input('x', [1, 3, 7, 7]);
    const a = b.conv(x, 3, 8, 1);
    const dw = b.conv(b.op('Relu', [a.y]), 8, 8, 3, { group: 8 });
    const c = b.conv(b.op('Relu', [dw.y]), 8, 4, 1);
    b.node('Identity', [c.y], ['y']);
    b.output('y');
    return { b, a, dw, c };
  };
  {
    const { b, a, c } = build();
    const { model, report } = await mergeAndCompare(b, (m, an) => plantDuplicate(m, { ...groupOf(an, a.w), params: [] }, 0, 5));
    t.equal(report.totals.exact, 0, 'duplicate filters but different depthwise kernels: no merge');
    t.same(dims(model, c.w), [4, 8, 1, 1]);
  }
  {
    const { b, a, dw, c } = build();
    const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
      const g = groupOf(an, a.w);
      t.ok(g.params.some((s) => s.value === dw.w), 'the depthwise weights are per-channel parameters of the group');
      plantDuplicate(m, g, 0, 5);
    });
    t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
    t.equal(report.totals.exact, 1);
    t.same(dims(model, a.w), [7, 3, 1, 1]);
    t.same(dims(model, dw.w), [7, 1, 3, 3]);
    t.same(node(model, 'Conv', 1).attrInt('group'), 7, 'the depthwise conv has 7 groups');
    t.same(dims(model, c.w), [4, 7, 1, 1]);
  }
});

function node(model: Model, op: string, k: number) {
  return model.graph.nodes.filter((n) => n.opType === op)[k];
}

t.test('SE block: trunk and gate channels are one group; the squeeze has its own', async (t) => {
  const b = new GraphBuilder(14, 11);
  const x = b.input('x', [1, 3, 8, 8]);
  const trunk = b.conv(x, 3, 8);
  const hs = b.op('HardSwish', [trunk.y]);
  const s1 = b.conv(b.op('GlobalAveragePool', [hs]), 8, 4, 1);
  const s2 = b.conv(b.op('Relu', [s1.y]), 4, 8, 1);
  const gate = b.op('HardSigmoid', [s2.y], { alpha: 0.2, beta: 0.5 }, ['alpha', 'beta']);
  const scaled = b.op('Mul', [hs, gate]);
  const out = b.conv(scaled, 8, 5, 1);
  b.node('Identity', [out.y], ['y']);
  b.output('y');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    const g = groupOf(an, trunk.w);
    t.ok(g.producers.some((s) => s.value === s2.w), 'the excitation conv produces the trunk group');
    t.same(new Set(g.consumers.map((s) => s.value)), new Set([s1.w, out.w]));
    plantDuplicate(m, g, 2, 6);
    plantDuplicate(m, groupOf(an, s1.w), 0, 3);
  });
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.equal(report.totals.exact, 2);
  t.same(dims(model, trunk.w), [7, 3, 3, 3]);
  t.same(dims(model, s2.w), [7, 3, 1, 1]);
  t.same(dims(model, s1.w), [3, 7, 1, 1]);
  t.same(dims(model, out.w), [5, 7, 1, 1]);
});

t.test('Flatten -> Gemm: a channel is a block of features', async (t) => {
  const b = new GraphBuilder(13, 13);
  const x = b.input('x', [2, 3, 4, 4]);
  const a = b.conv(x, 3, 6);
  const flat = b.op('Flatten', [b.op('Relu', [a.y])], { axis: 1 });
  const w = b.weights('fc', [96, 10]);
  const bias = b.weights('fcb', [10]);
  const y = b.op('Gemm', [flat, w, bias]);
  b.node('Identity', [y], ['y']);
  b.output('y');
  // A second head: GlobalAveragePool -> Reshape -> Gemm with B transposed.
  const c = b.conv(x, 3, 5, 1);
  const pooled = b.op('GlobalAveragePool', [c.y]);
  const flat2 = b.op('Reshape', [pooled, b.ints('shape', [2, 5])]);
  const w2 = b.weights('fc2', [7, 5]);
  const y2 = b.op('Gemm', [flat2, w2], { transB: 1 });
  b.node('Identity', [y2], ['y2']);
  b.output('y2');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    plantDuplicate(m, groupOf(an, a.w), 1, 4);
    plantDuplicate(m, groupOf(an, c.w), 0, 2);
  });
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.equal(report.totals.exact, 2);
  t.same(dims(model, w), [80, 10], 'one channel of 16 features removed from the Gemm');
  t.same(dims(model, w2), [7, 4]);
  const shape = model.graph.constant(node(model, 'Reshape', 0).input(1))!;
  t.same(Array.from(shape.data as BigInt64Array, Number), [2, 4], 'the Reshape shape follows the channel count');
});

t.test('Split on channels: merges stay inside each part, sizes are rewritten', async (t) => {
  for (const opset of [11, 13]) {
    const b = new GraphBuilder(opset, 17);
    const x = b.input('x', [1, 3, 6, 6]);
    const a = b.conv(x, 3, 8, 1);
    const split = opset >= 13 ? b.ints('split', [3, 5]) : undefined;
    const [p, q] = b.node('Split', split ? [a.y, split] : [a.y], 2, opset >= 13 ? { axis: 1 } : { axis: 1, split: [3, 5] });
    const cp = b.conv(b.op('Relu', [p]), 3, 2, 1);
    const cq = b.conv(q, 5, 2, 1);
    const sl = b.op('Slice', [a.y, b.ints('s', [4]), b.init('e', [1], BigInt64Array.of(9223372036854775807n)), b.ints('ax', [1])]);
    const cs = b.conv(sl, 4, 2, 1);
    const y = b.op('Add', [b.op('Add', [cp.y, cq.y]), cs.y]);
    b.node('Identity', [y], ['y']);
    b.output('y');
    const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
      const g = groupOf(an, a.w);
      t.same(g.cells, [0, 3, 4, 8], `opset ${opset}: cells from the Split and the Slice`);
      plantDuplicate(m, g, 0, 2); // both in part 0: merge
      plantDuplicate(m, g, 1, 5); // across parts: no merge
      plantDuplicate(m, g, 5, 7); // both in part 1 and in the Slice: merge
    });
    t.ok(deviation <= EXACT, `opset ${opset}: outputs equal (${deviation.toExponential(2)})`);
    t.equal(report.totals.exact, 2, `opset ${opset}: only merges within a part`);
    t.same(dims(model, a.w), [6, 3, 1, 1]);
    t.same(dims(model, cp.w), [2, 2, 1, 1]);
    t.same(dims(model, cq.w), [2, 4, 1, 1]);
    t.same(dims(model, cs.w), [2, 3, 1, 1]);
    const sp = node(model, 'Split', 0);
    const sizes = opset >= 13 ? Array.from(model.graph.constant(sp.input(1))!.data as BigInt64Array, Number) : sp.attrInts('split');
    t.same(sizes, [2, 4], `opset ${opset}: split sizes rewritten`);
  }
});

t.test('blocked: channels reaching a graph output, or an op without a rule, are left alone', async (t) => {
  const b = new GraphBuilder(13, 19);
  const x = b.input('x', [1, 3, 6, 6]);
  const a = b.conv(x, 3, 6, 1);
  b.node('Relu', [a.y], ['feat']);
  b.output('feat');
  const c = b.conv(x, 3, 6, 1);
  const lrn = b.op('LRN', [c.y], { size: 3 });
  const d = b.conv(lrn, 6, 2, 1);
  b.node('Identity', [d.y], ['y']);
  b.output('y');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    plantDuplicate(m, groupOf(an, a.w), 0, 1);
    plantDuplicate(m, groupOf(an, c.w), 0, 1);
  });
  t.ok(deviation <= EXACT);
  t.equal(report.totals.removed, 0);
  t.same(dims(model, a.w), [6, 3, 1, 1]);
  t.same(dims(model, c.w), [6, 3, 1, 1]);
  const reasons = report.groups.flatMap((g) => g.blocked).join('\n');
  t.match(reasons, /reaches graph output 'feat'/);
  t.match(reasons, /LRN .* has no channel rule/);
});

t.test('dead neurons: deleted where zeros reach every consumer, kept where a bias or gate makes them non-zero', async (t) => {
  const b = new GraphBuilder(13, 23);
  const x = b.input('x', [1, 3, 6, 6]);
  const a = b.conv(x, 3, 6);
  const ca = b.conv(b.op('Relu', [a.y]), 6, 2, 1);
  const c = b.conv(x, 3, 6);
  const sig = b.op('Sigmoid', [c.y]);
  const cc = b.conv(sig, 6, 2, 1);
  const y = b.op('Add', [ca.y, cc.y]);
  b.node('Identity', [y], ['y']);
  b.output('y');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    plantDead(m, groupOf(an, a.w), 2);
    plantDead(m, groupOf(an, a.w), 4);
    plantDead(m, groupOf(an, c.w), 1);
  });
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.equal(report.totals.dead, 2, 'sigmoid(0) = 0.5 is not dead');
  t.same(dims(model, a.w), [4, 3, 3, 3]);
  t.same(dims(model, ca.w), [2, 4, 1, 1]);
  t.same(dims(model, c.w), [6, 3, 3, 3]);
});

t.test('a Gemm whose scalar C lifts every output: a zero row is not a dead channel', async (t) => {
  const b = new GraphBuilder(13, 41);
  const x = b.input('x', [2, 6]);
  const w1 = b.weights('w1', [6, 5]);
  const h = b.op('Relu', [b.op('Gemm', [x, w1, b.init('c', [], [0.5])])]);
  const w2 = b.weights('w2', [5, 3]);
  b.node('Gemm', [h, w2], ['y']);
  b.output('y');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => plantDead(m, groupOf(an, w1), 2));
  t.ok(deviation <= EXACT);
  t.equal(report.totals.dead, 0);
  t.same(dims(model, w2), [5, 3]);
});

t.test('a constant shared with a layer that does not change is copied, not edited', async (t) => {
  const b = new GraphBuilder(13, 43);
  const x = b.input('x', [1, 3, 5, 5]);
  const bias = b.weights('shared_bias', [6]);
  const wa = b.weights('wa', [6, 3, 1, 1]);
  const wb = b.weights('wb', [6, 3, 1, 1]);
  const ya = b.op('Conv', [x, wa, bias]);
  const yb = b.op('Conv', [x, wb, bias]);
  const ca = b.conv(b.op('Relu', [ya]), 6, 2, 1);
  const cb = b.conv(b.op('Relu', [yb]), 6, 2, 1);
  b.node('Add', [ca.y, cb.y], ['y']);
  b.output('y');
  const { model, deviation } = await mergeAndCompare(b, (m, an) => plantDuplicate(m, groupOf(an, wa), 1, 4));
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.same(dims(model, wa), [5, 3, 1, 1]);
  t.same(dims(model, bias), [6], 'the other conv still reads the original bias');
  t.same(dims(model, node(model, 'Conv', 0).input(2)), [5], 'the merged conv reads its own copy');
});

t.test('epsilon merges near duplicates (lossy, reported), exact mode does not', async (t) => {
  const build = () => {
    const b = new GraphBuilder(13, 29);
    const x = b.input('x', [1, 4, 6, 6]);
    const a = b.conv(x, 4, 10);
    const c = b.conv(b.op('Relu', [a.y]), 10, 3);
    b.node('Identity', [c.y], ['y']);
    b.output('y');
    return { b, a, c };
  };
  for (const epsilon of [0, 0.01]) {
    const { b, a, c } = build();
    const plant = (m: Model, an: ChannelAnalysis) => {
      const g = groupOf(an, a.w);
      const rng = new Rng(3);
      plantNearDuplicate(m, g, 0, 5, 1e-3, rng);
      plantNearDuplicate(m, g, 2, 7, 1e-3, rng);
    };
    const { model, report, deviation } = await mergeAndCompare(b, plant, { epsilon });
    if (epsilon === 0) {
      t.equal(report.totals.removed, 0, 'epsilon 0: nothing merges');
      t.equal(report.lossy, false);
      t.ok(deviation <= EXACT);
    } else {
      t.equal(report.totals.approximate, 2, 'epsilon 0.01: the two near duplicates merge');
      t.equal(report.lossy, true);
      const g = report.groups.find((r) => r.approximate > 0)!;
      t.ok(g.maxDistance > 0 && g.maxDistance <= 0.01, `max distance ${g.maxDistance}`);
      t.ok(deviation < 0.01, `small deviation (${deviation.toExponential(2)})`);
      t.same(dims(model, c.w), [3, 8, 3, 3]);
    }
  }
});

t.test('MatMul layers (channels last) and ConvTranspose', async (t) => {
  const b = new GraphBuilder(13, 31);
  const x = b.input('x', [2, 5, 8]);
  const w1 = b.weights('w1', [8, 6]);
  const h = b.op('Relu', [b.op('Add', [b.op('MatMul', [x, w1]), b.weights('b1', [6])])]);
  const w2 = b.weights('w2', [6, 4]);
  b.node('MatMul', [h, w2], ['y']);
  b.output('y');
  const img = b.input('img', [1, 3, 5, 5]);
  const a = b.conv(img, 3, 6, 1);
  const wt = b.weights('wt', [6, 4, 2, 2]);
  const bt = b.weights('bt', [4]);
  const up = b.op('ConvTranspose', [b.op('Relu', [a.y]), wt, bt], { kernel_shape: [2, 2], strides: [2, 2] });
  const c = b.conv(b.op('Relu', [up]), 4, 2, 1);
  b.node('Identity', [c.y], ['y2']);
  b.output('y2');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    plantDuplicate(m, groupOf(an, w1), 1, 3);
    plantDuplicate(m, groupOf(an, a.w), 0, 5);
    plantDuplicate(m, groupOf(an, wt), 1, 2);
  });
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.equal(report.totals.exact, 3);
  t.same(dims(model, w1), [8, 5]);
  t.same(dims(model, w2), [5, 4]);
  t.same(dims(model, wt), [5, 3, 2, 2]);
  t.same(dims(model, bt), [3]);
  t.same(dims(model, c.w), [2, 3, 1, 1]);
});

t.test('Pad, Resize (sizes), Concat on another axis, ReduceMean, Transpose, Squeeze/Unsqueeze carry the channels', async (t) => {
  const b = new GraphBuilder(13, 37);
  const x = b.input('x', [1, 3, 6, 6]);
  const a = b.conv(x, 3, 8, 1);
  const padded = b.op('Pad', [b.op('Relu', [a.y]), b.ints('pads', [0, 0, 1, 1, 0, 0, 1, 1])]);
  const sizes = b.ints('sizes', [1, 8, 12, 12]);
  const big = b.op('Resize', [padded, '', '', sizes], { mode: 'nearest' });
  const tall = b.op('Concat', [big, big], { axis: 2 });
  const pooled = b.op('ReduceMean', [tall], { axes: [3], keepdims: 0 });
  const rows = b.op('Transpose', [pooled], { perm: [0, 2, 1] });
  const w = b.weights('w', [8, 3]);
  const un = b.op('Unsqueeze', [b.op('Squeeze', [b.op('Unsqueeze', [rows, b.ints('u', [0])]), b.ints('s', [0])]), b.ints('u2', [1])]);
  const y = b.op('MatMul', [un, w]);
  b.node('Identity', [y], ['y']);
  b.output('y');
  const { model, report, deviation } = await mergeAndCompare(b, (m, an) => {
    const g = groupOf(an, a.w);
    t.same(g.blocked, []);
    plantDuplicate(m, g, 3, 6);
  });
  t.ok(deviation <= EXACT, `outputs equal (${deviation.toExponential(2)})`);
  t.equal(report.totals.exact, 1);
  t.same(dims(model, w), [7, 3]);
  const resize = node(model, 'Resize', 0);
  t.same(Array.from(model.graph.constant(resize.input(3))!.data as BigInt64Array, Number), [1, 7, 12, 12], 'Resize sizes rewritten');
});

t.test('options are validated', async (t) => {
  const model = new GraphBuilder().build();
  for (const [options, re] of [
    [{ epsilon: -0.1 }, /options\.epsilon/],
    [{ epsilon: 1 }, /options\.epsilon/],
    [{ epsilon: '0.1' }, /options\.epsilon/],
    [{ dead: 1 }, /options\.dead/],
    [{ candidates: 0 }, /options\.candidates/],
    [null, /options/],
  ] as [unknown, RegExp][]) {
    t.throws(() => mergeOutputs(model, options as MergeOptions), { name: 'RedppError', code: 'INVALID_OPTION', message: re });
  }
});

/** Hashes every weighted layer per output neuron (the native kernel), as RED++ step 1 does. */
async function hashAll(model: Model, beta: number): Promise<number> {
  let layers = 0;
  for (const layer of layerTable(model.graph)) {
    const layout = layer.layout();
    if ('skip' in layout || layout.tensor.dataType !== DataType.FLOAT) continue;
    const r = await hashWeights(toRows(layout.grid, layout.tensor.toFloat32()), layout.fanIn, { beta });
    layout.tensor.setData(fromRows(layout.grid, r.values));
    layers++;
  }
  return layers;
}

t.test('PP-OCR after hashing (beta 0.05): exact merging keeps the outputs; epsilon merges more, lossily', async (t) => {
  for (const m of PPOCR) {
    const original = await loadModel(path.join(PPOCR_ASSETS, m.file));
    exposeLogits(original);
    const feeds = randomFeeds(original, 5, { [original.graph.runtimeInputs[0].name]: m.input });
    const plain = mergeOutputs(decodeModel(encodeModel(original)));
    t.comment(`${m.name}: without hashing, ${plain.totals.exact} exact duplicates and ${plain.totals.dead} dead channels`);
    const layers = await hashAll(original, 0.05);
    const hashedBytes = encodeModel(original);
    const reference = await runModel(hashedBytes, feeds);
    for (const epsilon of [0, 0.01, 0.05, 0.1]) {
      const model = decodeModel(hashedBytes);
      const started = performance.now();
      const report = mergeOutputs(model, { epsilon });
      const ms = performance.now() - started;
      const dev = relativeDeviation(await runModel(model, feeds), reference);
      const tt = report.totals;
      t.comment(
        `${m.name} hashed (${layers} layers), epsilon ${epsilon}: ${tt.removed}/${tt.prunableChannels} prunable channels removed ` +
          `(exact ${tt.exact}, dead ${tt.dead}, near ${tt.approximate}), weights ${tt.weightsBefore} -> ${tt.weightsAfter} ` +
          `in the edited layers, output deviation ${dev.toExponential(2)}, ${ms.toFixed(0)} ms`,
      );
      if (epsilon === 0) {
        t.equal(report.lossy, false);
        t.ok(dev <= EXACT, `${m.name}: exact merging keeps the hashed model's outputs (${dev.toExponential(2)})`);
      } else {
        t.equal(report.lossy, tt.approximate > 0, `${m.name}, epsilon ${epsilon}: lossy exactly when near duplicates merged`);
      }
    }
  }
});

t.test('ResNet-50 scale (26k neurons, random weights): planted duplicates merge exactly', async (t) => {
  let started = performance.now();
  const model = buildResNet50(3);
  t.comment(`built ResNet-50 in ${(performance.now() - started).toFixed(0)} ms`);
  started = performance.now();
  const a = analyzeChannels(model);
  const analysisMs = performance.now() - started;
  const s = a.groups.reduce((n, g) => n + g.channels, 0);
  const rng = new Rng(9);
  let planted = 0;
  for (const g of a.groups) {
    if (g.blocked.length > 0) continue;
    // About 2 % of each group: dup <- keep pairs among distinct channels.
    const pairs = Math.max(1, Math.floor(g.channels / 50));
    const used = new Set<number>();
    for (let i = 0; i < pairs; i++) {
      const keep = rng.int(g.channels);
      const dup = rng.int(g.channels);
      if (keep === dup || used.has(keep) || used.has(dup)) continue;
      used.add(keep).add(dup);
      plantDuplicate(model, g, keep, dup);
      planted++;
    }
  }
  const feeds = randomFeeds(model, 1, { x: [1, 3, 64, 64] });
  const before = await runModel(model, feeds);
  const bytes = encodeModel(model);
  started = performance.now();
  const report = mergeOutputs(model);
  const mergeMs = performance.now() - started;
  const dev = relativeDeviation(await runModel(model, feeds), before);
  t.comment(
    `ResNet-50: ${s} channels in ${a.groups.length} groups, analysis ${analysisMs.toFixed(0)} ms; ` +
      `exact merge of ${planted} planted duplicates ${mergeMs.toFixed(0)} ms (analysis included), deviation ${dev.toExponential(2)}`,
  );
  t.equal(report.totals.exact, planted, 'every planted duplicate merged');
  t.ok(dev <= EXACT, 'outputs equal');
  for (const epsilon of [0.05, 0.2]) {
    const m = decodeModel(bytes);
    started = performance.now();
    const r = mergeOutputs(m, { epsilon });
    t.comment(`ResNet-50, epsilon ${epsilon}: ${r.totals.removed} removed (exact ${r.totals.exact}, near ${r.totals.approximate}) in ${(performance.now() - started).toFixed(0)} ms`);
    t.equal(r.totals.exact, planted, `epsilon ${epsilon}: the exact duplicates merge first`);
  }
});
