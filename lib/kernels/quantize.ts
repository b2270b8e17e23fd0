/**
 * Quantizers of weight rows (one row = one hash group: a neuron, a group of neurons or a layer), as
 * the codecs use them: uniform (scale and zero point per row) and a palette of K levels per row
 * (1-D k-means by Lloyd steps on the sorted row). TypeScript on typed arrays, no graph: the pool's
 * workers run them. Every value they return is what the exported graph computes, bit for bit: float32
 * arithmetic is written with Math.fround exactly where the graph rounds. The row sort, the uniform
 * quantizer and the mapping to the nearest center have native forms (native/quantize.h), used where
 * the addon loads and held to the references here bit for bit; the Lloyd fits are TypeScript.
 */
import { native } from '../binding';
import { float16BitsToNumber, numberToFloat16Bits } from '../model/dtype';
import { largeArray } from './pages';

const f32 = Math.fround;

/** Precision of a codec's tables (codebooks, scales): what the file stores them in. */
export type TablePrecision = 'float32' | 'float16';

/** x rounded to the table precision. */
export function roundTo(precision: TablePrecision, x: number): number {
  return precision === 'float16' ? float16BitsToNumber(numberToFloat16Bits(x)) : f32(x);
}

/** The smallest value of the table precision that is >= x (x > 0): a scale that still spans its range. */
function ceilTo(precision: TablePrecision, x: number): number {
  const r = roundTo(precision, x);
  if (r >= x) return r;
  if (precision === 'float16') return float16BitsToNumber(numberToFloat16Bits(r) + 1);
  const a = new Float32Array([r]);
  new Uint32Array(a.buffer)[0]++;
  return a[0];
}

export interface UniformRows {
  /** Per row: w = (q - zeroPoint) * scale, in float32. */
  scale: Float32Array;
  zeroPoint: Float32Array;
  /** Per weight, in [0, 2^bits). */
  q: Uint16Array;
  /** The dequantized weights (float32). */
  values: Float32Array;
}

/** Fractions of a row's range tried as the clipping range (the one of least squared error is kept). */
const CLIPS = [1, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6];

/**
 * Uniform quantization of each row of `rowLength` weights to `bits` bits, asymmetric (an integer zero
 * point), its range clipped to the fraction of [min, max] that gives the least squared error: by
 * native/quantize.h where the addon loads (the clipping ranges' errors in one vector pass over a row,
 * bit for bit alike), by uniformRowsReference() otherwise and for a layer with a non-finite weight.
 */
export function uniformRows(rows: Float32Array, rowLength: number, bits: number, precision: TablePrecision, clips: readonly number[] = CLIPS): UniformRows {
  const addon = native();
  if (addon) {
    const out = newUniformRows(rows, rowLength);
    const f = Float64Array.from(clips);
    if (addon.uniformRows(rows, rowLength, bits, precision === 'float16', f, 0, out.scale, out.zeroPoint, out.q, out.values)) return out;
  }
  return uniformRowsReference(rows, rowLength, bits, precision, clips);
}

function newUniformRows(rows: Float32Array, rowLength: number): UniformRows {
  const count = rowLength ? rows.length / rowLength : 0;
  return { scale: new Float32Array(count), zeroPoint: new Float32Array(count), q: largeArray(Uint16Array, rows.length), values: largeArray(Float32Array, rows.length) };
}

