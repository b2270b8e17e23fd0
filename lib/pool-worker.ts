/**
 * The body of a pool worker. The default task hashes one layer's weights in place on the native kernel
 * (one CPU thread per worker; the pool supplies the parallelism) and hands the buffer back by transfer;
 * `code` codes one layer for the packed export.
 */
import { move, transferableSymbol, valueSymbol } from 'piscina';

import { hashWeights } from './hash';
import type { Center } from './kernels/hash';
import type { Bits } from './passes/pack/chain';
import { codeLayer, type CodedLayer } from './passes/pack/code';
import type { NeuronGrid } from './passes/weight-layout';

export interface HashTask {
  weights: Float32Array;
  groupSize: number;
  beta: number;
  center: Center;
}

export interface HashTaskResult {
  values: Float32Array;
  distinct: Uint32Array;
  rmsError: Float64Array;
  /** Per neuron: weights that are exactly zero after hashing (input splitting skips their inputs). */
  zeros: Uint32Array;
  backend: string;
}

export default async function hashTask(task: HashTask): Promise<HashTaskResult> {
  const r = await hashWeights(task.weights, task.groupSize, {
    beta: task.beta,
    center: task.center,
    threads: 1,
    device: 'cpu',
    output: task.weights,
  });
  const zeros = new Uint32Array(r.distinct.length);
  for (let g = 0, i = 0; g < zeros.length; g++) {
    let z = 0;
    for (const end = i + task.groupSize; i < end; i++) z += r.values[i] === 0 ? 1 : 0;
    zeros[g] = z;
  }
  const result: HashTaskResult = { values: r.values, distinct: r.distinct, rmsError: r.rmsError, zeros, backend: r.backend };
  // Hand the arrays back by transfer: piscina's Transferable protocol, marked movable. Weights in shared
  // memory were hashed in place and go back as a view (shared memory cannot be transferred).
  const buffers = [r.values.buffer, r.distinct.buffer, r.rmsError.buffer, zeros.buffer];
  return move({
    [transferableSymbol]: buffers.filter((b) => !(b instanceof SharedArrayBuffer)),
    [valueSymbol]: result,
  }) as unknown as HashTaskResult;
}

export interface CodeTask {
  /** The layer's weights as bit patterns, laid out on `grid`. */
  bits: Bits;
  grid: NeuronGrid;
}

export function code(task: CodeTask): CodedLayer | string {
  const r = codeLayer(task.bits, task.grid);
  if (typeof r === 'string') return r;
  return move({ [transferableSymbol]: [r.codebook.buffer, r.offsets.buffer, r.words.buffer], [valueSymbol]: r }) as unknown as CodedLayer;
}
