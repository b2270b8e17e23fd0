/**
 * Coding one layer in the palette form (palette.ts): each group's distinct values (its codebook, by bit
 * pattern) and each weight's index among them, as words. Pure work on typed arrays, no graph: the pool's
 * workers run it (tasks.ts), layers in parallel and off the main thread.
 */
import { native } from '../../binding';
import { sharedSlice } from '../../kernels/pages';
import { elementOffsets, type NeuronGrid } from '../../layers';
import { DistinctRows } from '../distinct-rows';
import { newBits, type Bits } from './bits';
import { toWordsInPlace, wordFormat, type WordFormat } from './words';

/** Most distinct values per neuron that an index addresses (16 bits). */
export const MAX_CODES = 65536;

/** A layer's codebook (every neuron's values end to end), each neuron's offset into it, and the index words. */
export interface CodedLayer {
  codebook: Bits;
  offsets: Int32Array;
  format: WordFormat;
  words: Uint8Array;
  /** Codebook entries of the neuron with the most. */
  codes: number;
}

/**
 * Codes the weights `src` (bit patterns, laid out on `grid`); a string says why it cannot be. The
 * native kernel may share the neurons among `threads` CPU threads (the same outputs).
 */
export function codeLayer(src: Bits, grid: NeuronGrid, threads = 1): CodedLayer | string {
  const { neuronAt, placeAt } = elementOffsets(grid);
  const coded = native() ? codeNeuronsNative(src, neuronAt, placeAt, threads) : codeNeurons(src, neuronAt, placeAt);
  if (typeof coded === 'string') return coded;
  const { index, counts, firsts } = coded;
  let codes = 1;
  for (let n = 0; n < counts.length; n++) codes = Math.max(codes, counts[n]);
  const format = wordFormat(codes);
  const offsets = new Int32Array(counts.length);
  for (let n = 1; n < counts.length; n++) offsets[n] = offsets[n - 1] + counts[n - 1];
  const codebook = newBits(src, firsts.length);
  for (let k = 0; k < firsts.length; k++) codebook[k] = src[firsts[k]];
  // The index is not needed after: its words take its memory (half of it, or less, for 8 bits or fewer).
  return { codebook, offsets, format, words: toWordsInPlace(index, format), codes };
}

type Coded = { index: Uint8Array | Uint16Array; counts: Uint32Array; firsts: Uint32Array } | string;

const tooMany = `a neuron has more than ${MAX_CODES} distinct values`;

/**
 * codeNeurons() by the native kernel (native/palette.cc), which matches it exactly. Indices of one byte
 * first, which most layers need (a hashed neuron has a few hundred values at most): the index is then
 * half the memory, and for 8-bit words it is the words. Fresh memory is the dear part here (VGG-16's
 * fc1: coding 102 M weights took 0.23 s into a used array, 0.85 s into a new one of two bytes each).
 * A neuron of more than 256 values codes again, two bytes each.
 */
export function codeNeuronsNative(src: Bits, neuronAt: Uint32Array, placeAt: Uint32Array, threads = 1): Coded {
  const addon = native()!;
  const wide = src instanceof BigUint64Array;
  const words = wide ? new Uint32Array(src.buffer, src.byteOffset, src.length * 2) : src;
  const counts = new Uint32Array(neuronAt.length);
  for (const Index of [Uint8Array, Uint16Array]) {
    const index = sharedSlice<Uint8Array | Uint16Array>(Index, src.length);
    const firsts = addon.codeNeurons(words, wide ? 2 : 1, neuronAt, placeAt, index, counts, threads);
    if (firsts) return { index, counts, firsts };
  }
  return tooMany;
}

/**
 * The reference of the palette coding (the native kernel must match it).
 * Each weight's index among its neuron's distinct values (numbered in order of first appearance along
 * the row), each neuron's count, and the element where each value first appears (neuron by neuron: the
 * codebook's order); a string when a neuron has more values than an index addresses. Values are told
 * apart by their bits (-0 is not 0: packing keeps every bit).
 */
export function codeNeurons(src: Bits, neuronAt: Uint32Array, placeAt: Uint32Array): Coded {
  const fanIn = placeAt.length;
  const wide = src instanceof BigUint64Array;
  const words = wide ? new Uint32Array(src.buffer, src.byteOffset, src.length * 2) : src;
  const width = wide ? 2 : 1;
  const values = new DistinctRows(words, width, fanIn);
  const index = new Uint16Array(src.length); // codes < 65536
  const counts = new Uint32Array(neuronAt.length);
  const firsts = new Uint32Array(src.length);
  let total = 0;
  for (let n = 0; n < neuronAt.length; n++) {
    values.reset();
    for (let c = 0; c < fanIn; c++) {
      const e = neuronAt[n] + placeAt[c];
      const known = values.count;
      const code = values.add(e * width);
      if (code === MAX_CODES) return tooMany;
      if (values.count > known) firsts[total++] = e;
      index[e] = code;
    }
    counts[n] = values.count;
  }
  return { index, counts, firsts: firsts.subarray(0, total) };
}
