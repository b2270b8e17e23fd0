/**
 * Index words: the per-weight codebook indices of a packed layer, `bits` bits each, as one little-endian
 * bitstream cut into words of whole bytes that hold whole indices. A word of W bytes holds F = 8W / bits
 * indices, and the graph takes it apart with int32 arithmetic that every opset from 7 has:
 *
 *     word = sum_i byte_i * 256^i,   index_t = floor(word / 2^(bits * t)) mod 2^bits
 *
 * Widths are 1, 2, 3, 4, 6, 8, 12 or 16 bits (words of 1, 2 or 3 bytes); other widths take the next one.
 * Exact 5- and 7-bit indices would need 5- and 7-byte words in int64, and onnxruntime keeps every
 * intermediate of its constant folding until the session is made: measured on ResNet-50, int64 words
 * tripled the peak memory of session creation to save an eighth of the index bytes. 8- and 16-bit
 * indices are one per word, read by a single Cast, as lean at load as a dense tensor's chain can be.
 */
import { native } from '../../binding';
import { largeArray } from '../../kernels/pages';

export interface WordFormat {
  /** Bits per index. */
  bits: number;
  /** Bytes per word, and indices per word. */
  bytes: number;
  fields: number;
}

function formatOf(bits: number): WordFormat {
  const bytes = bits % 8 === 0 ? bits / 8 : bits % 3 === 0 ? 3 : 1;
  return { bits, bytes, fields: (bytes * 8) / bits };
}

/** Every format there is, narrowest first. */
export const WIDTH_FORMATS: readonly WordFormat[] = [1, 2, 3, 4, 6, 8, 12, 16].map(formatOf);

/** The narrowest format for indices below `codes` (1 ... 65536). */
export function wordFormat(codes: number): WordFormat {
  const need = Math.max(1, Math.ceil(Math.log2(codes)));
  const format = WIDTH_FORMATS.find((f) => f.bits >= need);
  if (!format) throw new RangeError(`no index width for ${codes} codes`);
  return format;
}

/** Words needed for `count` indices (the last one padded with zero indices). */
export function wordCount(format: WordFormat, count: number): number {
  return Math.ceil(count / format.fields);
}

/** The indices as words: wordCount * bytes bytes. Every index must be below 2^bits. */
export function toWords(indices: ArrayLike<number>, format: WordFormat): Uint8Array {
  const addon = native();
  const typed = indices instanceof Uint16Array || (indices instanceof Uint8Array && format.bits <= 8);
  if (!addon || !typed) return toWordsReference(indices, format);
  const out = largeArray(Uint8Array, wordCount(format, indices.length) * format.bytes);
  addon.packIndices(indices, format.bits, out);
  return out;
}

/**
 * toWords() over the indices' own memory, which it overwrites (a view of it is returned): no second
 * array for a layer's words. Where the words would not fit there (a handful of indices), a new array.
 */
export function toWordsInPlace(indices: Uint8Array | Uint16Array, format: WordFormat): Uint8Array {
  const addon = native();
  const bytes = wordCount(format, indices.length) * format.bytes;
  // One byte per index is already the words of 8 bits.
  if (indices instanceof Uint8Array && format.bits === 8) return indices;
  if (!addon || bytes > indices.byteLength) return toWords(indices, format);
  const out = new Uint8Array(indices.buffer, indices.byteOffset, bytes);
  addon.packIndices(indices, format.bits, out);
  return out;
}

/** toWords() in TypeScript: the reference of the native kernel (native/palette.cc), and for indices of other types. */
export function toWordsReference(indices: ArrayLike<number>, format: WordFormat): Uint8Array {
  const { bits } = format;
  const out = new Uint8Array(wordCount(format, indices.length) * format.bytes);
  // Fields fill words exactly, so index p starts at bit p * bits of the whole stream.
  let acc = 0;
  let held = 0;
  let at = 0;
  for (let p = 0; p < indices.length; p++) {
    acc |= indices[p] << held;
    held += bits;
    while (held >= 8) {
      out[at++] = acc & 0xff;
      acc >>>= 8;
      held -= 8;
    }
  }
  if (held > 0) out[at] = acc & 0xff;
  return out;
}

/** The first `count` indices held by `words` (what the graph computes from them). */
export function fromWords(words: Uint8Array, format: WordFormat, count: number): Uint32Array {
  const { bits } = format;
  const mask = 2 ** bits - 1;
  const out = new Uint32Array(count);
  let acc = 0;
  let held = 0;
  let at = 0;
  for (let p = 0; p < count; p++) {
    while (held < bits) {
      acc |= words[at++] << held;
      held += 8;
    }
    out[p] = acc & mask;
    acc >>>= bits;
    held -= bits;
  }
  return out;
}
