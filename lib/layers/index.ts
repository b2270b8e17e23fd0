/** The layer table: which nodes are layers with weights, and how each op stores its neurons. */
export { registerLayerKind, layerKind, type LayerKind, type WeightAxes } from './kinds';
export { Layer, layerTable, layerOf, constantDims, WEIGHT_TRANSFORMS, type NeuronLayout, type LayerShape } from './table';
export { elementOffsets, fromRows, gridSize, isRowMajor, scaleNeurons, toRows, type NeuronGrid } from './grid';
