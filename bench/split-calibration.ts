/**
 * Calibrates the kernel split's cost model (lib/passes/kernel-split/) in onnxruntime-node on this machine, one
 * thread: times dense 3×3 convs, grouped convs (one input channel per group, M outputs each), 1×1 convs
 * and channel Gathers on a grid of shapes, fits ms = fixed + a * MMACs + b * MB per kind (least squares,
 * coefficients >= 0), then checks the fitted model on whole layers (dense vs split, synthetic sharing)
 * and writes everything to lib/passes/kernel-split/calibration.ts.
 *
 *   node dist/bench/split-calibration.js [--runs N] [--quick] [--dry-run]
 *
 * The machine may be shared: the load average is recorded before and after, and each point is timed in
 * rounds (lib/passes/kernel-split/timing.ts, timeRobust); the fit uses the best round median, a burst of load
 * spoils a round, not the point. Calibrate when `uptime` shows little load.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { GraphBuilder } from '../lib/model/builder';
import { encodeModel } from '../lib/model/write';
import { decodeModel } from '../lib/load';
import { runPasses } from '../lib/passes/pass';
import {
  bestPlan,
  copyFeatures,
  denseCost,
  denseFeatures,
  groupedFeatures,
  pointwiseFeatures,
  type ConvShape,
  type OpCost,
  type OpFeatures,
  type SplitCostModel,
} from '../lib/passes/kernel-split/cost-model';
import { kernelSplitPass, kernelSharing } from '../lib/passes/kernel-split';
import { randomInput, timeRobust } from '../lib/passes/kernel-split/timing';
import { median } from '../lib/timing';
import { checkArgs, machineLine } from './machine';

type Kind = OpFeatures['kind'];

interface Sample {
  kind: Kind;
  /** [batch, cin, h, w] of the input and the op's parameters. */
  shape: number[];
  params: Record<string, number>;
  mmacs: number;
  mb: number;
  /** Best round median (what the fit uses) and median over all runs. */
  ms: number;
  medianMs: number;
}

const args = process.argv.slice(2);
const RUNS = Number(args[args.indexOf('--runs') + 1]) || 9;
const ROUNDS = 3;
const QUICK = args.includes('--quick');
const DRY = args.includes('--dry-run');

function model(build: (b: GraphBuilder, x: string) => string, shape: number[]): Uint8Array {
  const b = new GraphBuilder(13, 3);
  const x = b.input('x', shape);
  b.output(build(b, x));
  return encodeModel(b.model());
}

async function time(m: Uint8Array, shape: number[]): Promise<{ ms: number; medianMs: number }> {
  const [t] = await timeRobust([m], randomInput(shape), RUNS, ROUNDS);
  return { ms: t.best, medianMs: t.median };
}

const conv = (cin: number, cout: number, px: number, k = 9): ConvShape => ({ batch: 1, cin, cout, k, inPixels: px, outPixels: px });
const feat = (f: OpFeatures) => ({ kind: f.kind, mmacs: f.mmacs, mb: f.mb });

