/**
 * Kernel-level splitting (RED's uneven depthwise separation, DESIGN.md section 3): a k×k Conv (group 1)
 * whose filters share kernels computes each distinct kernel once per input channel and sums the right
 * ones into each output.
 *
 *   y[o] = b[o] + sum_c W[o, c] * x[c]            (dense: C_out * C_in kernels)
 *        = b[o] + sum_c K[c, idx(o, c)] * x[c]    (K[c, j]: the m_c distinct non-zero kernels of channel c)
 *
 * becomes a grouped conv (group = C_in, M kernels per channel) followed by a 1×1 conv of 0/1 selectors
 * that carries the bias. Uneven counts m_c are either padded to M = max m_c with zero kernels, or the
 * channels are bucketed by m_c into a few grouped convs (Gather of each bucket's channels, Concat of the
 * results). Which form, and whether to rewrite at all, is decided by a cost model calibrated in
 * onnxruntime-node (lib/passes/split-cost.ts, made by bench/split-calibration.ts).
 *
 * Kernels are compared bitwise (after hashing, a shared kernel is the same floats); all-zero kernels drop
 * out. Exact up to float summation order.
 */
import { DataType } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Model } from '../model/model';
import { inferShapes, type Dim } from '../model/shapes';
import { addConstant, removeIfUnused } from './constants';
import { newReport, type Pass, type PassReport } from './pass';
import { SPLIT_COST } from './split-cost';
import { measureLayer, subgraphBytes } from './split-timing';
import type { SplitMode } from '../options';

export type { SplitMode };

/** Per input channel, the distinct non-zero k×k kernels over the output filters. */
export interface KernelSharing {
  cout: number;
  cin: number;
  /** Elements of one kernel (kh * kw). */
  k: number;
  /** m_c: distinct non-zero kernels of channel c. */
  counts: Uint32Array;
  /** For (o, c) at o * cin + c: which of channel c's kernels W[o, c] is, or -1 when it is all zero. */
  index: Int32Array;
  /** Channel c's distinct kernels, m_c * k floats each (empty when not asked for). */
  kernels: Float32Array[];
}

/**
 * Finds the distinct kernels of weights [C_out, C_in, kh, kw] (row-major), per input channel. Kernels
 * are bucketed by an FNV hash of their bits in an open-addressing table reused across channels (every
 * conv of a large model goes through here, and most share nothing). `withKernels: false` leaves
 * `kernels` empty: the analysis needs only the counts, the rewrite the kernels too.
 */
export function kernelSharing(weights: Float32Array, cout: number, cin: number, k: number, withKernels = true): KernelSharing {
  const w = weights.byteOffset % 4 ? Float32Array.from(weights) : weights;
  const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
  const index = new Int32Array(cout * cin).fill(-1);
  const counts = new Uint32Array(cin);
  const kernels: Float32Array[] = [];
  const size = 1 << Math.ceil(Math.log2(2 * cout + 2));
  const slotFilter = new Int32Array(size); // o + 1 of the first filter of a distinct kernel, 0 when empty
  const firsts = new Int32Array(cout);
  const sameKernel = (a: number, b: number) => {
    for (let i = 0; i < k; i++) if (w[a + i] !== w[b + i]) return false;
    return true;
  };
  for (let c = 0; c < cin; c++) {
    slotFilter.fill(0);
    let m = 0;
    for (let o = 0; o < cout; o++) {
      const at = (o * cin + c) * k;
      let h = 0x811c9dc5;
      let nonzero = false;
      for (let i = 0; i < k; i++) {
        const b = bits[at + i] === 0x80000000 ? 0 : bits[at + i]; // -0 is zero
        if (b !== 0) nonzero = true;
        h = Math.imul(h ^ b, 0x01000193);
      }
      if (!nonzero) continue;
      let slot = (h >>> 0) & (size - 1);
      let found = -1;
      for (; slotFilter[slot] !== 0; slot = (slot + 1) & (size - 1)) {
        const f = slotFilter[slot] - 1;
        if (sameKernel((f * cin + c) * k, at)) {
          found = index[f * cin + c];
          break;
        }
      }
      if (found < 0) {
        found = m;
        firsts[m++] = o;
        slotFilter[slot] = o + 1;
      }
      index[o * cin + c] = found;
    }
    counts[c] = m;
    if (withKernels) {
      const ks = new Float32Array(m * k);
      for (let j = 0; j < m; j++) ks.set(w.subarray((firsts[j] * cin + c) * k, (firsts[j] * cin + c + 1) * k), j * k);
      kernels.push(ks);
    }
  }
  return { cout, cin, k, counts, index, kernels };
}

