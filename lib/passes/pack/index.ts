/**
 * Packed export, the second form of RED++ input splitting (DESIGN.md section 3): after hashing, a
 * neuron has few distinct weight values, so its weights are stored as a per-neuron codebook (the
 * weights' own dtype, every neuron's values end to end) plus one index per weight of just the bits its
 * layer needs (words.ts). A chain of constant ops rebuilds the dense tensor under the weight's own name
 * (chain.ts), and onnxruntime folds it when it creates the session: inference runs on the same dense
 * tensor, bit for bit, and only the file shrinks.
 *
 * The model readers call unpackModel(), so a packed model loads as plain tensors and can be inspected
 * or pruned again like any other.
 */
import { dataTypeName } from '../../model/dtype';
import type { Graph, Node } from '../../model/graph';
import type { Model } from '../../model/model';
import { addConstant, isConstantNodeValue } from '../constants';
import { newReport, type Pass, type PassReport } from '../pass';
import { elementOffsets, isWeighted, layerIdentity, neuronLayout, type LayerIdentity, type NeuronLayout } from '../weight-layout';
import { PACKABLE, PACK_MARK, addChain, bitsOf, measuringSite, newBits, type Bits, type ChainSite, type PackedParts } from './chain';
import { toWords, wordFormat } from './words';

export { PACK_MARK } from './chain';
export { unpackModel } from './unpack';

/** Most distinct values per neuron that an index addresses (16 bits). */
export const MAX_CODES = 65536;

export interface PackOptions {
  /** Layer (node) names or patterns whose weights stay dense. */
  skip?: readonly (string | RegExp)[];
}

/** How one weight tensor was packed. */
export interface PackedLayer extends LayerIdentity {
  /** Codebook entries of the neuron with the most. */
  codes: number;
  /** Bits per index (ceil(log2(codes)), one more where a word of whole bytes needs it). */
  indexBits: number;
  /** Bytes in the file: the dense tensor before; after, the codebook, indices, offsets and the chain's nodes. */
  bytes: { before: number; after: number };
}

export interface PackPassReport extends PassReport {
  layers: PackedLayer[];
}

/** The pack pass: run it last, after every pass that reads or edits weights. */
export function packPass(options: PackOptions = {}): Pass {
  const skipPatterns = options.skip ?? [];
  return {
    name: 'pack',
    exact: true,
    async run(model: Model): Promise<PackPassReport> {
      const report: PackPassReport = { ...newReport('pack'), layers: [] };
      const graph = model.graph;
      const opset = model.opsetVersion('') ?? 0;
      const skip = (node: Node, reason: string) => report.skipped.push({ node: node.label, reason });
      const claimed = new Set<string>();
      for (const node of [...graph.nodes]) {
        if (!isWeighted(node)) continue;
        // The event loop runs between layers: packing a large model takes a second on the main thread.
        await new Promise((resolve) => setImmediate(resolve));
        if (opset < 7) {
          skip(node, `opset ${opset} is too old to rebuild weights in the graph (needs 7)`);
          continue;
        }
        if (skipPatterns.some((p) => (typeof p === 'string' ? p === node.label : p.test(node.label)))) {
          skip(node, 'matches options.skip');
          continue;
        }
        // A weight read by several layers is packed once, in the layout of its first reader.
        if (claimed.has(node.input(1))) continue;
        const layout = neuronLayout(graph, node);
        if ('skip' in layout) {
          skip(node, layout.skip);
          continue;
        }
        claimed.add(layout.value);
        const why = unpackable(graph, layout);
        if (why) {
          skip(node, why);
          continue;
        }
        const plan = planPack(layout, opset, isConstantNodeValue(graph, layout.value));
        if (typeof plan === 'string') {
          skip(node, plan);
          continue;
        }
        applyPack(graph, layout, plan.parts, opset);
        const layer: PackedLayer = {
          ...layerIdentity(layout),
          codes: plan.codes,
          indexBits: plan.parts.format.bits,
          bytes: { before: plan.denseBytes, after: plan.packedBytes },
        };
        report.layers.push(layer);
        report.changes.push({ node: node.label, action: `packed ${layer.neurons} neurons as ${layer.codes}-entry codebooks + ${layer.indexBits}-bit indices` });
      }
      report.changed = report.layers.length > 0;
      report.stats = {
        layers: report.layers.length,
        bytesBefore: report.layers.reduce((a, l) => a + l.bytes.before, 0),
        bytesAfter: report.layers.reduce((a, l) => a + l.bytes.after, 0),
      };
      return report;
    },
  };
}

