/** Options of output merging (mergeOutputs, mergePass). */
import { invalidOption } from '../errors';
import { boolean, finiteNumber, integer, userOptions } from './check';

export interface MergeOptions {
  /**
   * Relative L2 distance under which two neurons merge (lossy), in [0, 1). 0 (the default) merges
   * only exact duplicates.
   */
  epsilon?: number;
  /** Delete channels that are exactly zero wherever they are read (exact). Default true. */
  dead?: boolean;
  /** With epsilon > 0: how many cluster leaders one neuron is compared with, at most. Default 64. */
  candidates?: number;
  /** Shapes of graph inputs for the analysis, overriding the declared ones (numbers, or names of symbolic dims). */
  inputShapes?: Record<string, readonly (number | string)[]>;
}

export type ResolvedMergeOptions = Required<MergeOptions>;

export const MERGE_DEFAULTS: ResolvedMergeOptions = Object.freeze({ epsilon: 0, dead: true, candidates: 64, inputShapes: {} });

export function resolveMergeOptions(options?: MergeOptions): ResolvedMergeOptions {
  const o = { ...MERGE_DEFAULTS, ...userOptions(options, Object.keys(MERGE_DEFAULTS)) };
  finiteNumber('options.epsilon', o.epsilon, { min: 0, below: 1 });
  boolean('options.dead', o.dead);
  integer('options.candidates', o.candidates, 1);
  if (o.inputShapes === null || typeof o.inputShapes !== 'object') throw invalidOption('options.inputShapes', 'an object of shapes', o.inputShapes);
  return o;
}
