/**
 * What a model costs: parameters and multiply-accumulates, per weighted layer and in total, at concrete
 * input shapes. prune() measures the model before and after with the same shapes so the two compare.
 */
import { isFloatType } from './model/dtype';
import type { Graph, Node } from './model/graph';
import type { Model } from './model/model';
import { inferShapes, type Dim } from './model/shapes';
import { isWeighted, neuronLayout } from './passes/weight-layout';
import { probeShape } from './validate/probes';

export interface LayerStats {
  node: string;
  op: string;
  neurons: number;
  fanIn: number;
  /** Elements of the weight and bias tensors. */
  params: number;
  /** Multiply-accumulates for one run at the stats' input shapes; null when a shape is unknown. */
  macs: number | null;
}

export interface ModelStats {
  /** Elements of every float constant (weights, biases, scales) in the graph. */
  params: number;
  /** Sum of the layers' MACs; null when any is unknown. */
  macs: number | null;
  layers: LayerStats[];
  /** The concrete input shapes used. */
  inputShapes: Record<string, number[]>;
}

/**
 * Concrete input shapes: the user's for the inputs they name, otherwise the declared shapes with each
 * symbolic dim set by the image conventions of probeShape (batch 1, 3 channels, 224 elsewhere).
 */
export function concreteInputShapes(graph: Graph, given: Record<string, readonly number[]>): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const input of graph.runtimeInputs) {
    const dims = input.type?.tensor_type?.shape?.dim ?? [];
    const declared = dims.map((d) => (d.value === 'dim_value' ? Number(d.dim_value) : d.dim_param || '?'));
    out[input.name] = probeShape({ name: input.name, type: 'float32', shape: declared }, given, {});
  }
  return out;
}

export function modelStats(model: Model, inputShapes: Record<string, number[]>): ModelStats {
  const graph = model.graph;
  const shapes = inferShapes(graph, inputShapes as Record<string, Dim[]>);
  const shapeOf = (v: string): number[] | null => {
    const s = shapes.types.get(v)?.shape;
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : null;
  };
  const layers: LayerStats[] = [];
  for (const node of graph.nodes) {
    if (!isWeighted(node)) continue;
    const layout = neuronLayout(graph, node);
    if ('skip' in layout) continue;
    const bias = node.opType === 'MatMul' ? undefined : graph.constant(node.input(2));
    layers.push({
      node: node.label,
      op: node.opType,
      neurons: layout.neurons,
      fanIn: layout.fanIn,
      params: layout.tensor.size + (bias?.size ?? 0),
      macs: layerMacs(node, layout.fanIn, shapeOf),
    });
  }
  let params = 0;
  for (const t of floatConstants(graph)) params += t;
  const macs = layers.every((l) => l.macs !== null) ? layers.reduce((a, l) => a + l.macs!, 0) : null;
  return { params, macs, layers, inputShapes };
}

const product = (dims: readonly number[]) => dims.reduce((a, b) => a * b, 1);

/** MACs of one weighted node: each output element costs its neuron's fan-in (ConvTranspose: each input element scatters over its kernel). */
function layerMacs(node: Node, fanIn: number, shapeOf: (v: string) => number[] | null): number | null {
  if (node.opType === 'ConvTranspose') {
    const x = shapeOf(node.input(0));
    const out = shapeOf(node.outputs[0]);
    if (!x || !out) return null;
    // Every input element meets (C_out / group) * k kernel weights.
    const group = node.attrInt('group', 1);
    const kernel = fanIn / (x[1] / group);
    return product(x) * (out[1] / group) * kernel;
  }
  const out = shapeOf(node.outputs[0]);
  return out ? product(out) * fanIn : null;
}

function* floatConstants(graph: Graph): Generator<number> {
  for (const t of graph.initializers.values()) if (isFloatType(t.dataType)) yield t.size;
  for (const n of graph.nodes) {
    if (n.opType !== 'Constant' || n.domain !== '') continue;
    const t = graph.constant(n.outputs[0]);
    if (t && isFloatType(t.dataType)) yield t.size;
  }
}
