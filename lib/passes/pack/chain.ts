/**
 * The chain of constant ops that rebuilds a packed weight in the graph, under the weight's own name.
 * With one index per word (8- or 16-bit indices), the words are a uint8/uint16 tensor on the neuron grid:
 *
 *     words --Cast(int32)--> Add(offsets) --> Gather(codebook) [--Reshape]--> W
 *
 * With several indices per word, the words are [count, bytes] uint8 and are taken apart first:
 *
 *     words --Cast(int32)--> [Mul(256^i)--ReduceSum] --> Div(2^(bits*t)) --> Mod(2^bits) --> Reshape [--Slice--Reshape]
 *           --Add(offsets)--> Gather(codebook) [--Reshape]--> W
 *
 * Below opset 10 Mod is Div, Mul and Sub; below 13 ReduceSum's axes is an attribute, below 10 Slice's
 * bounds are. Every op exists from opset 7, every input is a constant, so onnxruntime folds the chain
 * when it creates the session. The indices lie in the tensor's own element order seen as the layer's
 * neuron grid (lib/layers/grid.ts), so the per-neuron codebook offsets broadcast over it and no transpose
 * is needed.
 *
 * `rebuild` computes in TypeScript what the chain computes: the reader uses it, after `matchChain`, to
 * put the plain tensor back, and the tests hold it to onnxruntime's result.
 */
import { DataType, isFloatType, layoutOf, type TensorData } from '../../model/dtype';
import type { Graph, Node } from '../../model/graph';
import { elementCount, type Tensor } from '../../model/tensor';
import { elementOffsets, type NeuronGrid } from '../../layers';
import { WIDTH_FORMATS, fromWords, wordCount, type WordFormat } from './words';

/** In the name of every node of a packed weight's chain; how the reader recognises one. */
export const PACK_MARK = 'redpp_pack';

/** Elements as unsigned integers of the same width: packing moves bit patterns, so it is exact. */
export type Bits = Uint16Array | Uint32Array | BigUint64Array;

export function bitsOf(data: TensorData): Bits {
  const w = data.BYTES_PER_ELEMENT;
  if (w === 2) return new Uint16Array(data.buffer, data.byteOffset, data.length);
  if (w === 4) return new Uint32Array(data.buffer, data.byteOffset, data.length);
  return new BigUint64Array(data.buffer, data.byteOffset, data.length);
}

export function newBits(like: Bits, length: number): Bits {
  return new (like.constructor as new (n: number) => Bits)(length);
}

/** What a packed weight is made of. */
export interface PackedParts {
  /** The weights' element type; the codebook has it. */
  dataType: number;
  /** Every neuron's distinct values end to end (bit patterns). */
  codebook: Bits;
  /** Where each neuron's values start in the codebook, in the neuron order of `grid`. */
  offsets: Int32Array;
  format: WordFormat;
  /** Each weight's index into its neuron's values, as words (words.ts; stored as wordsTensor says). */
  words: Uint8Array;
  /** The tensor's own dims, and the same elements seen as the neuron grid the indices are laid out on. */
  dims: number[];
  grid: NeuronGrid;
}

/** Dims of the offsets constant: the grid's, 1 on the axes within a neuron's row (so it broadcasts). */
function offsetDims(grid: NeuronGrid): number[] {
  return grid.dims.map((d, a) => (grid.neuronAxes.includes(a) ? d : 1));
}

/** The tensor the chain computes, as bit patterns; undefined when an index points outside its neuron's codebook. */
export function rebuild(parts: PackedParts): Bits | undefined {
  const { neuronAt, placeAt } = elementOffsets(parts.grid);
  const size = elementCount(parts.grid.dims);
  const indices = fromWords(parts.words, parts.format, size);
  const out = newBits(parts.codebook, size);
  const { codebook, offsets } = parts;
  for (let n = 0; n < neuronAt.length; n++) {
    const start = offsets[n];
    const end = n + 1 < offsets.length ? offsets[n + 1] : codebook.length;
    for (let c = 0; c < placeAt.length; c++) {
      const e = neuronAt[n] + placeAt[c];
      const k = start + indices[e];
      if (!(k < end)) return undefined;
      out[e] = codebook[k];
    }
  }
  return out;
}

