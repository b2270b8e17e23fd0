/**
 * Output comparison metrics, accumulated in float64 over every probe set so a report covers all of them.
 */
import { float16BitsToNumber } from '../model/dtype';

export interface OutputComparison {
  name: string;
  /** Shape of the output in the original model (of the first input set). */
  shape: number[];
  type: string;
  /** Elements compared, over all input sets. */
  elements: number;
  /** max |changed - original| */
  maxAbsError: number;
  /** ||changed - original||_2 / ||original||_2 (0 when both are zero, Infinity when only the original is). */
  relL2Error: number;
  /** Cosine similarity of the two outputs as flat vectors (1 when both are zero). */
  cosine: number;
  /**
   * For class-like outputs (float, last axis of 2 or more): the fraction of rows whose argmax over the
   * last axis is the same in both models. Null otherwise.
   */
  argmaxAgreement: number | null;
  /** NaN or infinite elements in each model's output. */
  nonFinite: { original: number; changed: number };
  /** Set when the outputs could not be compared (missing in the changed model, different shapes). */
  error?: string;
}

type Numeric = ArrayLike<number> | BigInt64Array | BigUint64Array;

/** Element i as a number, decoding float16 bits. */
function reader(data: Numeric, type: string): (i: number) => number {
  if (type === 'float16') return (i) => float16BitsToNumber((data as Uint16Array)[i]);
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) return (i) => Number(data[i]);
  if (type === 'bool') return (i) => ((data as Uint8Array)[i] ? 1 : 0);
  return (i) => (data as ArrayLike<number>)[i];
}

export class OutputAccumulator {
  private readonly name: string;
  private shape: number[] | undefined;
  private type = '';
  private elements = 0;
  private maxAbs = 0;
  private diff2 = 0;
  private orig2 = 0;
  private changed2 = 0;
  private dot = 0;
  private rows = 0;
  private agree = 0;
  private classLike = true;
  private nonFiniteA = 0;
  private nonFiniteB = 0;
  private error: string | undefined;

  constructor(name: string) {
    this.name = name;
  }

  fail(message: string): void {
    this.error ??= message;
  }

  add(
    a: { data: unknown; dims: readonly number[]; type: string },
    b: { data: unknown; dims: readonly number[]; type: string } | undefined,
  ): void {
    this.shape ??= [...a.dims];
    this.type ||= a.type;
    if (!b) return this.fail(`output '${this.name}' is missing from the changed model`);
    if (a.dims.length !== b.dims.length || a.dims.some((d, i) => d !== b.dims[i])) {
      return this.fail(`output '${this.name}' has shape [${b.dims}] in the changed model, [${a.dims}] in the original`);
    }
    const ra = reader(a.data as Numeric, a.type);
    const rb = reader(b.data as Numeric, b.type);
    const n = (a.data as ArrayLike<unknown>).length;
    for (let i = 0; i < n; i++) {
      const x = ra(i);
      const y = rb(i);
      if (!Number.isFinite(x)) this.nonFiniteA++;
      if (!Number.isFinite(y)) this.nonFiniteB++;
      if (!Number.isFinite(x) || !Number.isFinite(y)) {
        if (!Object.is(x, y)) this.maxAbs = Infinity;
        continue;
      }
      const d = Math.abs(y - x);
      if (d > this.maxAbs) this.maxAbs = d;
      this.diff2 += d * d;
      this.orig2 += x * x;
      this.changed2 += y * y;
      this.dot += x * y;
    }
    this.elements += n;
    const last = a.dims[a.dims.length - 1] ?? 1;
    this.classLike &&= a.dims.length >= 1 && last >= 2 && ['float32', 'float64', 'float16'].includes(a.type);
    if (this.classLike) {
      for (let r = 0; r < n / last; r++) {
        let ia = 0;
        let ib = 0;
        for (let j = 1; j < last; j++) {
          if (ra(r * last + j) > ra(r * last + ia)) ia = j;
          if (rb(r * last + j) > rb(r * last + ib)) ib = j;
        }
        this.rows++;
        if (ia === ib) this.agree++;
      }
    }
  }

  result(): OutputComparison {
    const relL2 = this.orig2 > 0 ? Math.sqrt(this.diff2 / this.orig2) : this.diff2 === 0 ? 0 : Infinity;
    const norms = Math.sqrt(this.orig2) * Math.sqrt(this.changed2);
    const cosine = norms > 0 ? this.dot / norms : this.orig2 === 0 && this.changed2 === 0 ? 1 : 0;
    const comparison: OutputComparison = {
      name: this.name,
      shape: this.shape ?? [],
      type: this.type,
      elements: this.elements,
      maxAbsError: this.error ? NaN : this.maxAbs,
      relL2Error: this.error ? NaN : relL2,
      cosine: this.error ? NaN : cosine,
      argmaxAgreement: this.error || !this.classLike || this.rows === 0 ? null : this.agree / this.rows,
      nonFinite: { original: this.nonFiniteA, changed: this.nonFiniteB },
    };
    if (this.error) comparison.error = this.error;
    return comparison;
  }
}
