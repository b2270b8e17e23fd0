/**
 * What a model costs: parameters and multiply-accumulates, per layer and in total, at concrete input
 * shapes. prune() measures the model before and after with the same shapes so the two compare.
 */
import { constantDims, layerTable, type Layer } from './layers';
import { isFloatType } from './model/dtype';
import type { Graph } from './model/graph';
import type { Model } from './model/model';
import { sharedShapes, type Dim, type ShapeInference } from './model/shapes';
import { elementCount } from './model/tensor';

/** One layer's size and arithmetic. */
export interface LayerCost {
  neurons: number;
  fanIn: number;
  /** Elements of the weight and bias tensors. */
  params: number;
  /** Multiply-accumulates for one run at the input shapes; null when a shape is unknown. */
  macs: number | null;
}

export interface LayerStats extends LayerCost {
  node: string;
  op: string;
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

/** Static shapes at `inputShapes`, and a reader of the fully known ones. */
export function staticShapes(graph: Graph, inputShapes: Record<string, number[]>): { shapes: ShapeInference; shapeOf: (v: string) => number[] | null } {
  const shapes = sharedShapes(graph, inputShapes as Record<string, Dim[]>);
  const shapeOf = (v: string): number[] | null => {
    const s = shapes.types.get(v)?.shape;
    return s && s.every((d) => typeof d === 'number') ? (s as number[]) : null;
  };
  return { shapes, shapeOf };
}

/**
 * A layer's cost, from its weights as they are (or, before folding, as the weight transforms in front of
 * them will make them); undefined when the node has no constant weights.
 */
export function layerCost(layer: Layer, shapes: ShapeInference, shapeOf: (v: string) => number[] | null): LayerCost | undefined {
  const shape = layer.staticShape(shapes);
  if ('skip' in shape) return undefined;
  const bias = constantDims(layer.graph, layer.biasValue, shapes);
  const { node, kind } = layer;
  let macs: number | null;
  if (kind.macs) macs = kind.macs(node, shape.fanIn, shapeOf);
  else {
    const out = shapeOf(node.outputs[0]);
    macs = out ? elementCount(out) * shape.fanIn : null;
  }
  return { neurons: shape.neurons, fanIn: shape.fanIn, params: elementCount(shape.dims) + (bias ? elementCount(bias) : 0), macs };
}

export function modelStats(model: Model, inputShapes: Record<string, number[]>): ModelStats {
  const graph = model.graph;
  const { shapes, shapeOf } = staticShapes(graph, inputShapes);
  const layers: LayerStats[] = [];
  for (const layer of layerTable(graph)) {
    const cost = layerCost(layer, shapes, shapeOf);
    if (cost) layers.push({ node: layer.name, op: layer.node.opType, ...cost });
  }
  const macs = layers.every((l) => l.macs !== null) ? layers.reduce((a, l) => a + l.macs!, 0) : null;
  return { params: floatParams(graph), macs, layers, inputShapes };
}

/** Elements of every float constant: initializers and Constant nodes. */
export function floatParams(graph: Graph): number {
  let params = 0;
  for (const t of graph.initializers.values()) if (isFloatType(t.dataType)) params += t.size;
  for (const n of graph.nodes) {
    if (n.opType !== 'Constant' || n.domain !== '') continue;
    const t = graph.constant(n.outputs[0]);
    if (t && isFloatType(t.dataType)) params += t.size;
  }
  return params;
}
