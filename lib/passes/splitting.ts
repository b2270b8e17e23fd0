/**
 * RED++ input splitting, as accounting (DESIGN.md section 3): after hashing, neuron j has u_j distinct
 * values over its n inputs, so `y_j = sum_v c_v * (sum of the inputs whose weight is c_v)` needs u_j
 * multiplications instead of n, and inputs whose weight is 0 drop out of the sums. These are counts of
 * arithmetic, not a measured speed-up: dense kernels still multiply every weight.
 */

/** Per layer, summed over its neurons: what one output position of every neuron costs. */
export interface SplitCounts {
  neurons: number;
  fanIn: number;
  /** Sum over neurons of the distinct non-zero values (multiplications after splitting). */
  mults: number;
  /** Sum over neurons of (non-zero weights - 1) (additions after splitting). */
  adds: number;
  distinct: { min: number; mean: number; max: number };
  /** Bits of an index into a neuron's distinct values (ceil(log2 of the largest count)). */
  indexBits: number;
}

/** From per-neuron counts of distinct values and of zero weights. */
export function splitCounts(fanIn: number, distinct: ArrayLike<number>, zeros: ArrayLike<number>): SplitCounts {
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
  return {
    neurons,
    fanIn,
    mults,
    adds,
    distinct: { min: neurons ? min : 0, mean: neurons ? sum / neurons : 0, max },
    indexBits: Math.ceil(Math.log2(Math.max(1, max))),
  };
}

/** The counts of a layer read from its weights (rows of `fanIn`): for layers hashing did not see or a merge edited. */
export function splitCountsOf(rows: Float32Array, fanIn: number): SplitCounts {
  const neurons = fanIn ? rows.length / fanIn : 0;
  const distinct = new Uint32Array(neurons);
  const zeros = new Uint32Array(neurons);
  const scratch = new Float32Array(fanIn);
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
  return splitCounts(fanIn, distinct, zeros);
}
