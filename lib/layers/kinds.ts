/**
 * Layer kinds: for every op whose constant weight input holds output neurons, how it stores them. This
 * is the one place that knows each op's weight layout; the layer table (table.ts) applies it, and the
 * folds, the statistics, the channel rules, hashing, the kernel split and packing all read the table.
 * registerLayerKind() adds an op (a custom domain's, or one redpp does not know yet).
 */
import { RedppError } from '../errors';
import type { Node } from '../model/graph';
import { OpMap } from '../model/op-map';
import type { NeuronGrid } from './grid';

/** Which axes of the weight tensor index output neurons and input channels. */
export interface WeightAxes {
  /** The axis of output neurons: all of them, or (outputsPerGroup) those of one group. */
  outputs: number;
  /** The axis of input channels: all of them, or (!outputsPerGroup) those of one group. */
  inputs: number;
  /** `group` attribute (1 for ops without one). */
  group: number;
  /** Whether the outputs axis holds one group's neurons (ConvTranspose) rather than all of them (Conv). */
  outputsPerGroup: boolean;
}

export interface LayerKind {
  opType: string;
  /** '' for the default ONNX domain. */
  domain: string;
  /** Input index of the weight tensor. */
  weightInput: number;
  /** Input index of a per-neuron bias, when the op has one (folding may add it). */
  biasInput?: number;
  /** The weight axes for a weight of these dims on this node, or why it is not a layer this kind knows. */
  axes(dims: readonly number[], node: Node): WeightAxes | string;
  /** The weight tensor as a neuron grid (see grid.ts). Called only when axes() succeeded. */
  grid(dims: readonly number[], node: Node): NeuronGrid;
  /**
   * Multiply-accumulates of one run: each output element costs its neuron's fan-in, unless the kind
   * says otherwise. `shapeOf` gives static shapes (null when unknown).
   */
  macs?(node: Node, fanIn: number, shapeOf: (value: string) => number[] | null): number | null;
}

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** Conv: W [C_out, C_in / group, k...]. */
const conv: LayerKind = {
  opType: 'Conv',
  domain: '',
  weightInput: 1,
  biasInput: 2,
  axes(dims, node) {
    if (dims.length < 3) return `Conv weight of rank ${dims.length}`;
    return { outputs: 0, inputs: 1, group: node.attrInt('group', 1)!, outputsPerGroup: false };
  },
  grid: (dims) => ({ dims: [...dims], neuronAxes: [0] }),
};

/**
 * ConvTranspose: W [C_in, C_out / group, k...], seen as [group, C_in / group, C_out / group, k]:
 * output channel (g, o) reads W[g * C_in/group + i, o, k] for every i. Each input element scatters
 * over its kernel, so the MACs count input elements.
 */
const convTranspose: LayerKind = {
  opType: 'ConvTranspose',
  domain: '',
  weightInput: 1,
  biasInput: 2,
  axes(dims, node) {
    if (dims.length < 3) return `ConvTranspose weight of rank ${dims.length}`;
    return { outputs: 1, inputs: 0, group: node.attrInt('group', 1)!, outputsPerGroup: true };
  },
  grid(dims, node) {
    const group = node.attrInt('group', 1)!;
    const k = product(dims) / (dims[0] * dims[1]);
    return { dims: [group, dims[0] / group, dims[1], k], neuronAxes: [0, 2] };
  },
  macs(node, fanIn, shapeOf) {
    const x = shapeOf(node.input(0));
    const out = shapeOf(node.outputs[0]);
    if (!x || !out) return null;
    // Every input element meets (C_out / group) * k kernel weights.
    const group = node.attrInt('group', 1)!;
    const kernel = fanIn / (x[1] / group);
    return product(x) * (out[1] / group) * kernel;
  },
};

/** Gemm: B [K, N], or [N, K] with transB; neurons are the N output columns. */
const gemm: LayerKind = {
  opType: 'Gemm',
  domain: '',
  weightInput: 1,
  biasInput: 2,
  axes(dims, node) {
    if (dims.length !== 2) return `Gemm weight of rank ${dims.length}`;
    const transB = node.attrInt('transB', 0) === 1;
    return { outputs: transB ? 0 : 1, inputs: transB ? 1 : 0, group: 1, outputsPerGroup: false };
  },
  grid: (dims, node) => ({ dims: [...dims], neuronAxes: [node.attrInt('transB', 0) === 1 ? 0 : 1] }),
};

/** MatMul with a constant B [K, N] (no bias input). */
const matmul: LayerKind = {
  opType: 'MatMul',
  domain: '',
  weightInput: 1,
  axes(dims, node) {
    if (node.graph.constant(node.input(0))) return 'constant left operand';
    if (dims.length !== 2) return `MatMul weight of rank ${dims.length}`;
    return { outputs: 1, inputs: 0, group: 1, outputsPerGroup: false };
  },
  grid: (dims) => ({ dims: [...dims], neuronAxes: [1] }),
};

const kinds = new OpMap<LayerKind>();

/**
 * Registers (or replaces) the kind of an op with weights. Returns a function that restores the previous
 * one. A new kind is hashed, counted and packed like the built-in ones; merging also needs a channel
 * rule for the op (registerChannelRule), without which its channels are left alone.
 */
export function registerLayerKind(kind: LayerKind): () => void {
  if (kind === null || typeof kind !== 'object' || typeof kind.opType !== 'string' || kind.opType === '') {
    throw new RedppError('INVALID_ARGUMENT', 'registerLayerKind: kind.opType must be a non-empty string');
  }
  for (const f of ['axes', 'grid'] as const) {
    if (typeof kind[f] !== 'function') throw new RedppError('INVALID_ARGUMENT', `registerLayerKind: kind.${f} of '${kind.opType}' must be a function`);
  }
  if (!Number.isSafeInteger(kind.weightInput) || kind.weightInput < 0) {
    throw new RedppError('INVALID_ARGUMENT', `registerLayerKind: kind.weightInput of '${kind.opType}' must be an input index`);
  }
  return kinds.set(kind.domain ?? '', kind.opType, { ...kind, domain: kind.domain ?? '' });
}

/** The kind of a node's op, or undefined when it has no weights redpp knows. */
export function layerKind(node: Node): LayerKind | undefined {
  return kinds.get(node.domain, node.opType);
}

for (const k of [conv, convTranspose, gemm, matmul]) registerLayerKind(k);
