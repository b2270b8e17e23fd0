export { runPasses, isPass, newReport, type Pass, type PassReport, type PassChange, type PassSkip } from './pass';
export { LayerPlan, type LayerRecord, type HashRecord, type MergeRecord, type KernelSplitRecord, type PackRecord, type InputSplitCounts, type OpCounts } from './layer-records';
export { foldBatchNorm } from './fold-batch-norm';
export { foldWeightTransforms } from './fold-weight-transforms';
export { addConstant, exclusiveConstant, removeIfUnused, isConstantNodeValue } from './constant-tensors';

import { foldBatchNorm } from './fold-batch-norm';
import { foldWeightTransforms } from './fold-weight-transforms';
import type { Pass } from './pass';

/** The exact folding passes, in the order they should run. */
export const FOLD_PASSES: readonly Pass[] = [foldWeightTransforms, foldBatchNorm];
export { hashPass, type HashProgress } from './hash';
export { mergeOutputs, mergePass, type MergeOptions, type MergeReport, type MergePassReport } from './merge';
export { analyzeChannels, registerChannelRule, type ChannelAnalysis, type ChannelGroup, type ChannelRule } from './channels';
export { inputSplitCounts, inputSplitCountsOf } from './input-splitting';
export { kernelSplitPass, kernelSharing, bestPlan, DEFAULT_COST_MODEL, type KernelSharing, type SplitCostModel } from './kernel-split';
export { packPass, PACK_MARK, type PackOptions } from './codecs/pack';
export { unpackModel } from './codecs/read';
export { inProcess, type TaskRunner, type HashTask, type HashTaskResult, type CodeTask, type CodeTaskResult } from './tasks';
