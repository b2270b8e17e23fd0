/**
 * Options of prune(): the user's, resolved once here into what each pass and the validation run with.
 * Nothing downstream checks them again.
 *
 * Two ways to choose how each layer is stored:
 * - the fidelity budget (the default): redpp picks a codec per layer that keeps the model's outputs
 *   within `maxDeviation` of the original's (default DEFAULT_MAX_DEVIATION), or as close as it can
 *   within `targetSize`;
 * - RED++ as the paper has it: every layer hashed at one `beta` (or a beta per layer), the layers of
 *   small fan-in protected. Giving `beta` or `layerBeta` chooses this.
 */
import * as os from 'node:os';
import * as path from 'node:path';

import { RedppError, invalidOption } from '../errors';
import type { Center } from '../kernels/hash';
import { boolean, finiteNumber, inputShapes, integer, layerPatterns, oneOf, userOptions } from './check';
import { CENTERS, HASH_DEFAULTS } from './hash';
import { MERGE_DEFAULTS, type ResolvedMergeOptions } from './merge';
import { resolveValidateOptions, type ResolvedValidateOptions } from './validate';

export type KernelSplitMode = 'auto' | 'off' | 'force';
const KERNEL_SPLIT_MODES: readonly KernelSplitMode[] = ['auto', 'off', 'force'];

/** The codecs a layer may be stored with (lib/passes/codecs/settings.ts). */
export type CodecName = 'dense' | 'float16' | 'linear' | 'hash';
export const CODEC_NAMES: readonly CodecName[] = ['dense', 'float16', 'linear', 'hash'];

/**
 * The default budget: the largest deviation at which every bench model (PP-OCRv4 det, rec, cls) still
 * passes its task check (README, "The fidelity budget").
 */
export const DEFAULT_MAX_DEVIATION = 0.02;

export interface PruneOptions {
  /**
   * The largest deviation of the outputs from the original's allowed (per output, the relative L2
   * distance over the probes, at the logits; root mean square over outputs). Default DEFAULT_MAX_DEVIATION (0.02).
   */
  maxDeviation?: number;
  /** Instead of maxDeviation: the largest file, as a fraction of the input's, with the outputs as close as that allows. */
  targetSize?: number;
  /** The codecs the budget may choose from. Default: all (dense, float16, linear, hash). */
  codecs?: CodecName[];
  /** A folder of a few unlabeled inputs (.npy, .raw float32, .png) the budget measures on instead of its synthetic probes. */
  samples?: string;
  /** RED++: hash every layer at this bandwidth factor (see HashOptions.beta) instead of the budget. */
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
  /** Layers whose neurons have fewer weights than this are left as they are (default 200 with beta, else 0). */
  minFanIn?: number;
  /** Layer (node) names or patterns to leave alone. */
  skip?: (string | RegExp)[];
  /** RED++: a beta per layer name, overriding beta and minFanIn for that layer (0 leaves it alone). */
  layerBeta?: Record<string, number>;
  /** Concrete shapes for inputs with symbolic dims, e.g. { x: [1, 3, 640, 640] }; used for MACs, probes and validation. */
  inputShapes?: Record<string, number[]>;
  /** Run the original and the pruned model in onnxruntime-node and compare outputs and latency. */
  validate?: boolean;
  /**
   * Store each layer in its codec's form, rebuilt in the graph by ops that onnxruntime folds at session
   * creation (default true): a smaller file, the same outputs bit for bit. false writes dense tensors of
   * the coded values.
   */
  pack?: boolean;
  /**
   * Also report the transfer size, before and after: the files brotli-compressed at quality 5, as a CDN
   * serves them (default false). It costs more than the rest of a `beta` prune: brotli reads about
   * 90 MB/s a core, and VGG-16's 553 MB then took over half of all the CPU time of its prune.
   */
  transferSize?: boolean;
  /** Write the pruned model here (atomically); the report then has its size. */
  output?: string;
  /** Write the report as a self-contained HTML page here (atomically, with the model). */
  report?: string;
  /** Called as work progresses (for progress bars). */
  onProgress?: (event: PruneProgress) => void;
  /**
   * Stops the prune when aborted: it rejects with RedppError CANCELLED (TIMED_OUT for
   * AbortSignal.timeout()) once the layer tasks running have finished, and writes nothing.
   */
  signal?: AbortSignal;
}

export interface PruneProgress {
  phase: 'load' | 'fold' | 'budget' | 'hash' | 'merge' | 'kernel-split' | 'pack' | 'save' | 'validate';
  done: number;
  total: number;
  detail?: string;
}

