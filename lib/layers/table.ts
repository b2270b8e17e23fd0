/**
 * The layer table: every node of the graph whose op has a layer kind (kinds.ts), once, in graph order,
 * with its neuron layout. A Layer reads its weights live from the graph, so it stays true while passes
 * fold, copy or rewrite the constants behind it.
 */
import type { Graph, Node } from '../model/graph';
import type { ShapeInference } from '../model/shapes';
import type { Tensor } from '../model/tensor';
import { gridSize, isRowMajor, type NeuronGrid } from './grid';
import { layerKind, type LayerKind, type WeightAxes } from './kinds';

/**
 * Ops that only relayout a constant (exporters put them between a weight and its layer: a transposed
 * Linear weight, a reshaped bias); foldWeightTransforms replaces them by the constant they compute.
 */
export const WEIGHT_TRANSFORMS: ReadonlySet<string> = new Set(['Transpose', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Identity']);

/** A layer's constant weights seen as neurons. */
export interface NeuronLayout {
  /** The weight value name and tensor, as they are now. */
  value: string;
  tensor: Tensor;
  axes: WeightAxes;
  grid: NeuronGrid;
  neurons: number;
  fanIn: number;
  /** Whether the tensor's own order is already rows (see grid.ts). */
  rowMajor: boolean;
}

/** The shape facts of a layer without its data (for statistics before the weights are folded). */
export interface LayerShape {
  dims: number[];
  axes: WeightAxes;
  grid: NeuronGrid;
  neurons: number;
  fanIn: number;
}

export class Layer {
  constructor(
    readonly node: Node,
    readonly kind: LayerKind,
  ) {}

  /** The node's name (or op type and output when unnamed): how reports name the layer. */
  get name(): string {
    return this.node.label;
  }

  get graph(): Graph {
    return this.node.graph;
  }

  /** Whether the node is still in its graph (a rewrite may have replaced it). */
  get present(): boolean {
    return this.graph.nodes.includes(this.node);
  }

  get weightValue(): string {
    return this.node.input(this.kind.weightInput);
  }

  get biasValue(): string {
    return this.kind.biasInput === undefined ? '' : this.node.input(this.kind.biasInput);
  }

  /** The weight tensor, when it is a constant. */
  weight(): Tensor | undefined {
    return this.graph.constant(this.weightValue);
  }

  /** The bias tensor, when there is one and it is a constant. */
  bias(): Tensor | undefined {
    const b = this.biasValue;
    return b ? this.graph.constant(b) : undefined;
  }

  /** The current constant weights as neurons, or why there are none. */
  layout(): NeuronLayout | { skip: string } {
    const value = this.weightValue;
    const tensor = this.weight();
    if (!tensor) {
      const from = this.graph.producer(value)?.opType;
      return { skip: from === 'DequantizeLinear' ? 'quantized (int8) weights are left as they are' : 'weights are not a constant' };
    }
    const shape = this.shapeOf(tensor.dims);
    if ('skip' in shape) return shape;
    return { value, tensor, ...shape, rowMajor: isRowMajor(shape.grid) };
  }

  /**
   * The layer's shape before folding: from its constant weights, or from the inferred shape of weights
   * that a chain of weight transforms computes from a constant (foldWeightTransforms folds those).
   */
  staticShape(shapes: ShapeInference): LayerShape | { skip: string } {
    const dims = constantDims(this.graph, this.weightValue, shapes);
    return dims ? this.shapeOf(dims) : (this.layout() as { skip: string });
  }

  private shapeOf(dims: readonly number[]): LayerShape | { skip: string } {
    const axes = this.kind.axes(dims, this.node);
    if (typeof axes === 'string') return { skip: axes };
    const grid = this.kind.grid(dims, this.node);
    return { dims: [...dims], axes, grid, ...gridSize(grid) };
  }
}

/**
 * The dims of a constant, or of a value that weight transforms compute from a constant (as shape
 * inference gives them); undefined for anything else.
 */
export function constantDims(graph: Graph, value: string, shapes: ShapeInference): number[] | undefined {
  if (!value) return undefined;
  const t = graph.constant(value);
  if (t) return t.dims;
  for (let v = value, hops = 0; hops < 16; hops++) {
    const p = graph.producer(v);
    if (!p || p.domain !== '' || !WEIGHT_TRANSFORMS.has(p.opType)) return undefined;
    v = p.input(0);
    if (graph.constant(v)) {
      const inferred = shapes.types.get(value)?.shape;
      return inferred?.every((d): d is number => typeof d === 'number') ? inferred : undefined;
    }
  }
  return undefined;
}

/** Every node with a layer kind, in graph order. */
export function layerTable(graph: Graph): Layer[] {
  const out: Layer[] = [];
  for (const node of graph.nodes) {
    const kind = layerKind(node);
    if (kind) out.push(new Layer(node, kind));
  }
  return out;
}

/** The layer of one node, or undefined when its op has no layer kind. */
export function layerOf(node: Node): Layer | undefined {
  const kind = layerKind(node);
  return kind ? new Layer(node, kind) : undefined;
}
