/**
 * The first part of every codec chain that stores integers per weight (the palette's indices, the
 * uniform codec's levels): words of whole bytes (words.ts) taken apart by int32 ops into one integer per
 * element of the layer's grid.
 *
 * With one integer per word (8- or 16-bit), the words are a uint8/uint16 tensor on the grid and a Cast
 * is all there is:
 *
 *     words --Cast(to)--> indices
 *
 * With several per word, the words are [count, bytes] uint8 and are taken apart first:
 *
 *     words --Cast(int32)--> [Mul(256^i)--ReduceSum] --> Div(2^(bits*t)) --> Mod(2^bits) --> Reshape [--Slice--Reshape]
 *           [--Cast(to)]--> indices
 *
 * Below opset 10 Mod is Div, Mul and Sub; below 13 ReduceSum's axes is an attribute, below 10 Slice's
 * bounds are. Every op exists from opset 7, every input is a constant, so onnxruntime folds the chain
 * when it creates the session. The integers lie in the tensor's own element order seen as the layer's
 * grid (lib/layers/grid.ts), so per-neuron constants (offsets, scales) broadcast over it and no
 * transpose is needed.
 */
import type { NeuronGrid } from '../../layers';
import { DataType } from '../../model/dtype';
import { elementCount } from '../../model/tensor';
import type { ChainReader } from './match';
import { same } from './match';
import type { ByteCount, ChainSite } from './site';
import { WIDTH_FORMATS, wordCount, type WordFormat } from './words';

/** The words tensor's element type and dims: one integer per element on the grid, or [count, bytes] bytes. */
export function wordsTensor(format: WordFormat, grid: NeuronGrid): { dataType: number; dims: number[] } {
  if (format.fields === 1) return { dataType: format.bytes === 2 ? DataType.UINT16 : DataType.UINT8, dims: grid.dims };
  return { dataType: DataType.UINT8, dims: [wordCount(format, elementCount(grid.dims)), format.bytes] };
}

/** Dims of a per-neuron constant on the grid: the grid's, 1 on the axes within a neuron's row (so it broadcasts). */
export function perNeuronDims(grid: NeuronGrid): number[] {
  return grid.dims.map((d, a) => (grid.neuronAxes.includes(a) ? d : 1));
}

/** The neuron axes a per-neuron constant of these dims implies (those longer than 1). */
export function neuronAxesOf(dims: readonly number[]): number[] {
  return dims.map((_, a) => a).filter((a) => dims[a] > 1);
}

/**
 * Adds the ops that turn `words` (as words.ts lays them out, or only their size for a dry run) into one
 * integer per element of `grid`, as element type `to` (INT32 for gather indices, FLOAT for arithmetic);
 * returns the value holding them.
 */
export function addIndices(site: ChainSite, format: WordFormat, grid: NeuronGrid, words: Uint8Array | ByteCount, to: number): string {
  const ints = (values: number[]) => Int32Array.from(values);
  const int64s = (values: number[]) => BigInt64Array.from(values.map(BigInt));
  const op = (opType: string, inputs: string[], attributes: Record<string, number | number[]> = {}) => site.node(opType, inputs, attributes);
  const shape = (dims: number[]) => site.constant('shape', DataType.INT64, [dims.length], int64s(dims));
  const stored = wordsTensor(format, grid);
  const data = format.bytes === 2 && words instanceof Uint8Array ? new Uint16Array(words.buffer, words.byteOffset, words.length / 2) : words;
  const single = format.fields === 1;
  const cast = op('Cast', [site.constant('words', stored.dataType, stored.dims, data)], { to: single ? to : DataType.INT32 });
  if (single) return cast;
  let word = cast;
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
  const onGrid = op('Reshape', [flat, shape(grid.dims)]);
  return to === DataType.INT32 ? onGrid : op('Cast', [onGrid], { to });
}

/** The integers a chain holds, read back: their word format, the grid dims, and the words. */
export interface MatchedIndices {
  format: WordFormat;
  gridDims: number[];
  words: Uint8Array;
  /** The words constant's name. */
  wordsValue: string;
}

/**
 * The chain part that addIndices() wrote ending in `value`, cast to `to`; undefined when it is not one.
 * `perNeuron` are the dims of the chain's per-neuron constant (they must fit the grid).
 */
