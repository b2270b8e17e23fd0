/**
 * Reading a codec's chain back out of a graph: a walk from the chain's last node towards its constants,
 * keeping the nodes and constants it passes, so that the reader can replace them by the tensor they
 * compute. Only marked nodes (PACK_MARK in the name) of the default domain are followed.
 */
import { DataType } from '../../model/dtype';
import type { Graph, Node } from '../../model/graph';
import type { Tensor } from '../../model/tensor';
import { PACK_MARK } from './site';

export class ChainReader {
  readonly nodes: Node[] = [];
  readonly constants: string[] = [];

  constructor(readonly graph: Graph) {}

  /** Whether a node is one a codec wrote. */
  static marked(n: Node | undefined): n is Node {
    return n !== undefined && n.domain === '' && n.name.includes(PACK_MARK);
  }

  /** The marked node of `opType` that produces `value`, taken into the chain. */
  from(value: string, opType: string): Node | undefined {
    const n = this.graph.producer(value);
    if (!ChainReader.marked(n) || n.opType !== opType) return undefined;
    this.nodes.push(n);
    return n;
  }

  /** Whether a marked node of `opType` produces `value` (without taking it). */
  producedBy(value: string, opType: string): boolean {
    const n = this.graph.producer(value);
    return ChainReader.marked(n) && n.opType === opType;
  }

  /** The constant `value` when its element type is one of `dataTypes`, taken into the chain. */
  constant(value: string, dataTypes: readonly number[]): Tensor | undefined {
    const t = this.graph.constant(value);
    if (!t || !dataTypes.includes(t.dataType)) return undefined;
    this.constants.push(value);
    return t;
  }

  /**
   * Where a chain ends in a marked Reshape (a weight shaped otherwise than its grid), the value under
   * it and the dims it makes; else `output` itself. Undefined when the Reshape's shape is not a constant.
   */
  underReshape(output: string): { value: string; dims?: number[] } | undefined {
    if (!this.producedBy(output, 'Reshape')) return { value: output };
    const reshape = this.from(output, 'Reshape')!;
    const dims = this.numbers(reshape.input(1), [DataType.INT64]);
    return dims ? { value: reshape.input(0), dims } : undefined;
  }

  /** A small integer constant's values (shapes, axes, radixes). */
  numbers(value: string, dataTypes: readonly number[]): number[] | undefined {
    const t = this.constant(value, dataTypes);
    return t ? Array.from(t.data as ArrayLike<number | bigint>, Number) : undefined;
  }

  /**
   * Whether every value inside the chain is read by the chain alone (the last node's output, `output`,
   * is the weight the layer reads).
   */
  closed(output: string): boolean {
    const inChain = new Set(this.nodes);
    for (const n of this.nodes) {
      if (n.outputs[0] === output) continue;
      if (this.graph.isGraphOutput(n.outputs[0]) || !this.graph.consumers(n.outputs[0]).every((r) => inChain.has(r))) return false;
    }
    return true;
  }

  /** The chain's nodes in graph order. */
  inGraphOrder(): Node[] {
    const inChain = new Set(this.nodes);
    return this.graph.nodes.filter((n) => inChain.has(n));
  }
}

export const same = (a: readonly number[] | undefined, b: readonly number[]): boolean =>
  a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
