/**
 * Packed export, the second form of RED++ input splitting (DESIGN.md section 3): after hashing, a
 * neuron has few distinct weight values, so its weights are stored as a per-neuron codebook (the
 * weights' own dtype) plus one small integer per weight (uint8 when a neuron has at most 256 values,
 * else uint16). The graph rebuilds the dense tensor under the weight's own name with
 *
 *     indices --Cast(int64)--> GatherElements(codebook, axis) --Reshape [--Transpose--Reshape]--> W
 *
 * every input of which is a constant, so onnxruntime folds the chain when it creates the session:
 * inference runs on the same dense tensor, bit for bit, and only the file shrinks. Models below opset 11
 * (no GatherElements; PP-OCR's paddle2onnx exports are opset 9) get the same chain with a flat Gather:
 *
 *     indices --Cast(int32)--> Add(per-neuron offsets) --> Gather(codebooks end to end) --> Reshape ... --> W
 *
 * whose codebooks are ragged (each neuron keeps exactly its own values), which makes it a little smaller.
 *
 * The chain's nodes carry `PACK_MARK` in their names; unpackModel() (called by the model readers)
 * recognises the marked pattern and puts the plain tensor back, so a packed model can be inspected or
 * pruned again like any other.
 */
import { transpose } from './fold-weight-transforms';
import { DataType, dataTypeName, layoutOf, type TensorData } from '../model/dtype';
import type { Graph, Node } from '../model/graph';
import type { Model } from '../model/model';
import { Tensor, elementCount } from '../model/tensor';
import { addConstant, isConstantNodeValue, removeIfUnused } from './constants';
import { newReport, type Pass, type PassReport } from './pass';
import { isWeighted, layerIdentity, neuronLayout, type LayerIdentity, type NeuronLayout } from './weight-layout';

/** In the name of every node of a packed weight's chain; how unpackModel() recognises it. */
export const PACK_MARK = 'redpp_pack';

/** Float types whose tensors are packed (GatherElements takes any type; these are the weights hashing makes). */
const PACKABLE = new Set<number>([DataType.FLOAT, DataType.FLOAT16, DataType.BFLOAT16, DataType.DOUBLE]);

/** Most distinct values per neuron that uint16 indices address. */
export const MAX_CODES = 65536;

/** Bytes of graph structure a packed weight adds besides its tensors (nodes, names); a layer must save more. */
const CHAIN_OVERHEAD = 160;

export interface PackOptions {
  /** Layer (node) names or patterns whose weights stay dense. */
  skip?: readonly (string | RegExp)[];
}

