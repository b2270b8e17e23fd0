export { runPasses, isPass, newReport, type Pass, type PassReport, type PassChange, type PassSkip } from './pass';
export { foldBatchNorm } from './fold-batch-norm';
export { foldWeightTransforms } from './fold-weight-transforms';
export { addConstant, exclusiveConstant, removeIfUnused, isConstantNodeValue } from './constants';

import { foldBatchNorm } from './fold-batch-norm';
import { foldWeightTransforms } from './fold-weight-transforms';
import type { Pass } from './pass';

/** The exact folding passes, in the order they should run. */
export const FOLD_PASSES: readonly Pass[] = [foldWeightTransforms, foldBatchNorm];
