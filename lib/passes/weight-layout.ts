/**
 * Where the output neurons of a weighted layer sit in its weight tensor. Hashing, merging and
 * splitting all work on rows (one row = one output neuron's fan-in); this module is the one place
 * that knows each op's weight layout and moves between it and rows.
 */
import { dataTypeName } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Tensor } from '../model/tensor';

/** Ops whose constant weight input has output neurons. */
export const WEIGHTED_OPS = ['Conv', 'ConvTranspose', 'Gemm', 'MatMul'] as const;

export interface NeuronLayout {
  node: Node;
  /** The weight value name and tensor. */
  value: string;
  tensor: Tensor;
  /** Output neurons (rows) and the weights per neuron. */
  neurons: number;
  fanIn: number;
  /** Whether the tensor's own layout is already rows (toRows is then a plain copy). */
  contiguous: boolean;
  /**
   * The tensor seen as `dims` (its own element order, reshaped): an element's neuron is its row-major
   * index over `neuronAxes`, its place in the neuron's row the row-major index over the other axes.
   */
  grid: NeuronGrid;
  /** Row-major rows gathered from the tensor's own layout (a new array). */
  toRows(data: Float32Array): Float32Array;
  /** The inverse of toRows (a new array in the tensor's layout). */
  fromRows(rows: Float32Array): Float32Array;
}

export interface NeuronGrid {
  dims: number[];
  neuronAxes: number[];
}

export type LayoutResult = NeuronLayout | { node: Node; skip: string };

/** Which layer a pass's per-layer report is about. */
export interface LayerIdentity {
  node: string;
  op: string;
  weight: string;
  dtype: string;
  neurons: number;
  fanIn: number;
}

export function layerIdentity(layout: NeuronLayout): LayerIdentity {
  return {
    node: layout.node.label,
    op: layout.node.opType,
    weight: layout.value,
    dtype: dataTypeName(layout.tensor.dataType),
    neurons: layout.neurons,
    fanIn: layout.fanIn,
  };
}

export function isWeighted(node: Node): boolean {
  return node.domain === '' && (WEIGHTED_OPS as readonly string[]).includes(node.opType);
}

/** The neuron layout of a weighted node's constant weights, or why there is none. */
export function neuronLayout(graph: Graph, node: Node): LayoutResult {
  const value = node.input(1);
  const tensor = graph.constant(value);
  if (!tensor) {
    const from = graph.producer(value)?.opType;
    return {
      node,
      skip: from === 'DequantizeLinear' ? 'quantized (int8) weights are left as they are' : 'weights are not a constant',
    };
  }
  const dims = tensor.dims;
  const size = tensor.size;
  switch (node.opType) {
    case 'Conv': {
      if (dims.length < 3) return { node, skip: `Conv weight of rank ${dims.length}` };
      return contiguous(node, value, tensor, dims[0], size / dims[0]);
    }
    case 'ConvTranspose': {
      // [C_in, C_out / group, k...] seen as [group, C_in / group, C_out / group, k]: output channel
      // (g, o) reads W[g * C_in/group + i, o, k] for every i.
      if (dims.length < 3) return { node, skip: `ConvTranspose weight of rank ${dims.length}` };
      const group = node.attrInt('group', 1);
      const inPerGroup = dims[0] / group;
      const k = size / (dims[0] * dims[1]);
      return permuted(node, value, tensor, { dims: [group, inPerGroup, dims[1], k], neuronAxes: [0, 2] });
    }
    case 'Gemm':
    case 'MatMul': {
      if (node.opType === 'MatMul' && graph.constant(node.input(0))) return { node, skip: 'constant left operand' };
      if (dims.length !== 2) return { node, skip: `${node.opType} weight of rank ${dims.length}` };
      const transposed = node.opType === 'Gemm' && node.attrInt('transB', 0) === 1;
      if (transposed) return contiguous(node, value, tensor, dims[0], dims[1]);
      return permuted(node, value, tensor, { dims: [...dims], neuronAxes: [1] });
    }
    default:
      return { node, skip: `${node.opType} has no weight layout` };
  }
}

function contiguous(node: Node, value: string, tensor: Tensor, neurons: number, fanIn: number): NeuronLayout {
  const grid = { dims: [...tensor.dims], neuronAxes: [0] };
  return { node, value, tensor, neurons, fanIn, contiguous: true, grid, toRows: (d) => Float32Array.from(d), fromRows: (r) => r };
}

function permuted(node: Node, value: string, tensor: Tensor, grid: NeuronGrid): NeuronLayout {
  const { neuronAt, placeAt } = elementOffsets(grid);
  const neurons = neuronAt.length;
  const fanIn = placeAt.length;
  return {
    node,
    value,
    tensor,
    neurons,
    fanIn,
    contiguous: false,
    grid,
    toRows(d) {
      const rows = new Float32Array(d.length);
      for (let n = 0, j = 0; n < neurons; n++) for (let c = 0; c < fanIn; c++, j++) rows[j] = d[neuronAt[n] + placeAt[c]];
      return rows;
    },
    fromRows(rows) {
      const d = new Float32Array(rows.length);
      for (let n = 0, j = 0; n < neurons; n++) for (let c = 0; c < fanIn; c++, j++) d[neuronAt[n] + placeAt[c]] = rows[j];
      return d;
    },
  };
}

/**
 * Where a grid's rows lie in the tensor: row n, place c is element `neuronAt[n] + placeAt[c]`.
 * Two small arrays (neurons, fan-in) rather than one index per weight.
 */
export function elementOffsets(grid: NeuronGrid): { neuronAt: Uint32Array; placeAt: Uint32Array } {
  const { dims, neuronAxes } = grid;
  const strides = dims.map((_, a) => dims.slice(a + 1).reduce((x, y) => x * y, 1));
  const offsets = (axes: number[]) => {
    let out = [0];
    for (const a of axes) out = out.flatMap((o) => Array.from({ length: dims[a] }, (_, i) => o + i * strides[a]));
    return Uint32Array.from(out);
  };
  return { neuronAt: offsets(neuronAxes), placeAt: offsets(dims.map((_, a) => a).filter((a) => !neuronAxes.includes(a))) };
}
