import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import t from 'tap';

import { clsInput, makeClsSamples, makeRecSamples, ocrModelPath, recInput } from '../bench/ocr';
import { decodeModel } from '../lib/load';
import { encodeModel, type Model } from '../lib/model';
import { GraphBuilder } from '../lib/model/builder';
import type { ResolvedKernelSplitOptions } from '../lib/options';
import { bestPlan, DEFAULT_COST_MODEL, denseCost, kernelSharing, kernelSplitPass, type SplitCostModel } from '../lib/passes/kernel-split';
import { SPLIT_COST } from '../lib/passes/kernel-split/calibration';
import { LayerPlan, type KernelSplitRecord } from '../lib/passes/layer-records';
import type { PassReport } from '../lib/passes/pass';
import { WorkerPool } from '../lib/pool';
import { prune } from '../lib/prune';
import { Rng } from '../lib/rng';

const root = path.resolve(__dirname, '..');

interface ConvSpec {
  cin: number;
  cout: number;
  kh?: number;
  kw?: number;
  hw?: number;
  batch?: number;
  /** Distinct kernels of channel c (0: all its kernels are zero). */
  mc: (c: number) => number;
  bias?: boolean;
  attrs?: Record<string, number | number[] | string>;
}

/** A one-conv model whose filters draw each channel's kernel from m_c random ones. */
function sharedConv(spec: ConvSpec, seed = 3): { model: Model; shape: number[] } {
  const { cin, cout, kh = 3, kw = 3, hw = 17, batch = 1 } = spec;
  const b = new GraphBuilder(13, seed);
  const shape = [batch, cin, hw, hw];
  const x = b.input('x', shape);
  const k = kh * kw;
  const w = new Float32Array(cout * cin * k);
  for (let c = 0; c < cin; c++) {
    const m = spec.mc(c);
    if (!m) continue;
    const pool = b.rng.normals(m * k, 0.3);
    for (let o = 0; o < cout; o++) {
      const j = (o + c) % m;
      w.set(pool.subarray(j * k, (j + 1) * k), (o * cin + c) * k);
    }
  }
  const inputs = [x, b.init('w', [cout, cin, kh, kw], w)];
  if (spec.bias !== false) inputs.push(b.weights('b', [cout], 0.5));
  b.output(b.op('Conv', inputs, { kernel_shape: [kh, kw], ...(spec.attrs ?? { pads: [kh >> 1, kw >> 1, kh >> 1, kw >> 1] }) }));
  return { model: b.build(), shape };
}

function randomTensor(shape: number[], seed = 11): ort.Tensor {
  const rng = new Rng(seed);
  return new ort.Tensor('float32', rng.normals(shape.reduce((a, d) => a * d, 1), 1), shape);
}

async function outputs(model: Model | Uint8Array, feeds: Record<string, ort.Tensor>): Promise<Float32Array[]> {
  const s = await ort.InferenceSession.create(model instanceof Uint8Array ? model : encodeModel(model), { logSeverityLevel: 3 });
  try {
    const r = await s.run(feeds);
    return s.outputNames.map((n) => r[n].data as Float32Array);
  } finally {
    await s.release();
  }
}

/** max |a - b| over max |a|. */
function relDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    d = Math.max(d, Math.abs(a[i] - b[i]));
    m = Math.max(m, Math.abs(a[i]));
  }
  return m ? d / m : d;
}

// The sharing as prune() finds it: in the pool's workers.
const pool = new WorkerPool(2);
t.teardown(() => pool.close());

/**
 * Runs the kernel split on `model`: its report and the records of the eligible convs. The same pass
 * with the sharing found in the pool must rewrite the model byte for byte alike, with the same records.
 */
