/**
 * Packed export, the second form of RED++ input splitting: after hashing, a
 * neuron has few distinct weight values, so its weights are stored as a per-neuron codebook (the
 * weights' own dtype, every neuron's values end to end) plus one index per weight of just the bits its
 * layer needs (words.ts). A chain of constant ops rebuilds the dense tensor under the weight's own name
 * (chain.ts), and onnxruntime folds it when it creates the session: inference runs on the same dense
 * tensor, bit for bit, and only the file shrinks.
 *
 * loadModel() calls unpackModel() (lib/load.ts), so a packed model loads as plain tensors and can be
 * inspected or pruned again like any other.
 */
import { layerTable, type Layer, type NeuronLayout } from '../../layers';
import { dataTypeName, isFloatType } from '../../model/dtype';
import type { Graph, Node } from '../../model/graph';
import type { Model } from '../../model/model';
import { addConstant, isConstantNodeValue } from '../constant-tensors';
import { LayerPlan, PackRecord } from '../layer-records';
import { newReport, type Pass, type PassReport } from '../pass';
import { inProcess, type TaskRunner } from '../tasks';
import { PACK_MARK, addChain, bitsOf, measuringSite, type ChainSite, type PackedParts } from './chain';
import type { CodedLayer } from './code';

export { PACK_MARK } from './chain';
export { MAX_CODES } from './code';
export { unpackModel } from './unpack';

export interface PackOptions {
  /** Layer (node) names or patterns whose weights stay dense. */
  skip?: readonly (string | RegExp)[];
  /** Code the layers on this runner (prune() passes its worker pool); default: this thread, a layer at a time. */
  runner?: TaskRunner;
}

/** The pack pass: run it last, after every pass that reads or edits weights. */
export function packPass(options: PackOptions = {}): Pass {
  const skipPatterns = options.skip ?? [];
  const runner = options.runner ?? inProcess;
  return {
    name: 'pack',
    exact: true,
    async run(model: Model, plan: LayerPlan): Promise<PassReport> {
      const report = newReport('pack');
      const graph = model.graph;
      const opset = model.opsetVersion('') ?? 0;
      const skip = (node: Node, reason: string) => report.skipped.push({ node: node.label, reason });
      const claimed = new Set<string>();
      const candidates: { layer: Layer; layout: NeuronLayout }[] = [];
      for (const layer of layerTable(graph)) {
        const { node } = layer;
        if (opset < 7) {
          skip(node, `opset ${opset} is too old to rebuild weights in the graph (needs 7)`);
          continue;
        }
        if (skipPatterns.some((p) => (typeof p === 'string' ? p === node.label : p.test(node.label)))) {
          skip(node, 'matches options.skip');
          continue;
        }
        // A weight read by several layers is packed once, in the layout of its first reader.
        if (claimed.has(layer.weightValue)) continue;
        const layout = layer.layout();
        if ('skip' in layout) {
          skip(node, layout.skip);
          continue;
        }
        claimed.add(layout.value);
        const why = unpackable(graph, layout);
        if (why) skip(node, why);
        else candidates.push({ layer, layout });
      }
      // Coding is the heavy part (every weight); the graph is edited here, a layer at a time.
      const coded = await Promise.all(candidates.map(({ layout }) => runner.code({ bits: bitsOf(layout.tensor.data), grid: layout.grid })));
      let bytesBefore = 0;
      let bytesAfter = 0;
      for (const [i, { layer, layout }] of candidates.entries()) {
        const packing = planPack(layout, coded[i].coded, opset, isConstantNodeValue(graph, layout.value));
        if (typeof packing === 'string') {
          skip(layer.node, packing);
          continue;
        }
        applyPack(graph, layout, packing.parts, opset);
        const packed: PackRecord = { codes: packing.codes, indexBits: packing.parts.format.bits, bytes: { before: packing.denseBytes, after: packing.packedBytes } };
        const record = plan.record(layer);
        record.packed = packed;
        record.timingsMs.pack = Math.round(coded[i].ms * 10) / 10;
        bytesBefore += packed.bytes.before;
        bytesAfter += packed.bytes.after;
        report.changes.push({ node: layer.name, action: `packed ${layout.neurons} neurons as ${packed.codes}-entry codebooks + ${packed.indexBits}-bit indices` });
        await new Promise((resolve) => setImmediate(resolve));
      }
      report.changed = report.changes.length > 0;
      report.stats = { layers: report.changes.length, bytesBefore, bytesAfter };
      return report;
    },
  };
}