/** How the layers' codecs are chosen. */
export type Selection = { mode: 'budget'; maxDeviation?: number; targetSize?: number } | { mode: 'hash'; beta: number };

export interface ResolvedPruneOptions {
  selection: Selection;
  codecs: CodecName[];
  samples: string | undefined;
  center: Center;
  epsilon: number;
  kernelSplit: KernelSplitMode;
  threads: number;
  minFanIn: number;
  skip: (string | RegExp)[];
  layerBeta: Record<string, number>;
  inputShapes: Record<string, number[]>;
  validate: boolean;
  pack: boolean;
  transferSize: boolean;
  output: string | undefined;
  report: string | undefined;
  onProgress: ((event: PruneProgress) => void) | undefined;
  signal: AbortSignal | undefined;
}

export const PRUNE_DEFAULTS = Object.freeze({
  maxDeviation: DEFAULT_MAX_DEVIATION,
  codecs: CODEC_NAMES,
  beta: HASH_DEFAULTS.beta,
  center: HASH_DEFAULTS.center,
  epsilon: 0,
  kernelSplit: 'auto' as KernelSplitMode,
  threads: os.availableParallelism(),
  minFanIn: { hash: 200, budget: 0 },
  skip: [] as (string | RegExp)[],
  layerBeta: {} as Record<string, number>,
  inputShapes: {} as Record<string, number[]>,
  validate: false,
  pack: true,
  transferSize: false,
});

/** The option names prune() knows (the service takes a subset of them from its clients). */
export const PRUNE_OPTION_NAMES: readonly string[] = [
  'maxDeviation',
  'targetSize',
  'codecs',
  'samples',
  'beta',
  'center',
  'epsilon',
  'kernelSplit',
  'threads',
  'minFanIn',
  'skip',
  'layerBeta',
  'inputShapes',
  'validate',
  'pack',
  'transferSize',
  'output',
  'report',
  'onProgress',
  'signal',
];