async function grid(): Promise<Sample[]> {
  const out: Sample[] = [];
  const sizes = QUICK ? [16, 40] : [16, 28, 40, 56];
  for (const hw of sizes) {
    const px = hw * hw;
    for (const cin of QUICK ? [16, 64] : [8, 16, 32, 64, 128]) {
      for (const cout of QUICK ? [32] : [16, 48, 96]) {
        const shape = [1, cin, hw, hw];
        const m = model((b, x) => b.op('Conv', [x, b.weights('w', [cout, cin, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }), shape);
        out.push({ ...feat(denseFeatures(conv(cin, cout, px))), shape, params: { cout, k: 9 }, ...(await time(m, shape)) });
      }
      for (const mult of QUICK ? [1, 4] : [1, 2, 4, 8, 16]) {
        const shape = [1, cin, hw, hw];
        const m = model((b, x) => b.op('Conv', [x, b.weights('w', [cin * mult, 1, 3, 3])], { kernel_shape: [3, 3], pads: [1, 1, 1, 1], group: cin }), shape);
        out.push({ ...feat(groupedFeatures(conv(cin, cin * mult, px), cin, mult)), shape, params: { mult, k: 9 }, ...(await time(m, shape)) });
      }
      if (cin >= 32) {
        const shape = [1, cin, hw, hw];
        const n = cin >> 1;
        const idx = Array.from({ length: n }, (_, i) => i * 2);
        const m = model((b, x) => b.op('Gather', [x, b.ints('i', idx)], { axis: 1 }), shape);
        out.push({ ...feat(copyFeatures(n * px)), shape, params: { channels: n }, ...(await time(m, shape)) });
      }
    }
    for (const mid of QUICK ? [64, 512] : [32, 128, 256, 512, 1024]) {
      for (const cout of QUICK ? [32] : [16, 48, 96]) {
        const shape = [1, mid, hw, hw];
        const m = model((b, x) => b.op('Conv', [x, b.weights('w', [cout, mid, 1, 1])], { kernel_shape: [1, 1] }), shape);
        out.push({ ...feat(pointwiseFeatures(conv(mid, cout, px, 1), mid)), shape, params: { cout }, ...(await time(m, shape)) });
      }
    }
    process.stderr.write(`  ${hw}x${hw} done, load ${os.loadavg()[0].toFixed(1)}\n`);
  }
  return out;
}

/** Least squares of ms on [1, mmacs, mb] with coefficients >= 0 (drop a negative one, refit). */
function fit(samples: Sample[]): OpCost {
  const cols: ((s: Sample) => number)[] = [() => 1, (s) => s.mmacs, (s) => s.mb];
  let active = [0, 1, 2].filter((j) => samples.some((s) => cols[j](s) !== 0));
  for (;;) {
    const n = active.length;
    const A = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
    for (const s of samples) {
      // Relative error matters (small and large layers alike): weight each point by 1/ms^2.
      const w = 1 / (s.ms * s.ms);
      for (let i = 0; i < n; i++) {
        for (let j = 0; j < n; j++) A[i][j] += w * cols[active[i]](s) * cols[active[j]](s);
        A[i][n] += w * cols[active[i]](s) * s.ms;
      }
    }
    const x = solve(A);
    const neg = x.findIndex((v) => v < 0);
    if (neg < 0 || n === 1) {
      const c: OpCost = { fixed: 0, perMMac: 0, perMB: 0 };
      active.forEach((j, i) => (c[(['fixed', 'perMMac', 'perMB'] as const)[j]] = round(Math.max(0, x[i]))));
      return c;
    }
    active = active.filter((_, i) => i !== neg);
  }
}

function solve(A: number[][]): number[] {
  const n = A.length;
  for (let i = 0; i < n; i++) {
    let p = i;
    for (let r = i + 1; r < n; r++) if (Math.abs(A[r][i]) > Math.abs(A[p][i])) p = r;
    [A[i], A[p]] = [A[p], A[i]];
    for (let r = 0; r < n; r++) {
      if (r === i || A[i][i] === 0) continue;
      const f = A[r][i] / A[i][i];
      for (let c = i; c <= n; c++) A[r][c] -= f * A[i][c];
    }
  }
  return A.map((row, i) => (row[i] === 0 ? 0 : row[n] / row[i]));
}

const round = (v: number) => Number(v.toPrecision(4));

function predictErr(samples: Sample[], c: OpCost): number {
  const errs = samples.map((s) => Math.abs((c.fixed + c.perMMac * s.mmacs + c.perMB * s.mb) / s.ms - 1));
  return round(median(errs));
}

/** A dense conv whose filters draw each channel's kernel from `m` random ones (so m_c = m). */
function sharedConv(cin: number, cout: number, hw: number, m: number, seed = 5): Uint8Array {
  const b = new GraphBuilder(13, seed);
  const x = b.input('x', [1, cin, hw, hw]);
  const pool = b.rng.normals(cin * m * 9, 0.2);
  const w = new Float32Array(cout * cin * 9);
  for (let o = 0; o < cout; o++) {
    for (let c = 0; c < cin; c++) {
      const j = (o * 7 + c * 3) % m;
      w.set(pool.subarray((c * m + j) * 9, (c * m + j + 1) * 9), (o * cin + c) * 9);
    }
  }
  b.output(b.op('Conv', [x, b.init('w', [cout, cin, 3, 3], w), b.weights('b', [cout], 0.1)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] }));
  return encodeModel(b.model());
}

interface Check {
  cin: number;
  cout: number;
  hw: number;
  m: number;
  predictedRatio: number;
  measuredRatio: number;
  denseMs: number;
  splitMs: number;
  /** The ratio of the medians over all runs (more exposed to load bursts). */
  medianRatio: number;
}

async function checks(cm: SplitCostModel): Promise<Check[]> {
  const out: Check[] = [];
  const cases = QUICK
    ? [[64, 64, 32, 2], [64, 64, 32, 16]]
    : [[32, 32, 56, 1], [32, 32, 56, 2], [32, 32, 56, 4], [32, 32, 56, 8], [64, 64, 32, 2], [64, 64, 32, 4], [64, 64, 32, 16], [96, 24, 40, 2], [96, 24, 40, 8], [128, 128, 16, 4], [128, 128, 16, 32]];
  for (const [cin, cout, hw, m] of cases) {
    const dense = sharedConv(cin, cout, hw, m);
    const split = decodeModel(dense);
    await runPasses(split, [kernelSplitPass({ mode: 'force', inputShapes: { x: [1, cin, hw, hw] }, measureRuns: 0 }, { costModel: cm })]);
    const shape = [1, cin, hw, hw];
    const [a, b] = await timeRobust([dense, encodeModel(split)], randomInput(shape), RUNS, ROUNDS);
    const w = decodeModel(dense).graph.constant(decodeModel(dense).graph.nodes[0].input(1))!.data as Float32Array;
    const sh = kernelSharing(w, cout, cin, 9);
    const s = { batch: 1, cin, cout, k: 9, inPixels: hw * hw, outPixels: hw * hw };
    const predictedRatio = round(bestPlan(s, sh.counts, cm).cost / denseCost(s, cm));
    out.push({ cin, cout, hw, m, predictedRatio, measuredRatio: round(b.best / a.best), denseMs: round(a.best), splitMs: round(b.best), medianRatio: round(b.median / a.median) });
    process.stderr.write(`  check ${cin}->${cout} ${hw}x${hw} m=${m}: predicted ${predictedRatio}, measured ${out.at(-1)!.measuredRatio}\n`);
  }
  return out;
}

/** JSON with one calibration sample or check per line. */
function formatData(data: { model: SplitCostModel; calibration: { samples: unknown[]; check: unknown[] } & Record<string, unknown> }): string {
  const { samples, check, ...rest } = data.calibration;
  const lines = (xs: unknown[]) => `[\n${xs.map((x) => `   ${JSON.stringify(x)}`).join(',\n')}\n  ]`;
  const head = JSON.stringify({ model: data.model, calibration: rest }, null, 1).replace(/\n \}\n\}$/, '');
  return `${head},\n  "check": ${lines(check)},\n  "samples": ${lines(samples)}\n }\n}`;
}