/** Where the chain goes: into the graph (applyPack in index.ts), or into a tally of the bytes it would write (measuringSite). */
export interface ChainSite {
  /** `${value}/${PACK_MARK}`: the prefix of every name in the chain. */
  base: string;
  opset: number;
  /** Adds a constant and returns its name. */
  constant(what: string, dataType: number, dims: readonly number[], data: TensorData): string;
  /** Adds a node and returns its output's name (`output` when given). */
  node(opType: string, inputs: string[], attributes: Record<string, number | number[]>, output?: string): string;
}

/**
 * A site that adds nothing and counts the bytes the chain would add to the file: tensor data plus the
 * protobuf fields around it (names, dims, attributes), as an initializer or as a Constant node.
 */
export function measuringSite(base: string, opset: number, constantNodes: boolean): ChainSite & { bytes: number } {
  const field = (length: number) => length + 1 + (length < 128 ? 1 : length < 16384 ? 2 : 4);
  const site = {
    base,
    opset,
    bytes: 0,
    constant(what: string, dataType: number, dims: readonly number[], data: TensorData) {
      const name = `${base}/${what}`;
      const tensor = field(name.length) + dims.length * 3 + 2 + field(data.byteLength);
      site.bytes += field(constantNodes ? field('Constant'.length) + 2 * field(name.length) + field(tensor + 10) : tensor);
      return name;
    },
    node(opType: string, inputs: string[], attributes: Record<string, number | number[]>, output?: string) {
      const out = output ?? `${base}/${opType.toLowerCase()}`;
      const attrs = Object.entries(attributes).reduce((a, [k, v]) => a + field(field(k.length) + 2 + (Array.isArray(v) ? v.length * 3 + 2 : 3)), 0);
      site.bytes += field(field(opType.length) + field(`${base}/${opType}`.length) + inputs.reduce((a, i) => a + field(i.length), 0) + field(out.length) + attrs);
      return out;
    },
  };
  return site;
}

/** The words tensor's element type and dims: one index per element on the grid, or [count, bytes] bytes. */
export function wordsTensor(format: WordFormat, grid: NeuronGrid): { dataType: number; dims: number[] } {
  if (format.fields === 1) return { dataType: format.bytes === 2 ? DataType.UINT16 : DataType.UINT8, dims: grid.dims };
  return { dataType: DataType.UINT8, dims: [wordCount(format, elementCount(grid.dims)), format.bytes] };
}

/** Adds the chain that rebuilds `parts` as `output`. */
export function addChain(parts: PackedParts, site: ChainSite, output: string): void {
  const { format, grid } = parts;
  const ints = (values: number[]) => Int32Array.from(values);
  const int64s = (values: number[]) => BigInt64Array.from(values.map(BigInt));
  const op = (opType: string, inputs: string[], attributes: Record<string, number | number[]> = {}, out?: string) => site.node(opType, inputs, attributes, out);
  const shape = (dims: number[]) => site.constant('shape', DataType.INT64, [dims.length], int64s(dims));
  const stored = wordsTensor(format, grid);
  const data = format.bytes === 2 ? new Uint16Array(parts.words.buffer, parts.words.byteOffset, parts.words.length / 2) : parts.words;
  const words = op('Cast', [site.constant('words', stored.dataType, stored.dims, data)], { to: DataType.INT32 });

  let local = words;
  if (format.fields > 1) {
    let word = words;
    if (format.bytes > 1) {
      const radix = site.constant('radix', DataType.INT32, [format.bytes], ints(Array.from({ length: format.bytes }, (_, i) => 256 ** i)));
      const weighted = op('Mul', [word, radix]);
      word =
        site.opset >= 13
          ? op('ReduceSum', [weighted, site.constant('axes', DataType.INT64, [1], int64s([1]))], { keepdims: 1 })
          : op('ReduceSum', [weighted], { axes: [1], keepdims: 1 });
    }
    const shifts = site.constant('shifts', DataType.INT32, [format.fields], ints(Array.from({ length: format.fields }, (_, t) => 2 ** (format.bits * t))));
    const modulus = site.constant('modulus', DataType.INT32, [], ints([2 ** format.bits]));
    const shifted = op('Div', [word, shifts]);
    const fields = site.opset >= 10 ? op('Mod', [shifted, modulus]) : op('Sub', [shifted, op('Mul', [op('Div', [shifted, modulus]), modulus])]);
    const size = elementCount(grid.dims);
    const padded = stored.dims[0] * format.fields;
    let flat = fields;
    if (padded !== size) {
      flat = op('Reshape', [fields, shape([padded])]);
      flat =
        site.opset >= 10
          ? op('Slice', [flat, ...[0, size, 0].map((v, i) => site.constant(['starts', 'ends', 'axes'][i], DataType.INT64, [1], int64s([v])))])
          : op('Slice', [flat], { starts: [0], ends: [size], axes: [0] });
    }
    local = op('Reshape', [flat, shape(grid.dims)]);
  }
  const global = op('Add', [local, site.constant('offsets', DataType.INT32, offsetDims(grid), parts.offsets)]);
  const codebook = site.constant('codebook', parts.dataType, [parts.codebook.length], asData(parts.codebook, parts.dataType));
  const sameDims = grid.dims.join() === parts.dims.join();
  const gathered = op('Gather', [codebook, global], { axis: 0 }, sameDims ? output : undefined);
  if (!sameDims) op('Reshape', [gathered, shape(parts.dims)], {}, output);
}

