/**
 * Every option of redpp, resolved in one place: user-facing `*Options` (everything optional) and
 * resolved `Resolved*` (everything filled), merged once from the defaults, checked with one set of
 * checks (check.ts) and one error factory.
 */
export { HASH_DEFAULTS, resolveHashOptions, type Device, type HashOptions, type ResolvedHashOptions } from './hash';
export { MERGE_DEFAULTS, resolveMergeOptions, type MergeOptions, type ResolvedMergeOptions } from './merge';
export {
  CODEC_NAMES,
  DEFAULT_MAX_DEVIATION,
  PRUNE_DEFAULTS,
  pipelineOptions,
  resolvePruneOptions,
  PRUNE_OPTION_NAMES,
  type CodecName,
  type HashPassOptions,
  type Selection,
  type KernelSplitMode,
  type PipelineOptions,
  type PruneOptions,
  type PruneProgress,
  type ResolvedKernelSplitOptions,
  type ResolvedPruneOptions,
} from './prune';
export { MAX_PROTOBUF_BYTES, SAVE_DEFAULTS, resolveSaveOptions, type ExternalDataMode, type ResolvedSaveOptions, type SaveOptions } from './save';
export { resolveValidateOptions, type InputTensor, type ProbeDistribution, type ResolvedValidateOptions, type ValidateOptions } from './validate';