/** Coefficients of one op kind: milliseconds = fixed + perMMac * MACs / 1e6 + perMB * bytes / 1e6. */
export interface OpCost {
  fixed: number;
  perMMac: number;
  perMB: number;
}

/** The calibrated cost model (see bench/split-calibration.ts). */
export interface SplitCostModel {
  /** Dense conv (group 1, k×k). */
  dense: OpCost;
  /** Depthwise conv (one input and one output channel per group). */
  depthwise: OpCost;
  /** Grouped conv with one input channel and M > 1 outputs per group (im2col + GEMM per group in onnxruntime). */
  grouped: OpCost;
  /** 1×1 conv, group 1. */
  pointwise: OpCost;
  /** Gather and Concat along channels: bytes moved. */
  copy: OpCost;
  /** Rewrite only where predicted split / dense is below this (a safety margin for the model's error). */
  threshold: number;
}

export const DEFAULT_COST_MODEL: SplitCostModel = SPLIT_COST.model;

/** Sizes of one conv at concrete shapes. */
export interface ConvShape {
  batch: number;
  cin: number;
  cout: number;
  /** Elements per kernel. */
  k: number;
  /** Input and output spatial elements (H*W and H'*W'). */
  inPixels: number;
  outPixels: number;
}

/** What the cost of one op is computed from: millions of MACs and megabytes moved. */
export interface OpFeatures {
  kind: 'dense' | 'depthwise' | 'grouped' | 'pointwise' | 'copy';
  mmacs: number;
  mb: number;
}

export const opMs = (c: OpCost, f: OpFeatures) => c.fixed + c.perMMac * f.mmacs + c.perMB * f.mb;

/** The dense conv: its MACs; bytes of input, output and weights. */
export function denseFeatures(s: ConvShape): OpFeatures {
  const macs = s.batch * s.outPixels * s.cout * s.cin * s.k;
  const bytes = 4 * (s.batch * (s.cin * s.inPixels + s.cout * s.outPixels) + s.cout * s.cin * s.k);
  return { kind: 'dense', mmacs: macs / 1e6, mb: bytes / 1e6 };
}

/** A grouped conv over `channels` input channels with `mult` kernels each; M > 1 also writes and reads an im2col buffer per group. */
export function groupedFeatures(s: ConvShape, channels: number, mult: number): OpFeatures {
  const macs = s.batch * s.outPixels * channels * mult * s.k;
  let bytes = 4 * (s.batch * (channels * s.inPixels + channels * mult * s.outPixels) + channels * mult * s.k);
  if (mult > 1) bytes += 8 * s.batch * channels * s.k * s.outPixels;
  return { kind: mult === 1 ? 'depthwise' : 'grouped', mmacs: macs / 1e6, mb: bytes / 1e6 };
}

/** The 1×1 conv from `mid` channels to C_out. */
export function pointwiseFeatures(s: ConvShape, mid: number): OpFeatures {
  const macs = s.batch * s.outPixels * s.cout * mid;
  const bytes = 4 * (s.batch * s.outPixels * (mid + s.cout) + s.cout * mid);
  return { kind: 'pointwise', mmacs: macs / 1e6, mb: bytes / 1e6 };
}

/** A Gather or Concat of `elements` floats (read and written). */
export function copyFeatures(elements: number): OpFeatures {
  return { kind: 'copy', mmacs: 0, mb: (8 * elements) / 1e6 };
}

const cost = (model: SplitCostModel, f: OpFeatures) => opMs(model[f.kind], f);

/** Predicted ms of the dense conv. */
export function denseCost(s: ConvShape, model: SplitCostModel = DEFAULT_COST_MODEL): number {
  return cost(model, denseFeatures(s));
}

/** A split layout: channels in buckets, each a grouped conv with its own multiplier. */
export interface SplitPlan {
  form: 'padded' | 'buckets';
  /** Per bucket: its input channels (ascending) and kernels per channel. */
  buckets: { channels: number[]; mult: number }[];
  /** Channels into the 1×1 conv. */
  mid: number;
  /** Predicted ms of this form. */
  cost: number;
}

