/**
 * The palette form (the hash codec's export, and the lossless packing of any weights with few values
 * per neuron): every group's distinct values end to end (a codebook, in the weights' type or float16),
 * each group's offset into it, and one index per weight (indices.ts):
 *
 *     indices --Add(offsets)--> Gather(codebook [--Cast]) [--Reshape]--> W
 *
 * A group is a neuron, or every weight of the layer (one codebook): the grid says (lib/layers/grid.ts).
 * rebuild() computes in TypeScript what the chain computes: the reader uses it to put the plain tensor
 * back, and the tests hold it to onnxruntime's result.
 */
import { elementOffsets, type NeuronGrid } from '../../layers';
import { DataType, isFloatType, toFloat32 } from '../../model/dtype';
import { elementCount } from '../../model/tensor';
import { asData, bitsOf, newBits, type Bits } from './bits';
import { addIndices, matchIndices, perNeuronDims } from './indices';
import { ChainReader } from './match';
import type { ByteCount, ChainSite } from './site';
import { fromWords, type WordFormat } from './words';

/** What a palette-coded weight is made of. */
export interface PaletteParts {
  /** The weights' element type. */
  dataType: number;
  /** The codebook's element type: the weights' own, or FLOAT16 (cast to theirs in the graph). */
  codebookType: number;
  /** Every group's distinct values end to end (bit patterns of codebookType). */
  codebook: Bits | ByteCount;
  /** Where each group's values start in the codebook, in the group order of `grid`. */
  offsets: Int32Array | ByteCount;
  format: WordFormat;
  /** Each weight's index into its group's values, as words (words.ts). */
  words: Uint8Array | ByteCount;
  /** The tensor's own dims, and the same elements seen as the grid the indices are laid out on. */
  dims: number[];
  grid: NeuronGrid;
}

/** The constant that takes the original weight's place (and its Constant node's name). */
export const PALETTE_PRIMARY = 'codebook';

/** Adds the chain that rebuilds `parts` as `output`. */
export function addPalette(parts: PaletteParts, site: ChainSite, output: string): void {
  const { format, grid } = parts;
  const local = addIndices(site, format, grid, parts.words, DataType.INT32);
  const global = site.node('Add', [local, site.constant('offsets', DataType.INT32, perNeuronDims(grid), parts.offsets)], {});
  let codebook = site.constant(PALETTE_PRIMARY, parts.codebookType, [lengthOf(parts.codebook)], asDataOrSize(parts.codebook, parts.codebookType));
  if (parts.codebookType !== parts.dataType) codebook = site.node('Cast', [codebook], { to: parts.dataType });
  const sameDims = grid.dims.join() === parts.dims.join();
  const gathered = site.node('Gather', [codebook, global], { axis: 0 }, sameDims ? output : undefined);
  if (!sameDims) site.node('Reshape', [gathered, site.constant('shape', DataType.INT64, [parts.dims.length], BigInt64Array.from(parts.dims.map(BigInt)))], {}, output);
}

function lengthOf(codebook: Bits | ByteCount): number {
  return 'length' in codebook ? codebook.length : codebook.byteLength;
}

function asDataOrSize(codebook: Bits | ByteCount, dataType: number) {
  return ArrayBuffer.isView(codebook) ? asData(codebook as Bits, dataType) : codebook;
}

/** The tensor the chain computes, as bit patterns of the weights' type; undefined when an index points outside its group's codebook. */
export function rebuildPalette(parts: PaletteParts & { codebook: Bits; offsets: Int32Array; words: Uint8Array }): Bits | undefined {
  const { neuronAt, placeAt } = elementOffsets(parts.grid);
  const size = elementCount(parts.grid.dims);
  const indices = fromWords(parts.words, parts.format, size);
  const { offsets } = parts;
  // The codebook as the weights' type: a float16 codebook of float32 weights is widened exactly.
  const codebook = parts.codebookType === parts.dataType ? parts.codebook : bitsOf(toFloat32(parts.codebook as Uint16Array, DataType.FLOAT16));
  const out = newBits(codebook, size);
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

/** A palette chain read back out of a graph: what it is made of and what it passes through. */
export interface MatchedPalette {
  reader: ChainReader;
  /** The value the chain computes (the weight's name). */
  output: string;
  primary: string;
  parts: PaletteParts & { codebook: Bits; offsets: Int32Array; words: Uint8Array };
}

const FLOAT_TYPES = Object.values(DataType).filter(isFloatType);

/** The palette chain whose last node computes `output`; undefined when it is not one that addPalette wrote. */
export function matchPalette(reader: ChainReader, output: string): MatchedPalette | undefined {
  const top = reader.underReshape(output);
  if (!top) return undefined;
  let dims = top.dims;
  const gather = reader.from(top.value, 'Gather');
  if (!gather || gather.attrInt('axis', 0) !== 0) return undefined;
  let codebookValue = gather.input(0);
  let dataType: number | undefined;
  if (reader.producedBy(codebookValue, 'Cast')) {
    const cast = reader.from(codebookValue, 'Cast')!;
    dataType = cast.attrInt('to', 0);
    codebookValue = cast.input(0);
  }
  const primary = codebookValue;
  const codebook = reader.constant(codebookValue, FLOAT_TYPES);
  if (!codebook || codebook.dims.length !== 1) return undefined;
  dataType ??= codebook.dataType;
  if (dataType !== codebook.dataType && !(codebook.dataType === DataType.FLOAT16 && dataType === DataType.FLOAT)) return undefined;
  const add = reader.from(gather.input(1), 'Add');
  const offsets = add && reader.constant(add.input(1), [DataType.INT32]);
  if (!add || !offsets) return undefined;
  const indices = matchIndices(reader, add.input(0), DataType.INT32, offsets.dims);
  if (!indices) return undefined;
  const size = elementCount(indices.gridDims);
  dims ??= indices.gridDims;
  if (elementCount(dims) !== size) return undefined;
  const offsetList = offsets.data as Int32Array;
  if (!offsetList.every((o, n) => o >= 0 && (n === 0 || o >= offsetList[n - 1]))) return undefined;
  if (!reader.closed(output)) return undefined;
  const neuronAxes = offsets.dims.map((_, a) => a).filter((a) => offsets.dims[a] > 1);
  return {
    reader,
    output,
    primary,
    parts: {
      dataType,
      codebookType: codebook.dataType,
      codebook: bitsOf(codebook.data),
      offsets: offsetList,
      format: indices.format,
      words: indices.words,
      dims,
      grid: { dims: indices.gridDims, neuronAxes },
    },
  };
}
