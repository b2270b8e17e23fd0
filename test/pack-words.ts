import t from 'tap';

import { WIDTH_FORMATS, fromWords, toWords, wordCount, wordFormat, type WordFormat } from '../lib/passes/codecs/words';
import { Rng } from '../lib/rng';

/** Bit p * bits + j of the stream is bit j of index p, bytes least significant bit first: the plain definition. */
function referenceWords(indices: ArrayLike<number>, f: WordFormat): Uint8Array {
  const out = new Uint8Array(Math.ceil(indices.length / f.fields) * f.bytes);
  for (let p = 0; p < indices.length; p++) {
    for (let j = 0; j < f.bits; j++) {
      const bit = p * f.bits + j;
      if ((indices[p] >> j) & 1) out[bit >> 3] |= 1 << (bit & 7);
    }
  }
  return out;
}

/** What the graph computes: word = sum byte_i 256^i, index_t = floor(word / 2^(bits t)) mod 2^bits. */
function graphIndices(words: Uint8Array, f: WordFormat, count: number): number[] {
  const out: number[] = [];
  for (let w = 0; out.length < count; w++) {
    let word = 0;
    for (let i = 0; i < f.bytes; i++) word += words[w * f.bytes + i] * 256 ** i;
    for (let t = 0; t < f.fields && out.length < count; t++) out.push(Math.floor(word / 2 ** (f.bits * t)) % 2 ** f.bits);
  }
  return out;
}

t.test('formats: whole indices in words of 1 to 3 bytes, the narrowest that holds the codes', async (t) => {
  t.same(
    WIDTH_FORMATS.map((f) => [f.bits, f.bytes, f.fields]),
    [[1, 1, 8], [2, 1, 4], [3, 3, 8], [4, 1, 2], [6, 3, 4], [8, 1, 1], [12, 3, 2], [16, 2, 1]],
  );
  const cases: [number, number][] = [[1, 1], [2, 1], [3, 2], [5, 3], [9, 4], [16, 4], [17, 6], [64, 6], [65, 8], [256, 8], [257, 12], [4096, 12], [4097, 16], [65536, 16]];
  for (const [codes, bits] of cases) t.equal(wordFormat(codes).bits, bits, `${codes} codes -> ${bits} bits`);
  t.throws(() => wordFormat(65537), RangeError);
  for (const f of WIDTH_FORMATS) t.ok(8 * f.bytes === f.bits * f.fields && f.bytes <= 3, `${f.bits} bits fill ${f.bytes}-byte words exactly, exact in int32`);
});

t.test('toWords and fromWords against the bit-by-bit definition and the graph arithmetic, at awkward sizes', async (t) => {
  const rng = new Rng(7);
  for (const f of WIDTH_FORMATS) {
    for (const count of [0, 1, f.fields - 1, f.fields, f.fields + 1, 1001, 100003]) {
      const indices = Uint32Array.from({ length: count }, () => rng.int(2 ** f.bits));
      if (count > 2) indices[count - 1] = 2 ** f.bits - 1; // the largest index, last (in the padded word)
      const words = toWords(indices, f);
      t.equal(words.length, wordCount(f, count) * f.bytes, `${f.bits} bits x ${count}: ${words.length} bytes`);
      t.same(words, referenceWords(indices, f), `${f.bits} bits x ${count}: the stream is the plain definition`);
      t.same(fromWords(words, f, count), indices, `${f.bits} bits x ${count}: read back`);
      t.same(graphIndices(words, f, count), Array.from(indices), `${f.bits} bits x ${count}: as the graph takes words apart`);
    }
  }
});