export function uniformRowsReference(rows: Float32Array, rowLength: number, bits: number, precision: TablePrecision, clips: readonly number[] = CLIPS): UniformRows {
  const count = rowLength ? rows.length / rowLength : 0;
  const levels = 2 ** bits - 1;
  const out = newUniformRows(rows, rowLength);
  for (let r = 0; r < count; r++) {
    const from = r * rowLength;
    const row = rows.subarray(from, from + rowLength);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < row.length; i++) {
      lo = Math.min(lo, row[i]);
      hi = Math.max(hi, row[i]);
    }
    let best = { sse: Infinity, scale: 1, zp: 0 };
    if (lo === hi) {
      // A constant row: one level, exactly (q = 1 with scale = the value, or all zero).
      best = { sse: 0, scale: lo === 0 ? 1 : roundTo(precision, lo), zp: 0 };
    } else {
      for (const clip of clips) {
        // The grid holds 0 exactly (an integer zero point), as ONNX's uniform quantization does.
        const [a, b] = [Math.min(0, lo) * clip, Math.max(0, hi) * clip];
        const scale = ceilTo(precision, (b - a) / levels);
        if (!(scale > 0)) continue;
        const zp = Math.min(levels, Math.max(0, Math.round(-a / scale)));
        let sse = 0;
        for (let i = 0; i < row.length; i++) {
          const d = f32((quantizeUniform(row[i], scale, zp, levels) - zp) * scale) - row[i];
          sse += d * d;
        }
        if (sse < best.sse) best = { sse, scale, zp };
      }
    }
    out.scale[r] = best.scale;
    out.zeroPoint[r] = best.zp;
    for (let i = 0; i < row.length; i++) {
      const q = lo === hi ? (lo === 0 ? 0 : 1) : quantizeUniform(row[i], best.scale, best.zp, levels);
      out.q[from + i] = q;
      out.values[from + i] = f32((q - best.zp) * best.scale);
    }
  }
  return out;
}

function quantizeUniform(w: number, scale: number, zp: number, levels: number): number {
  return Math.min(levels, Math.max(0, Math.round(w / scale) + zp));
}

/**
 * Each row of `rowLength` weights copied into `sorted` and sorted as TypedArray sort does (-0 before
 * +0, NaN last), and how many of its values differ from the one before (-0 and +0 count once, every
 * NaN once): by native/quantize.h where the addon loads (a radix sort, bit for bit alike, about 6×
 * faster), by sortRowsReference() otherwise.
 */
export function sortRows(rows: Float32Array, rowLength: number, sorted: Float32Array, distinct: Uint32Array): void {
  const addon = native();
  if (addon) addon.sortRows(rows, rowLength, sorted, distinct);
  else sortRowsReference(rows, rowLength, sorted, distinct);
}

export function sortRowsReference(rows: Float32Array, rowLength: number, sorted: Float32Array, distinct: Uint32Array): void {
  const count = rowLength ? rows.length / rowLength : 0;
  for (let r = 0; r < count; r++) {
    const row = sorted.subarray(r * rowLength, (r + 1) * rowLength);
    row.set(rows.subarray(r * rowLength, (r + 1) * rowLength));
    row.sort();
    let d = 0;
    for (let i = 0; i < rowLength; i++) if (i === 0 || row[i] !== row[i - 1]) d++;
    distinct[r] = d;
  }
}

/**
 * The distinct values of `values`, ascending, as `Float64Array.from(new Set(values)).sort()` has them
 * (one +0 for both zeros, one NaN, last): for float32 values through the native sort (stable: the
 * NaN kept is the first, as the Set keeps it), several times faster than a Set of a row's numbers.
 */
export function distinctValues(values: Float32Array | Float64Array): Float64Array {
  // Without the addon, the Set itself: the reference sort leaves NaNs of different payloads in an
  // order of its own, so the NaN kept would not be the first one as the Set keeps it.
  if (values instanceof Float64Array || !native()) return Float64Array.from(new Set(values)).sort();
  const sorted = new Float32Array(values.length);
  sortRows(values, values.length, sorted, new Uint32Array(values.length ? 1 : 0));
  const out: number[] = [];
  for (let i = 0; i < sorted.length; i++) {
    const x = sorted[i] === 0 ? 0 : sorted[i];
    const last = out.length ? out[out.length - 1] : undefined;
    if (last !== undefined && (last === x || (last !== last && x !== x))) continue;
    out.push(x);
  }
  return Float64Array.from(out);
}

/** Rows longer than this fit their centers on an evenly spaced sample of the sorted row (its quantiles). */
const FIT_SAMPLE = 1 << 16;