export function matchIndices(reader: ChainReader, value: string, to: number, perNeuron: readonly number[]): MatchedIndices | undefined {
  const gridFits = (dims: readonly number[]) => dims.length === perNeuron.length && perNeuron.every((d, a) => d === 1 || d === dims[a]);
  let castOut = value;
  let format: WordFormat | undefined;
  let gridDims: number[] | undefined;
  // A Cast after the grid's Reshape (to a float), or none (int32 indices).
  const multiField = to === DataType.INT32 ? reader.producedBy(value, 'Reshape') : reader.producedBy(value, 'Cast') && isReshapeBehindCast(reader, value);
  if (multiField) {
    if (to !== DataType.INT32) {
      const last = reader.from(value, 'Cast');
      if (!last || last.attrInt('to', 0) !== to) return undefined;
      castOut = last.input(0);
    }
    const toGrid = reader.from(castOut, 'Reshape')!;
    gridDims = reader.numbers(toGrid.input(1), [DataType.INT64]);
    if (!gridDims || !gridFits(gridDims)) return undefined;
    const size = elementCount(gridDims);
    let fields = toGrid.input(0);
    if (reader.producedBy(fields, 'Slice')) {
      const slice = reader.from(fields, 'Slice')!;
      const bound = (name: string, input: number) => (slice.inputs.length > 1 ? reader.numbers(slice.input(input), [DataType.INT64]) : slice.attrInts(name));
      const steps = slice.inputs.length > 4 ? reader.numbers(slice.input(4), [DataType.INT64]) : [1];
      if (!same(bound('starts', 1), [0]) || !same(bound('ends', 2), [size]) || !same(bound('axes', 3), [0]) || !same(steps, [1])) return undefined;
      const flatten = reader.from(slice.input(0), 'Reshape');
      if (!flatten || !reader.constant(flatten.input(1), [DataType.INT64])) return undefined;
      fields = flatten.input(0);
    }
    // mod 2^bits: Mod, or Sub(q, Mul(Div(q, m), m)).
    let shifted: ReturnType<ChainReader['from']>;
    let modulus: number[] | undefined;
    if (reader.producedBy(fields, 'Mod')) {
      const mod = reader.from(fields, 'Mod')!;
      if (mod.attrInt('fmod', 0) !== 0) return undefined;
      shifted = reader.from(mod.input(0), 'Div');
      modulus = reader.numbers(mod.input(1), [DataType.INT32]);
    } else {
      const sub = reader.from(fields, 'Sub');
      const mul = sub && reader.from(sub.input(1), 'Mul');
      const half = mul && reader.from(mul.input(0), 'Div');
      shifted = sub && reader.from(sub.input(0), 'Div');
      if (!half || !shifted || half.input(0) !== sub!.input(0) || half.input(1) !== mul!.input(1)) return undefined;
      modulus = reader.numbers(mul!.input(1), [DataType.INT32]);
    }
    if (!shifted || modulus?.length !== 1) return undefined;
    format = WIDTH_FORMATS.find((f) => 2 ** f.bits === modulus![0] && f.fields > 1);
    const shifts = reader.numbers(shifted.input(1), [DataType.INT32]);
    if (!format || !same(shifts, Array.from({ length: format.fields }, (_, t) => 2 ** (format!.bits * t)))) return undefined;
    castOut = shifted.input(0);
    if (format.bytes > 1) {
      const sum = reader.from(castOut, 'ReduceSum');
      const axes = sum && (sum.inputs.length > 1 ? reader.numbers(sum.input(1), [DataType.INT64]) : sum.attrInts('axes'));
      const mul = sum && reader.from(sum.input(0), 'Mul');
      const radix = mul && reader.numbers(mul.input(1), [DataType.INT32]);
      if (!sum || !mul || !same(axes, [1]) || sum.attrInt('keepdims', 1) !== 1) return undefined;
      if (!same(radix, Array.from({ length: format.bytes }, (_, i) => 256 ** i))) return undefined;
      castOut = mul.input(0);
    }
  }
  const cast = reader.from(castOut, 'Cast');
  const wordsConst = cast && reader.graph.constant(cast.input(0));
  if (!cast || !wordsConst || cast.attrInt('to', 0) !== (format ? DataType.INT32 : to)) return undefined;
  if (!format) {
    format = WIDTH_FORMATS.find((f) => f.fields === 1 && wordsTensor(f, { dims: wordsConst.dims, neuronAxes: [] }).dataType === wordsConst.dataType);
    gridDims = [...wordsConst.dims];
    if (!format || !gridFits(gridDims)) return undefined;
  }
  const stored = wordsTensor(format, { dims: gridDims!, neuronAxes: [] });
  if (!reader.constant(cast.input(0), [stored.dataType]) || !same(wordsConst.dims, stored.dims)) return undefined;
  const d = wordsConst.data;
  return { format, gridDims: gridDims!, words: new Uint8Array(d.buffer, d.byteOffset, d.byteLength), wordsValue: cast.input(0) };
}

/** Whether `value` is a Cast of the grid's Reshape (the multi-integer form cast to a float). */
function isReshapeBehindCast(reader: ChainReader, value: string): boolean {
  const cast = reader.graph.producer(value)!;
  return reader.producedBy(cast.input(0), 'Reshape');
}