/** Predicted ms of a plan (grouped convs, the 1×1 and any Gather/Concat). */
export function planCost(s: ConvShape, buckets: SplitPlan['buckets'], model: SplitCostModel = DEFAULT_COST_MODEL): number {
  let total = 0;
  let mid = 0;
  const whole = buckets.length === 1 && buckets[0].channels.length === s.cin;
  for (const b of buckets) {
    total += cost(model, groupedFeatures(s, b.channels.length, b.mult));
    if (!whole) total += cost(model, copyFeatures(s.batch * b.channels.length * s.inPixels));
    mid += b.channels.length * b.mult;
  }
  if (buckets.length > 1) total += cost(model, copyFeatures(s.batch * mid * s.outPixels));
  return total + cost(model, pointwiseFeatures(s, mid));
}

/**
 * The cheapest split layout by the cost model: padded to max m_c over all channels, or the channels
 * sorted by m_c cut into 1 to `maxBuckets` runs (channels with m_c = 0 left out), each padded to its
 * own largest m_c.
 */
export function bestPlan(s: ConvShape, counts: Uint32Array, model: SplitCostModel = DEFAULT_COST_MODEL, maxBuckets = 4): SplitPlan {
  const all = Array.from({ length: s.cin }, (_, c) => c);
  const M = Math.max(1, ...counts);
  const padded: SplitPlan = { form: 'padded', buckets: [{ channels: all, mult: M }], mid: s.cin * M, cost: 0 };
  padded.cost = planCost(s, padded.buckets, model);
  const live = all.filter((c) => counts[c] > 0).sort((a, b) => counts[a] - counts[b] || a - b);
  if (live.length === 0) return padded;
  // Cut points only where m_c changes; a DP over those runs.
  const cuts = [0];
  for (let i = 1; i < live.length; i++) if (counts[live[i]] !== counts[live[i - 1]]) cuts.push(i);
  cuts.push(live.length);
  const segCost = (a: number, b: number) =>
    cost(model, groupedFeatures(s, b - a, counts[live[b - 1]])) + cost(model, copyFeatures(s.batch * (b - a) * s.inPixels));
  const n = cuts.length - 1;
  let best: SplitPlan | undefined;
  for (let parts = 1; parts <= Math.min(maxBuckets, n); parts++) {
    // dp[p][j]: cheapest way to cover runs [0, j) with p buckets (grouped + gather; 1×1 and concat added after).
    const dp = Array.from({ length: parts + 1 }, () => new Array<number>(n + 1).fill(Infinity));
    const from = Array.from({ length: parts + 1 }, () => new Array<number>(n + 1).fill(-1));
    dp[0][0] = 0;
    for (let p = 1; p <= parts; p++) {
      for (let j = 1; j <= n; j++) {
        for (let i = p - 1; i < j; i++) {
          const v = dp[p - 1][i] + segCost(cuts[i], cuts[j]);
          if (v < dp[p][j]) {
            dp[p][j] = v;
            from[p][j] = i;
          }
        }
      }
    }
    const buckets: SplitPlan['buckets'] = [];
    for (let p = parts, j = n; p > 0; p--) {
      const i = from[p][j];
      const channels = live.slice(cuts[i], cuts[j]).sort((a, b) => a - b);
      buckets.unshift({ channels, mult: counts[live[cuts[j] - 1]] });
      j = i;
    }
    const mid = buckets.reduce((a, b) => a + b.channels.length * b.mult, 0);
    const plan: SplitPlan = { form: 'buckets', buckets, mid, cost: planCost(s, buckets, model) };
    if (!best || plan.cost < best.cost) best = plan;
  }
  return best && best.cost < padded.cost ? best : padded;
}

export interface SplitPassOptions {
  split: SplitMode;
  /** Concrete input shapes, for the layers' spatial sizes. */
  inputShapes: Record<string, number[]>;
  /** Time each rewritten layer alone (before and after) in onnxruntime-node; runs per form (0: do not). */
  measureRuns?: number;
  /** Overrides the calibrated cost model. */
  costModel?: SplitCostModel;
}

/** What the split analysis found for one eligible conv. */
export interface SplitLayer {
  node: string;
  cin: number;
  cout: number;
  kernel: number[];
  /** Distinct non-zero kernels per input channel. */
  mc: { min: number; mean: number; max: number };
  /** Zero kernels (of C_out * C_in). */
  zeroKernels: number;
  /** Predicted ms of the dense conv and of the cheapest split form, and their ratio (split / dense); null without shapes. */
  predicted: { denseMs: number; splitMs: number; ratio: number; form: SplitPlan['form']; buckets: number[] } | null;
  split: boolean;
  /**
   * Measured ms of the layer alone (before: the conv as a one-node model; after: its replacement), one
   * thread, when it was split and measuring was asked: best round median, and median over all runs.
   */
  latencyMs?: { before: number; after: number; medianBefore: number; medianAfter: number };
}

