/**
 * Options of prune(): the user's, resolved once here into what each pass and the validation run with.
 * Nothing downstream checks them again.
 */
import * as os from 'node:os';

import { invalidOption } from '../errors';
import type { Center } from '../kernels/hash';
import { boolean, finiteNumber, inputShapes, integer, layerPatterns, oneOf, userOptions } from './check';
import { CENTERS, HASH_DEFAULTS } from './hash';
import { MERGE_DEFAULTS, type ResolvedMergeOptions } from './merge';
import { resolveValidateOptions, type ResolvedValidateOptions } from './validate';

export type KernelSplitMode = 'auto' | 'off' | 'force';
const KERNEL_SPLIT_MODES: readonly KernelSplitMode[] = ['auto', 'off', 'force'];

export interface PruneOptions {
  /** Bandwidth factor of the hashing (see HashOptions.beta). */
  beta?: number;
  /** Interval representative of the hashing. */
  center?: Center;
  /** 0: merge only neurons that hashing made identical (exact). > 0: also those within this relative distance (lossy). */
  epsilon?: number;
  /**
   * The kernel split of k×k convs whose filters share kernels (lib/passes/kernel-split, exact): 'auto'
   * where the calibrated cost model predicts it is faster, 'off', or 'force' (every eligible conv; for tests).
   */
  kernelSplit?: KernelSplitMode;
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
   * Store hashed weights as per-neuron codebooks plus 1- to 16-bit indices, rebuilt in the graph by
   * ops that onnxruntime folds at session creation: a smaller file, the same outputs bit for bit.
   */
  pack?: boolean;
  /** Write the pruned model here (atomically); the report then has its size. */
  output?: string;
  /** Called as work progresses (for progress bars). */
  onProgress?: (event: PruneProgress) => void;
}

export interface PruneProgress {
  phase: 'load' | 'fold' | 'hash' | 'merge' | 'kernel-split' | 'pack' | 'save' | 'validate';
  done: number;
  total: number;
  detail?: string;
}

export type ResolvedPruneOptions = Required<Omit<PruneOptions, 'output' | 'onProgress'>> & Pick<PruneOptions, 'output' | 'onProgress'>;

export const PRUNE_DEFAULTS: Omit<ResolvedPruneOptions, 'output' | 'onProgress'> = Object.freeze({
  beta: HASH_DEFAULTS.beta,
  center: HASH_DEFAULTS.center,
  epsilon: 0,
  kernelSplit: 'auto',
  threads: os.availableParallelism(),
  minFanIn: 200,
  skip: [],
  layerBeta: {},
  inputShapes: {},
  validate: false,
  pack: false,
});

const KNOWN = [...Object.keys(PRUNE_DEFAULTS), 'output', 'onProgress'];

export function resolvePruneOptions(options?: PruneOptions): ResolvedPruneOptions {
  const r = { ...PRUNE_DEFAULTS, ...userOptions(options, KNOWN) } as ResolvedPruneOptions;
  finiteNumber('options.beta', r.beta, { min: 0 });
  oneOf('options.center', CENTERS, r.center);
  finiteNumber('options.epsilon', r.epsilon, { min: 0, below: 1 });
  oneOf('options.kernelSplit', KERNEL_SPLIT_MODES, r.kernelSplit);
  integer('options.threads', r.threads, 1, 1024);
  integer('options.minFanIn', r.minFanIn, 0);
  r.skip = layerPatterns('options.skip', r.skip);
  if (r.layerBeta === null || typeof r.layerBeta !== 'object' || Array.isArray(r.layerBeta)) {
    throw invalidOption('options.layerBeta', 'an object of layer names to betas', r.layerBeta);
  }
  for (const [name, b] of Object.entries(r.layerBeta)) finiteNumber(`options.layerBeta['${name}']`, b, { min: 0 });
  r.inputShapes = inputShapes('options.inputShapes', r.inputShapes);
  boolean('options.validate', r.validate);
  boolean('options.pack', r.pack);
  if (r.output !== undefined && (typeof r.output !== 'string' || r.output === '')) throw invalidOption('options.output', 'a file path', r.output);
  if (r.onProgress !== undefined && typeof r.onProgress !== 'function') throw invalidOption('options.onProgress', 'a function', r.onProgress);
  return r;
}

/** The hash pass's options. */
export type HashPassOptions = Pick<ResolvedPruneOptions, 'beta' | 'center' | 'minFanIn' | 'skip' | 'layerBeta'>;

export interface ResolvedKernelSplitOptions {
  mode: KernelSplitMode;
  /** Concrete input shapes, for the layers' spatial sizes. */
  inputShapes: Record<string, number[]>;
  /** Time each rewritten layer alone (before and after) in onnxruntime-node; runs per form (0: do not). */
  measureRuns: number;
}

/** What every step of prune() runs with, once the model's concrete input shapes are known. */
export interface PipelineOptions {
  hash: HashPassOptions;
  merge: ResolvedMergeOptions;
  kernelSplit: ResolvedKernelSplitOptions;
  pack: boolean;
  /** Undefined when validation is off. */
  validate: ResolvedValidateOptions | undefined;
}

export function pipelineOptions(r: ResolvedPruneOptions, concreteShapes: Record<string, number[]>): PipelineOptions {
  const { beta, center, minFanIn, skip, layerBeta } = r;
  return {
    hash: { beta, center, minFanIn, skip, layerBeta },
    merge: { ...MERGE_DEFAULTS, epsilon: r.epsilon, inputShapes: concreteShapes },
    // Layers it rewrites are timed alone before and after (always under 'auto', where splits are rare).
    kernelSplit: { mode: r.kernelSplit, inputShapes: concreteShapes, measureRuns: r.kernelSplit === 'auto' || r.validate ? 30 : 0 },
    pack: r.pack,
    validate: r.validate ? resolveValidateOptions({ inputShapes: concreteShapes, runs: 10 }) : undefined,
  };
}