async function kernelSplit(
  model: Model,
  options: Partial<ResolvedKernelSplitOptions> & Pick<ResolvedKernelSplitOptions, 'mode'>,
  costModel?: SplitCostModel,
): Promise<{ report: PassReport; layers: KernelSplitRecord[] }> {
  const twin = decodeModel(encodeModel(model));
  const resolved = { inputShapes: {}, measureRuns: 0, ...options };
  const plan = new LayerPlan(model);
  const report = await kernelSplitPass(resolved, { costModel }).run(model, plan);
  const layers = plan.records.flatMap((r) => (r.kernelSplit ? [r.kernelSplit] : []));
  // Not timed again: the latencies measured are the only thing that may differ.
  const twinPlan = new LayerPlan(twin);
  await kernelSplitPass({ ...resolved, measureRuns: 0 }, { costModel, runner: pool.tasks() }).run(twin, twinPlan);
  if (!Buffer.from(encodeModel(twin)).equals(Buffer.from(encodeModel(model)))) throw new Error('the split with the pool made another model');
  const untimed = (records: KernelSplitRecord[]) => JSON.stringify(records.map(({ latencyMs: _l, ...r }) => r));
  const twinLayers = twinPlan.records.flatMap((r) => (r.kernelSplit ? [r.kernelSplit] : []));
  if (untimed(twinLayers) !== untimed(layers)) throw new Error('the split with the pool recorded otherwise');
  return { report, layers };
}

/** A cost model under which padding to max m_c wins (copies cost a lot). */
const PADDED_WINS: SplitCostModel = { ...DEFAULT_COST_MODEL, copy: { fixed: 1000, perMMac: 0, perMB: 0 } };

/** A cost model under which the bucketed form (Gather per bucket, Concat) wins over padding. */
const BUCKETS_WIN: SplitCostModel = {
  ...DEFAULT_COST_MODEL,
  copy: { fixed: 0, perMMac: 0, perMB: 0 },
  grouped: { fixed: 0, perMMac: 10, perMB: 0 },
  depthwise: { fixed: 0, perMMac: 10, perMB: 0 },
};

t.test('kernelSharing: distinct non-zero kernels per input channel, bitwise', async (t) => {
  // C_out 3, C_in 2, 1×2 kernels. Channel 0: [1,2], [1,2], [0,0]; channel 1: [3,4], [-0,0], [3,5].
  const w = Float32Array.from([1, 2, 3, 4, 1, 2, -0, 0, 0, 0, 3, 5]);
  const s = kernelSharing(w, 3, 2, 2);
  t.same([...s.counts], [1, 2]);
  t.same([...s.index], [0, 0, 0, -1, -1, 1]);
  t.same([...s.kernels[0]], [1, 2]);
  t.same([...s.kernels[1]], [3, 4, 3, 5]);
});

const VARIANTS: { name: string; spec: ConvSpec }[] = [
  { name: '3×3, pads 1, bias, uneven m_c with all-zero channels', spec: { cin: 12, cout: 20, mc: (c) => [1, 3, 0, 2, 4, 1][c % 6] } },
  { name: 'stride 2, asymmetric pads, no bias', spec: { cin: 8, cout: 16, mc: (c) => 1 + (c % 3), bias: false, attrs: { strides: [2, 2], pads: [0, 1, 1, 0] } } },
  { name: '3×2 kernel, dilation 2, batch 2', spec: { cin: 6, cout: 10, kh: 3, kw: 2, batch: 2, mc: (c) => 2 + (c % 2), attrs: { dilations: [2, 2], pads: [2, 1, 2, 1] } } },
  { name: 'auto_pad SAME_UPPER, stride 2, 5×5', spec: { cin: 5, cout: 9, kh: 5, kw: 5, hw: 15, mc: (c) => (c === 2 ? 5 : 1), attrs: { auto_pad: 'SAME_UPPER', strides: [2, 2] } } },
  { name: 'no sharing at all (m_c = C_out)', spec: { cin: 4, cout: 6, mc: () => 6 } },
];

