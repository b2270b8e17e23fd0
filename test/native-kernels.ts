/**
 * The native palette, sort, uniform quantizer, weight-stats, channel (fingerprints, kernel sharing) and page kernels (native/palette.cc, quantize.cc, weight_stats.cc, channels.cc, pages.cc) against their
 * TypeScript references, on random weights of awkward sizes and layouts: identical outputs, element
 * for element and bit for bit; and the bindings' checks, which keep a size that does not match from
 * becoming an out-of-bounds write. (The hashing kernel has test/hash.ts and test/binding.ts.)
 */
import * as fs from 'node:fs';

import t from 'tap';

import { native } from '../lib/binding';
import { elementOffsets, type NeuronGrid } from '../lib/layers';
import { scaleRowsReference } from '../lib/layers/grid';
import { codeNeurons, codeNeuronsNative } from '../lib/passes/codecs/palette-code';
import { WIDTH_FORMATS, toWordsReference, wordCount } from '../lib/passes/codecs/words';
import { kernelSharing, kernelSharingReference } from '../lib/passes/kernel-split/sharing';
import { channelPrints, channelPrintsReference } from '../lib/passes/merge/prints';
import { largeArray, moveBytes, moveBytesReference, releasePagesReference, sharedBytes, sharedSlice, type ByteMove } from '../lib/kernels/pages';
import { distinctValues, nearestCentersReference, sortRowsReference, uniformRows, uniformRowsReference, type TablePrecision } from '../lib/kernels/quantize';
import { sumOfSquaresReference, zerosPerGroupReference } from '../lib/kernels/weight-stats';
import { decodeHalf, float16BitsToNumber, numberToFloat16Bits, roundedToFloat16 } from '../lib/model/dtype';
import { Rng } from '../lib/rng';

const addon = native();

/** `length` elements of `width` bytes drawn from `values` distinct bit patterns (with -0 and 0, and NaNs among them). */
function weights(rng: Rng, length: number, width: 2 | 4 | 8, values: number): Uint16Array | Uint32Array | BigUint64Array {
  const pool = Array.from({ length: values }, (_, i) => (i === 0 ? 0 : i === 1 ? 0x8000_0000 : Math.floor(rng.next() * 2 ** 32)));
  const pick = () => pool[Math.floor(rng.next() * values)];
  if (width === 2) return Uint16Array.from({ length }, () => pick() & 0xffff);
  if (width === 4) return Uint32Array.from({ length }, () => pick() >>> 0);
  // 64-bit patterns that differ only in their high word too.
  return BigUint64Array.from({ length }, () => (BigInt(pick() >>> 0) << 32n) | BigInt(pick() % 3));
}

/** Bytes of this process's mappings marked for transparent huge pages (VmFlags "hg" in /proc/self/smaps). */
function hugeAdvisedBytes(): number {
  let total = 0;
  let size = 0;
  for (const line of fs.readFileSync('/proc/self/smaps', 'utf8').split('\n')) {
    const m = /^Size:\s+(\d+) kB/.exec(line);
    if (m) size = Number(m[1]) * 1024;
    else if (line.startsWith('VmFlags:') && line.split(/\s+/).includes('hg')) total += size;
  }
  return total;
}

// Where the kernel has transparent huge pages, every whole aligned stretch of an advised range is marked.
const THP = process.platform === 'linux' && fs.existsSync('/sys/kernel/mm/transparent_hugepage/enabled');

// First in this file: memory advised and freed earlier could come back already marked, and hide an allocation that asks nothing.
t.test('huge pages: sharedBytes and largeArray ask for them from 4 MiB', { skip: (!addon && 'no native addon') || (!THP && 'no transparent huge pages') }, async (t) => {
  const before = hugeAdvisedBytes();
  const shared = sharedBytes(16 << 20);
  const afterShared = hugeAdvisedBytes();
  t.ok(afterShared - before >= 14 << 20, `sharedBytes: ${(afterShared - before) / 2 ** 20} MiB more marked`);
  const values = largeArray(Float32Array, 4 << 20);
  t.ok(hugeAdvisedBytes() - afterShared >= 14 << 20, 'largeArray of 16 MiB marked');
  t.ok(shared.buffer instanceof SharedArrayBuffer && values.buffer instanceof ArrayBuffer, 'shared memory, and a plain array');
  t.ok(shared.every((b) => b === 0) && values.every((v) => v === 0), 'zeroed');
  const small = largeArray(Uint16Array, 1001);
  t.ok(small instanceof Uint16Array && small.length === 1001 && small.every((v) => v === 0), 'a small one, plain and zeroed');
});

t.test('sharedSlice: small arrays cut in order from shared chunks, apart and zeroed; large ones alone', async (t) => {
  const slices = [sharedSlice(Uint8Array, 3), sharedSlice(Uint16Array, 1001), sharedSlice(Uint8Array, 1), sharedSlice(Float32Array, 77)];
  t.ok(slices.every((a) => a.buffer instanceof SharedArrayBuffer && a.byteOffset % 8 === 0), 'shared, each at a multiple of 8 bytes');
  t.ok(slices.every((a) => a.buffer === slices[0].buffer), 'small ones from one chunk');
  t.ok(slices.every((a) => a.every((v: number) => v === 0)), 'zeroed');
  slices.forEach((a, i) => a.fill(i + 1));
  t.ok(slices.every((a, i) => a.every((v: number) => v === i + 1)), 'none overlaps another');
  const large = sharedSlice(Uint8Array, 4 << 20);
  t.ok(large.buffer !== slices[0].buffer && large.byteOffset === 0 && large.byteLength === 4 << 20, 'a large one has its memory alone');
  const many = Array.from({ length: 4 }, () => sharedSlice(Uint8Array, 3 << 20));
  t.ok(new Set(many.map((a) => a.buffer)).size > 1, 'a full chunk is followed by a new one');
});

