/**
 * Reading packed models: every chain that the pack pass wrote is replaced by the plain tensor it
 * computes, in the model's storage style and at the original's place, so that re-saving an unpacked
 * model gives the hashed model byte for byte.
 */
import type { Node } from '../../model/graph';
import type { Model } from '../../model/model';
import { Tensor } from '../../model/tensor';
import { isConstantNodeValue, removeIfUnused } from '../constant-tensors';
import { PACK_MARK, asData, matchChain, rebuild } from './chain';

/**
 * Puts plain tensors back for every packed weight and removes its chain; returns the model. loadModel()
 * (lib/load.ts) calls it, so a packed model can be inspected, validated or pruned again like any other. A
 * marked chain that is not one the pack pass writes is left as it is (it still computes its weight).
 */
export function unpackModel(model: Model): Model {
  const graph = model.graph;
  const isMarkedGather = (n: Node) => n.opType === 'Gather' && n.domain === '' && n.name.includes(PACK_MARK);
  if (!graph.nodes.some(isMarkedGather)) return model;
  for (const gather of graph.nodes.filter(isMarkedGather)) {
    const m = matchChain(graph, gather);
    const bits = m && rebuild(m.parts);
    if (!m || !bits) continue;
    const tensor = Tensor.create(m.output, m.parts.dataType, m.parts.dims, asData(bits, m.parts.dataType));
    // The plain tensor goes where the chain's constants began; as a Constant node, under the codebook
    // node's name (the original's).
    const codebook = gather.input(0);
    if (isConstantNodeValue(graph, codebook)) {
      const name = graph.producer(codebook)!.name;
      const constantNodes = new Set(m.constants.map((v) => graph.producer(v)));
      const gone = new Set<Node | undefined>([...m.nodes, ...constantNodes]);
      const first = graph.nodes.findIndex((n) => constantNodes.has(n));
      const before = graph.nodes.slice(first).find((n) => !gone.has(n));
      for (const n of m.nodes) graph.removeNode(n);
      removeIfUnused(graph, m.constants);
      graph.addNode({ opType: 'Constant', inputs: [], outputs: [m.output], name: name || undefined, attributes: { value: tensor } }, { before });
    } else {
      const list = graph.proto.initializer;
      const names = new Set(m.constants);
      const at = list.findIndex((t) => names.has(t.name));
      for (const n of m.nodes) graph.removeNode(n);
      removeIfUnused(graph, m.constants);
      graph.addInitializer(tensor);
      // Back in its original place among the initializers (the writer keeps proto order).
      list.splice(Math.min(at, list.length - 1), 0, list.pop()!);
    }
  }
  graph.pruneValueInfo();
  return model;
}
