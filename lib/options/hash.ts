/** Options of the hashing kernel (hashWeights). */
import * as os from 'node:os';

import { SIMD_LEVELS, type SimdName } from '../binding';
import { invalidOption } from '../errors';
import type { Center, HashKernelParams } from '../kernels/hash';
import { finiteNumber, integer, oneOf, userOptions } from './check';

export type Device = 'auto' | 'cpu' | 'cuda';

export interface HashOptions extends Partial<HashKernelParams> {
  /** CPU threads for the native kernel. */
  threads?: number;
  /** 'auto' uses CUDA when the addon was built with it and a GPU is present, else the CPU. */
  device?: Device;
  /** Instruction set of the CPU kernel; 'auto' picks the best the CPU has. For tests and benchmarks. */
  simd?: SimdName;
  /**
   * Where to write the hashed weights: a Float32Array of the same length, which may be the input
   * itself (hash in place). Default: a new array. Writing into memory the caller already has saves
   * the page faults of a fresh allocation, which on large models cost as much as the hashing.
   */
  output?: Float32Array;
}

export type ResolvedHashOptions = Required<Omit<HashOptions, 'output'>> & Pick<HashOptions, 'output'>;

export const HASH_DEFAULTS: ResolvedHashOptions = Object.freeze({
  beta: 0.05,
  center: 'mean',
  threads: os.availableParallelism(),
  device: 'auto',
  simd: 'auto',
});

export const CENTERS: readonly Center[] = ['mean', 'mode'];
const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda'];

export function resolveHashOptions(options?: HashOptions): ResolvedHashOptions {
  const r = { ...HASH_DEFAULTS, ...userOptions(options, ['beta', 'center', 'threads', 'device', 'simd', 'output']) };
  finiteNumber('options.beta', r.beta, { min: 0 });
  oneOf('options.center', CENTERS, r.center);
  integer('options.threads', r.threads, 1, 1024);
  oneOf('options.device', DEVICES, r.device);
  oneOf('options.simd', Object.keys(SIMD_LEVELS) as SimdName[], r.simd);
  if (r.output !== undefined && !(r.output instanceof Float32Array)) throw invalidOption('options.output', 'a Float32Array', r.output);
  return r;
}