t.test('adviseHugePages: only the whole 2 MiB stretches advised, the bytes as they were', { skip: !addon && 'no native addon' }, async (t) => {
  const huge = 2 << 20;
  const rng = new Rng(12);
  for (const [from, length] of [[0, 0], [5, 1000], [0, huge - 1], [1, huge], [1, 3 * huge], [huge - 3, 2 * huge + 7], [0, 8 * huge]]) {
    const bytes = new Uint8Array(from + length + huge).subarray(from, from + length);
    for (let i = 0; i < length; i += 4093) bytes[i] = 1 + Math.floor(rng.next() * 255);
    const before = Uint8Array.from(bytes);
    const advised = addon!.adviseHugePages(bytes);
    if (!same(bytes, before)) t.fail(`bytes ${from}+${length} changed`);
    if (advised % huge !== 0 || advised > length || (THP && advised <= length - 2 * huge)) t.fail(`bytes ${from}+${length}: ${advised} advised`);
  }
  t.throws(() => addon!.adviseHugePages(new Float32Array(8) as unknown as Uint8Array), RangeError, 'a Uint8Array only');
});

t.test('codeNeurons: native and reference agree on every layout, width and value count', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(11);
  const grids: NeuronGrid[] = [
    { dims: [1, 1], neuronAxes: [0] },
    { dims: [7, 13], neuronAxes: [0] },
    { dims: [13, 7], neuronAxes: [1] },
    { dims: [5, 3, 3, 3], neuronAxes: [0] },
    { dims: [3, 5, 3, 3], neuronAxes: [1] },
    { dims: [2, 3, 5, 7], neuronAxes: [1, 2] },
    { dims: [3, 70_001], neuronAxes: [0] },
    { dims: [0, 9], neuronAxes: [0] },
    { dims: [37, 300], neuronAxes: [0] },
    { dims: [300, 37], neuronAxes: [1] },
    { dims: [4, 6, 3, 3], neuronAxes: [1] },
    { dims: [70_001, 2], neuronAxes: [0] },
  ];
  let cases = 0;
  for (const grid of grids) {
    const { neuronAt, placeAt } = elementOffsets(grid);
    const length = grid.dims.reduce((a, d) => a * d, 1);
    for (const width of [2, 4, 8] as const) {
      for (const values of [1, 2, 3, 255, 257, 5000]) {
        const src = weights(rng, length, width, values);
        const a = codeNeurons(src, neuronAt, placeAt);
        // On one thread, and with the neurons shared among 2 and 3 (rows, columns, and a ConvTranspose's
        // layout, which is coded on one).
        for (const threads of [1, 2, 3]) {
          const b = codeNeuronsNative(src, neuronAt, placeAt, threads);
          const what = `${grid.dims} ${width} B ${values} values, ${threads} threads`;
          if (typeof a === 'string' || typeof b === 'string') t.equal(b, a, what);
          else if (!(same(a.index, b.index) && same(a.counts, b.counts) && same(a.firsts, b.firsts))) t.fail(`${what}: outputs differ`);
          cases++;
        }
      }
    }
  }
  t.ok(cases > 300, `${cases} cases`);
  // Neurons over each other's elements: as the reference codes them (which layouts threads may share is
  // NeuronsApart()'s, tested in test/native/kernels_sanitize.cc).
  const src = weights(rng, 64, 4, 9);
  const over = Uint32Array.of(0, 16, 32, 32);
  const place = Uint32Array.from({ length: 32 }, (_, i) => i);
  const [a, b] = [codeNeurons(src, over, place), codeNeuronsNative(src, over, place, 4)];
  t.ok(typeof a !== 'string' && typeof b !== 'string' && same(a.index, b.index) && same(a.counts, b.counts) && same(a.firsts, b.firsts), 'overlapping neurons: as the reference');
});

t.test('codeNeurons: a neuron of more than 65536 values is refused alike', { skip: !addon && 'no native addon' }, async (t) => {
  const src = Uint32Array.from({ length: 2 * 70_000 }, (_, i) => (i < 70_000 ? i % 100 : i));
  const { neuronAt, placeAt } = elementOffsets({ dims: [2, 70_000], neuronAxes: [0] });
  t.match(codeNeuronsNative(src, neuronAt, placeAt), /more than 65536 distinct values/);
  t.equal(codeNeuronsNative(src, neuronAt, placeAt), codeNeurons(src, neuronAt, placeAt));
  const exactly = Uint32Array.from({ length: 65_536 }, (_, i) => i);
  const one = elementOffsets({ dims: [1, 65_536], neuronAxes: [0] });
  const coded = codeNeuronsNative(exactly, one.neuronAt, one.placeAt);
  t.ok(typeof coded !== 'string' && coded.counts[0] === 65_536, '65536 values are coded');
  // 16-bit elements: a table stamped per neuron, 65535 stamps before it is cleared. Neuron i of one
  // value, i % 65535: each value comes back with the stamp it had, one clearing later.
  const cycle = Uint16Array.from({ length: 140_000 }, (_, i) => i % 65_535);
  const single = elementOffsets({ dims: [140_000, 1], neuronAxes: [0] });
  const once = codeNeuronsNative(cycle, single.neuronAt, single.placeAt, 1);
  t.ok(typeof once !== 'string' && once.counts.every((c) => c === 1) && once.index.every((c) => c === 0), 'past the stamps: every neuron its own');
  // 32-bit elements: the same stamps in a hashed table, whose slots later neurons overwrite: neurons
  // 0, 65535 and 131070 hold a value of their own (the first's slot left as it was), the others another.
  const cycle32 = Uint32Array.from({ length: 140_000 }, (_, i) => (i % 65_535 === 0 ? 1 : 2));
  const once32 = codeNeuronsNative(cycle32, single.neuronAt, single.placeAt, 1);
  t.ok(typeof once32 !== 'string' && once32.counts.every((c) => c === 1) && once32.index.every((c) => c === 0) && once32.firsts.length === 140_000, 'past the stamps, 32 bits: every neuron its own');
  // Every 16-bit value in a neuron (its table full), in two orders, then a neuron of one value.
  const halves = Uint16Array.from({ length: 3 * 65_536 }, (_, i) => (i >= 2 * 65_536 ? 7 : (i * (i < 65_536 ? 40_503 : 1)) & 0xffff));
  const rows = elementOffsets({ dims: [3, 65_536], neuronAxes: [0] });
  const [ref, nat] = [codeNeurons(halves, rows.neuronAt, rows.placeAt), codeNeuronsNative(halves, rows.neuronAt, rows.placeAt, 1)];
  t.ok(typeof nat !== 'string' && typeof ref !== 'string', 'every 16-bit value: coded');
  if (typeof nat !== 'string' && typeof ref !== 'string') {
    t.same([...nat.counts], [65_536, 65_536, 1]);
    t.ok(same(nat.index, ref.index) && same(nat.firsts, ref.firsts), 'as the reference');
  }
});