export interface SplitPassReport extends PassReport {
  layers: SplitLayer[];
}

/** The eligible convs: group 1, 2-D, more than one tap, constant float32 weights, constant (or no) bias. */
export function splitCandidate(graph: Graph, node: Node): { ok: true; w: Float32Array; dims: number[] } | { ok: false; reason: string } {
  if (node.opType !== 'Conv' || node.domain !== '') return { ok: false, reason: 'not a Conv' };
  if (node.attrInt('group', 1) !== 1) return { ok: false, reason: 'grouped conv' };
  const t = graph.constant(node.input(1));
  if (!t) return { ok: false, reason: 'weights are not a constant' };
  if (t.dataType !== DataType.FLOAT) return { ok: false, reason: 'weights are not float32' };
  if (t.dims.length !== 4) return { ok: false, reason: `weight of rank ${t.dims.length}` };
  if (t.dims[2] * t.dims[3] < 2) return { ok: false, reason: '1×1 kernel' };
  if (node.input(2) && !graph.constant(node.input(2))) return { ok: false, reason: 'bias is not a constant' };
  return { ok: true, w: t.data as Float32Array, dims: t.dims };
}

export function splitPass(options: SplitPassOptions): Pass {
  return {
    name: 'split',
    exact: true,
    async run(model: Model): Promise<SplitPassReport> {
      const report: SplitPassReport = { ...newReport('split'), layers: [] };
      if (options.split === 'off') return report;
      const costModel = options.costModel ?? DEFAULT_COST_MODEL;
      const graph = model.graph;
      const shapes = inferShapes(graph, options.inputShapes as Record<string, Dim[]>);
      const shapeOf = (v: string): number[] | null => {
        const s = shapes.types.get(v)?.shape;
        return s && s.every((d) => typeof d === 'number') ? (s as number[]) : null;
      };
      const measure = (options.measureRuns ?? 0) > 0;
      for (const node of [...graph.nodes]) {
        if (node.opType !== 'Conv') continue;
        const cand = splitCandidate(graph, node);
        if (!cand.ok) {
          if (cand.reason !== 'grouped conv' && cand.reason !== '1×1 kernel') report.skipped.push({ node: node.label, reason: cand.reason });
          continue;
        }
        const [cout, cin, kh, kw] = cand.dims;
        let sharing = kernelSharing(cand.w, cout, cin, kh * kw, false);
        const x = shapeOf(node.input(0));
        const y = shapeOf(node.outputs[0]);
        const s: ConvShape | null =
          x && y && x.length === 4 && y.length === 4
            ? { batch: x[0], cin, cout, k: kh * kw, inPixels: x[2] * x[3], outPixels: y[2] * y[3] }
            : null;
        let sum = 0;
        for (const m of sharing.counts) sum += m;
        const layer: SplitLayer = {
          node: node.label,
          cin,
          cout,
          kernel: [kh, kw],
          mc: { min: Math.min(...sharing.counts), mean: Number((sum / cin).toPrecision(4)), max: Math.max(...sharing.counts) },
          zeroKernels: sharing.index.reduce((a, v) => a + (v < 0 ? 1 : 0), 0),
          predicted: null,
          split: false,
        };
        report.layers.push(layer);
        const plan = s ? bestPlan(s, sharing.counts, costModel) : bestPlan(fallbackShape(cin, cout, kh * kw), sharing.counts, costModel);
        if (s) {
          const denseMs = denseCost(s, costModel);
          const r4 = (v: number) => Number(v.toPrecision(4));
          layer.predicted = {
            denseMs: r4(denseMs),
            splitMs: r4(plan.cost),
            ratio: r4(plan.cost / denseMs),
            form: plan.form,
            buckets: plan.buckets.map((b) => b.mult),
          };
        }
        const worth = layer.predicted !== null && layer.predicted.ratio < costModel.threshold;
        if (options.split === 'auto' && !worth) {
          report.skipped.push({
            node: node.label,
            reason: layer.predicted
              ? `predicted ${layer.predicted.ratio.toFixed(2)}× the dense cost (m_c mean ${layer.mc.mean.toFixed(1)} of ${cout})`
              : 'shapes unknown',
          });
          continue;
        }
        let before: Uint8Array | undefined;
        if (measure && x) before = subgraphBytes(graph, [node], node.input(0), x, node.outputs[0]);
        sharing = kernelSharing(cand.w, cout, cin, kh * kw);
        const added = rewrite(graph, node, sharing, plan);
        layer.split = true;
        report.changes.push({
          node: layer.node,
          action: `split into ${plan.buckets.length} grouped conv(s) (×${plan.buckets.map((b) => b.mult).join(', ×')}) and a 1×1 conv of ${plan.mid} inputs`,
        });
        if (before && x) {
          layer.latencyMs = await measureLayer(before, subgraphBytes(graph, added, added[0].input(0), x, added.at(-1)!.outputs[0]), x, options.measureRuns!);
        }
      }
      report.changed = report.changes.length > 0;
      report.stats = {
        eligible: report.layers.length,
        split: report.layers.filter((l) => l.split).length,
      };
      return report;
    },
  };
}