/** Why the weight cannot be packed in place, or undefined. */
function unpackable(graph: Graph, layout: NeuronLayout): string | undefined {
  const { value, tensor } = layout;
  if (!isFloatType(tensor.dataType)) return `${dataTypeName(tensor.dataType)} weights are left dense`;
  if (tensor.size === 0) return 'empty weights';
  const own = graph.initializers.has(value) || isConstantNodeValue(graph, value);
  if (!own) return 'weights come from an enclosing graph';
  if (graph.isGraphInput(value)) return 'weights are also a graph input (overridable)';
  if (graph.isGraphOutput(value)) return 'weights are also a graph output';
  return undefined;
}

interface Plan {
  parts: PackedParts;
  codes: number;
  denseBytes: number;
  packedBytes: number;
}

/**
 * Codebooks and index words for a layer, or why not. The chain rebuilds the weights bit for bit by
 * construction: the same neuron grid places indices here and in rebuild(), which the reader uses and
 * the tests compare with onnxruntime.
 */
function planPack(layout: NeuronLayout, coded: CodedLayer | string, opset: number, constantNodes: boolean): Plan | string {
  if (typeof coded === 'string') return coded;
  const { tensor, grid } = layout;
  const parts: PackedParts = { ...coded, dataType: tensor.dataType, dims: [...tensor.dims], grid };
  // What the file gains and loses: the chain as it would be written, against the dense tensor as it is.
  const tally = measuringSite(`${layout.value}/${PACK_MARK}`, opset, constantNodes);
  addChain(parts, tally, layout.value);
  const denseBytes = tensor.size * coded.codebook.BYTES_PER_ELEMENT;
  if (tally.bytes >= denseBytes) return `packing would not save bytes (${coded.codes} distinct values per neuron of ${layout.fanIn})`;
  return { parts, codes: coded.codes, denseBytes, packedBytes: tally.bytes };
}

/** Replaces the weight's constant by its packed parts and the chain that rebuilds it (same value name). */
function applyPack(graph: Graph, layout: NeuronLayout, parts: PackedParts, opset: number): void {
  const { value } = layout;
  const constantNode = isConstantNodeValue(graph, value) ? graph.producer(value)! : undefined;
  // Constants go where the weight was defined (Constant style) or among the initializers where it was;
  // the chain's nodes go after the weight's Constant node, or before its first reader.
  const readers = new Set(graph.consumers(value));
  const anchor = constantNode ?? graph.nodes.find((n) => readers.has(n))!;
  const before = constantNode ? graph.nodes[graph.nodes.indexOf(constantNode) + 1] : anchor;
  const initializers = graph.proto.initializer;
  const slot = initializers.findIndex((t) => t.name === value);
  const initializerCount = initializers.length;
  const base = `${value}/${PACK_MARK}`;
  let codebook = '';
  let last: Node | undefined;
  const site: ChainSite = {
    base,
    opset,
    constant(what, dataType, dims, data) {
      const name = addConstant(graph, `${base}/${what}`, dataType, dims, data, anchor, value);
      if (what === 'codebook') codebook = name;
      return name;
    },
    node(opType, inputs, attributes, output) {
      const out = output ?? graph.uniqueName(`${base}/${opType.toLowerCase()}`);
      last = graph.addNode({ opType, name: graph.uniqueName(`${base}/${opType}`), inputs, outputs: [out], attributes }, { before });
      return out;
    },
  };
  // Built beside the original under a name of its own, then given the weight's name once the original is gone.
  addChain(parts, site, graph.uniqueName(`${base}/weight`));
  if (constantNode) {
    // The codebook's Constant node takes the original's name (unnamed, as paddle2onnx writes its
    // Constants, stays unnamed), so that unpacking restores it.
    const codebookNode = graph.producer(codebook)!.proto as { name?: string };
    if (constantNode.name) codebookNode.name = constantNode.name;
    else delete codebookNode.name;
    graph.removeNode(constantNode);
  } else {
    // The new initializers take the original's place in the file (unpacking puts it back there).
    const added = initializers.length - initializerCount;
    graph.removeInitializer(value);
    initializers.splice(slot, 0, ...initializers.splice(initializers.length - added, added));
  }
  last!.setOutput(0, value);
}