t.test('packIndices: native and reference agree for every width, at awkward counts', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(12);
  for (const f of WIDTH_FORMATS) {
    for (const count of [0, 1, 2, 3, 7, 8, 9, 31, 1000, 4097]) {
      // Indices of one byte where the width allows, and of two.
      for (const Index of f.bits <= 8 ? [Uint8Array, Uint16Array] : [Uint16Array]) {
        const index = Index.from({ length: count }, () => Math.floor(rng.next() * 2 ** f.bits));
        const out = new Uint8Array(wordCount(f, count) * f.bytes).fill(0xaa);
        addon!.packIndices(index, f.bits, out);
        const reference = toWordsReference(index, f);
        if (!same(out, reference)) t.fail(`${f.bits} bits, ${count} ${Index.name} indices`);
        // In place, over the index's own bytes, where the words fit there.
        if (reference.byteLength <= index.byteLength) {
          const over = new Uint8Array(index.buffer, 0, reference.byteLength);
          addon!.packIndices(index, f.bits, over);
          if (!same(over, reference)) t.fail(`${f.bits} bits, ${count} ${Index.name} indices, in place`);
        }
      }
    }
  }
  t.pass('every width and count, apart and in place');
});

t.test('the binding refuses arguments that do not match', { skip: !addon && 'no native addon' }, async (t) => {
  const { neuronAt, placeAt } = elementOffsets({ dims: [4, 8], neuronAxes: [0] });
  const words = new Uint32Array(32);
  const [index, counts] = [new Uint16Array(32), new Uint32Array(4)];
  t.same(addon!.codeNeurons(words, 1, neuronAt, placeAt, index, counts), Uint32Array.of(0, 8, 16, 24), 'well-formed: one first per neuron');
  const many = Uint32Array.from({ length: 2 * 300 }, (_, i) => i);
  const wide = elementOffsets({ dims: [2, 300], neuronAxes: [0] });
  t.equal(addon!.codeNeurons(many, 1, wide.neuronAt, wide.placeAt, new Uint8Array(600), new Uint32Array(2)), null, 'one-byte indices: refused past 256 values');
  t.equal(addon!.codeNeurons(many, 1, wide.neuronAt, wide.placeAt, new Uint16Array(600), new Uint32Array(2))?.length, 600, 'two-byte indices: coded');
  const shared = new Uint16Array(16);
  const bad: [string, () => unknown][] = [
    ['too few words', () => addon!.codeNeurons(new Uint32Array(31), 1, neuronAt, placeAt, new Uint16Array(31), counts)],
    ['a short index', () => addon!.codeNeurons(words, 1, neuronAt, placeAt, new Uint16Array(31), counts)],
    ['counts per neuron', () => addon!.codeNeurons(words, 1, neuronAt, placeAt, index, new Uint32Array(3))],
    ['an offset out of range', () => addon!.codeNeurons(words, 1, Uint32Array.of(0, 8, 16, 25), placeAt, index, counts)],
    ['width 2 of 16-bit words', () => addon!.codeNeurons(new Uint16Array(64), 2, neuronAt, placeAt, index, counts)],
    ['width 3', () => addon!.codeNeurons(new Uint32Array(96), 3, neuronAt, placeAt, index, counts)],
    ['a float array', () => addon!.codeNeurons(new Float32Array(32) as unknown as Uint32Array, 1, neuronAt, placeAt, index, counts)],
    ['0 threads', () => addon!.codeNeurons(words, 1, neuronAt, placeAt, index, counts, 0)],
    ['1.5 threads', () => addon!.codeNeurons(words, 1, neuronAt, placeAt, index, counts, 1.5)],
    ['bits 0', () => addon!.packIndices(new Uint16Array(8), 0, new Uint8Array(8))],
    ['bits 17', () => addon!.packIndices(new Uint16Array(8), 17, new Uint8Array(32))],
    ['bits 9 of one-byte indices', () => addon!.packIndices(new Uint8Array(8), 9, new Uint8Array(32))],
    ['a short output', () => addon!.packIndices(new Uint16Array(9), 8, new Uint8Array(8))],
    ['an output that overlaps the index, not in place', () => addon!.packIndices(shared.subarray(0, 8), 8, new Uint8Array(shared.buffer, 1, 8))],
  ];
  for (const [what, call] of bad) t.throws(call, RangeError, what);
});