/**
 * Rows of weights sorted once, for palettes of any size: each row replaced by the nearest of at most
 * `levels` values (1-D k-means: Lloyd steps on the sorted row), the values rounded to the table
 * precision. Lloyd steps only lower the squared error but stop in a local optimum, so they start from
 * the evenly spaced levels between the row's extremes, from its quantiles, and from `init`'s centers
 * when given (the hashing kernel's intervals), and the row keeps the best. Rows with no more distinct
 * values than `levels` keep them. A row longer than 65536 values (a whole layer's) fits its centers on
 * 65536 of its sorted values, evenly spaced.
 */
export class SortedRows {
  private readonly sorted: Float32Array;
  private readonly distinct: Uint32Array;
  readonly count: number;
  /** Per row, what `init` gave (distinct, sorted), and its Ward merging so far: palettes of fewer levels go on from it. */
  private readonly initial: (Float64Array | undefined)[] = [];
  private readonly merging: (Merging | undefined)[] = [];

  constructor(
    readonly rows: Float32Array,
    readonly rowLength: number,
  ) {
    this.count = rowLength ? rows.length / rowLength : 0;
    this.sorted = largeArray(Float32Array, rows.length);
    this.distinct = new Uint32Array(this.count);
    sortRows(rows, rowLength, this.sorted, this.distinct);
  }

  /** Row r, sorted. */
  sortedRow(r: number): Float32Array {
    return this.sorted.subarray(r * this.rowLength, (r + 1) * this.rowLength);
  }

  /**
   * The palette of at most `levels` values per row: its squared error, the values each row uses, and
   * (when asked) the weights replaced by them, in row order.
   */
  palette(
    levels: number,
    precision: TablePrecision,
    values: boolean,
    init?: (row: number, sorted: Float32Array) => Float32Array | Float64Array,
  ): { sse: number; counts: Uint32Array; values?: Float32Array } {
    const { rowLength } = this;
    const out = values ? largeArray(Float32Array, this.rows.length) : undefined;
    const counts = new Uint32Array(this.count);
    const fitLength = Math.min(rowLength, FIT_SAMPLE);
    const prefix = new Float64Array(fitLength + 1);
    const squares = new Float64Array(fitLength + 1);
    let total = 0;
    for (let r = 0; r < this.count; r++) {
      const sorted = this.sortedRow(r);
      let centers: Float64Array;
      if (this.distinct[r] <= levels) {
        centers = Float64Array.from(distinctSorted(sorted), (x) => roundTo(precision, x));
      } else {
        const fit = fitLength === rowLength ? sorted : Float32Array.from({ length: fitLength }, (_, i) => sorted[Math.floor(((i + 0.5) * rowLength) / fitLength)]);
        for (let i = 0; i < fitLength; i++) {
          prefix[i + 1] = prefix[i] + fit[i];
          squares[i + 1] = squares[i] + fit[i] * fit[i];
        }
        const starts = [evenly(fit[0], fit[fitLength - 1], levels), quantiles(fit, levels)];
        if (init) starts.push(this.fromInit(r, levels, fit, init));
        let best = Infinity;
        centers = starts[0];
        for (const start of starts) {
          const c = lloyd(fit, prefix, start).map((x) => roundTo(precision, x));
          const e = partitionError(fit, prefix, squares, c);
          if (e < best) [best, centers] = [e, c];
        }
      }
      centers = Float64Array.from(new Set(centers)).sort();
      const [sse, used] = rowUse(sorted, centers);
      total += sse;
      counts[r] = used;
      if (out) {
        const from = r * rowLength;
        nearestCenters(this.rows.subarray(from, from + rowLength), centers, out.subarray(from, from + rowLength));
      }
    }
    return { sse: total, counts, values: out };
  }

