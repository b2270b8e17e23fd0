/** Tensor elements as unsigned integers of their width: codecs move bit patterns, so they are exact. */
import { layoutOf, type TensorData } from '../../model/dtype';

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

/** Bits as the tensor's own array type (a view, no copy). */
export function asData(bits: Bits, dataType: number): TensorData {
  const { array } = layoutOf(dataType, 'packed weight');
  return new array(bits.buffer, bits.byteOffset, bits.length);
}
