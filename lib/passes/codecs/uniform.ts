/**
 * The uniform form (the linear codec's export): per neuron a scale and an integer zero point, per
 * weight a level q of `bits` bits (indices.ts), and w = (q - zero point) * scale in float32:
 *
 *     levels --Cast(float)--> Sub(Cast(zero points)) --> Mul(scale [--Cast]) [--Cast(weights' type)] [--Reshape]--> W
 *
 * Zero points are uint8 (uint16 past 8 bits), scales float32 or float16 (cast up in the graph). (q - zero point) is exact in
 * float32 and the product rounds once, so the graph and rebuild() agree bit for bit. Not ONNX's
 * DequantizeLinear: onnxruntime (1.30) keeps that node in the graph for its quantized kernels and runs
 * it at every inference, where it folds these ops when it creates the session.
 */
import { elementOffsets, type NeuronGrid } from '../../layers';
import { DataType, fromNumbers, numberToFloat16Bits } from '../../model/dtype';
import { elementCount } from '../../model/tensor';
import { addIndices, matchIndices, perNeuronDims } from './indices';
import type { ChainReader } from './match';
import type { ByteCount, ChainSite } from './site';
import { fromWords, type WordFormat } from './words';

export interface UniformParts {
  /** The weights' element type (FLOAT or FLOAT16: the product is cast to it). */
  dataType: number;
  format: WordFormat;
  /** Each weight's level, as words. */
  words: Uint8Array | ByteCount;
  /** Per neuron of `grid`: the zero point (an integer level: uint8, or uint16 for more than 8 bits) and the scale. */
  zeroPoint: Uint8Array | Uint16Array | ByteCount;
  scale: Float32Array | ByteCount;
  /** The scale's element type in the file (FLOAT or FLOAT16). */
  scaleType: number;
  dims: number[];
  grid: NeuronGrid;
}

export const UNIFORM_PRIMARY = 'words';

/** Adds the chain that rebuilds `parts` as `output`. */
export function addUniform(parts: UniformParts, site: ChainSite, output: string): void {
  const { grid } = parts;
  const perNeuron = perNeuronDims(grid);
  const levels = addIndices(site, parts.format, grid, parts.words, DataType.FLOAT);
  const zpType = parts.format.bits > 8 ? DataType.UINT16 : DataType.UINT8;
  const zeroPoint = site.node('Cast', [site.constant('zero_point', zpType, perNeuron, parts.zeroPoint)], { to: DataType.FLOAT });
  const scaleData =
    parts.scaleType === DataType.FLOAT16 && parts.scale instanceof Float32Array ? Uint16Array.from(parts.scale, numberToFloat16Bits) : parts.scale;
  let scale = site.constant('scale', parts.scaleType, perNeuron, scaleData);
  if (parts.scaleType !== DataType.FLOAT) scale = site.node('Cast', [scale], { to: DataType.FLOAT });
  const sameDims = grid.dims.join() === parts.dims.join();
  const cast = parts.dataType !== DataType.FLOAT;
  const product = site.node('Mul', [site.node('Sub', [levels, zeroPoint], {}), scale], {}, sameDims && !cast ? output : undefined);
  const typed = cast ? site.node('Cast', [product], { to: parts.dataType }, sameDims ? output : undefined) : product;
  if (!sameDims) site.node('Reshape', [typed, site.constant('shape', DataType.INT64, [parts.dims.length], BigInt64Array.from(parts.dims.map(BigInt)))], {}, output);
}

/** The weights the chain computes (float32, or float16 bits for float16 weights), in the tensor's order. */
export function rebuildUniform(parts: UniformParts & { words: Uint8Array; zeroPoint: Uint8Array | Uint16Array; scale: Float32Array }): Float32Array | Uint16Array {
  const { neuronAt, placeAt } = elementOffsets(parts.grid);
  const size = elementCount(parts.grid.dims);
  const levels = fromWords(parts.words, parts.format, size);
  const values = new Float32Array(size);
  for (let n = 0; n < neuronAt.length; n++) {
    const [zp, scale] = [parts.zeroPoint[n], parts.scale[n]];
    for (let c = 0; c < placeAt.length; c++) {
      const e = neuronAt[n] + placeAt[c];
      values[e] = Math.fround((levels[e] - zp) * scale);
    }
  }
  return parts.dataType === DataType.FLOAT16 ? (fromNumbers(values, DataType.FLOAT16) as Uint16Array) : values;
}

export interface MatchedUniform {
  reader: ChainReader;
  output: string;
  primary: string;
  parts: UniformParts & { words: Uint8Array; zeroPoint: Uint8Array | Uint16Array; scale: Float32Array };
}

/** The uniform chain whose last node computes `output`; undefined when it is not one that addUniform wrote. */
export function matchUniform(reader: ChainReader, output: string): MatchedUniform | undefined {
  const top = reader.underReshape(output);
  if (!top) return undefined;
  let { value, dims } = top;
  let dataType: number = DataType.FLOAT;
  if (reader.producedBy(value, 'Cast')) {
    const cast = reader.from(value, 'Cast')!;
    dataType = cast.attrInt('to', 0)!;
    if (dataType !== DataType.FLOAT16) return undefined;
    value = cast.input(0);
  }
  const mul = reader.from(value, 'Mul');
  const sub = mul && reader.from(mul.input(0), 'Sub');
  if (!mul || !sub) return undefined;
  let scaleValue = mul.input(1);
  if (reader.producedBy(scaleValue, 'Cast')) {
    const cast = reader.from(scaleValue, 'Cast')!;
    if (cast.attrInt('to', 0) !== DataType.FLOAT) return undefined;
    scaleValue = cast.input(0);
  }
  const scale = reader.constant(scaleValue, [DataType.FLOAT, DataType.FLOAT16]);
  const zpCast = reader.from(sub.input(1), 'Cast');
  const zeroPoint = zpCast && zpCast.attrInt('to', 0) === DataType.FLOAT ? reader.constant(zpCast.input(0), [DataType.UINT8, DataType.UINT16]) : undefined;
  if (!scale || !zeroPoint || scale.dims.join() !== zeroPoint.dims.join()) return undefined;
  const indices = matchIndices(reader, sub.input(0), DataType.FLOAT, zeroPoint.dims);
  if (!indices) return undefined;
  const size = elementCount(indices.gridDims);
  dims ??= indices.gridDims;
  if (elementCount(dims) !== size || !reader.closed(output)) return undefined;
  const scales = scale.dataType === DataType.FLOAT ? (scale.data as Float32Array) : scale.toFloat32();
  const zp = zeroPoint.data as Uint8Array | Uint16Array;
  if ((zp instanceof Uint16Array) !== indices.format.bits > 8) return undefined;
  return {
    reader,
    output,
    primary: indices.wordsValue,
    parts: {
      dataType,
      format: indices.format,
      words: indices.words,
      zeroPoint: zp,
      scale: scales,
      scaleType: scale.dataType,
      dims,
      grid: { dims: indices.gridDims, neuronAxes: zeroPoint.dims.map((_, a) => a).filter((a) => zeroPoint.dims[a] > 1) },
    },
  };
}