t.test('releasePages: the same bytes as the reference, nothing outside the view touched, whole pages given back', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(11);
  const page = 4096;
  // Views that start and end inside a page, on one, in one page alone, across two, over many; in an
  // ArrayBuffer and in shared memory (a pool worker's view of a weight).
  for (const shared of [false, true]) {
    for (const [from, length] of [[0, 0], [3, 5], [0, page], [page - 7, 20], [5, 2 * page], [page, 3 * page], [1, 5 * page + 3], [777, 40 * page + 1234]]) {
      const size = from + length + 2 * page;
      const fill = () => Uint8Array.from({ length: size }, () => 1 + Math.floor(rng.next() * 255));
      const make = () => (shared ? new Uint8Array(new SharedArrayBuffer(size)) : new Uint8Array(size));
      const [a, b] = [make(), make()];
      a.set(fill());
      b.set(a);
      const given = await addon!.releasePages([a.subarray(from, from + length)]);
      releasePagesReference(b.subarray(from, from + length));
      if (!same(a, b)) t.fail(`${shared ? 'shared' : 'plain'} bytes ${from}+${length}: the bytes differ from the reference's`);
      if (given % page !== 0 || given > length || (length >= 3 * page && process.platform === 'linux' && given < length - 2 * page)) {
        t.fail(`${shared ? 'shared' : 'plain'} bytes ${from}+${length}: ${given} bytes given back`);
      }
    }
  }
  t.throws(() => addon!.releasePages([new Float32Array(8) as unknown as Uint8Array]), RangeError, 'Uint8Arrays only');
  t.throws(() => addon!.releasePages(new Uint8Array(8) as unknown as Uint8Array[]), RangeError, 'in an array');
  if (process.platform === 'linux') {
    const big = new Uint8Array(new SharedArrayBuffer(64 << 20)).fill(1);
    const before = process.memoryUsage().rss;
    t.ok((await addon!.releasePages([big.subarray(1)])) >= (64 << 20) - 2 * page);
    const freed = before - process.memoryUsage().rss;
    t.ok(freed > 48 << 20, `resident memory down by ${(freed / 2 ** 20).toFixed(0)} MiB of 64`);
    t.equal(big[1], 0);
    t.equal(big[0], 1, 'the byte before the view kept');
  }
});

t.test('channelPrints: native and reference agree on every view, -0 as 0', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(15);
  let views = 0;
  // Fewer channels than eight side by side, exactly eight, and a rest; a rest of positions left out by inner.
  for (const [outer, length, stride, inner] of [[1, 1, 1, 1], [1, 7, 3, 1], [1, 8, 5, 1], [3, 19, 2, 1], [2, 20, 3, 3], [4, 17, 1, 2], [1, 64, 9, 1], [5, 3, 0, 1], [0, 9, 4, 1]]) {
    const words = new Uint32Array(outer * length * stride);
    // Words from a few, zeros of both signs among them: equal channels, and channels equal but for a zero's sign.
    for (let i = 0; i < words.length; i++) words[i] = [0, 0x80000000, 0x3f800000, 0x7fc00001, 1][Math.floor(rng.next() * 5)];
    const task = { layer: 'l', data: new Float32Array(words.buffer), outer, length, stride, inner };
    const a = channelPrints(task);
    const b = channelPrintsReference(task);
    if (!same(a, b)) t.fail(`view ${outer}/${length}/${stride}/${inner}: native and reference differ`);
    views++;
  }
  t.equal(views, 9, 'every view');
  const bad: [string, unknown[]][] = [
    ['words not outer * length * stride', [new Uint32Array(5), 1, 2, 3, 1, new Uint32Array(2)]],
    ['prints not length / inner', [new Uint32Array(6), 1, 2, 3, 1, new Uint32Array(3)]],
    ['inner 0', [new Uint32Array(6), 1, 2, 3, 0, new Uint32Array(2)]],
    ['a negative size', [new Uint32Array(6), -1, -2, 3, 1, new Uint32Array(2)]],
  ];
  const empty = new Uint32Array(2);
  addon!.channelPrints(new Uint32Array(0), 2 ** 53 - 1, 2, 0, 1, empty);
  t.same([...empty], [0x811c9dc5, 0x811c9dc5], 'no words, however many blocks: the basis, at once');
  t.doesNotThrow(() => addon!.channelPrints(new Uint32Array(6), 1, 2, 3, 1, new Uint32Array(2)), 'the arguments checked are accepted');
  for (const [what, args] of bad) t.throws(() => (addon!.channelPrints as (...a: unknown[]) => void)(...args), RangeError, what);
});

