/**
 * Plain TypeScript reference of the binned-KDE hashing kernel (native/hash.cc). It is the
 * specification: the native kernel must give bit-identical output, so every float32 step here is
 * written with Math.fround exactly where C++ rounds to float, and sums run in the same lane order.
 * Double rounding through Math.fround is harmless for + - * / (53 >= 2 * 24 + 2 bits).
 */
import { HASH_CONSTANTS as C } from './hash-constants';

export type Center = 'mean' | 'mode';

export interface HashKernelParams {
  beta: number;
  center: Center;
}

export interface HashKernelOutput {
  values: Float32Array;
  distinct: Uint32Array;
  rmsError: Float64Array;
  /** Index into the weights of the first NaN/Inf value, or -1. */
  nonFiniteIndex: number;
}

const f32 = Math.fround;
/** The largest finite float32. */
const FLT_MAX = 3.4028234663852886e38;

/** Hashes every consecutive group of `groupSize` weights. Arguments are assumed validated. */
export function hashWeightsReference(
  weights: Float32Array,
  groupSize: number,
  params: HashKernelParams,
  output: Float32Array = new Float32Array(weights.length),
): HashKernelOutput {
  const groups = weights.length === 0 ? 0 : weights.length / groupSize;
  const out: HashKernelOutput = {
    values: output,
    distinct: new Uint32Array(groups),
    rmsError: new Float64Array(groups),
    nonFiniteIndex: -1,
  };
  for (let g = 0; g < groups; g++) {
    const start = g * groupSize;
    const group = weights.subarray(start, start + groupSize);
    const bad = firstNonFinite(group);
    if (bad >= 0) {
      out.nonFiniteIndex = start + bad;
      break;
    }
    const r = hashGroup(group, params, out.values.subarray(start, start + groupSize));
    out.distinct[g] = r.distinct;
    out.rmsError[g] = r.rms;
  }
  return out;
}

function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) if (!Number.isFinite(x[i])) return i;
  return -1;
}

/** ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): native/grid.h's LaneSum. */
export function laneSum(lanes: Float64Array): number {
  return lanes[0] + lanes[1] + (lanes[2] + lanes[3]) + (lanes[4] + lanes[5] + (lanes[6] + lanes[7]));
}

function countDistinct(x: Float32Array): number {
  if (x.length === 0) return 0;
  const sorted = Float32Array.from(x).sort();
  let d = 1;
  for (let i = 1; i < sorted.length; i++) if (sorted[i] !== sorted[i - 1]) d++;
  return d;
}

/** 2^-e where 2^e is the float exponent of maxAbs, so that maxAbs * scale lies in [0.5, 1). */
function exponentScale(maxAbs: number): number {
  const bits = new Uint32Array(new Float32Array([maxAbs]).buffer)[0];
  const biased = (bits >>> 23) & 0xff;
  const e = biased === 0 ? -125 : biased - 126;
  return Math.pow(2, -e);
}

/** The grid of one group: what every pass needs to put a value in its bin. */
export interface Grid {
  min: number;
  delta: number;
  bins: number;
  radius: number;
  kernel: Float64Array;
  scale: number;
  offset: number;
  inverse: number;
}

export function makeGrid(min: number, max: number, h: number): Grid {
  const range = max - min;
  let delta = h / C.binsPerBandwidth;
  let bins = Math.floor(range / delta) + 1;
  if (bins > C.maxBins) {
    bins = C.maxBins;
    delta = range / (C.maxBins - 1);
  }
  const radius = Math.floor((C.kernelCutoff * h) / delta);
  const kernel = new Float64Array(radius + 1);
  for (let k = 0; k <= radius; k++) {
    const t = (k * delta) / h;
    kernel[k] = Math.round(C.kernelScale * f32(Math.exp(-0.5 * t * t)));
  }
  const scale = exponentScale(Math.max(Math.abs(min), Math.abs(max)));
  return { min, delta, bins, radius, kernel, scale, offset: f32(min * scale), inverse: f32(1 / (delta * scale)) };
}

export function binOf(x: number, g: Grid): number {
  const t = f32(f32(f32(x * g.scale) - g.offset) * g.inverse);
  return Math.min(g.bins - 1, Math.trunc(f32(t + 0.5)));
}

