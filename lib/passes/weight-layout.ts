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
  /** Row-major rows gathered from the tensor's own layout (a new array). */
  toRows(data: Float32Array): Float32Array;
  /** The inverse of toRows (a new array in the tensor's layout). */
  fromRows(rows: Float32Array): Float32Array;
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
      // [C_in, C_out / group, k...]: output channel (g, o) reads W[g * C_in/group + i, o, k] for every i.
      if (dims.length < 3) return { node, skip: `ConvTranspose weight of rank ${dims.length}` };
      const group = node.attrInt('group', 1);
      const inPerGroup = dims[0] / group;
      const outPerGroup = dims[1];
      const k = size / (dims[0] * dims[1]);
      return permuted(node, value, tensor, group * outPerGroup, inPerGroup * k, (row, col) => {
        const g = Math.floor(row / outPerGroup);
        const o = row % outPerGroup;
        const i = Math.floor(col / k);
        return ((g * inPerGroup + i) * outPerGroup + o) * k + (col % k);
      });
    }
    case 'Gemm':
    case 'MatMul': {
      if (node.opType === 'MatMul' && graph.constant(node.input(0))) return { node, skip: 'constant left operand' };
      if (dims.length !== 2) return { node, skip: `${node.opType} weight of rank ${dims.length}` };
      const transposed = node.opType === 'Gemm' && node.attrInt('transB', 0) === 1;
      if (transposed) return contiguous(node, value, tensor, dims[0], dims[1]);
      const [k, n] = dims;
      return permuted(node, value, tensor, n, k, (row, col) => col * n + row);
    }
    default:
      return { node, skip: `${node.opType} has no weight layout` };
  }
}

function contiguous(node: Node, value: string, tensor: Tensor, neurons: number, fanIn: number): NeuronLayout {
  return { node, value, tensor, neurons, fanIn, contiguous: true, toRows: (d) => Float32Array.from(d), fromRows: (r) => r };
}

function permuted(
  node: Node,
  value: string,
  tensor: Tensor,
  neurons: number,
  fanIn: number,
  indexOf: (row: number, col: number) => number,
): NeuronLayout {
  return {
    node,
    value,
    tensor,
    neurons,
    fanIn,
    contiguous: false,
    toRows(d) {
      const rows = new Float32Array(d.length);
      for (let r = 0, j = 0; r < neurons; r++) for (let c = 0; c < fanIn; c++, j++) rows[j] = d[indexOf(r, c)];
      return rows;
    },
    fromRows(rows) {
      const d = new Float32Array(rows.length);
      for (let r = 0, j = 0; r < neurons; r++) for (let c = 0; c < fanIn; c++, j++) d[indexOf(r, c)] = rows[j];
      return d;
    },
  };
}
