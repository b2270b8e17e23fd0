import * as path from 'node:path';

import t from 'tap';

import { loadModel } from '../lib/load';
import type { Model } from '../lib/model';
import {
  FIXED,
  analyzeChannels,
  channelSteps,
  channelSummary,
  registerChannelRule,
  type ChannelAnalysis,
  type ChannelGroup,
} from '../lib/passes/channels';
import { mergeOutputs } from '../lib/passes/merge';
import { Rng } from '../lib/rng';
import { nextTurn, stepsInTurns } from '../lib/turns';
import { GraphBuilder } from './helpers/graph-builder';
import { PPOCR, PPOCR_ASSETS, exposeLogits, plantDuplicate, randomFeeds, relativeDeviation, runModel } from './helpers/merge-check';

function groupOf(a: ChannelAnalysis, w: string): ChannelGroup {
  const g = a.groups.find((x) => x.producers.some((s) => s.value === w));
  if (!g) throw new Error(`no group produced by '${w}'`);
  return g;
}

t.test('a residual block: coupled producers, consumers, flow and values', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', [1, 4, 8, 8]);
  const stem = b.conv(x, 4, 8, 1);
  const r0 = b.op('Relu', [stem.y]);
  const c1 = b.conv(r0, 8, 4, 1);
  const c2 = b.conv(b.op('Relu', [c1.y]), 4, 8);
  const sum = b.op('Add', [r0, c2.y]);
  const head = b.conv(b.op('Relu', [sum]), 8, 2, 1);
  b.node('Identity', [head.y], ['y']);
  b.output('y');
  const a = analyzeChannels(b.build());
  const trunk = groupOf(a, stem.w);
  t.same(trunk.blocked, []);
  t.equal(trunk.channels, 8);
  t.same(trunk.producers.map((s) => s.value).sort(), [stem.w, stem.b, c2.w, c2.b].sort(), 'stem and the block output are one group');
  t.same(trunk.consumers.map((s) => s.value).sort(), [c1.w, head.w].sort());
  t.ok(trunk.consumers.every((s) => s.axis === 1 && s.layout.inner === 1));
  t.ok(trunk.nodes.some((n) => n.opType === 'Add'), 'the Add is on the flow');
  t.ok(trunk.values.includes(sum));
  t.same(trunk.cells, [0, 8]);
  const inner = groupOf(a, c1.w);
  t.equal(inner.channels, 4);
  t.same(inner.consumers.map((s) => s.value), [c2.w]);
  const out = groupOf(a, head.w);
  t.match(out.blocked.join(), /graph output 'y'/);
  t.same(channelSummary(a), { groups: 3, prunableGroups: 2, channels: 14, prunableChannels: 12 });
});

t.test('Concat records offsets, with outside inputs as fixed runs', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', [1, 3, 4, 4]);
  const z = b.input('z', [1, 2, 4, 4]);
  const p = b.conv(x, 3, 5, 1);
  const q = b.conv(x, 3, 6, 1);
  const cat = b.op('Concat', [p.y, z, q.y], { axis: -3 });
  const c = b.conv(cat, 13, 2, 1);
  b.node('Identity', [c.y], ['y']);
  b.output('y');
  const a = analyzeChannels(b.build());
  const l = a.layouts.get(cat)!;
  t.same(l.axis, 1);
  const [gp, gq] = [groupOf(a, p.w).id, groupOf(a, q.w).id];
  t.same(l.segments, [
    { group: gp, start: 0, length: 5 },
    { group: FIXED, start: 0, length: 2 },
    { group: gq, start: 0, length: 6 },
  ]);
  const site = groupOf(a, p.w).consumers[0];
  t.equal(site.value, c.w);
  t.equal(site, groupOf(a, q.w).consumers[0], 'one consumer site shared by both groups');
});

