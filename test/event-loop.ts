/**
 * Long work never holds the event loop: a server that embeds prune() keeps serving while it runs.
 * These count the ticks of a 5 ms timer over the work, against the ticks the time allows: the timer
 * must keep firing, whatever the machine's load (a busy machine slows both alike). What each run
 * measured as the longest stall is printed, not asserted (README, "Performance").
 */
import * as path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';

import t from 'tap';

import { mobilenetV2Model } from '../bench/models';
import { loadModel } from '../lib/load';
import { layerTable } from '../lib/layers';
import { GraphBuilder } from '../lib/model/builder';
import { encodeModel } from '../lib/model/write';
import { ProbeModel } from '../lib/passes/budget/probe-model';
import { prune } from '../lib/prune';
import { Rng } from '../lib/rng';
import { inChunks } from '../lib/turns';

const TICK_MS = 5;

/** Runs `work` with a TICK_MS timer going: the share of the ticks its time allows that fired, and the longest stall. */
async function ticking<T>(work: () => Promise<T>): Promise<{ result: T; share: number; ms: number; maxStallMs: number }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, TICK_MS);
  const delay = monitorEventLoopDelay({ resolution: 5 });
  delay.enable();
  const t0 = performance.now();
  try {
    const result = await work();
    const ms = performance.now() - t0;
    return { result, share: ticks / (ms / TICK_MS), ms, maxStallMs: delay.max / 1e6 };
  } finally {
    clearInterval(timer);
    delay.disable();
  }
}

t.test('inChunks: every element once, in order, with the event loop served between slices', async (t) => {
  for (const length of [0, 1, 999, 1000, 1001, 3007]) {
    const seen: number[] = [];
    let largest = 0;
    await inChunks(length, (from, to) => {
      largest = Math.max(largest, to - from);
      for (let i = from; i < to; i++) seen.push(i);
    }, { chunk: 1000 });
    t.ok(seen.length === length && seen.every((v, i) => v === i), `length ${length}: each element once, in order`);
    t.ok(largest <= 1000, `chunks of at most 1000 (${largest})`);
  }
  // 100 chunks of 1 ms of work: the timer fires between the slices.
  const { share } = await ticking(() =>
    inChunks(100, () => {
      const end = performance.now() + 1;
      while (performance.now() < end);
    }, { chunk: 1 }),
  );
  t.ok(share > 0.1, `the timer fired ${(100 * share).toFixed(0)} % of the ticks the time allows`);
});

t.test('the probe model runs onnxruntime off the event loop', async (t) => {
  // Three 3x3 convs of 64 channels at 160x160 (2.8 GMACs): a probe run takes about a hundred
  // milliseconds or more, which onnxruntime-node spends inside one synchronous call on its thread.
  const b = new GraphBuilder(13, 3);
  let x = b.input('x', [1, 64, 160, 160]);
  for (let i = 0; i < 3; i++) x = b.op('Relu', [b.convHe(x, 64, 64, 3).y]);
  b.output(x, [1, 64, 160, 160]);
  const model = b.model();
  const rng = new Rng(4);
  const probes = Array.from({ length: 2 }, () => ({ x: { type: 'float32' as const, data: rng.normals(64 * 160 * 160, 1), dims: [1, 64, 160, 160] } }));
  const layers = layerTable(model.graph);
  const probe = await ProbeModel.create(model, layers, probes);
  try {
    const w = model.graph.constant(layers[1].weightValue)!;
    const changed = new Map([[layers[1].weightValue, Float32Array.from(w.data as Float32Array, (v) => v * 1.01)]]);
    const r = await ticking(async () => {
      const d: number[] = [];
      for (let i = 0; i < 3; i++) d.push(await probe.deviation(i % 2 ? new Map() : changed));
      return d;
    });
    t.ok(r.result[0] > 0 && r.result[1] === 0 && r.result[2] === r.result[0], 'the deviations are measured (and the originals restored)');
    t.comment(`3 measurements of 2 probes: ${r.ms.toFixed(0)} ms, longest stall ${r.maxStallMs.toFixed(0)} ms`);
    t.ok(r.share > 0.5, `the timer kept firing (${(100 * r.share).toFixed(0)} % of its ticks)`);
  } finally {
    await probe.release();
  }
});

