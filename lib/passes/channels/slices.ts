/**
 * Reading a constant one channel slice at a time: the elements at positions [p*inner, (p+1)*inner)
 * of `axis`, for every index of the other axes, in row-major order.
 */
export interface AxisView {
  /** Product of the dims before the axis. */
  outer: number;
  /** The axis length. */
  length: number;
  /** Product of the dims after the axis. */
  stride: number;
}

export function axisView(dims: readonly number[], axis: number): AxisView {
  let outer = 1;
  let stride = 1;
  for (let i = 0; i < axis; i++) outer *= dims[i];
  for (let i = axis + 1; i < dims.length; i++) stride *= dims[i];
  return { outer, length: dims[axis], stride };
}

/** Elements in one channel slice. */
export function sliceSize(view: AxisView, inner: number): number {
  return view.outer * inner * view.stride;
}

/** Copies the slice of channel position `p` into `out` at `at`; returns the next free index. */
export function copySlice(
  data: ArrayLike<number>,
  view: AxisView,
  inner: number,
  p: number,
  out: Float64Array | Float32Array,
  at: number,
): number {
  const { outer, length, stride } = view;
  const run = inner * stride;
  // Same-type runs are copied as blocks (a producer row is one contiguous run).
  const blocks = (data instanceof Float32Array && out instanceof Float32Array) || (data instanceof Float64Array && out instanceof Float64Array);
  for (let o = 0; o < outer; o++) {
    const base = (o * length + p * inner) * stride;
    if (blocks && run > 8) {
      out.set((data as Float32Array).subarray(base, base + run), at);
      at += run;
    } else {
      for (let k = 0; k < run; k++) out[at++] = data[base + k];
    }
  }
  return at;
}

/** Per channel position: whether every element of its slice satisfies `test`. */
export function slicesWhere(
  data: ArrayLike<number>,
  dims: readonly number[],
  axis: number,
  inner: number,
  test: (x: number) => boolean,
): Uint8Array {
  const view = axisView(dims, axis);
  const positions = view.length / inner;
  const out = new Uint8Array(positions).fill(1);
  const run = inner * view.stride;
  for (let o = 0; o < view.outer; o++) {
    for (let p = 0; p < positions; p++) {
      if (!out[p]) continue;
      const base = (o * view.length + p * inner) * view.stride;
      for (let k = 0; k < run; k++) {
        if (!test(data[base + k])) {
          out[p] = 0;
          break;
        }
      }
    }
  }
  return out;
}

export const isZero = (x: number): boolean => x === 0;