t.test('kernelSharing: native and reference agree, kernels told apart by their bits (-0 as 0)', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(14);
  // Special words: both zeros (equal), two NaN payloads (different), a subnormal, an infinity.
  const specials = [0, 0x80000000, 0x7fc00000, 0x7fc00001, 0x00000001, 0x7f800000];
  let cases = 0;
  for (const k of [1, 2, 9, 25]) {
    for (const [cout, cin] of [[1, 1], [3, 5], [17, 2], [64, 33], [5, 1]]) {
      // Each channel's kernels drawn from a few, so that filters share; some all zero, some special.
      const bits = new Uint32Array(cout * cin * k);
      const pool = Array.from({ length: 4 }, () => Uint32Array.from({ length: k }, () => specials[Math.floor(rng.next() * specials.length)] ^ (rng.next() < 0.5 ? 0 : Math.floor(rng.next() * 8))));
      for (let o = 0; o < cout; o++) {
        for (let c = 0; c < cin; c++) {
          const at = (o * cin + c) * k;
          const pick = rng.next();
          if (pick < 0.15) continue; // all zero
          if (pick < 0.25) for (let i = 0; i < k; i++) bits[at + i] = rng.next() < 0.5 ? 0x80000000 : 0; // zeros of both signs
          else {
            // A kernel of the few, each of its zeros of either sign: equal kernels all the same.
            const kernel = pool[Math.floor(rng.next() * pool.length)];
            for (let i = 0; i < k; i++) bits[at + i] = (kernel[i] & 0x7fffffff) === 0 && rng.next() < 0.5 ? kernel[i] ^ 0x80000000 : kernel[i];
          }
        }
      }
      const w = new Float32Array(bits.buffer);
      for (const withKernels of [true, false]) {
        const a = kernelSharing(w, cout, cin, k, withKernels);
        const b = kernelSharingReference(w, cout, cin, k, withKernels);
        const kernelBits = (ks: Float32Array[]) => ks.map((x) => [...new Uint32Array(x.buffer, x.byteOffset, x.length)]);
        if (!same(a.counts, b.counts) || !same(a.index, b.index) || JSON.stringify(kernelBits(a.kernels)) !== JSON.stringify(kernelBits(b.kernels))) {
          t.fail(`k ${k}, cout ${cout}, cin ${cin}, kernels ${withKernels}: native and reference differ`);
        }
        cases++;
      }
    }
  }
  t.equal(cases, 40, 'every shape, with and without the kernels');
  // Every kernel distinct (random words): a probe meets other kernels in its slot and goes on.
  for (const [cout, k] of [[300, 9], [257, 1]]) {
    const w = rng.normals(cout * 3 * k, 1);
    const a = kernelSharing(w, cout, 3, k);
    const b = kernelSharingReference(w, cout, 3, k);
    t.ok(same(a.counts, b.counts) && same(a.index, b.index) && a.counts.every((m) => m === cout), `${cout} distinct kernels of ${k} taps a channel`);
  }
  const ok = () => [new Uint32Array(12), 3, 2, 2, new Int32Array(6), new Uint32Array(2), null] as const;
  const bad: [string, unknown[]][] = [
    ['weights not cout * cin * k', [new Uint32Array(11), 3, 2, 2, new Int32Array(6), new Uint32Array(2), null]],
    ['a short index', [new Uint32Array(12), 3, 2, 2, new Int32Array(5), new Uint32Array(2), null]],
    ['counts not cin', [new Uint32Array(12), 3, 2, 2, new Int32Array(6), new Uint32Array(3), null]],
    ['short starts', [new Uint32Array(12), 3, 2, 2, new Int32Array(6), new Uint32Array(2), new Uint32Array(5)]],
    ['k 0', [new Uint32Array(0), 3, 2, 0, new Int32Array(6), new Uint32Array(2), null]],
    ['a fractional size', [new Uint32Array(12), 1.5, 4, 2, new Int32Array(6), new Uint32Array(4), null]],
    ['float weights', [new Float32Array(12), 3, 2, 2, new Int32Array(6), new Uint32Array(2), null]],
    ['cout past 2^31', [new Uint32Array(0), 2 ** 31, 0, 1, new Int32Array(0), new Uint32Array(0), null]],
  ];
  t.doesNotThrow(() => addon!.kernelSharing(...ok()), 'the arguments checked are accepted');
  t.doesNotThrow(() => addon!.kernelSharing(new Uint32Array(0), 2 ** 31 - 1, 0, 1, new Int32Array(0), new Uint32Array(0), null), 'no channels: nothing to number, no table');
  for (const [what, args] of bad) t.throws(() => (addon!.kernelSharing as (...a: unknown[]) => void)(...args), RangeError, what);
});

t.test('sumOfSquares and zerosPerGroup: native and reference agree bit for bit', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(13);
  for (const n of [0, 1, 7, 8, 9, 63, 64, 65, 1000, 100_003]) {
    const x = rng.normals(n, 0.05);
    for (let i = 0; i < n; i += 5) x[i] = i % 2 ? -0 : 0;
    if (addon!.sumOfSquares(x) !== sumOfSquaresReference(x)) t.fail(`sum of squares of ${n}`);
    for (const group of [1, 7, n]) {
      if (group === 0 || n % group !== 0) continue;
      const zeros = new Uint32Array(n / group);
      addon!.zerosPerGroup(x, group, zeros);
      if (!same(zeros, zerosPerGroupReference(x, group))) t.fail(`zeros of ${n} in groups of ${group}`);
    }
  }
  t.pass('every length and group');
  t.throws(() => addon!.zerosPerGroup(new Float32Array(10), 3, new Uint32Array(3)), RangeError, 'a group that does not divide');
  t.throws(() => addon!.zerosPerGroup(new Float32Array(10), 5, new Uint32Array(3)), RangeError, 'a count per group');
  t.throws(() => addon!.zerosPerGroup(new Float32Array(10), 0, new Uint32Array(0)), RangeError, 'group 0');
  t.throws(() => addon!.sumOfSquares(new Float64Array(3) as unknown as Float32Array), RangeError, 'a Float64Array');
});

t.test('scaleRows: native and reference agree bit for bit, overflow, underflow, NaN payloads and -0 included', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(17);
  // Patterns past the normal range: NaNs with payloads (signalling and quiet), infinities, -0, the
  // largest float and subnormals.
  const special = Uint32Array.of(0x7f800001, 0xffc00001, 0x7fa00000, 0x7f800000, 0xff800000, 0x80000000, 0x7f7fffff, 0xff7fffff, 0x00000001, 0x807fffff);
  const FLT_MAX = new Float32Array(new Uint32Array([0x7f7fffff]).buffer)[0];
  let cases = 0;
  for (const [rows, fanIn] of [[0, 5], [1, 1], [3, 7], [5, 8], [17, 9], [64, 1], [7, 1000], [2, 100_003]]) {
    const w = rng.normals(rows * fanIn, 1);
    const bits = new Uint32Array(w.buffer);
    for (let i = 0; i < w.length; i += 3) bits[i] = special[(i / 3) % special.length];
    // Factors that overflow, underflow to subnormals and zero, flip signs, and the largest float just
    // above and below its rounding boundary (FLT_MAX * (1 + 2^-25) rounds to itself, a little more to
    // infinity); NaN factors only where no weight is a NaN (two NaNs: which payload wins is the CPU's).
    const factors = Float64Array.from({ length: rows }, (_, r) => [1.5, 1e30, 1e-40, -3, 0, 1 + 2 ** -25, 1 + 2 ** -23, -1][r % 8]);
    for (let i = 0; i < w.length; i += 7) w[i] = FLT_MAX;
    const want = Float32Array.from(w);
    scaleRowsReference(want, fanIn, factors);
    addon!.scaleRows(w, fanIn, factors);
    if (!same(new Uint32Array(want.buffer), bits)) t.fail(`${rows} x ${fanIn}: outputs differ`);
    cases++;
  }
  const finite = Float32Array.from([1, -2, 0, -0]);
  const nan = Float64Array.of(new Float64Array(new BigUint64Array([0x7ff8000000000123n]).buffer)[0]);
  const want = Float32Array.from(finite);
  scaleRowsReference(want, 4, nan);
  addon!.scaleRows(finite, 4, nan);
  t.ok(same(new Uint32Array(want.buffer), new Uint32Array(finite.buffer)), 'a NaN factor: its payload in every weight, as the reference');
  t.equal(cases, 8, 'every shape');
  const bad: [string, () => unknown][] = [
    ['a fan-in that does not match', () => addon!.scaleRows(new Float32Array(10), 3, new Float64Array(3))],
    ['too many factors', () => addon!.scaleRows(new Float32Array(10), 5, new Float64Array(3))],
    ['a fractional fan-in', () => addon!.scaleRows(new Float32Array(3), 1.5, new Float64Array(2))],
    ['a negative fan-in', () => addon!.scaleRows(new Float32Array(0), -1, new Float64Array(0))],
    ['float32 factors', () => addon!.scaleRows(new Float32Array(4), 2, new Float32Array(2) as unknown as Float64Array)],
    ['float64 weights', () => addon!.scaleRows(new Float64Array(4) as unknown as Float32Array, 2, new Float64Array(2))],
  ];
  for (const [what, call] of bad) t.throws(call, RangeError, what);
});

