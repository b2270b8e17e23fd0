export { runPasses, isPass, newReport, type Pass, type PassReport, type PassChange, type PassSkip } from './pass';
export { foldBatchNorm } from './fold-batch-norm';
export { foldWeightTransforms } from './fold-weight-transforms';
export { addConstant, exclusiveConstant, removeIfUnused, isConstantNodeValue } from './constants';

import { foldBatchNorm } from './fold-batch-norm';
import { foldWeightTransforms } from './fold-weight-transforms';
import type { Pass } from './pass';

/** The exact folding passes, in the order they should run. */
export const FOLD_PASSES: readonly Pass[] = [foldWeightTransforms, foldBatchNorm];
export { hashPass, type HashPassOptions, type HashedLayer, type HashPassReport } from './hash';
export { mergeOutputs, mergePass, type MergeOptions, type MergeReport, type MergePassReport } from './merge';
export { analyzeChannels, registerChannelRule, type ChannelAnalysis, type ChannelGroup, type ChannelRule } from './channels';
export { splitCounts, splitCountsOf, type SplitCounts } from './splitting';
export { splitPass, kernelSharing, bestPlan, type SplitPassOptions, type SplitPassReport, type SplitLayer, type KernelSharing, type SplitCostModel } from './split';
export { packPass, unpackModel, PACK_MARK, type PackOptions, type PackedLayer, type PackPassReport } from './pack';