function hashGroup(x: Float32Array, p: HashKernelParams, out: Float32Array): { distinct: number; rms: number } {
  const n = x.length;
  let min = Infinity;
  let max = -Infinity;
  const sum = new Float64Array(C.lanes);
  const sumSq = new Float64Array(C.lanes);
  for (let i = 0; i < n; i++) {
    const v = x[i];
    if (v < min) min = v;
    if (v > max) max = v;
    sum[i & 7] += v;
    sumSq[i & 7] += v * v;
  }
  const mean = laneSum(sum) / n;
  const variance = laneSum(sumSq) / n - mean * mean;
  const std = Math.sqrt(Math.max(0, variance));
  // h is rounded to float so that a last-bit difference in the sums (another summation order, as on
  // the GPU) almost never moves the grid. A bandwidth past the float range (a huge beta) is held at
  // the largest float: one interval, the group's mean.
  const wide = p.beta * std * f32(Math.pow(n, -0.2));
  const h = wide >= FLT_MAX ? FLT_MAX : f32(wide);
  if (!(h > 0) || min === max) {
    out.set(x);
    return { distinct: countDistinct(x), rms: 0 };
  }

  const g = makeGrid(min, max, h);
  const r = g.radius;
  const counts = new Float64Array(g.bins + 2 * r);
  for (let i = 0; i < n; i++) counts[r + binOf(x[i], g)] += 1;
  const density = new Float64Array(g.bins);
  for (let b = 0; b < g.bins; b++) {
    let d = g.kernel[0] * counts[r + b];
    for (let k = 1; k <= r; k++) d += g.kernel[k] * (counts[r + b - k] + counts[r + b + k]);
    density[b] = d;
  }

  // Split at every local minimum of the density; a flat minimum is split in its middle. A kernel
  // narrower than a bin (radius 0, only when the grid is capped) would leave one bump per value, so
  // then every bin is an interval of its own.
  const splits: number[] = [];
  let descending = false;
  let flatStart = 0;
  for (let b = 1; b < g.bins; b++) {
    if (r === 0) {
      splits.push(b);
    } else if (density[b] < density[b - 1]) {
      descending = true;
      flatStart = b;
    } else if (density[b] > density[b - 1]) {
      if (descending) splits.push((flatStart + b) >> 1);
      descending = false;
      flatStart = b;
    }
  }
  splits.push(g.bins);
  const intervals = splits.length;
  const binInterval = new Int32Array(g.bins);
  for (let i = 0, b0 = 0; i < intervals; b0 = splits[i++]) binInterval.fill(i, b0, splits[i]);

  // Count and sum the values of each interval in input order.
  const ivCount = new Float64Array(intervals);
  const ivSum = new Float64Array(intervals);
  for (let i = 0; i < n; i++) {
    const iv = binInterval[binOf(x[i], g)];
    ivCount[iv] += 1;
    ivSum[iv] += x[i];
  }
  const rep = new Float32Array(intervals);
  for (let i = 0, b0 = 0; i < intervals; b0 = splits[i++]) {
    if (p.center === 'mean') {
      rep[i] = ivCount[i] > 0 ? f32(ivSum[i] / ivCount[i]) : 0;
    } else {
      let peak = b0;
      for (let b = b0 + 1; b < splits[i]; b++) if (density[b] > density[peak]) peak = b;
      rep[i] = f32(g.min + peak * g.delta);
    }
  }
  let distinct = 0;
  let lastRep = 0;
  for (let i = 0; i < intervals; i++) {
    if (ivCount[i] > 0 && (distinct === 0 || rep[i] !== lastRep)) {
      distinct++;
      lastRep = rep[i];
    }
  }
  const binValue = new Float32Array(g.bins);
  for (let b = 0; b < g.bins; b++) binValue[b] = rep[binInterval[b]];

  const err = new Float64Array(C.lanes);
  for (let i = 0; i < n; i++) {
    const v = x[i]; // read before writing: out may be x
    const y = binValue[binOf(v, g)];
    out[i] = y;
    const d = f32(y - v);
    err[i & 7] += d * d;
  }
  return { distinct, rms: Math.sqrt(laneSum(err) / n) };
}