t.test('moveBytes: the native moves match the reference, down and up, overlapping, in shared memory and not', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(31);
  for (const size of [1, 7, 4099, 1 << 20]) {
    for (const shared of [true, false]) {
      const start = shared ? sharedBytes(size) : new Uint8Array(size);
      for (let i = 0; i < size; i++) start[i] = rng.int(256);
      // Moves a few bytes down (as a model's alignment makes them), far up or down, and of nothing.
      const moves: ByteMove[] = [];
      for (let k = 0; k < 40; k++) {
        const length = rng.int(Math.max(1, Math.floor(size / 3)));
        const from = rng.int(size - length + 1);
        const to = k % 3 === 0 ? Math.max(0, from - 1 - rng.int(7)) : rng.int(size - length + 1);
        moves.push({ from, to, length });
      }
      const expected = Uint8Array.from(start);
      moveBytesReference(expected, moves);
      const got = shared ? sharedBytes(size) : new Uint8Array(size);
      got.set(start);
      await moveBytes(got, moves);
      t.ok(same(got, expected), `${size} bytes, ${shared ? 'shared' : 'not shared'}: the same bytes after ${moves.length} moves`);
    }
  }
  const bytes = new Uint8Array(16);
  const bad = (moves: number[], why: string) => t.throws(() => addon!.moveBytes(bytes, Float64Array.from(moves)), RangeError, why);
  bad([0, 0], 'not triples');
  bad([10, 0, 7], 'from past the end');
  bad([0, 10, 7], 'to past the end');
  bad([0.5, 0, 1], 'a fraction');
  bad([-1, 0, 1], 'a negative offset');
  bad([NaN, 0, 1], 'NaN');
  t.throws(() => addon!.moveBytes(new Uint16Array(4) as unknown as Uint8Array, new Float64Array(0)), RangeError, 'not a Uint8Array');
  await t.rejects(moveBytes(bytes, [{ from: 0, to: 9, length: 8 }]), RangeError, 'through the wrapper too');
  t.equal(await addon!.moveBytes(bytes, Float64Array.from([0, 8, 8, 1, 0, 3])), 11, 'resolves to the bytes moved');
});

t.test("the float16 table: every pattern's value as the format defines it", async (t) => {
  let differ = 0;
  for (let bits = 0; bits < 65536; bits++) if (!Object.is(float16BitsToNumber(bits), decodeHalf(bits))) differ++;
  t.equal(differ, 0, 'all 65536 patterns, -0 and the NaNs included');
  t.ok(Object.is(float16BitsToNumber(0x8000), -0) && float16BitsToNumber(0x7c00) === Infinity && Number.isNaN(float16BitsToNumber(0xfe01)));
  t.equal(float16BitsToNumber(0x0001), 2 ** -24, 'the smallest subnormal');
  t.equal(float16BitsToNumber(0x7bff), 65504, 'the largest finite value');
});

t.test('float16 conversions: native and reference agree bit for bit', { skip: !addon && 'no native addon' }, async (t) => {
  // Every float16 pattern, decoded.
  const every = Uint16Array.from({ length: 65536 }, (_, i) => i);
  const decoded = new Float32Array(65536);
  addon!.halfToFloat(every, decoded);
  const reference = Float32Array.from(every, float16BitsToNumber);
  t.ok(same(new Uint32Array(decoded.buffer), new Uint32Array(reference.buffer)), 'all 65536 patterns decode alike');
  // float32 values around every float16 boundary: each float16 value, the float32s next to it, and the
  // midpoints to the next one (ties to even), subnormals, overflow, infinities, NaNs of both signs.
  const bits = new Uint32Array(decoded.buffer);
  const probe: number[] = [];
  for (let i = 0; i < 65536; i++) {
    for (const d of [-1, 0, 1]) probe.push((bits[i] + d) >>> 0);
    probe.push(((bits[i] + 0x1000) & ~0xfff) >>> 0);
  }
  const rng = new Rng(14);
  for (let i = 0; i < 100_000; i++) probe.push(Math.floor(rng.next() * 2 ** 32));
  probe.push(0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x477fefff, 0x477ff000, 0x33000000, 0x33000001, 0x00000001);
  const floats = new Float32Array(Uint32Array.from(probe).buffer);
  const halves = new Uint16Array(floats.length);
  addon!.floatToHalf(floats, halves);
  let differ = 0;
  for (let i = 0; i < floats.length; i++) if (halves[i] !== numberToFloat16Bits(floats[i])) differ++;
  t.equal(differ, 0, `${floats.length} float32 values encode alike`);
  t.throws(() => addon!.halfToFloat(new Uint16Array(3), new Float32Array(2)), RangeError, 'lengths that differ');
  t.throws(() => addon!.floatToHalf(new Float32Array(3), new Uint16Array(4)), RangeError, 'lengths that differ');
  // The round trip the codecs use, over more than one of its scratch chunks: as the reference's.
  const long = new Float32Array(floats.length * 2 + 11);
  for (let i = 0; i < long.length; i++) long[i] = floats[i % floats.length];
  const rounded = roundedToFloat16(long);
  differ = 0;
  for (let i = 0; i < long.length; i++) if (!Object.is(rounded[i], float16BitsToNumber(numberToFloat16Bits(long[i])))) differ++;
  t.equal(differ, 0, `${long.length} float32 values rounded to float16 alike`);
});