/** Bits as the tensor's own array type (a view, no copy). */
export function asData(bits: Bits, dataType: number): TensorData {
  const { array } = layoutOf(dataType, 'packed weight');
  return new array(bits.buffer, bits.byteOffset, bits.length);
}

/** A packed weight found in a graph: its chain, the constants only it reads, and what it rebuilds. */
export interface MatchedChain {
  nodes: Node[];
  constants: string[];
  output: string;
  parts: PackedParts;
}

/**
 * The chain that ends in the marked Gather `gather`, read back; undefined when it is not one that
 * addChain wrote (such a chain is left in the graph as it is: it still computes its weight).
 */
export function matchChain(graph: Graph, gather: Node): MatchedChain | undefined {
  const nodes: Node[] = [gather];
  const constants: string[] = [];
  const marked = (n: Node | undefined): n is Node => n !== undefined && n.domain === '' && n.name.includes(PACK_MARK);
  const from = (value: string, opType: string): Node | undefined => {
    const n = graph.producer(value);
    if (!marked(n) || n.opType !== opType) return undefined;
    nodes.push(n);
    return n;
  };
  const constant = (value: string, dataTypes: number[]): Tensor | undefined => {
    const t = graph.constant(value);
    if (!t || !dataTypes.includes(t.dataType)) return undefined;
    constants.push(value);
    return t;
  };
  const numbers = (t: Tensor | undefined) => (t ? Array.from(t.data as ArrayLike<number | bigint>, Number) : undefined);
  const same = (a: number[] | undefined, b: number[]) => a !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
  const FLOAT_TYPES = Object.values(DataType).filter(isFloatType);

  const codebook = constant(gather.input(0), FLOAT_TYPES);
  if (!codebook || codebook.dims.length !== 1 || gather.attrInt('axis', 0) !== 0) return undefined;
  const add = from(gather.input(1), 'Add');
  const offsets = add && constant(add.input(1), [DataType.INT32]);
  if (!add || !offsets) return undefined;
  const grid = { dims: [...offsets.dims], neuronAxes: offsets.dims.map((_, a) => a).filter((a) => offsets.dims[a] > 1) };

  // One index per word: the words are on the grid, and Cast is all there is.
  let castOut = add.input(0);
  let format: WordFormat | undefined;
  const toGrid = graph.producer(castOut)?.opType === 'Reshape' ? from(castOut, 'Reshape') : undefined;
  if (toGrid) {
    const gridDims = numbers(constant(toGrid.input(1), [DataType.INT64]));
    if (!gridDims || gridDims.length !== grid.dims.length || !offsets.dims.every((d, a) => d === 1 || d === gridDims[a])) return undefined;
    grid.dims = gridDims;
    const size = elementCount(gridDims);
    let fields = toGrid.input(0);
    const slice = graph.producer(fields)?.opType === 'Slice' ? from(fields, 'Slice') : undefined;
    if (slice) {
      const bound = (name: string, input: number) =>
        slice.inputs.length > 1 ? numbers(constant(slice.input(input), [DataType.INT64])) : slice.attrInts(name);
      const steps = slice.inputs.length > 4 ? numbers(constant(slice.input(4), [DataType.INT64])) : [1];
      if (!same(bound('starts', 1), [0]) || !same(bound('ends', 2), [size]) || !same(bound('axes', 3), [0]) || !same(steps, [1])) return undefined;
      const flatten = from(slice.input(0), 'Reshape');
      if (!flatten || !constant(flatten.input(1), [DataType.INT64])) return undefined;
      fields = flatten.input(0);
    }
    // mod 2^bits: Mod, or Sub(q, Mul(Div(q, m), m)).
    let shifted: Node | undefined;
    let modulus: number[] | undefined;
    const mod = graph.producer(fields)?.opType === 'Mod' ? from(fields, 'Mod') : undefined;
    if (mod) {
      if (mod.attrInt('fmod', 0) !== 0) return undefined;
      shifted = from(mod.input(0), 'Div');
      modulus = numbers(constant(mod.input(1), [DataType.INT32]));
    } else {
      const sub = from(fields, 'Sub');
      const mul = sub && from(sub.input(1), 'Mul');
      const half = mul && from(mul.input(0), 'Div');
      shifted = sub && from(sub.input(0), 'Div');
      if (!half || !shifted || half.input(0) !== sub!.input(0) || half.input(1) !== mul!.input(1)) return undefined;
      modulus = numbers(constant(mul!.input(1), [DataType.INT32]));
    }
    if (!shifted || modulus?.length !== 1) return undefined;
    format = WIDTH_FORMATS.find((f) => 2 ** f.bits === modulus![0] && f.fields > 1);
    const shifts = numbers(constant(shifted.input(1), [DataType.INT32]));
    if (!format || !same(shifts, Array.from({ length: format.fields }, (_, t) => 2 ** (format!.bits * t)))) return undefined;
    castOut = shifted.input(0);
    if (format.bytes > 1) {
      const sum = from(castOut, 'ReduceSum');
      const axes = sum && (sum.inputs.length > 1 ? numbers(constant(sum.input(1), [DataType.INT64])) : sum.attrInts('axes'));
      const mul = sum && from(sum.input(0), 'Mul');
      const radix = mul && numbers(constant(mul.input(1), [DataType.INT32]));
      if (!sum || !mul || !same(axes, [1]) || sum.attrInt('keepdims', 1) !== 1) return undefined;
      if (!same(radix, Array.from({ length: format.bytes }, (_, i) => 256 ** i))) return undefined;
      castOut = mul.input(0);
    }
  }
  const cast = from(castOut, 'Cast');
  const wordsConst = cast && graph.constant(cast.input(0));
  if (!cast || !wordsConst || cast.attrInt('to', 0) !== DataType.INT32) return undefined;
  if (!format) {
    format = WIDTH_FORMATS.find((f) => f.fields === 1 && wordsTensor(f, grid).dataType === wordsConst.dataType);
    grid.dims = [...wordsConst.dims];
    if (!format || !offsets.dims.every((d, a) => d === 1 || d === grid.dims[a]) || offsets.dims.length !== grid.dims.length) return undefined;
  }
  const stored = wordsTensor(format, grid);
  if (!constant(cast.input(0), [stored.dataType]) || !same(wordsConst.dims, stored.dims)) return undefined;
  const size = elementCount(grid.dims);

  // After the gather: the Reshape back to the tensor's dims, when the grid differs from them.
  let output = gather.outputs[0];
  let dims = grid.dims;
  const readers = graph.consumers(output);
  if (!graph.isGraphOutput(output) && readers.length === 1 && marked(readers[0]) && readers[0].opType === 'Reshape' && readers[0].input(0) === output) {
    const reshape = readers[0];
    const shape = numbers(constant(reshape.input(1), [DataType.INT64]));
    if (!shape || elementCount(shape) !== size) return undefined;
    nodes.push(reshape);
    output = reshape.outputs[0];
    dims = shape;
  }
  // Every value inside the chain is read only by the chain.
  const inChain = new Set(nodes);
  for (const n of nodes) {
    if (n.outputs[0] === output) continue;
    if (graph.isGraphOutput(n.outputs[0]) || !graph.consumers(n.outputs[0]).every((r) => inChain.has(r))) return undefined;
  }
  const offsetList = offsets.data as Int32Array;
  if (!offsetList.every((o, n) => o >= 0 && (n === 0 || o >= offsetList[n - 1]))) return undefined;
  const d = wordsConst.data;
  const parts: PackedParts = {
    dataType: codebook.dataType,
    codebook: bitsOf(codebook.data),
    offsets: offsetList,
    format,
    words: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
    dims,
    grid,
  };
  return { nodes: graph.nodes.filter((n) => inChain.has(n)), constants, output, parts };
}
