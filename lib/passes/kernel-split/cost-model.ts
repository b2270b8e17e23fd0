/**
 * The kernel split's cost model: predicted milliseconds of the dense conv and of each split form, from
 * op kinds whose coefficients (ms = fixed + a·MMACs + b·MB) bench/split-calibration.ts fits in
 * onnxruntime-node (calibration.ts holds them and the data they came from).
 */

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
export function denseCost(s: ConvShape, model: SplitCostModel): number {
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
export function planCost(s: ConvShape, buckets: SplitPlan['buckets'], model: SplitCostModel): number {
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
export function bestPlan(s: ConvShape, counts: Uint32Array, model: SplitCostModel, maxBuckets = 4): SplitPlan {
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