  /**
   * Exactly `k` increasing starting centers from init's: too many are merged (Ward: see mergeTo), too
   * few are completed by quantiles of the row. Merging is greedy, so merging to k passes through every
   * larger count: a row's merging is kept and a smaller k goes on from where the last one stopped.
   */
  private fromInit(r: number, k: number, fit: Float32Array, init: (row: number, sorted: Float32Array) => Float32Array | Float64Array): Float64Array {
    const c = (this.initial[r] ??= distinctValues(init(r, this.sortedRow(r))));
    if (c.length === k) return c;
    if (c.length < k) {
      // Too few: the row's quantiles fill the missing levels.
      const all = new Set(c);
      for (const q of quantiles(fit, k)) if (all.size < k) all.add(q);
      return Float64Array.from(all).sort();
    }
    let m = this.merging[r];
    if (!m || m.mean.length < k) m = this.merging[r] = wardStart(c, fit);
    mergeTo(m, k);
    return Float64Array.from(m.mean);
  }
}

/** The squared error of a sorted row when each value takes its nearest center (sorted), and how many centers are taken. */
function rowUse(sorted: Float32Array, c: Float64Array): [number, number] {
  let sse = 0;
  let used = 0;
  let last = -1;
  for (let i = 0, j = 0; i < sorted.length; i++) {
    // Ties go to the lower center, as nearest() has it.
    while (j + 1 < c.length && sorted[i] - c[j] > c[j + 1] - sorted[i]) j++;
    const d = sorted[i] - c[j];
    sse += d * d;
    if (j !== last) {
      used++;
      last = j;
    }
  }
  return [sse, used];
}

/** `k` evenly spaced levels from lo to hi. */
function evenly(lo: number, hi: number, k: number): Float64Array {
  return Float64Array.from({ length: k }, (_, j) => lo + ((hi - lo) * j) / Math.max(1, k - 1));
}

/**
 * The squared error of a sorted row (prefix sums of values and squares) when each value takes the
 * nearest of `centers`: per center, the values nearest to it are one run of the sorted row.
 */
function partitionError(sorted: Float32Array, prefix: Float64Array, squares: Float64Array, centers: Float64Array): number {
  const c = Float64Array.from(centers).sort();
  let sse = 0;
  let a = 0;
  for (let j = 0; j < c.length; j++) {
    const b = j + 1 < c.length ? lowerBound(sorted, (c[j] + c[j + 1]) / 2) : sorted.length;
    const n = b - a;
    if (n > 0) sse += squares[b] - squares[a] - 2 * c[j] * (prefix[b] - prefix[a]) + n * c[j] * c[j];
    a = b;
  }
  return Math.max(0, sse);
}

/** The distinct values of a sorted row (-0 and 0 are one). */
function distinctSorted(sorted: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < sorted.length; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) out.push(sorted[i]);
  return out;
}

/** K centers at the quantiles (j + 1/2) / K of a sorted row. */
function quantiles(sorted: Float32Array, k: number): Float64Array {
  const c = new Float64Array(k);
  for (let j = 0; j < k; j++) c[j] = sorted[Math.min(sorted.length - 1, Math.floor(((j + 0.5) / k) * sorted.length))];
  return c;
}

/** Centers being merged, each with the count of the row's values it stands for. */
interface Merging {
  mean: number[];
  weight: number[];
}

/** Sorted distinct centers, each weighted by how many values of the sorted row are nearest to it. */
function wardStart(c: Float64Array, sorted: Float32Array): Merging {
  const n = new Float64Array(c.length);
  for (let i = 0, j = 0; i < sorted.length; i++) {
    while (j + 1 < c.length && Math.abs(sorted[i] - c[j + 1]) < Math.abs(sorted[i] - c[j])) j++;
    n[j]++;
  }
  return { mean: Array.from(c), weight: Array.from(n, (x) => Math.max(x, 1e-9)) };
}

