/**
 * A weight tensor seen as a grid of neurons: its own elements, in their own order, reshaped to `dims`,
 * where an element's neuron is its row-major index over `neuronAxes` and its place in the neuron's row
 * (its fan-in position) the row-major index over the other axes. Hashing, merging and splitting work on
 * rows (one row = one output neuron's fan-in); packing lays its indices on the grid itself.
 */
import { native } from '../binding';
import { largeArray } from '../kernels/pages';
import { inChunks, slices } from '../turns';

export interface NeuronGrid {
  dims: number[];
  neuronAxes: number[];
}

/** Neurons and weights per neuron of a grid. */
export function gridSize(grid: NeuronGrid): { neurons: number; fanIn: number } {
  let neurons = 1;
  let fanIn = 1;
  grid.dims.forEach((d, a) => (grid.neuronAxes.includes(a) ? (neurons *= d) : (fanIn *= d)));
  return { neurons, fanIn };
}

/**
 * Whether the tensor's own order is already rows (neuron-major): toRows is then a plain copy. So it is
 * where the neuron axes are the leading ones in order (axis 0; none: the whole layer is one row).
 */
export function isRowMajor(grid: NeuronGrid): boolean {
  return grid.neuronAxes.every((a, i) => a === i);
}

/**
 * Where a grid's rows lie in the tensor: row n, place c is element `neuronAt[n] + placeAt[c]`.
 * Two small arrays (neurons, fan-in) rather than one index per weight.
 */
export function elementOffsets(grid: NeuronGrid): { neuronAt: Uint32Array; placeAt: Uint32Array } {
  const { dims, neuronAxes } = grid;
  const strides = dims.map((_, a) => dims.slice(a + 1).reduce((x, y) => x * y, 1));
  // Row-major over `axes`: each axis in turn repeats the offsets so far at each of its steps.
  const offsets = (axes: number[]) => {
    let out = Uint32Array.of(0);
    for (const a of axes) {
      const next = new Uint32Array(out.length * dims[a]);
      for (let o = 0, j = 0; o < out.length; o++) for (let i = 0; i < dims[a]; i++, j++) next[j] = out[o] + i * strides[a];
      out = next;
    }
    return out;
  };
  return { neuronAt: offsets(neuronAxes), placeAt: offsets(dims.map((_, a) => a).filter((a) => !neuronAxes.includes(a))) };
}

/** Row-major rows gathered from a tensor laid out on `grid` (a new array). */
export function toRows(grid: NeuronGrid, data: Float32Array): Float32Array {
  if (isRowMajor(grid)) return Float32Array.from(data);
  const { neuronAt, placeAt } = elementOffsets(grid);
  const rows = largeArray(Float32Array, data.length);
  for (let n = 0, j = 0; n < neuronAt.length; n++) for (let c = 0; c < placeAt.length; c++, j++) rows[j] = data[neuronAt[n] + placeAt[c]];
  return rows;
}

/** The inverse of toRows: the tensor's own layout (a new array, or `rows` itself when the grid is row-major). */
export function fromRows(grid: NeuronGrid, rows: Float32Array): Float32Array {
  if (isRowMajor(grid)) return rows;
  const { neuronAt, placeAt } = elementOffsets(grid);
  const data = largeArray(Float32Array, rows.length);
  for (let n = 0, j = 0; n < neuronAt.length; n++) for (let c = 0; c < placeAt.length; c++, j++) data[neuronAt[n] + placeAt[c]] = rows[j];
  return data;
}

/** Weights scaled between two turns of the event loop: a millisecond or so. */
const SCALE_SLICE = 1 << 20;

/**
 * Multiplies every weight of neuron n by `factors[n]`, in place (folding a per-channel scale), a slice of
 * rows at a time with `pause()` between: the fold runs on the main thread. Float32 rows natively
 * (native/scale.h, the same floats at memory speed), anything else here.
 */
export async function scaleNeurons(grid: NeuronGrid, data: Float32Array | Float64Array, factors: Float64Array, pause = slices()): Promise<void> {
  const { neurons, fanIn } = gridSize(grid);
  const chunk = Math.max(1, Math.floor(SCALE_SLICE / Math.max(1, fanIn)));
  if (isRowMajor(grid)) {
    const addon = native();
    const scaleRows = addon && data instanceof Float32Array ? addon.scaleRows : scaleRowsReference;
    await inChunks(neurons, (from, to) => scaleRows(data.subarray(from * fanIn, to * fanIn) as Float32Array, fanIn, factors.subarray(from, to)), { pause, chunk });
    return;
  }
  const { neuronAt, placeAt } = elementOffsets(grid);
  const scale = (from: number, to: number) => {
    for (let n = from; n < to; n++) {
      const f = factors[n];
      for (let c = 0; c < fanIn; c++) data[neuronAt[n] + placeAt[c]] *= f;
    }
  };
  await inChunks(neurons, scale, { pause, chunk });
}

/** Row n of `fanIn` consecutive weights times factors[n]: the reference of the native kernel (native/scale.h). */
export function scaleRowsReference(w: Float32Array | Float64Array, fanIn: number, factors: Float64Array): void {
  for (let n = 0; n < factors.length; n++) scaleRun(w, n * fanIn, (n + 1) * fanIn, factors[n]);
}

/** w[from..to) *= f: the hot loop of a fold (every weight of the layer), kept small for the JIT. */
function scaleRun(w: Float32Array | Float64Array, from: number, to: number, f: number): void {
  for (let i = from; i < to; i++) w[i] *= f;
}