t.test('Split and Slice cut a group into cells; Flatten and Transpose move the axis', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', [2, 3, 4, 4]);
  const a0 = b.conv(x, 3, 10, 1);
  const [s0, s1] = b.node('Split', [a0.y, b.ints('sizes', [4, 6])], 2, { axis: 1 });
  const flat = b.op('Flatten', [s0]);
  const g1 = b.op('Gemm', [flat, b.weights('fc', [64, 3])]);
  const tr = b.op('Transpose', [s1], { perm: [0, 2, 3, 1] });
  const mm = b.op('MatMul', [tr, b.weights('m', [6, 5])]);
  b.node('Identity', [g1], ['y1']);
  b.node('Identity', [mm], ['y2']);
  b.output('y1');
  b.output('y2');
  const a = analyzeChannels(b.build());
  const g = groupOf(a, a0.w);
  t.same(g.blocked, []);
  t.same(g.cells, [0, 4, 10]);
  t.same(a.layouts.get(flat), { axis: 1, rank: 2, inner: 16, segments: [{ group: g.id, start: 0, length: 4 }] });
  t.same(a.layouts.get(tr)!.axis, 3);
  t.same(g.consumers.map((s) => [s.axis, s.layout.inner]), [
    [0, 16],
    [0, 1],
  ]);
});

t.test('a Reshape whose shape is computed from Shape() follows the channels; one that splits them blocks', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', ['N', 3, 4, 4]);
  const a0 = b.conv(x, 3, 6, 1);
  // [N, C, H, W] -> [N, C, H*W] with the shape Concat(Shape(x)[0:2], [-1]), as paddle2onnx writes it.
  const dims = b.op('Slice', [b.op('Shape', [a0.y]), b.ints('s', [0]), b.ints('e', [2])]);
  const shape = b.op('Concat', [dims, b.ints('m1', [-1])], { axis: 0 });
  const r = b.op('Reshape', [a0.y, shape]);
  const c = b.conv(b.op('Unsqueeze', [r, b.ints('ax', [3])]), 6, 2, 1);
  const a1 = b.conv(x, 3, 6, 1);
  const split = b.op('Reshape', [a1.y, b.ints('shape', [0, 2, 3, 16])]);
  b.node('Identity', [c.y], ['y']);
  b.node('Identity', [split], ['y2']);
  b.output('y');
  b.output('y2');
  const a = analyzeChannels(b.build());
  t.same(groupOf(a, a0.w).blocked, []);
  t.same(a.layouts.get(r)!.axis, 1);
  t.match(groupOf(a, a1.w).blocked.join(), /splits or interleaves the channels/);
});

t.test('what blocks a group, and why', async (t) => {
  const b = new GraphBuilder(13);
  const x = b.input('x', [1, 4, 6, 6]);
  const side = b.input('side', [1, 8, 6, 6]);
  const cases: Record<string, string> = {};
  const tail = (v: string, name: string) => {
    const c = b.conv(v, 8, 2, 1);
    b.node('Identity', [c.y], [name]);
    b.output(name);
  };
  const grouped = b.conv(x, 4, 8, 1);
  tail(b.conv(grouped.y, 8, 8, 3, { group: 2 }).y, 'y1');
  cases[grouped.w] = 'grouped Conv';
  const soft = b.conv(x, 4, 8, 1);
  tail(b.op('Softmax', [soft.y], { axis: 1 }), 'y2');
  cases[soft.w] = 'normalizes over the channels';
  const mixed = b.conv(x, 4, 8, 1);
  tail(b.op('Add', [mixed.y, side]), 'y3');
  cases[mixed.w] = 'varies along the channel axis';
  const pooled = b.conv(x, 4, 8, 1);
  // (Not through tail(): the mean has one channel, which an 8-channel conv cannot take.)
  b.node('ReduceMean', [pooled.y], ['y4'], { axes: [1], keepdims: 1 });
  b.output('y4');
  cases[pooled.w] = 'reduces over the channels';
  const custom = b.conv(x, 4, 8, 1);
  tail(b.node('Scale', [custom.y], 1)[0], 'y5');
  cases[custom.w] = 'Scale .* has no channel rule';
  const shaped = b.conv(x, 4, 8, 1);
  tail(shaped.y, 'y6');
  b.node('Shape', [shaped.y], ['dims']);
  b.output('dims', [4], 7);
  cases[shaped.w] = "its shape reaches graph output 'dims'";
  const counted = b.conv(x, 4, 8, 1);
  tail(counted.y, 'y7');
  // The side input reshaped with the channel count of another tensor: pruning would change it.
  const c = b.op('Gather', [b.op('Shape', [counted.y]), b.ints('one', [1])]);
  b.node('Reshape', [side, b.op('Concat', [b.ints('n', [1]), c, b.ints('rest', [-1])], { axis: 0 })], ['y8']);
  b.output('y8');
  cases[counted.w] = 'its channel count sets dim 1 of Reshape';
  const model = b.build();
  model.graph.nodes.find((n) => n.opType === 'Scale')!.proto.domain = 'com.example';
  const a = analyzeChannels(model);
  for (const [w, why] of Object.entries(cases)) t.match(groupOf(a, w).blocked.join('\n'), new RegExp(why), why);

  // The public hook: a rule for the custom op unblocks its input's channels.
  const restore = registerChannelRule(
    'Scale',
    (node, ctx) => {
      const l = ctx.layout(node.input(0));
      if (l) ctx.setLayout(node, node.outputs[0], l);
    },
    'com.example',
  );
  try {
    t.same(groupOf(analyzeChannels(model), custom.w).blocked, [], 'a registered rule passes the channels');
  } finally {
    restore();
  }
  t.match(groupOf(analyzeChannels(model), custom.w).blocked.join(), /no channel rule/, 'restored');
  t.throws(() => registerChannelRule('', () => undefined), { code: 'INVALID_ARGUMENT' });
});

