/**
 * The float16 form: float32 weights stored as float16, widened back in the graph. The weights the model
 * computes with are the float16 values, exactly.
 *
 *     half --Cast(float)--> W
 */
import { DataType, toFloat32 } from '../../model/dtype';
import type { ChainReader } from './match';
import type { ByteCount, ChainSite } from './site';

export interface HalfParts {
  /** The weights as float16 bits, in the tensor's order. */
  half: Uint16Array | ByteCount;
  dims: number[];
}

export const HALF_PRIMARY = 'half';

export function addHalf(parts: HalfParts, site: ChainSite, output: string): void {
  site.node('Cast', [site.constant(HALF_PRIMARY, DataType.FLOAT16, parts.dims, parts.half)], { to: DataType.FLOAT }, output);
}

export function rebuildHalf(parts: HalfParts & { half: Uint16Array }): Float32Array {
  return toFloat32(parts.half, DataType.FLOAT16);
}

export interface MatchedHalf {
  reader: ChainReader;
  output: string;
  primary: string;
  parts: HalfParts & { half: Uint16Array };
}

export function matchHalf(reader: ChainReader, output: string): MatchedHalf | undefined {
  const cast = reader.from(output, 'Cast');
  if (!cast || cast.attrInt('to', 0) !== DataType.FLOAT) return undefined;
  const half = reader.constant(cast.input(0), [DataType.FLOAT16]);
  if (!half || !reader.closed(output)) return undefined;
  return { reader, output, primary: cast.input(0), parts: { half: half.data as Uint16Array, dims: half.dims } };
}