async function main(): Promise<void> {
  checkArgs('split-calibration', { values: { runs: 'N' }, switches: ['quick', 'dry-run', 'reformat'] });
  if (args.includes('--reformat')) {
    // Rewrites lib/passes/kernel-split/calibration.ts from its own data (after a change of format, no new timings).
    write(require('../lib/passes/kernel-split/calibration').SPLIT_COST);
    return;
  }
  const loadBefore = os.loadavg().map((v) => round(v));
  process.stderr.write(`split calibration, ${RUNS} runs per point, load ${loadBefore.join(' ')}\n`);
  const samples = await grid();
  const kinds: Kind[] = ['dense', 'depthwise', 'grouped', 'pointwise', 'copy'];
  const fitted = Object.fromEntries(kinds.map((k) => [k, fit(samples.filter((s) => s.kind === k))])) as Record<Kind, OpCost>;
  const cm: SplitCostModel = { ...fitted, threshold: 0.8 };
  const fitError = Object.fromEntries(kinds.map((k) => [k, predictErr(samples.filter((s) => s.kind === k), fitted[k])]));
  const check = await checks(cm);
  const loadAfter = os.loadavg().map((v) => round(v));
  const data = {
    model: cm,
    calibration: {
      date: new Date().toISOString(),
      machine: machineLine(),
      onnxruntime: '1.30 CPU, 1 thread, sequential',
      timing: `${ROUNDS} rounds of ${RUNS} runs per point; ms = best round median`,
      runsPerPoint: RUNS,
      loadAverage: { before: loadBefore, after: loadAfter },
      /** Median |predicted / measured - 1| per kind over its grid. */
      fitError,
      /** Whole layers, dense vs split (force), with synthetic sharing m_c = m. */
      check,
      samples: samples.map((s) => ({ ...s, mmacs: round(s.mmacs), mb: round(s.mb), ms: round(s.ms), medianMs: round(s.medianMs) })),
    },
  };
  console.log(JSON.stringify(DRY ? data : { model: cm, fitError, loadAverage: data.calibration.loadAverage, check }, null, 2));
  if (DRY) return;
  write(data);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function write(data: any): void {
  const file = path.join(__dirname, '..', '..', 'lib', 'passes', 'kernel-split', 'calibration.ts');
  fs.writeFileSync(
    file,
    `/**
 * The kernel split's cost model and its calibration data, written by bench/split-calibration.ts (do not
 * edit by hand; rerun it on the target machine). Times are onnxruntime-node, one thread, milliseconds.
 */
import type { SplitCostModel } from './cost-model';

export interface CalibrationSample {
  kind: 'dense' | 'depthwise' | 'grouped' | 'pointwise' | 'copy';
  shape: number[];
  params: Record<string, number>;
  mmacs: number;
  mb: number;
  ms: number;
  medianMs: number;
}

export const SPLIT_COST: {
  model: SplitCostModel;
  calibration: {
    date: string;
    machine: string;
    onnxruntime: string;
    timing: string;
    runsPerPoint: number;
    loadAverage: { before: number[]; after: number[] };
    fitError: Record<string, number>;
    check: { cin: number; cout: number; hw: number; m: number; predictedRatio: number; measuredRatio: number; denseMs: number; splitMs: number; medianRatio: number }[];
    samples: CalibrationSample[];
  };
} = ${formatData(data)};
`,
  );
  process.stderr.write(`wrote ${path.relative(process.cwd(), file)}\n`);
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
