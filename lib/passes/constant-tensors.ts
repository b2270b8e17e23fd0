/**
 * Helpers for passes that rewrite constant tensors (weights, biases) in place of the graph.
 *
 * A new constant keeps the model's own style: where the weights it derives from are Constant nodes (as
 * in paddle2onnx exports), it becomes a Constant node placed before its reader; otherwise an initializer.
 */
import type { TensorData } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import { Tensor } from '../model/tensor';

/** Whether `value` is the output of a Constant node (rather than an initializer). */
export function isConstantNodeValue(graph: Graph, value: string): boolean {
  const p = graph.producer(value);
  return p !== undefined && p.opType === 'Constant' && p.domain === '';
}

/**
 * Adds a constant named after `base` (made unique unless `exactName`), readable by `reader`: a Constant
 * node before `reader` where `asNode` (the style of the value it derives from: isConstantNodeValue()),
 * else an initializer. Returns its name.
 */
export function addConstant(
  graph: Graph,
  base: string,
  dataType: number,
  dims: readonly number[],
  data: TensorData,
  reader: Node,
  asNode: boolean,
  exactName = false,
): string {
  const name = exactName ? base : graph.uniqueName(base);
  const tensor = Tensor.create(name, dataType, dims, data);
  if (asNode) {
    graph.addNode({ opType: 'Constant', inputs: [], outputs: [name], name, attributes: { value: tensor } }, { before: reader });
  } else {
    graph.addInitializer(tensor);
  }
  return name;
}

/**
 * The constant tensor at `node`'s input `index`, safe to rewrite: when another node also reads it, it is
 * first copied into a new constant that only `node` reads. Undefined when the input is not constant.
 */
export function exclusiveConstant(graph: Graph, node: Node, index: number): Tensor | undefined {
  const value = node.input(index);
  const tensor = graph.constant(value);
  if (!tensor) return undefined;
  const readers = graph.consumers(value);
  const shared =
    readers.length > 1 ||
    graph.isGraphOutput(value) ||
    node.inputs.filter((v) => v === value).length > 1 ||
    graph.initializers.get(value) === undefined && graph.producer(value) === undefined; // from an outer graph
  if (!shared) return tensor;
  const d = tensor.data;
  const copy = new (d.constructor as new (src: TensorData) => TensorData)(d);
  const name = addConstant(graph, value, tensor.dataType, tensor.dims, copy, node, isConstantNodeValue(graph, value));
  node.setInput(index, name);
  return graph.constant(name);
}

/** Removes the Constant nodes and initializers behind `values` that nothing reads any more. */
export function removeIfUnused(graph: Graph, values: Iterable<string>): number {
  // All found unused first, then removed: a constant's removal changes no other value's readers, and
  // each removal makes the graph index itself anew (one index per value made the BatchNorm fold of
  // MobileNetV2, some 200 values, one 60 ms stretch on the main thread).
  const nodes = new Set<Node>();
  const initializers: string[] = [];
  for (const v of new Set(values)) {
    if (!v || graph.consumers(v).length > 0 || graph.isGraphOutput(v)) continue;
    const p = graph.producer(v);
    if (p && p.opType === 'Constant' && p.domain === '') nodes.add(p);
    // Also when listed as a graph input (IR < 4 style): an input with an initializer is optional.
    else if (graph.initializers.has(v)) initializers.push(v);
  }
  graph.removeNodes(nodes);
  for (const v of initializers) graph.removeInitializer(v);
  return nodes.size + initializers.length;
}