t.test('sortRows: native and reference agree bit for bit on awkward rows', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(15);
  // Bit patterns, so that -0, NaNs of several payloads and signs, subnormals and infinities all occur.
  const patterns = [0, 0x8000_0000, 0x7fc0_0000, 0xffc0_0001, 0x7f80_0001, 0x7f80_0000, 0xff80_0000, 0x0000_0001, 0x8000_0001, 0x3f80_0000, 0xbf80_0000];
  const kinds: Record<string, (i: number) => number> = {
    normal: () => (rng.next() - 0.5) * 0.1,
    // Keys that share every high digit: the radix passes that move nothing are skipped.
    'one high digit': (i) => new Float32Array(Uint32Array.of(0x3f80_0000 | (i * 2654435761) % 2048).buffer)[0],
    'few values': () => [0.25, -0.5, 1e-3, 0.25][Math.floor(rng.next() * 4)],
    special: () => new Float32Array(Uint32Array.of(patterns[Math.floor(rng.next() * patterns.length)]).buffer)[0],
    'no NaN, both zeros': () => [0, -0, 1, -1, -Infinity, Infinity, 1e-45][Math.floor(rng.next() * 7)],
    constant: () => 0.7,
  };
  let cases = 0;
  for (const rowLength of [0, 1, 2, 3, 255, 256, 257, 2049, 70_001]) {
    for (const count of rowLength > 10_000 ? [1, 2] : [1, 3, 17]) {
      for (const [kind, value] of Object.entries(kinds)) {
        const rows = Float32Array.from({ length: rowLength * count }, (_, i) => value(i));
        const [a, b] = [new Float32Array(rows.length), new Float32Array(rows.length)];
        const [da, db] = [new Uint32Array(rowLength ? count : 0), new Uint32Array(rowLength ? count : 0)];
        sortRowsReference(rows, rowLength, a, da);
        addon!.sortRows(rows, rowLength, b, db);
        if (!sameBitsButNaN(a, b) || !same(da, db)) t.fail(`${count} rows of ${rowLength}, ${kind}: outputs differ`);
        cases++;
      }
    }
  }
  t.ok(cases > 100, `${cases} cases`);
  for (const n of [0, 1, 5, 300, 5000]) {
    const x = Float32Array.from({ length: n }, (_, i) => new Float32Array(Uint32Array.of(i % 3 ? patterns[i % patterns.length] : (rng.next() * 2 ** 32) >>> 0).buffer)[0]);
    t.ok(sameBits(distinctValues(x), Float64Array.from(new Set(x)).sort()), `distinct values of ${n}, as a Set and a sort give them`);
  }
  const bad: [string, () => unknown][] = [
    ['a row length that does not divide', () => addon!.sortRows(new Float32Array(10), 3, new Float32Array(10), new Uint32Array(3))],
    ['a short output', () => addon!.sortRows(new Float32Array(10), 5, new Float32Array(9), new Uint32Array(2))],
    ['a count per row', () => addon!.sortRows(new Float32Array(10), 5, new Float32Array(10), new Uint32Array(3))],
    ['a fractional row length', () => addon!.sortRows(new Float32Array(10), 2.5, new Float32Array(10), new Uint32Array(4))],
    ['a Float64Array', () => addon!.sortRows(new Float64Array(4) as unknown as Float32Array, 2, new Float32Array(4), new Uint32Array(2))],
  ];
  for (const [what, call] of bad) t.throws(call, RangeError, what);
  // No rows of any length: nothing to do, and nothing allocated for a row of 2^32 - 1 (that was a
  // std::bad_alloc, which ended the process).
  t.doesNotThrow(() => addon!.sortRows(new Float32Array(0), 2 ** 32 - 1, new Float32Array(0), new Uint32Array(0)), 'no rows of 2^32 - 1');
});

t.test('nearestCenters: native and reference agree bit for bit, ties and both ends included', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(17);
  let cases = 0;
  for (const k of [1, 2, 3, 7, 8, 255, 256, 257]) {
    const centers = Float64Array.from(new Set(Array.from({ length: k }, () => Math.fround(rng.normal() * 0.1)))).sort();
    // Every center, every midpoint between neighbours (a tie, which goes to the lower), past both
    // ends, both zeros, a NaN and infinities, and random weights.
    const special = [...centers, ...Array.from({ length: centers.length - 1 }, (_, j) => (centers[j] + centers[j + 1]) / 2), -1, 1, 0, -0, NaN, Infinity, -Infinity];
    for (const n of [0, 1, 5, 1000]) {
      const x = Float32Array.from({ length: n + special.length }, (_, i) => (i < special.length ? special[i] : rng.normal() * 0.15));
      const [a, b] = [new Float32Array(x.length), new Float32Array(x.length)];
      nearestCentersReference(x, centers, a);
      addon!.nearestCenters(x, centers, b);
      if (!sameBits(a, b)) t.fail(`${centers.length} centers, ${x.length} weights: outputs differ`);
      cases++;
    }
  }
  t.ok(cases >= 32, `${cases} cases`);
  t.throws(() => addon!.nearestCenters(new Float32Array(3), Float64Array.of(1), new Float32Array(2)), RangeError, 'a short output');
  t.throws(() => addon!.nearestCenters(new Float32Array(3), new Float64Array(0), new Float32Array(3)), RangeError, 'no centers');
  t.throws(() => addon!.nearestCenters(new Float32Array(3), new Float32Array(1) as unknown as Float64Array, new Float32Array(3)), RangeError, 'float32 centers');
});