export function resolvePruneOptions(options?: PruneOptions): ResolvedPruneOptions {
  const o = userOptions(options, PRUNE_OPTION_NAMES);
  const hashing = o.beta !== undefined || o.layerBeta !== undefined;
  if (hashing && (o.maxDeviation !== undefined || o.targetSize !== undefined)) {
    const fixed = o.beta !== undefined ? 'options.beta hashes' : 'options.layerBeta hashes';
    const budget = o.maxDeviation !== undefined ? 'options.maxDeviation' : 'options.targetSize';
    throw new RedppError('INVALID_OPTION', `${fixed} every layer at a fixed bandwidth (RED++), ${budget} lets the budget choose: give one or the other`);
  }
  if (o.maxDeviation !== undefined && o.targetSize !== undefined) {
    throw new RedppError('INVALID_OPTION', 'options.maxDeviation and options.targetSize are two budgets: give one');
  }
  let selection: Selection;
  if (hashing) selection = { mode: 'hash', beta: finiteNumber('options.beta', o.beta ?? PRUNE_DEFAULTS.beta, { min: 0 }) };
  else if (o.targetSize !== undefined) {
    if (typeof o.targetSize !== 'number' || !(o.targetSize > 0 && o.targetSize <= 1)) throw invalidOption('options.targetSize', 'a fraction in (0, 1]', o.targetSize);
    selection = { mode: 'budget', targetSize: o.targetSize };
  } else {
    const d = o.maxDeviation ?? PRUNE_DEFAULTS.maxDeviation;
    if (typeof d !== 'number' || !(d >= 0 && d <= 10)) throw invalidOption('options.maxDeviation', 'a number in [0, 10]', d);
    selection = { mode: 'budget', maxDeviation: d };
  }
  const codecs = o.codecs ?? [...PRUNE_DEFAULTS.codecs];
  if (!Array.isArray(codecs) || codecs.length === 0 || !codecs.every((c) => CODEC_NAMES.includes(c))) {
    throw invalidOption('options.codecs', `a list of ${CODEC_NAMES.join(', ')}`, codecs);
  }
  if (o.samples !== undefined && (typeof o.samples !== 'string' || o.samples === '')) throw invalidOption('options.samples', 'a folder path', o.samples);
  if (o.samples !== undefined && hashing) throw new RedppError('INVALID_OPTION', 'options.samples are for the budget: they do nothing with options.beta');
  const layerBeta = o.layerBeta ?? {};
  if (layerBeta === null || typeof layerBeta !== 'object' || Array.isArray(layerBeta)) throw invalidOption('options.layerBeta', 'an object of layer names to betas', layerBeta);
  for (const [name, b] of Object.entries(layerBeta)) finiteNumber(`options.layerBeta['${name}']`, b, { min: 0 });
  const r: ResolvedPruneOptions = {
    selection,
    codecs: [...new Set(codecs)],
    samples: o.samples,
    center: oneOf('options.center', CENTERS, o.center ?? PRUNE_DEFAULTS.center),
    epsilon: finiteNumber('options.epsilon', o.epsilon ?? PRUNE_DEFAULTS.epsilon, { min: 0, below: 1 }),
    kernelSplit: oneOf('options.kernelSplit', KERNEL_SPLIT_MODES, o.kernelSplit ?? PRUNE_DEFAULTS.kernelSplit),
    threads: integer('options.threads', o.threads ?? PRUNE_DEFAULTS.threads, 1, 1024),
    minFanIn: integer('options.minFanIn', o.minFanIn ?? PRUNE_DEFAULTS.minFanIn[selection.mode], 0),
    skip: layerPatterns('options.skip', o.skip ?? PRUNE_DEFAULTS.skip),
    layerBeta: { ...layerBeta },
    inputShapes: inputShapes('options.inputShapes', o.inputShapes ?? PRUNE_DEFAULTS.inputShapes),
    validate: boolean('options.validate', o.validate ?? PRUNE_DEFAULTS.validate),
    pack: boolean('options.pack', o.pack ?? PRUNE_DEFAULTS.pack),
    transferSize: boolean('options.transferSize', o.transferSize ?? PRUNE_DEFAULTS.transferSize),
    output: o.output,
    report: o.report,
    onProgress: o.onProgress,
    signal: o.signal,
  };
  if (r.output !== undefined && (typeof r.output !== 'string' || r.output === '')) throw invalidOption('options.output', 'a file path', r.output);
  if (r.report !== undefined && (typeof r.report !== 'string' || r.report === '')) throw invalidOption('options.report', 'a file path', r.report);
  if (r.report !== undefined && r.output !== undefined && path.resolve(r.report) === path.resolve(r.output)) {
    throw new RedppError('INVALID_OPTION', 'options.report and options.output name the same file');
  }
  if (r.onProgress !== undefined && typeof r.onProgress !== 'function') throw invalidOption('options.onProgress', 'a function', r.onProgress);
  if (r.signal !== undefined && !(r.signal instanceof AbortSignal)) throw invalidOption('options.signal', 'an AbortSignal', r.signal);
  return r;
}

/** The hash pass's options (RED++ at one beta). */
export interface HashPassOptions {
  beta: number;
  center: Center;
  minFanIn: number;
  skip: readonly (string | RegExp)[];
  layerBeta: Readonly<Record<string, number>>;
}

export interface ResolvedKernelSplitOptions {
  mode: KernelSplitMode;
  /** Concrete input shapes, for the layers' spatial sizes. */
  inputShapes: Record<string, number[]>;
  /** Time each rewritten layer alone (before and after) in onnxruntime-node; runs per form (0: do not). */
  measureRuns: number;
}

/** What every step of prune() runs with, once the model's concrete input shapes are known. */
export interface PipelineOptions {
  /** Undefined when the budget chooses. */
  hash: HashPassOptions | undefined;
  merge: ResolvedMergeOptions;
  kernelSplit: ResolvedKernelSplitOptions;
  pack: boolean;
  /** Undefined when validation is off. */
  validate: ResolvedValidateOptions | undefined;
}

export function pipelineOptions(r: ResolvedPruneOptions, concreteShapes: Record<string, number[]>): PipelineOptions {
  const { center, minFanIn, skip, layerBeta } = r;
  return {
    hash: r.selection.mode === 'hash' ? { beta: r.selection.beta, center, minFanIn, skip, layerBeta } : undefined,
    merge: { ...MERGE_DEFAULTS, epsilon: r.epsilon, inputShapes: concreteShapes },
    // Layers it rewrites are timed alone before and after (always under 'auto', where splits are rare).
    kernelSplit: { mode: r.kernelSplit, inputShapes: concreteShapes, measureRuns: r.kernelSplit === 'auto' || r.validate ? 30 : 0 },
    pack: r.pack,
    validate: r.validate ? resolveValidateOptions({ inputShapes: concreteShapes, runs: 10 }) : undefined,
  };
}