/** How one weight tensor was packed. */
export interface PackedLayer extends LayerIdentity {
  /** Codebook entries per neuron (the layer's largest count of distinct values). */
  codes: number;
  indexType: 'uint8' | 'uint16';
  /** 'rows' (codebook per row, axis 1), 'columns' (per column, axis 0) or 'transposed' (rows, then a Transpose). */
  geometry: Geometry['kind'];
  /** The op that rebuilds it: GatherElements (opset >= 11), or Gather on ragged codebooks (older opsets). */
  gather: GatherForm;
  /** Tensor bytes: dense before; codebook + indices + shapes after. */
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
    run(model: Model): PackPassReport {
      const report: PackPassReport = { ...newReport('pack'), layers: [] };
      const graph = model.graph;
      const opset = model.opsetVersion('') ?? 0;
      const skip = (node: Node, reason: string) => report.skipped.push({ node: node.label, reason });
      const claimed = new Set<string>();
      for (const node of [...graph.nodes]) {
        if (!isWeighted(node)) continue;
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
        const plan = planPack(layout, opset >= 11 ? 'GatherElements' : 'Gather');
        if (typeof plan === 'string') {
          skip(node, plan);
          continue;
        }
        applyPack(graph, layout, plan);
        const layer: PackedLayer = {
          ...layerIdentity(layout),
          codes: plan.codes,
          indexType: plan.indices instanceof Uint8Array ? 'uint8' : 'uint16',
          geometry: plan.geometry.kind,
          gather: plan.form,
          bytes: { before: plan.denseBytes, after: plan.packedBytes },
        };
        report.layers.push(layer);
        report.changes.push({
          node: node.label,
          action: `packed ${layer.neurons} neurons as ${layer.codes}-entry codebooks + ${layer.indexType} indices`,
        });
      }
      report.changed = report.layers.length > 0;
      report.stats = {
        layers: report.layers.length,
        bytesBefore: report.layers.reduce((a, l) => a + l.bytes.before, 0),
        bytesAfter: report.layers.reduce((a, l) => a + l.bytes.after, 0),
        uint16Layers: report.layers.filter((l) => l.indexType === 'uint16').length,
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

/** Where the gathered elements go: the GatherElements shape and axis, and the ops after it. */
interface Geometry {
  kind: 'rows' | 'columns' | 'transposed';
  /** Shape of the indices and of GatherElements' output: [neurons, fanIn] (axis 1) or [fanIn, neurons] (axis 0). */
  gatherDims: [number, number];
  axis: 0 | 1;
  /** Element p of the gathered output is element source[p] of the tensor (undefined: the same order). */
  source?: Uint32Array;
  post: PostOp[];
}

type GatherForm = 'GatherElements' | 'Gather';

type PostOp = { op: 'Reshape'; shape: number[] } | { op: 'Transpose'; perm: number[] };

interface Plan {
  form: GatherForm;
  geometry: Geometry;
  codes: number;
  /**
   * Codebook bits. GatherElements: [neurons, codes] for axis 1, [codes, neurons] for axis 0, padded with
   * zeros. Gather: each neuron's values end to end, neuron n's starting at offsets[n].
   */
  codebook: Bits;
  codebookDims: number[];
  indices: Uint8Array | Uint16Array;
  /** Gather only: [neurons, 1] (axis 1) or [1, neurons] (axis 0), added to the indices. */
  offsets?: Int32Array;
  denseBytes: number;
  packedBytes: number;
}

/** Elements as unsigned integers of the same width: packing works on bit patterns, so it is exact. */
type Bits = Uint16Array | Uint32Array | BigUint64Array;

function bitsOf(data: TensorData): Bits {
  const w = data.BYTES_PER_ELEMENT;
  if (w === 2) return new Uint16Array(data.buffer, data.byteOffset, data.length);
  if (w === 4) return new Uint32Array(data.buffer, data.byteOffset, data.length);
  return new BigUint64Array(data.buffer, data.byteOffset, data.length);
}

function newBits(like: Bits, length: number): Bits {
  return new (like.constructor as new (n: number) => Bits)(length);
}

/** Bits as the tensor's own array type (a view, no copy). */
function asData(bits: Bits, dataType: number): TensorData {
  const { array } = layoutOf(dataType, 'packed weight');
  return new array(bits.buffer, bits.byteOffset, bits.length);
}

/** The gathering geometry that reproduces the layer's neuron layout, or why there is none. */
function geometryOf(layout: NeuronLayout): Geometry | string {
  const { node, tensor, neurons, fanIn } = layout;
  const dims = tensor.dims;
  if (layout.contiguous) return { kind: 'rows', gatherDims: [neurons, fanIn], axis: 1, post: [{ op: 'Reshape', shape: dims }] };
  const source = rowOrder(layout);
  if (dims.length === 2 && dims[0] === fanIn && dims[1] === neurons) {
    let columns = true;
    for (let n = 0; n < neurons && columns; n++) for (let c = 0; c < fanIn; c++) if (source[n * fanIn + c] !== c * neurons + n) { columns = false; break; }
    // Neurons are the columns (MatMul, Gemm transB=0): a codebook per column, gathered along axis 0, no transpose.
    if (columns) return { kind: 'columns', gatherDims: [fanIn, neurons], axis: 0, post: [{ op: 'Reshape', shape: dims }] };
  }
  if (node.opType === 'ConvTranspose') {
    // Rows are [group, outPerGroup, inPerGroup, k]; the weight is [group * inPerGroup, outPerGroup, k].
    const group = node.attrInt('group', 1);
    const outPerGroup = dims[1];
    const inPerGroup = dims[0] / group;
    const k = tensor.size / (dims[0] * dims[1]);
    return {
      kind: 'transposed',
      gatherDims: [neurons, fanIn],
      axis: 1,
      source,
      post: [
        { op: 'Reshape', shape: [group, outPerGroup, inPerGroup, k] },
        { op: 'Transpose', perm: [0, 2, 1, 3] },
        { op: 'Reshape', shape: dims },
      ],
    };
  }
  return `no packed form for the ${node.opType} weight layout`;
}

/** For each row-major position of the layout's rows, the tensor element it reads (exact past 2^24 elements). */
function rowOrder(layout: NeuronLayout): Uint32Array {
  const size = layout.tensor.size;
  const lo = new Float32Array(size);
  const hi = new Float32Array(size);
  for (let i = 0; i < size; i++) {
    lo[i] = i & 0xffff;
    hi[i] = Math.floor(i / 0x10000);
  }
  const l = layout.toRows(lo);
  const h = layout.toRows(hi);
  const out = new Uint32Array(size);
  for (let i = 0; i < size; i++) out[i] = h[i] * 0x10000 + l[i];
  return out;
}

/** Codebooks and indices for a layer, checked to rebuild it bit for bit; a string says why not. */
function planPack(layout: NeuronLayout, form: GatherForm): Plan | string {
  const geometry = geometryOf(layout);
  if (typeof geometry === 'string') return geometry;
  const { tensor, neurons, fanIn } = layout;
  const src = bitsOf(tensor.data);
  const size = src.length;
  const gathered = geometry.source ? newBits(src, size) : src;
  if (geometry.source) for (let p = 0; p < size; p++) gathered[p] = src[geometry.source[p]];
  const columns = geometry.axis === 0;
  const at = columns ? (n: number, c: number) => c * neurons + n : (n: number, c: number) => n * fanIn + c;

  // Codes per neuron in order of first appearance.
  const code = new Uint32Array(size);
  const counts = new Uint32Array(neurons);
  const seen = new Map<number | bigint, number>();
  let codes = 1;
  let total = 0;
  for (let n = 0; n < neurons; n++) {
    seen.clear();
    for (let c = 0; c < fanIn; c++) {
      const p = at(n, c);
      const key = gathered[p];
      let k = seen.get(key);
      if (k === undefined) {
        k = seen.size;
        if (k >= MAX_CODES) return `a neuron has more than ${MAX_CODES} distinct values`;
        seen.set(key, k);
      }
      code[p] = k;
    }
    counts[n] = seen.size;
    total += seen.size;
    codes = Math.max(codes, seen.size);
  }
  const elementBytes = src.BYTES_PER_ELEMENT;
  const indexBytes = codes <= 256 ? 1 : 2;
  const shapeBytes = geometry.post.reduce((a, o) => a + (o.op === 'Reshape' ? 8 * o.shape.length : 0), 0);
  const denseBytes = size * elementBytes;
  const codebookLength = form === 'Gather' ? total : neurons * codes;
  const packedBytes = codebookLength * elementBytes + size * indexBytes + shapeBytes + (form === 'Gather' ? 4 * neurons : 0);
  if (packedBytes + CHAIN_OVERHEAD >= denseBytes) {
    return `packing would not save bytes (${codes} distinct values per neuron of ${fanIn})`;
  }
  const codebook = newBits(src, codebookLength); // GatherElements padding stays 0: no index points at it
  let start: (n: number) => number;
  let stride: number;
  let offsets: Int32Array | undefined;
  if (form === 'Gather') {
    offsets = new Int32Array(neurons);
    for (let n = 1; n < neurons; n++) offsets[n] = offsets[n - 1] + counts[n - 1];
    const o = offsets;
    start = (n) => o[n];
    stride = 1;
  } else {
    start = columns ? (n) => n : (n) => n * codes;
    stride = columns ? neurons : 1;
  }
  for (let n = 0; n < neurons; n++) {
    const s0 = start(n);
    for (let c = 0; c < fanIn; c++) {
      const p = at(n, c);
      codebook[s0 + code[p] * stride] = gathered[p];
    }
  }
  const indices = indexBytes === 1 ? Uint8Array.from(code) : Uint16Array.from(code);
  const codebookDims = form === 'Gather' ? [total] : columns ? [codes, neurons] : [neurons, codes];
  const plan: Plan = { form, geometry, codes, codebook, codebookDims, indices, offsets, denseBytes, packedBytes };
  // The graph must rebuild exactly these bits: evaluate the chain as onnxruntime will.
  const g = geometry.gatherDims;
  const rows =
    form === 'Gather'
      ? gatherFlat(codebook, indices, g, offsets!, columns ? [1, neurons] : [neurons, 1])
      : gatherElements(codebook, codebookDims, indices, g, geometry.axis);
  const rebuilt = rows && applyPost(rows, g, geometry.post);
  if (!rebuilt || !sameBits(rebuilt.bits, src) || rebuilt.dims.join() !== tensor.dims.join()) {
    return 'the packed chain would not rebuild the weights exactly (layout not understood)';
  }
  return plan;
}

function sameBits(a: Bits, b: Bits): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** GatherElements on a 2-D codebook, as onnxruntime computes it; undefined when an index is out of range. */
function gatherElements(
  codebook: Bits,
  codebookDims: readonly number[],
  indices: ArrayLike<number>,
  gatherDims: readonly number[],
  axis: number,
): Bits | undefined {
  const [rows, cols] = gatherDims;
  const [cbRows, cbCols] = codebookDims;
  if (indices.length !== rows * cols || codebook.length !== cbRows * cbCols) return undefined;
  if (axis === 1 ? rows > cbRows : cols > cbCols) return undefined;
  const limit = axis === 1 ? cbCols : cbRows;
  const bits = newBits(codebook, rows * cols);
  for (let r = 0, p = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, p++) {
      const k = indices[p];
      if (!(k < limit)) return undefined;
      bits[p] = axis === 1 ? codebook[r * cbCols + k] : codebook[k * cbCols + c];
    }
  }
  return bits;
}

/** Gather from a flat codebook at indices + offsets (offsets [rows, 1] or [1, cols], broadcast). */
function gatherFlat(
  codebook: Bits,
  indices: ArrayLike<number>,
  gatherDims: readonly number[],
  offsets: ArrayLike<number>,
  offsetDims: readonly number[],
): Bits | undefined {
  const [rows, cols] = gatherDims;
  const perRow = offsetDims[0] === rows && offsetDims[1] === 1 && offsets.length === rows;
  const perCol = offsetDims[0] === 1 && offsetDims[1] === cols && offsets.length === cols;
  if (indices.length !== rows * cols || !(perRow || perCol)) return undefined;
  const bits = newBits(codebook, rows * cols);
  for (let r = 0, p = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++, p++) {
      const k = indices[p] + offsets[perRow ? r : c];
      if (!(k >= 0 && k < codebook.length)) return undefined;
      bits[p] = codebook[k];
    }
  }
  return bits;
}

/** The Reshapes and Transposes after the gather; undefined when a shape does not fit. */
function applyPost(bits: Bits, dims: readonly number[], post: readonly PostOp[]): { bits: Bits; dims: number[] } | undefined {
  let out = { bits, dims: [...dims] };
  for (const o of post) {
    if (o.op === 'Reshape') {
      if (!o.shape.every((d) => Number.isSafeInteger(d) && d > 0) || elementCount(o.shape) !== out.bits.length) return undefined;
      out = { bits: out.bits, dims: [...o.shape] };
    } else {
      if (o.perm.length !== out.dims.length || [...o.perm].sort((a, b) => a - b).some((v, i) => v !== i)) return undefined;
      out = { bits: transpose(out.bits, out.dims, o.perm) as Bits, dims: o.perm.map((p) => out.dims[p]) };
    }
  }
  return out;
}

/** Replaces the weight's constant by its codebook, indices and the chain that rebuilds it (same value name). */
function applyPack(graph: Graph, layout: NeuronLayout, plan: Plan): void {
  const { value, tensor } = layout;
  const { geometry } = plan;
  const dataType = tensor.dataType;
  const constantNode = isConstantNodeValue(graph, value) ? graph.producer(value)! : undefined;
  // New nodes go where the weight was defined (Constant style), or before its first reader.
  const readers = new Set(graph.consumers(value));
  const anchor = constantNode ?? graph.nodes.find((n) => readers.has(n))!;
  const base = `${value}/${PACK_MARK}`;
  const add = (what: string, type: number, dims: readonly number[], data: TensorData) =>
    addConstant(graph, `${base}/${what}`, type, dims, data, anchor, value);
  const indexType = plan.indices instanceof Uint8Array ? DataType.UINT8 : DataType.UINT16;
  const names: ChainNames = {
    codebook: add('codebook', dataType, plan.codebookDims, asData(plan.codebook, dataType)),
    indices: add('indices', indexType, geometry.gatherDims, plan.indices),
    offsets: plan.offsets && add('offsets', DataType.INT32, geometry.axis === 1 ? [layout.neurons, 1] : [1, layout.neurons], plan.offsets),
    shapes: geometry.post.map((o) => (o.op === 'Reshape' ? add('shape', DataType.INT64, [o.shape.length], BigInt64Array.from(o.shape.map(BigInt))) : '')),
  };
  // The original constant goes before the chain that takes over its name is added. A Constant node's
  // name passes to the codebook's, so that unpacking restores it.
  let before: Node | undefined = anchor;
  if (constantNode) {
    const codebookNode = graph.producer(names.codebook)!.proto as { name?: string };
    if (constantNode.name) codebookNode.name = constantNode.name;
    else delete codebookNode.name; // unnamed, as paddle2onnx writes its Constants
    before = graph.nodes[graph.nodes.indexOf(constantNode) + 1];
    graph.removeNode(constantNode);
  } else {
    // The new initializers take the original's place in the file (unpacking puts it back there).
    const list = graph.proto.initializer;
    const at = list.findIndex((t) => t.name === value);
    const added = new Set([names.codebook, names.indices, names.offsets, ...names.shapes]);
    const moved = list.filter((t) => added.has(t.name));
    graph.removeInitializer(value);
    const rest = list.filter((t) => !added.has(t.name));
    list.splice(0, list.length, ...rest.slice(0, at), ...moved, ...rest.slice(at));
  }
  addChain(graph, base, value, plan, names, before);
}

interface ChainNames {
  codebook: string;
  indices: string;
  offsets: string | undefined;
  shapes: string[];
}

function addChain(graph: Graph, base: string, value: string, plan: Plan, names: ChainNames, before: Node | undefined): void {
  const { geometry } = plan;
  const name = (op: string) => graph.uniqueName(`${base}/${op}`);
  const out = (what: string) => graph.uniqueName(`${base}/${what}`);
  const at = { before };
  let index = out('indices_wide');
  let current = out('gathered');
  if (plan.form === 'GatherElements') {
    graph.addNode({ opType: 'Cast', name: name('Cast'), inputs: [names.indices], outputs: [index], attributes: { to: DataType.INT64 } }, at);
    graph.addNode(
      { opType: 'GatherElements', name: name('GatherElements'), inputs: [names.codebook, index], outputs: [current], attributes: { axis: geometry.axis } },
      at,
    );
  } else {
    graph.addNode({ opType: 'Cast', name: name('Cast'), inputs: [names.indices], outputs: [index], attributes: { to: DataType.INT32 } }, at);
    const global = out('global_indices');
    graph.addNode({ opType: 'Add', name: name('Add'), inputs: [index, names.offsets!], outputs: [global] }, at);
    index = global;
    graph.addNode({ opType: 'Gather', name: name('Gather'), inputs: [names.codebook, index], outputs: [current], attributes: { axis: 0 } }, at);
  }
  geometry.post.forEach((o, i) => {
    const next = i === geometry.post.length - 1 ? value : out(o.op === 'Reshape' ? 'reshaped' : 'transposed');
    if (o.op === 'Reshape') graph.addNode({ opType: 'Reshape', name: name('Reshape'), inputs: [current, names.shapes[i]], outputs: [next] }, at);
    else graph.addNode({ opType: 'Transpose', name: name('Transpose'), inputs: [current], outputs: [next], attributes: { perm: o.perm } }, at);
    current = next;
  });
}

/**
 * Puts plain tensors back for every packed weight (a marked Cast → GatherElements, or Cast → Add → Gather,
 * then Reshape/Transpose chain of constants), exactly as they were packed, in the model's storage style,
 * and removes the chain. Returns the model. The model readers call it, so a packed model loads like any
 * other: it can be inspected, validated or pruned again.
 */
export function unpackModel(model: Model): Model {
  const graph = model.graph;
  const isMarkedGather = (n: Node) => (n.opType === 'GatherElements' || n.opType === 'Gather') && n.domain === '' && n.name.includes(PACK_MARK);
  if (!graph.nodes.some(isMarkedGather)) return model;
  for (const gather of graph.nodes.filter(isMarkedGather)) {
    const m = matchChain(graph, gather);
    if (!m) continue;
    // The plain tensor goes where the codebook was, under the codebook node's name (the original's).
    const codebookNode = isConstantNodeValue(graph, gather.input(0)) ? graph.producer(gather.input(0)) : undefined;
    const gone = new Set([...m.nodes, ...m.constants.map((v) => graph.producer(v))]);
    const at = codebookNode ? graph.nodes.indexOf(codebookNode) : graph.proto.initializer.findIndex((t) => t.name === gather.input(0));
    const before = codebookNode ? graph.nodes.slice(at).find((n) => !gone.has(n)) : undefined;
    for (const n of m.nodes) graph.removeNode(n);
    removeIfUnused(graph, m.constants);
    const tensor = Tensor.create(m.output, m.dataType, m.dims, asData(m.bits, m.dataType));
    if (codebookNode) {
      graph.addNode({ opType: 'Constant', inputs: [], outputs: [m.output], name: codebookNode.name || undefined, attributes: { value: tensor } }, { before });
    } else {
      graph.addInitializer(tensor);
      // Back in its original place among the initializers (the writer keeps proto order).
      const list = graph.proto.initializer;
      list.splice(Math.min(at, list.length - 1), 0, list.pop()!);
    }
  }
  graph.pruneValueInfo();
  return model;
}

interface MatchedChain {
  nodes: Node[];
  constants: string[];
  output: string;
  bits: Bits;
  dims: number[];
  dataType: number;
}

/** The packed chain around a marked gather, evaluated; undefined when it is not one that packPass wrote. */
function matchChain(graph: Graph, gather: Node): MatchedChain | undefined {
  const only = (value: string, reader: Node) => graph.consumers(value).length === 1 && !graph.isGraphOutput(value) && graph.consumers(value)[0] === reader;
  const codebook = graph.constant(gather.input(0));
  if (!codebook || !PACKABLE.has(codebook.dataType)) return undefined;
  const nodes: Node[] = [gather];
  const constants = [gather.input(0)];
  let offsets: Tensor | undefined;
  let castOut = gather.input(1);
  if (gather.opType === 'Gather') {
    const add = graph.producer(gather.input(1));
    if (codebook.dims.length !== 1 || gather.attrInt('axis', 0) !== 0 || !add || add.opType !== 'Add' || !only(add.outputs[0], gather)) return undefined;
    offsets = graph.constant(add.input(1));
    if (!offsets || offsets.dataType !== DataType.INT32 || offsets.dims.length !== 2) return undefined;
    nodes.unshift(add);
    constants.push(add.input(1));
    castOut = add.input(0);
  } else if (codebook.dims.length !== 2) return undefined;
  const cast = graph.producer(castOut);
  if (!cast || cast.opType !== 'Cast' || cast.domain !== '' || !only(castOut, nodes[0])) return undefined;
  const to = cast.attrInt('to', 0);
  if (to !== DataType.INT64 && to !== DataType.INT32) return undefined;
  const indices = graph.constant(cast.input(0));
  if (!indices || (indices.dataType !== DataType.UINT8 && indices.dataType !== DataType.UINT16) || indices.dims.length !== 2) {
    return undefined;
  }
  nodes.unshift(cast);
  constants.push(cast.input(0));
  const post: PostOp[] = [];
  let current = gather.outputs[0];
  for (;;) {
    if (graph.isGraphOutput(current)) break;
    const readers = graph.consumers(current);
    const next = readers.length === 1 ? readers[0] : undefined;
    if (!next || next.domain !== '' || !next.name.includes(PACK_MARK) || next.input(0) !== current) break;
    if (next.opType === 'Reshape') {
      const shape = graph.constant(next.input(1));
      if (!shape || shape.dataType !== DataType.INT64) break;
      post.push({ op: 'Reshape', shape: Array.from(shape.data as BigInt64Array, Number) });
      constants.push(next.input(1));
    } else if (next.opType === 'Transpose') {
      const perm = next.attrInts('perm');
      if (!perm) break;
      post.push({ op: 'Transpose', perm });
    } else break;
    nodes.push(next);
    current = next.outputs[0];
  }
  if (current === gather.outputs[0]) return undefined;
  const idx = indices.data as Uint8Array | Uint16Array;
  const rows = offsets
    ? gatherFlat(bitsOf(codebook.data), idx, indices.dims, offsets.data as Int32Array, offsets.dims)
    : gatherElements(bitsOf(codebook.data), codebook.dims, idx, indices.dims, gather.attrInt('axis', 0));
  const result = rows && applyPost(rows, indices.dims, post);
  if (!result) return undefined;
  return { nodes, constants, output: current, bits: result.bits, dims: result.dims, dataType: codebook.dataType };
}