t.test('the analysis a node at a time: a yield after the shapes and after each node, turns between them', async (t) => {
  for (const m of PPOCR) {
    const model: Model = await loadModel(path.join(PPOCR_ASSETS, m.file));
    const steps = channelSteps(model);
    let yields = 0;
    for (let step = steps.next(); !step.done; step = steps.next()) yields++;
    t.equal(yields, model.graph.nodes.length + 1, `${m.name}: a yield after the shapes and after each node`);
    // Run in turns, a pause at every step: the event loop's immediates run between the steps.
    let turns = 0;
    let done = false;
    const tick = () => {
      turns++;
      if (!done) setImmediate(tick);
    };
    setImmediate(tick);
    const inTurns = await stepsInTurns(channelSteps(model), () => nextTurn());
    done = true;
    t.ok(turns >= yields, `${m.name}: the event loop turned between the steps (${turns} turns, ${yields} steps)`);
    t.same(channelSummary(inTurns), channelSummary(analyzeChannels(model)), `${m.name}: the same analysis in turns as at once`);
  }
});

t.test('PP-OCR: prunable channels, and planted duplicates merge exactly in every prunable group', async (t) => {
  for (const m of PPOCR) {
    const model: Model = await loadModel(path.join(PPOCR_ASSETS, m.file));
    exposeLogits(model);
    const started = performance.now();
    const a = analyzeChannels(model);
    const ms = performance.now() - started;
    const s = channelSummary(a);
    t.comment(
      `${m.name}: ${s.prunableChannels}/${s.channels} channels (${((100 * s.prunableChannels) / s.channels).toFixed(1)} %) ` +
        `in ${s.prunableGroups}/${s.groups} prunable groups; analysis ${ms.toFixed(0)} ms`,
    );
    t.ok(s.prunableChannels / s.channels > 0.3, `${m.name}: a real share of the channels is prunable`);
    // Plant one duplicate pair in a cell of every prunable group, in every producer and parameter.
    const rng = new Rng(5);
    let planted = 0;
    for (const g of a.groups) {
      if (g.blocked.length > 0) continue;
      const k = g.cells.findIndex((c, i) => i + 1 < g.cells.length && g.cells[i + 1] - c >= 2);
      if (k < 0) continue;
      const [lo, hi] = [g.cells[k], g.cells[k + 1]];
      const keep = lo + rng.int(hi - lo);
      let dup = lo + rng.int(hi - lo - 1);
      if (dup >= keep) dup++;
      plantDuplicate(model, g, keep, dup);
      planted++;
    }
    const feeds = randomFeeds(model, 3, { [model.graph.runtimeInputs[0].name]: m.input });
    const before = await runModel(model, feeds);
    const report = mergeOutputs(model);
    const after = await runModel(model, feeds);
    const dev = relativeDeviation(after, before);
    t.equal(report.totals.removed, planted, `${m.name}: all ${planted} planted duplicates merged`);
    t.ok(dev <= 1e-5, `${m.name}: outputs equal after merging (relative deviation ${dev.toExponential(2)})`);
  }
});