t.test('uniformRows: native and reference agree bit for bit, on every instruction set', { skip: !addon && 'no native addon' }, async (t) => {
  const rng = new Rng(16);
  const levels = [1, 2, 3].filter((l) => addon!.simdSupported(l));
  const kinds: Record<string, () => number> = {
    normal: () => rng.normal() * 0.05,
    positive: () => Math.abs(rng.normal()) * 0.05,
    negative: () => -Math.abs(rng.normal()) * 0.05,
    // Halves of the grid's step: every rounding tie (JavaScript rounds them up).
    'small integers': () => rng.int(7) - 3,
    constant: () => -0.7,
    'both zeros': () => (rng.next() < 0.5 ? 0 : -0),
    subnormal: () => rng.normal() * 1e-41,
    // Scales past float16's range: infinite, and a NaN error for the clips that meet one.
    huge: () => rng.normal() * 1e37,
  };
  const clipSets = [[1, 0.95, 0.9, 0.85, 0.8, 0.7, 0.6], [1], [0.5, 0, 1], Array.from({ length: 11 }, (_, i) => 1 - i * 0.05)];
  let cases = 0;
  for (const rowLength of [0, 1, 2, 3, 7, 8, 9, 17, 1001]) {
    for (const [kind, value] of Object.entries(kinds)) {
      const rows = Float32Array.from({ length: rowLength * 3 }, value);
      for (const bits of [1, 2, 4, 8, 12, 16]) {
        for (const precision of ['float32', 'float16'] as TablePrecision[]) {
          for (const clips of clipSets) {
            const ref = uniformRowsReference(rows, rowLength, bits, precision, clips);
            for (const level of levels) {
              const count = rowLength ? 3 : 0;
              const out = { scale: new Float32Array(count), zeroPoint: new Float32Array(count), q: new Uint16Array(rows.length), values: new Float32Array(rows.length) };
              const done = addon!.uniformRows(rows, rowLength, bits, precision === 'float16', Float64Array.from(clips), level, out.scale, out.zeroPoint, out.q, out.values);
              const where = `rows of ${rowLength}, ${kind}, ${bits} bits, ${precision}, ${clips.length} clips, simd ${level}`;
              if (!done || !sameBits(out.scale, ref.scale) || !sameBits(out.zeroPoint, ref.zeroPoint) || !same(out.q, ref.q) || !sameBits(out.values, ref.values)) {
                t.fail(`${where}: outputs differ`);
              }
              cases++;
            }
          }
        }
      }
    }
  }
  t.ok(cases > 1000, `${cases} cases`);
  // A row with a NaN or an infinity: the native kernel declines, and uniformRows() gives the reference's.
  for (const bad of [NaN, Infinity, -Infinity]) {
    const rows = rng.normals(30, 0.1);
    rows[17] = bad;
    const out = { scale: new Float32Array(3), zeroPoint: new Float32Array(3), q: new Uint16Array(30), values: new Float32Array(30) };
    t.equal(addon!.uniformRows(rows, 10, 4, false, Float64Array.of(1, 0.9), 0, out.scale, out.zeroPoint, out.q, out.values), false, `declines a row with ${bad}`);
    const got = uniformRows(rows, 10, 4, 'float32');
    const ref = uniformRowsReference(rows, 10, 4, 'float32');
    t.ok(sameBits(got.values, ref.values) && same(got.q, ref.q) && sameBits(got.scale, ref.scale), `a row with ${bad}: the reference's result`);
  }
  const call = (rows: Float32Array, rowLength: number, bits: number, o: { s?: number; q?: number; simd?: number; clips?: Float64Array } = {}) => () =>
    addon!.uniformRows(rows, rowLength, bits, false, o.clips ?? Float64Array.of(1), o.simd ?? 0, new Float32Array(o.s ?? 2), new Float32Array(o.s ?? 2), new Uint16Array(o.q ?? 10), new Float32Array(o.q ?? 10));
  const bad: [string, () => unknown][] = [
    ['bits 0', call(new Float32Array(10), 5, 0)],
    ['bits 17', call(new Float32Array(10), 5, 17)],
    ['fractional bits', call(new Float32Array(10), 5, 2.5)],
    ['a row length that does not divide', call(new Float32Array(10), 3, 4)],
    ['a scale per row', call(new Float32Array(10), 5, 4, { s: 3 })],
    ['a level per weight', call(new Float32Array(10), 5, 4, { q: 9 })],
    ['an instruction set past the list', call(new Float32Array(10), 5, 4, { simd: 9 })],
  ];
  for (const [what, c] of bad) t.throws(c, RangeError, what);
  // Rows of no length, as the reference has them: nothing to do, whatever the array holds.
  const none = uniformRows(new Float32Array(4), 0, 8, 'float32');
  t.same([none.scale.length, none.q.length, none.values.length], [0, 4, 4], 'rows of no length');
});

/**
 * The same bits element for element, where a NaN meets any NaN: TypedArray sort leaves the order of
 * NaNs of different payloads to the engine (V8 does not keep their input order), so only their places
 * are compared.
 */
function sameBitsButNaN(a: Float32Array, b: Float32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!(Number.isNaN(a[i]) ? Number.isNaN(b[i]) : Object.is(a[i], b[i]))) return false;
  return true;
}

/** The same bits, element for element (NaN payloads included). */
function sameBits(a: Float32Array | Float64Array, b: Float32Array | Float64Array): boolean {
  if (a.length !== b.length || a.constructor !== b.constructor) return false;
  const [x, y] = [new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength)];
  return same(x, y);
}

function same(a: ArrayLike<number>, b: ArrayLike<number>): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