/** Merges adjacent centers until `k` are left, the pair whose merge adds the least squared error first (Ward). */
function mergeTo(m: Merging, k: number): void {
  const { mean, weight } = m;
  while (mean.length > k) {
    let at = 0;
    let cost = Infinity;
    for (let j = 0; j + 1 < mean.length; j++) {
      const d = mean[j + 1] - mean[j];
      const w = (weight[j] * weight[j + 1]) / (weight[j] + weight[j + 1]);
      if (w * d * d < cost) {
        cost = w * d * d;
        at = j;
      }
    }
    const w = weight[at] + weight[at + 1];
    mean.splice(at, 2, (mean[at] * weight[at] + mean[at + 1] * weight[at + 1]) / w);
    weight.splice(at, 2, w);
  }
}

/**
 * Lloyd steps on a sorted row (`prefix`: its prefix sums): each center becomes the mean of the values
 * nearest to it, until the partition stops moving (at most 40 steps). A center no value is nearest to
 * stays where it is.
 */
function lloyd(sorted: Float32Array, prefix: Float64Array, start: Float64Array): Float64Array {
  const c = Float64Array.from(start).sort();
  const k = c.length;
  const cuts = new Int32Array(k + 1);
  cuts[k] = sorted.length;
  for (let step = 0; step < 40; step++) {
    let moved = false;
    for (let j = 1; j < k; j++) {
      // Near where the cut was: after the first steps, cuts move by a few values (a third of a
      // capped hash's encoding was these searches over the whole row).
      const at = lowerBoundNear(sorted, (c[j - 1] + c[j]) / 2, cuts[j]);
      if (at !== cuts[j]) moved = true;
      cuts[j] = at;
    }
    for (let j = 0; j < k; j++) {
      const [a, b] = [cuts[j], cuts[j + 1]];
      if (b > a) c[j] = (prefix[b] - prefix[a]) / (b - a);
    }
    if (!moved && step > 0) break;
  }
  return c;
}

/** First index of a sorted array whose value is >= x. */
function lowerBound(sorted: ArrayLike<number>, x: number): number {
  return lowerBoundIn(sorted, x, 0, sorted.length);
}

/**
 * lowerBound(sorted, x), found from `hint` outwards in steps that double, then by halves: a few
 * reads where the answer is near the hint. The same index, as `sorted[i] < x` holds on a prefix
 * (NaNs sort last and compare false).
 */
export function lowerBoundNear(sorted: ArrayLike<number>, x: number, hint: number): number {
  const n = sorted.length;
  let step = 1;
  if (hint < n && sorted[hint] < x) {
    // The answer is past the hint: past every index read below x, at or before the first read not.
    let below = hint;
    while (below + step < n && sorted[below + step] < x) {
      below += step;
      step *= 2;
    }
    return lowerBoundIn(sorted, x, below + 1, Math.min(below + step, n));
  }
  // The answer is at or before the hint: at or before every index read not below x.
  let notBelow = Math.min(hint, n);
  while (notBelow - step >= 0 && !(sorted[notBelow - step] < x)) {
    notBelow -= step;
    step *= 2;
  }
  return lowerBoundIn(sorted, x, Math.max(notBelow - step + 1, 0), notBelow);
}

/** lowerBound within [lo, hi), hi when no value there is >= x. */
function lowerBoundIn(sorted: ArrayLike<number>, x: number, lo: number, hi: number): number {
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid] < x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * out[i] = the center nearest to x[i] (sorted centers, at least one; the lower on a tie): by
 * native/quantize.h where the addon loads (a binary search without branches), by
 * nearestCentersReference() otherwise.
 */
export function nearestCenters(x: Float32Array, centers: Float64Array, out: Float32Array): void {
  const addon = native();
  if (addon) addon.nearestCenters(x, centers, out);
  else nearestCentersReference(x, centers, out);
}

export function nearestCentersReference(x: Float32Array, centers: Float64Array, out: Float32Array): void {
  for (let i = 0; i < x.length; i++) out[i] = centers[nearest(centers, x[i])];
}

/** The index of the center nearest to x (the lower one on a tie). */
function nearest(centers: Float64Array, x: number): number {
  const at = lowerBound(centers, x);
  if (at === 0) return 0;
  if (at === centers.length) return at - 1;
  return x - centers[at - 1] <= centers[at] - x ? at - 1 : at;
}
