/**
 * All option validation lives here: user-facing `*Options` (everything optional) and resolved
 * `Resolved*` (everything filled), merged once from the defaults, with one error factory.
 */
import * as os from 'node:os';

import { invalidOption } from './errors';
import type { Center } from './kernels/hash';
import { SIMD_LEVELS, type SimdName } from './binding';

export type Device = 'auto' | 'cpu' | 'cuda';

export interface HashOptions {
  /** Bandwidth factor: h = beta * std(group) * n^(-1/5). Larger merges more values. 0 leaves weights as they are. */
  beta?: number;
  /** Representative of each interval: its mean (least squares) or the density's mode (as in the paper). */
  center?: Center;
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

const CENTERS: readonly Center[] = ['mean', 'mode'];
const DEVICES: readonly Device[] = ['auto', 'cpu', 'cuda'];

export function resolveHashOptions(options: HashOptions = {}): ResolvedHashOptions {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  const r = { ...HASH_DEFAULTS, ...definedOnly(options) };
  if (typeof r.beta !== 'number' || !Number.isFinite(r.beta) || r.beta < 0) {
    throw invalidOption('options.beta', 'a finite number >= 0', r.beta);
  }
  if (!CENTERS.includes(r.center)) throw invalidOption('options.center', `one of ${CENTERS.join(', ')}`, r.center);
  if (!Number.isInteger(r.threads) || r.threads < 1 || r.threads > 1024) {
    throw invalidOption('options.threads', 'an integer between 1 and 1024', r.threads);
  }
  if (!DEVICES.includes(r.device)) throw invalidOption('options.device', `one of ${DEVICES.join(', ')}`, r.device);
  if (!Object.hasOwn(SIMD_LEVELS, r.simd)) {
    throw invalidOption('options.simd', `one of ${Object.keys(SIMD_LEVELS).join(', ')}`, r.simd);
  }
  if (r.output !== undefined && !(r.output instanceof Float32Array)) {
    throw invalidOption('options.output', 'a Float32Array', r.output);
  }
  return r;
}

function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
