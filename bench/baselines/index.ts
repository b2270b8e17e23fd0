/**
 * Data-free baselines that the benchmarks run beside redpp, at the same MAC budget, on the channel
 * groups of lib/passes/channels (or the same params): one file per method, the shared budget and edit in plan.ts.
 */
import { l1NormPruning } from './l1-norm';
import { similarityMerging } from './similarity-merge';
import type { BaselineMethod } from './plan';

export { l1NormPruning, l1Norms } from './l1-norm';
export { similarityMerging, mergeOrder } from './similarity-merge';
export {
  planBaseline,
  applyBaseline,
  pruneToMacs,
  pruneToParams,
  pruneToBudget,
  schedule,
  estimateMacsRemoved,
  estimateParamsRemoved,
  type BudgetMeasure,
  type BaselineMethod,
  type BaselinePlan,
  type BaselineResult,
  type Removal,
} from './plan';

export const BASELINES: readonly BaselineMethod[] = [l1NormPruning, similarityMerging];