t.test('prune() at the defaults (the fidelity budget) keeps the event loop serving', { timeout: 300_000 }, async (t) => {
  const r = await ticking(() => prune(mobilenetV2Model(), { inputShapes: { x: [1, 3, 224, 224] }, threads: 2 }));
  t.ok(r.result.report.budget, 'the budget ran');
  // Its native library takes 20-60 ms to load, in one synchronous call: the probe worker loads it.
  t.notOk(
    Object.keys(require.cache).some((file) => file.includes(`${path.sep}onnxruntime-node${path.sep}`)),
    'onnxruntime-node is not loaded on the main thread',
  );
  t.comment(`MobileNetV2: ${r.ms.toFixed(0)} ms, longest stall ${r.maxStallMs.toFixed(0)} ms`);
  t.ok(r.share > 0.5, `the timer kept firing (${(100 * r.share).toFixed(0)} % of its ticks)`);
});

t.test('prune() with validation keeps the event loop serving: onnxruntime runs in a worker', { timeout: 300_000 }, async (t) => {
  // Three 3x3 convs of 64 channels at 160x160 (2.8 GMACs a run): validation creates two sessions and
  // runs each model 13 times, seconds that onnxruntime-node spends in synchronous calls on its thread.
  const b = new GraphBuilder(13, 3);
  let x = b.input('x', [1, 64, 160, 160]);
  for (let i = 0; i < 3; i++) x = b.op('Relu', [b.convHe(x, 64, 64, 3).y]);
  b.output(x, [1, 64, 160, 160]);
  const r = await ticking(() => prune(b.model(), { beta: 0.05, validate: true, threads: 2 }));
  const v = r.result.report.validation!;
  t.ok(v.latency && v.latency.original.runs === 10 && v.worst.cosine > 0.9, 'validated: outputs compared and both models timed');
  t.notOk(
    Object.keys(require.cache).some((file) => file.includes(`${path.sep}onnxruntime-node${path.sep}`)),
    'onnxruntime-node is not loaded on the main thread',
  );
  t.comment(`validation ${r.result.report.timingsMs.validate} ms of ${r.ms.toFixed(0)} ms, longest stall ${r.maxStallMs.toFixed(0)} ms`);
  t.ok(r.share > 0.5, `the timer kept firing (${(100 * r.share).toFixed(0)} % of its ticks)`);
});

t.test("loadModel() of the caller's bytes copies its tensors in slices, the event loop served between them", async (t) => {
  // One 96 MiB tensor: copying it out of the caller's buffer pays for the new memory's first touch
  // (a 2.4 s stall for VGG-16's 553 MB on the 2-core machine, when it was one step).
  const b = new GraphBuilder(13, 5);
  const n = 24 << 20;
  const w = b.init('w', [n], new Float32Array(n).fill(0.5));
  b.output(b.op('ReduceSum', [w], { keepdims: 0 }), []);
  const bytes = encodeModel(b.model());
  const r = await ticking(() => loadModel(bytes));
  t.equal(r.result.graph.constant(w)!.data.length, n, 'read');
  t.comment(`${(bytes.byteLength / 2 ** 20).toFixed(0)} MiB: ${r.ms.toFixed(0)} ms, longest stall ${r.maxStallMs.toFixed(0)} ms`);
  // The work is on this thread, in slices of about 10 ms: a tick or so a slice (one copy in one step
  // left the timer a few ticks of the whole).
  t.ok(r.share > 0.15, `the timer kept firing (${(100 * r.share).toFixed(0)} % of its ticks)`);
});