t.test("'force' keeps the conv's outputs (within 1e-5), padded and bucketed forms", async (t) => {
  for (const { name, spec } of VARIANTS) {
    for (const [form, costModel] of [['padded', PADDED_WINS], ['buckets', BUCKETS_WIN]] as const) {
      const { model, shape } = sharedConv(spec);
      const feeds = { x: randomTensor(shape) };
      const [want] = await outputs(model, feeds);
      const split = decodeModel(encodeModel(model));
      const { layers } = await kernelSplit(split, { mode: 'force', inputShapes: { x: shape } }, costModel);
      t.equal(layers.length, 1, `${name}: one eligible conv`);
      const l = layers[0];
      t.ok(l.split, `${name}: split`);
      t.equal(l.mc.max, Math.max(...Array.from({ length: spec.cin }, (_, c) => Math.min(spec.mc(c), spec.cout))), `${name}: max m_c`);
      const zeroChannels = Array.from({ length: spec.cin }, (_, c) => c).filter((c) => spec.mc(c) === 0).length;
      t.equal(l.zeroKernels, zeroChannels * spec.cout, `${name}: zero kernels`);
      const ops = split.graph.nodes.map((n) => n.opType);
      const uneven = l.mc.min !== l.mc.max;
      if (form === 'buckets' && uneven) t.ok(ops.includes('Gather'), `${name}: bucketed form (${ops.join(', ')})`);
      if (form === 'padded') t.same(ops, ['Conv', 'Conv'], `${name}: grouped conv + 1×1 conv`);
      const [got] = await outputs(split, feeds);
      t.equal(got.length, want.length);
      const d = relDiff(want, got);
      t.ok(d <= 1e-5, `${name} (${l.predicted?.form}): relative difference ${d.toExponential(2)}`);
    }
  }
});

t.test("'off' leaves the model alone; 'auto' splits a highly redundant conv and not a random one", async (t) => {
  const redundant = sharedConv({ cin: 64, cout: 64, hw: 32, mc: () => 1 });
  const off = await kernelSplit(redundant.model, { mode: 'off', inputShapes: { x: redundant.shape } });
  t.notOk(off.report.changed);
  t.equal(off.layers.length, 0);

  const feeds = { x: randomTensor(redundant.shape) };
  const [want] = await outputs(redundant.model, feeds);
  const r = await kernelSplit(redundant.model, { mode: 'auto', inputShapes: { x: redundant.shape }, measureRuns: 15 });
  const l = r.layers[0];
  t.ok(l.split, `m_c = 1: predicted ${l.predicted!.ratio.toFixed(2)}× the dense cost`);
  t.ok(l.latencyMs && l.latencyMs.before > 0 && l.latencyMs.after > 0, 'the split layer was timed alone');
  t.comment(`64→64 3×3 at 32×32, m_c = 1: alone ${l.latencyMs!.before} ms -> ${l.latencyMs!.after} ms (best round median; medians ${l.latencyMs!.medianBefore} -> ${l.latencyMs!.medianAfter})`);
  const [got] = await outputs(redundant.model, feeds);
  t.ok(relDiff(want, got) <= 1e-5);

  const b = new GraphBuilder(13, 9);
  const x = b.input('x', [1, 64, 32, 32]);
  b.output(b.conv(x, 64, 64, 3).y);
  const random = b.build();
  const rr = await kernelSplit(random, { mode: 'auto', inputShapes: { x: [1, 64, 32, 32] } });
  t.notOk(rr.layers[0].split, `random weights: m_c = ${rr.layers[0].mc.mean}, predicted ${rr.layers[0].predicted!.ratio.toFixed(1)}× the dense cost`);
  t.notOk(rr.report.changed);
  t.match(rr.report.skipped[0].reason, /predicted .* the dense cost/);
});

t.test('the cost model: calibrated, conservative on whole layers, and its plan choice', async (t) => {
  const cal = SPLIT_COST.calibration;
  t.ok(cal && cal.samples.length > 50, 'calibration data is kept with the model');
  t.ok(cal.loadAverage.before.length === 3, 'with the load average it was taken under');
  for (const c of cal.check) {
    // Whole-layer check: the prediction errs on the side of not splitting, or is close.
    if (!(c.predictedRatio >= c.measuredRatio * 0.75)) t.fail(`check ${c.cin}->${c.cout} m=${c.m}: predicted ${c.predictedRatio}, measured ${c.measuredRatio}`);
  }
  const s = { batch: 1, cin: 64, cout: 64, k: 9, inPixels: 1024, outPixels: 1024 };
  const uneven = Uint32Array.from({ length: 64 }, (_, c) => (c < 60 ? 1 : 32));
  const plan = bestPlan(s, uneven, DEFAULT_COST_MODEL);
  t.equal(plan.form, 'buckets', 'a few wide channels: bucketed rather than padded to 32');
  t.ok(plan.cost < bestPlan(s, Uint32Array.from({ length: 64 }, () => 32), DEFAULT_COST_MODEL).cost);
  t.ok(denseCost(s, DEFAULT_COST_MODEL) > 0);
});