/** Why the weight cannot be packed in place, or undefined. */
function unpackable(graph: Graph, layout: NeuronLayout): string | undefined {
  const { value, tensor } = layout;
  if (!PACKABLE.has(tensor.dataType)) return `${dataTypeName(tensor.dataType)} weights are left dense`;
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
function planPack(layout: NeuronLayout, opset: number, constantNodes: boolean): Plan | string {
  const { tensor, grid } = layout;
  const src = bitsOf(tensor.data);
  const { neuronAt, placeAt } = elementOffsets(grid);
  const neurons = neuronAt.length;

  const coded = codeNeurons(src, neuronAt, placeAt);
  if (typeof coded === 'string') return coded;
  const { index, counts, firsts } = coded;
  let codes = 1;
  for (let n = 0; n < neurons; n++) codes = Math.max(codes, counts[n]);
  const format = wordFormat(codes);
  const offsets = new Int32Array(neurons);
  for (let n = 1; n < neurons; n++) offsets[n] = offsets[n - 1] + counts[n - 1];
  const codebook = newBits(src, firsts.length);
  for (let k = 0; k < firsts.length; k++) codebook[k] = src[firsts[k]];
  const parts: PackedParts = { dataType: tensor.dataType, codebook, offsets, format, words: toWords(index, format), dims: [...tensor.dims], grid };
  // What the file gains and loses: the chain as it would be written, against the dense tensor as it is.
  const tally = measuringSite(`${layout.value}/${PACK_MARK}`, opset, constantNodes);
  addChain(parts, tally, layout.value);
  const denseBytes = src.length * src.BYTES_PER_ELEMENT;
  if (tally.bytes >= denseBytes) return `packing would not save bytes (${codes} distinct values per neuron of ${layout.fanIn})`;
  return { parts, codes, denseBytes, packedBytes: tally.bytes };
}

/**
 * Each weight's index among its neuron's distinct values (numbered in order of first appearance along
 * the row), each neuron's count, and the element where each value first appears (neuron by neuron: the
 * codebook's order); a string when a neuron has more values than an index addresses. Values are told
 * apart by their bits, through an open-addressing table reused from neuron to neuron.
 */
function codeNeurons(
  src: Bits,
  neuronAt: Uint32Array,
  placeAt: Uint32Array,
): { index: Uint32Array; counts: Uint32Array; firsts: Uint32Array } | string {
  const fanIn = placeAt.length;
  const slotBits = Math.ceil(Math.log2(2 * fanIn + 2));
  const mask = (1 << slotBits) - 1;
  const slotElement = new Int32Array(mask + 1); // element + 1 of the first weight holding the slot's value; 0: empty
  const slotCode = new Uint32Array(mask + 1);
  const wide = src instanceof BigUint64Array;
  const hash = (e: number) => {
    const v = wide ? Number(src[e] & 0xffffffffn) ^ Number(src[e] >> 32n) : (src[e] as number);
    return (Math.imul(v, 0x9e3779b1) >>> (32 - slotBits)) & mask;
  };
  const index = new Uint32Array(src.length);
  const counts = new Uint32Array(neuronAt.length);
  const firsts = new Uint32Array(src.length);
  let total = 0;
  for (let n = 0; n < neuronAt.length; n++) {
    slotElement.fill(0);
    let codes = 0;
    for (let c = 0; c < fanIn; c++) {
      const e = neuronAt[n] + placeAt[c];
      let slot = hash(e);
      while (slotElement[slot] !== 0 && src[slotElement[slot] - 1] !== src[e]) slot = (slot + 1) & mask;
      if (slotElement[slot] === 0) {
        if (codes === MAX_CODES) return `a neuron has more than ${MAX_CODES} distinct values`;
        slotElement[slot] = e + 1;
        slotCode[slot] = codes++;
        firsts[total++] = e;
      }
      index[e] = slotCode[slot];
    }
    counts[n] = codes;
  }
  return { index, counts, firsts: firsts.subarray(0, total) };
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
