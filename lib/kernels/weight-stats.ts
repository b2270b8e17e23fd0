/**
 * What the hash pass reports beside the hashing: the layer's sum of squares (its weight RMS) and each
 * neuron's exact zeros after hashing (input splitting skips their inputs). The native kernels
 * (native/weight_stats.cc) where the addon loads, these references otherwise; they agree bit for bit.
 */
import { native } from '../binding';
import { laneSum } from './hash';

const LANES = 8;

/** The sum of x[i]^2 in float64: lane k takes the elements i = k mod 8, the lanes added as laneSum(). */
export function sumOfSquaresReference(x: Float32Array): number {
  const lanes = new Float64Array(LANES);
  for (let i = 0; i < x.length; i++) lanes[i % LANES] += x[i] * x[i];
  return laneSum(lanes);
}

/** Per group of `groupSize` consecutive elements: how many are exactly zero. */
export function zerosPerGroupReference(x: Float32Array, groupSize: number): Uint32Array {
  const zeros = new Uint32Array(x.length / groupSize);
  for (let g = 0, i = 0; g < zeros.length; g++) {
    let z = 0;
    for (const end = i + groupSize; i < end; i++) z += x[i] === 0 ? 1 : 0;
    zeros[g] = z;
  }
  return zeros;
}

export function sumOfSquares(x: Float32Array): number {
  return native()?.sumOfSquares(x) ?? sumOfSquaresReference(x);
}

export function zerosPerGroup(x: Float32Array, groupSize: number): Uint32Array {
  const addon = native();
  if (!addon) return zerosPerGroupReference(x, groupSize);
  const zeros = new Uint32Array(x.length / groupSize);
  addon.zerosPerGroup(x, groupSize, zeros);
  return zeros;
}
