/**
 * All option validation lives here: user-facing `*Options` (everything optional) and resolved
 * `Resolved*` (everything filled), merged once from the defaults, with one error factory.
 */
import * as os from 'node:os';

import { invalidOption } from './errors';
import type { Center } from './kernels/hash';
import { SIMD_LEVELS, type SimdName } from './binding';

export type Device = 'auto' | 'cpu' | 'cuda';
export type SplitMode = 'auto' | 'off' | 'force';
const SPLIT_MODES: readonly SplitMode[] = ['auto', 'off', 'force'];

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

export interface PruneOptions {
  /** Bandwidth factor of the hashing (see HashOptions.beta). */
  beta?: number;
  /** Interval representative of the hashing. */
  center?: Center;
  /** 0: merge only neurons that hashing made identical (exact). > 0: also those within this relative distance (lossy). */
  epsilon?: number;
  /**
   * Kernel-level split of k×k convs whose filters share kernels (lib/passes/split.ts, exact): 'auto'
   * where the calibrated cost model predicts it is faster, 'off', or 'force' (every eligible conv; for tests).
   */
  split?: SplitMode;
  /** Worker threads of the pool. Default: the number of cores. */
  threads?: number;
  /** Layers whose neurons have fewer weights than this are not hashed (the sensitive ones). */
  minFanIn?: number;
  /** Layer (node) names or patterns to leave alone. */
  skip?: (string | RegExp)[];
  /** Beta per layer name, overriding beta and minFanIn for that layer (0 leaves it alone). */
  layerBeta?: Record<string, number>;
  /** Concrete shapes for inputs with symbolic dims, e.g. { x: [1, 3, 640, 640] }; used for MACs and validation. */
  inputShapes?: Record<string, number[]>;
  /** Run the original and the pruned model in onnxruntime-node and compare outputs and latency. */
  validate?: boolean;
  /**
   * Store hashed weights as per-neuron codebooks plus uint8/uint16 indices, rebuilt in the graph by a
   * gather that onnxruntime folds at session creation: a smaller file, the same outputs bit for bit.
   */
  pack?: boolean;
  /** Write the pruned model here (atomically); the report then has its size. */
  output?: string;
  /** Called as work progresses (for progress bars). */
  onProgress?: (event: PruneProgress) => void;
}

export interface PruneProgress {
  phase: 'load' | 'fold' | 'hash' | 'merge' | 'pack' | 'save' | 'validate';
  done: number;
  total: number;
  detail?: string;
}

export type ResolvedPruneOptions = Required<Omit<PruneOptions, 'output' | 'onProgress'>> &
  Pick<PruneOptions, 'output' | 'onProgress'>;

export const PRUNE_DEFAULTS: Omit<ResolvedPruneOptions, 'output' | 'onProgress'> = Object.freeze({
  beta: HASH_DEFAULTS.beta,
  center: HASH_DEFAULTS.center,
  epsilon: 0,
  split: 'auto',
  threads: os.availableParallelism(),
  minFanIn: 200,
  skip: [],
  layerBeta: {},
  inputShapes: {},
  validate: false,
  pack: false,
});

export function resolvePruneOptions(options: PruneOptions = {}): ResolvedPruneOptions {
  if (options === null || typeof options !== 'object') throw invalidOption('options', 'an object', options);
  const r = { ...PRUNE_DEFAULTS, ...definedOnly(options) } as ResolvedPruneOptions;
  resolveHashOptions({ beta: r.beta, center: r.center, threads: r.threads });
  if (typeof r.epsilon !== 'number' || !Number.isFinite(r.epsilon) || r.epsilon < 0 || r.epsilon >= 1) {
    throw invalidOption('options.epsilon', 'a number in [0, 1)', r.epsilon);
  }
  if (!SPLIT_MODES.includes(r.split)) throw invalidOption('options.split', `one of ${SPLIT_MODES.join(', ')}`, r.split);
  if (!Number.isSafeInteger(r.minFanIn) || r.minFanIn < 0) {
    throw invalidOption('options.minFanIn', 'an integer >= 0', r.minFanIn);
  }
  if (!Array.isArray(r.skip) || !r.skip.every((s) => typeof s === 'string' || s instanceof RegExp)) {
    throw invalidOption('options.skip', 'an array of strings and RegExps', r.skip);
  }
  if (r.layerBeta === null || typeof r.layerBeta !== 'object') {
    throw invalidOption('options.layerBeta', 'an object of layer names to betas', r.layerBeta);
  }
  for (const [name, b] of Object.entries(r.layerBeta)) {
    if (typeof b !== 'number' || !Number.isFinite(b) || b < 0) throw invalidOption(`options.layerBeta['${name}']`, 'a finite number >= 0', b);
  }
  if (r.inputShapes === null || typeof r.inputShapes !== 'object') {
    throw invalidOption('options.inputShapes', 'an object of input names to shapes', r.inputShapes);
  }
  for (const [name, s] of Object.entries(r.inputShapes)) {
    if (!Array.isArray(s) || !s.every((d) => Number.isSafeInteger(d) && d > 0)) {
      throw invalidOption(`options.inputShapes.${name}`, 'an array of positive integers', s);
    }
  }
  if (typeof r.validate !== 'boolean') throw invalidOption('options.validate', 'a boolean', r.validate);
  if (typeof r.pack !== 'boolean') throw invalidOption('options.pack', 'a boolean', r.pack);
  if (r.output !== undefined && (typeof r.output !== 'string' || r.output === '')) {
    throw invalidOption('options.output', 'a file path', r.output);
  }
  if (r.onProgress !== undefined && typeof r.onProgress !== 'function') {
    throw invalidOption('options.onProgress', 'a function', r.onProgress);
  }
  return r;
}
