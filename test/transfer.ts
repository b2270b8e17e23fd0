import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import t from 'tap';

import { transferBytes } from '../lib/transfer';
import { Rng } from '../lib/rng';
import { tempDir } from './helpers/onnx-builder';

const whole = (b: Uint8Array) => zlib.brotliCompressSync(b, { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: b.byteLength } }).byteLength;

t.test('the transfer size: brotli q5 as one stream, or as 32 MiB pieces side by side for a large file', async (t) => {
  // Weights that compress, like a hashed layer's: few distinct float32 values, repeated.
  const rng = new Rng(9);
  const levels = Float32Array.from({ length: 16 }, () => rng.normal());
  const small = new Float32Array(1 << 18).map(() => levels[Math.floor(rng.next() * 16)]);
  const smallBytes = new Uint8Array(small.buffer);
  t.equal(await transferBytes([smallBytes]), whole(smallBytes), 'a small file: exactly one stream');
  const large = new Uint8Array((70 << 20) + 12345);
  for (let at = 0; at < large.byteLength; at += smallBytes.byteLength) large.set(smallBytes.subarray(0, Math.min(smallBytes.byteLength, large.byteLength - at)), at);
  const dir = tempDir(t);
  const file = path.join(dir, 'large.bin');
  fs.writeFileSync(file, large);
  const [fromMemory, fromFile, reference] = [await transferBytes([large]), await transferBytes([file]), whole(large)];
  t.equal(fromFile, fromMemory, 'a path and its bytes count the same');
  t.ok(Math.abs(fromMemory / reference - 1) < 0.01, `three pieces within 1 % of one stream (${fromMemory} vs ${reference})`);
  t.equal(await transferBytes([file, smallBytes, path.join(dir, 'missing')]), fromFile + whole(smallBytes), 'files add up; a missing path counts nothing');
});