/** A nominal shape (batch 1, 32×32) for the plan when shapes are unknown ('force'). */
function fallbackShape(cin: number, cout: number, k: number): ConvShape {
  return { batch: 1, cin, cout, k, inPixels: 1024, outPixels: 1024 };
}

/** Replaces `node` by the plan's grouped conv(s) and 1×1 conv; returns the new nodes in order. */
function rewrite(graph: Graph, node: Node, sh: KernelSharing, plan: SplitPlan): Node[] {
  const wName = node.input(1);
  const bName = node.input(2);
  const x = node.input(0);
  const base = node.name || node.outputs[0];
  const carried: Record<string, number | number[] | string> = {};
  for (const a of ['strides', 'pads', 'dilations', 'kernel_shape'] as const) {
    const v = node.attrInts(a);
    if (v) carried[a] = v;
  }
  const autoPad = node.attrString('auto_pad');
  if (autoPad) carried.auto_pad = autoPad;
  const kh = graph.constant(wName)!.dims[2];
  const kw = graph.constant(wName)!.dims[3];
  const added: Node[] = [];
  const mids: string[] = [];
  const w2 = new Float32Array(sh.cout * plan.mid);
  let offset = 0;
  for (const [bi, b] of plan.buckets.entries()) {
    const n = b.channels.length;
    const w1 = new Float32Array(n * b.mult * sh.k);
    b.channels.forEach((c, i) => {
      w1.set(sh.kernels[c], i * b.mult * sh.k);
      for (let o = 0; o < sh.cout; o++) {
        const j = sh.index[o * sh.cin + c];
        if (j >= 0) w2[o * plan.mid + offset + i * b.mult + j] = 1;
      }
    });
    let input = x;
    const whole = n === sh.cin && b.channels.every((c, i) => c === i);
    if (!whole) {
      const idx = addConstant(graph, `${base}_split_channels${bi}`, DataType.INT64, [n], BigInt64Array.from(b.channels, BigInt), node, wName);
      input = graph.uniqueName(`${base}_split_x${bi}`);
      added.push(graph.addNode({ opType: 'Gather', inputs: [x, idx], outputs: [input], name: graph.uniqueName(`${base}_split_gather${bi}`), attributes: { axis: 1 } }, { before: node }));
    }
    const w1Name = addConstant(graph, `${base}_split_w${bi}`, DataType.FLOAT, [n * b.mult, 1, kh, kw], w1, node, wName);
    const out = graph.uniqueName(`${base}_split_y${bi}`);
    added.push(
      graph.addNode(
        { opType: 'Conv', inputs: [input, w1Name], outputs: [out], name: graph.uniqueName(`${base}_split_grouped${bi}`), attributes: { ...carried, group: n } },
        { before: node },
      ),
    );
    mids.push(out);
    offset += n * b.mult;
  }
  let mid = mids[0];
  if (mids.length > 1) {
    mid = graph.uniqueName(`${base}_split_cat`);
    added.push(graph.addNode({ opType: 'Concat', inputs: mids, outputs: [mid], name: graph.uniqueName(`${base}_split_concat`), attributes: { axis: 1 } }, { before: node }));
  }
  const w2Name = addConstant(graph, `${base}_split_sum`, DataType.FLOAT, [sh.cout, plan.mid, 1, 1], w2, node, wName);
  added.push(
    graph.addNode(
      { opType: 'Conv', inputs: bName ? [mid, w2Name, bName] : [mid, w2Name], outputs: [...node.outputs], name: node.name || undefined, attributes: { kernel_shape: [1, 1] } },
      { before: node },
    ),
  );
  graph.removeNode(node);
  removeIfUnused(graph, [wName]);
  return added;
}