t.test('on real inputs: PP-OCR recognition and direction models, every eligible conv split (force), outputs kept', { skip: !fs.existsSync(ocrModelPath('rec')) && 'no OCR models' }, async (t) => {
  for (const kind of ['cls', 'rec'] as const) {
    const { model: pruned } = await prune(ocrModelPath(kind), { beta: 0.05, kernelSplit: 'off', threads: 2 });
    const split = decodeModel(encodeModel(pruned));
    const r = await kernelSplit(split, { mode: 'force' });
    t.ok(r.layers.length >= 1 && r.layers.every((l) => l.split), `${kind}: ${r.layers.length} eligible conv(s) split`);
    const input = kind === 'rec' ? recInput(makeRecSamples({ count: 1 })[0].image) : clsInput(makeClsSamples({ count: 1 })[0].image);
    const feeds = { x: new ort.Tensor('float32', input.data, input.dims) };
    const want = await outputs(pruned, feeds);
    const got = await outputs(split, feeds);
    want.forEach((w, i) => {
      const d = relDiff(w, got[i]);
      t.ok(d <= 1e-5, `${kind} output ${i}: relative difference ${d.toExponential(2)}`);
    });
  }
});

t.test('PP-OCR hashed as RED++ (beta 0.05): eligible convs, kernel sharing, nothing worth splitting', { skip: !fs.existsSync(ocrModelPath('det')) && 'no OCR models' }, async (t) => {
  const shapes = { det: [1, 3, 640, 640], rec: [1, 3, 48, 320], cls: [1, 3, 48, 192] } as const;
  for (const kind of ['det', 'rec', 'cls'] as const) {
    const { report } = await prune(ocrModelPath(kind), { beta: 0.05, threads: 2, inputShapes: { x: [...shapes[kind]] } });
    const eligible = report.layers.filter((l) => l.kernelSplit);
    t.ok(eligible.length >= 1, `${kind}: ${eligible.length} eligible convs`);
    for (const l of eligible) {
      const k = l.kernelSplit!;
      t.comment(
        `${kind} ${l.node} [${k.cout}, ${k.cin}, ${k.kernel.join('×')}]${l.hash ? ' hashed' : ''}: m_c min/mean/max ${k.mc.min}/${k.mc.mean.toFixed(1)}/${k.mc.max} of ${k.cout}, zero kernels ${k.zeroKernels}, predicted ${k.predicted!.ratio.toFixed(1)}× dense`,
      );
      // Per-neuron hashing gives each filter its own values: kernels of different filters do not coincide.
      t.ok(k.mc.mean >= 0.9 * k.cout, `${kind} ${l.node}: little sharing (m_c mean ${k.mc.mean.toFixed(1)} of ${k.cout})`);
      t.notOk(k.split, `${kind} ${l.node}: not split`);
    }
    const pass = report.passes.find((p) => p.pass === 'kernel-split')!;
    t.same(pass.stats, { eligible: eligible.length, split: 0 });
  }
});

t.test('options.kernelSplit and --kernel-split', async (t) => {
  const cls = ocrModelPath('cls');
  await t.rejects(prune(cls, { kernelSplit: 'sometimes' as never }), { code: 'INVALID_OPTION', message: /options\.kernelSplit/ });
  await t.rejects(prune(cls, { split: 'off' } as never), { code: 'INVALID_OPTION', message: /options\.split was renamed options\.kernelSplit/ });
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-split-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const run = (...args: string[]) => spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli.js'), 'prune', cls, '-o', path.join(dir, 'out.onnx'), '--threads', '2', '--beta', '0.05', ...args], { encoding: 'utf8' });
  const off = run('--kernel-split', 'off', '--json');
  t.equal(off.status, 0, off.stderr);
  const j = JSON.parse(off.stdout);
  t.same(j.passes.find((p: { pass: string }) => p.pass === 'kernel-split').stats, {});
  t.equal(j.options.kernelSplit, 'off');
  const force = run('--kernel-split', 'force');
  t.equal(force.status, 0, force.stderr);
  t.match(force.stdout, /kernel split {4}1 of 1 eligible convs/);
  const bad = run('--kernel-split', 'maybe');
  t.equal(bad.status, 2, 'a usage error');
  t.match(bad.stderr, /--kernel-split/);
  t.notMatch(bad.stderr, /options\./, 'the message names the flag');
});
