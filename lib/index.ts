export { hashWeights, hashCapabilities, type HashResult, type HashBackend } from './hash';
export { hashWeightsReference } from './kernels/hash';
export { HASH_DEFAULTS, type HashOptions, type Device } from './options';
export { registerLayerKind, layerTable, type Layer, type LayerKind, type WeightAxes, type NeuronGrid } from './layers';
export { RedppError, type RedppErrorCode } from './errors';
export { loadModel, decodeModel } from './load';
export {
  saveModel,
  encodeModel,
  inferShapes,
  Model,
  Graph,
  Node,
  Tensor,
  DataType,
  type LoadOptions,
  type SaveResult,
  type Dim,
  type ShapeInference,
  type TensorData,
} from './model';
export {
  foldBatchNorm,
  foldWeightTransforms,
  runPasses,
  FOLD_PASSES,
  mergeOutputs,
  mergePass,
  packPass,
  unpackModel,
  analyzeChannels,
  registerChannelRule,
  LayerPlan,
  type Pass,
  type PassReport,
  type LayerRecord,
  type MergeOptions,
  type MergeReport,
  type PackOptions,
  type ChannelAnalysis,
  type ChannelGroup,
  type ChannelRule,
} from './passes';
export { GraphBuilder } from './model/builder';
export {
  validate,
  type ValidateOptions,
  type ValidationReport,
  type OutputComparison,
  type ModelSource,
  type InputTensor,
  type LatencyStats,
} from './validate';
export { prune, type PruneCallOptions, type PruneResult, type PruneReport } from './prune';
export { WorkerPool, PoolTasks } from './pool';
export { PRUNE_DEFAULTS, type PruneOptions, type PruneProgress, type SaveOptions } from './options';
export { toJsonReport, summaryTable, type JsonReport } from './report';
