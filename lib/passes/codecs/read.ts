/**
 * Reading exported models back: every chain a codec wrote (palette, uniform, float16) is replaced by the
 * plain tensor it computes, in the model's storage style and at the original's place, so that re-saving
 * a read-back model gives the model as it was before the export, byte for byte.
 */
import type { Graph, Node } from '../../model/graph';
import type { Model } from '../../model/model';
import { Tensor, keepExternalLike } from '../../model/tensor';
import { isConstantNodeValue, removeIfUnused } from '../constant-tensors';
import { asData, bitsOf } from './bits';
import { matchHalf, rebuildHalf } from './float16';
import { ChainReader } from './match';
import { matchPalette, rebuildPalette } from './palette';
import { matchUniform, rebuildUniform } from './uniform';

/** A chain read back: its nodes and constants, the weight it computes, and that weight's data. */
interface Rebuilt {
  reader: ChainReader;
  output: string;
  primary: string;
  dataType: number;
  dims: number[];
  data: ArrayBufferView;
}

/** The forms, tried in turn on a chain's last node. */
const FORMS: ((reader: ChainReader, output: string) => Rebuilt | undefined)[] = [
  (reader, output) => {
    const m = matchPalette(reader, output);
    const bits = m && rebuildPalette(m.parts);
    return m && bits && { ...m, dataType: m.parts.dataType, dims: m.parts.dims, data: asData(bits, m.parts.dataType) };
  },
  (reader, output) => {
    const m = matchUniform(reader, output);
    return m && { ...m, dataType: m.parts.dataType, dims: m.parts.dims, data: rebuildUniform(m.parts) };
  },
  (reader, output) => {
    const m = matchHalf(reader, output);
    return m && { ...m, dataType: 1, dims: m.parts.dims, data: asData(bitsOf(rebuildHalf(m.parts)), 1) };
  },
];

/**
 * Puts plain tensors back for every exported weight and removes its chain; returns the model.
 * loadModel() (lib/load.ts) calls it, so an exported model can be inspected, validated or pruned again
 * like any other. A marked chain that is not one a codec writes is left as it is (it still computes
 * its weight).
 */
export function unpackModel(model: Model): Model {
  const graph = model.graph;
  // A chain's last node: marked, and no marked node reads its output.
  const ends = graph.nodes.filter((n) => ChainReader.marked(n) && !graph.consumers(n.outputs[0]).some((r) => ChainReader.marked(r)));
  if (ends.length === 0) return model;
  for (const end of ends) {
    if (!graph.nodes.includes(end)) continue;
    let rebuilt: Rebuilt | undefined;
    for (const form of FORMS) {
      rebuilt = form(new ChainReader(graph), end.outputs[0]);
      if (rebuilt) break;
    }
    if (rebuilt) replace(graph, rebuilt);
  }
  graph.pruneValueInfo();
  return model;
}

function replace(graph: Graph, m: Rebuilt): void {
  const tensor = Tensor.create(m.output, m.dataType, m.dims, m.data as Float32Array);
  // An external form reads back as an external weight (and is saved as one again).
  keepExternalLike(tensor.proto, graph.constant(m.primary)!.proto);
  const nodes = m.reader.inGraphOrder();
  const constants = m.reader.constants;
  // The plain tensor goes where the chain's constants began; as a Constant node, under the primary
  // constant's node name (the original's).
  if (isConstantNodeValue(graph, m.primary)) {
    const name = graph.producer(m.primary)!.name;
    const constantNodes = new Set<Node | undefined>(constants.map((v) => graph.producer(v)));
    const gone = new Set<Node | undefined>([...nodes, ...constantNodes]);
    const first = graph.nodes.findIndex((n) => constantNodes.has(n));
    const before = graph.nodes.slice(first).find((n) => !gone.has(n));
    for (const n of nodes) graph.removeNode(n);
    removeIfUnused(graph, constants);
    graph.addNode({ opType: 'Constant', inputs: [], outputs: [m.output], name: name || undefined, attributes: { value: tensor } }, { before });
  } else {
    const list = graph.proto.initializer;
    const names = new Set(constants);
    const at = list.findIndex((t) => names.has(t.name));
    for (const n of nodes) graph.removeNode(n);
    removeIfUnused(graph, constants);
    graph.addInitializer(tensor);
    // Back in its original place among the initializers (the writer keeps proto order).
    list.splice(Math.min(at, list.length - 1), 0, list.pop()!);
  }
}
