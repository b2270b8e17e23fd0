/**
 * RED++ input splitting, as accounting: after hashing, neuron j has u_j distinct values over its n
 * inputs, so `y_j = sum_v c_v * (sum of the inputs whose weight is c_v)` needs u_j multiplications
 * instead of n, and inputs whose weight is 0 drop out of the sums. These are counts of arithmetic, not a
 * measured speed-up: dense kernels still multiply every weight.
 */
import type { InputSplitCounts, OpCounts } from './layer-records';

/** From per-neuron counts of distinct values and of zero weights. */
export function inputSplitCounts(fanIn: number, distinct: ArrayLike<number>, zeros: ArrayLike<number>): InputSplitCounts {
  let mults = 0;
  let adds = 0;
  let min = Infinity;
  let max = 0;
  let sum = 0;
  for (let j = 0; j < distinct.length; j++) {
    const nonzero = fanIn - zeros[j];
    mults += distinct[j] - (zeros[j] > 0 ? 1 : 0);
    adds += Math.max(0, nonzero - 1);
    min = Math.min(min, distinct[j]);
    max = Math.max(max, distinct[j]);
    sum += distinct[j];
  }
  const neurons = distinct.length;
  return { mults, adds, distinct: { min: neurons ? min : 0, mean: neurons ? sum / neurons : 0, max } };
}

/** The counts of a layer read from its weights (rows of `fanIn`): for layers hashing did not see or a merge edited. */
export function inputSplitCountsOf(rows: Float32Array, fanIn: number): InputSplitCounts {
  const neurons = fanIn ? rows.length / fanIn : 0;
  const distinct = new Uint32Array(neurons);
  const zeros = new Uint32Array(neurons);
  countRows(rows, fanIn, distinct, zeros);
  return inputSplitCounts(fanIn, distinct, zeros);
}

/** Per row of `fanIn` weights in `rows`: its distinct values into `distinct`, its zeros into `zeros`. */
export function countRows(rows: Float32Array, fanIn: number, distinct: Uint32Array, zeros: Uint32Array): void {
  const scratch = new Float32Array(fanIn);
  const neurons = fanIn ? rows.length / fanIn : 0;
  for (let j = 0; j < neurons; j++) {
    scratch.set(rows.subarray(j * fanIn, (j + 1) * fanIn));
    scratch.sort();
    let d = fanIn ? 1 : 0;
    let z = scratch[0] === 0 ? 1 : 0;
    for (let i = 1; i < fanIn; i++) {
      if (scratch[i] !== scratch[i - 1]) d++;
      if (scratch[i] === 0) z++;
    }
    distinct[j] = d;
    zeros[j] = z;
  }
}

/**
 * One run's arithmetic from the counts of a layer of `neurons` x `fanIn` weights that costs `macs`
 * dense: each neuron is computed at macs / (neurons * fanIn) output positions, where dense it costs
 * fanIn multiplications and fanIn - 1 additions.
 */
export function opCounts(counts: InputSplitCounts, macs: number, neurons: number, fanIn: number): OpCounts {
  const positions = macs / (neurons * fanIn);
  return {
    mults: { before: macs, after: positions * counts.mults },
    adds: { before: positions * neurons * (fanIn - 1), after: positions * counts.adds },
  };
}
