/**
 * The budget's measuring inputs: the user's samples (a folder of a few unlabeled inputs), or synthetic
 * probes (probes.ts) of the model's input shapes.
 *
 * Samples, one input each, for a model with one float input: `.npy` (float32, float16 or uint8, any
 * shape with as many elements as the input's concrete shape, or that shape without its batch axis),
 * `.raw` / `.bin` (little-endian float32, the same count), or `.png` (8-bit grey, RGB or RGBA, resized to
 * the input's height and width, its channels as the input's, pixel values p mapped to 2p/255 - 1 as the
 * probes are). At most 64 files, read in name order; nothing outside the folder is read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import { RedppError } from '../../errors';
import type { Graph } from '../../model/graph';
import { DataType, dataTypeName, fromNumbers, toFloat32 } from '../../model/dtype';
import { Rng } from '../../rng';
import type { PlainTensor } from './probe-session';
import { probeCount, probeInTurns, probeShape, type ProbeKind } from './probes';
import { nextTurn, slices } from '../../turns';

const MAX_SAMPLES = 64;

/** The synthetic probes for a model: image inputs alternate dead leaves and strokes on paper; others are normal noise. */
export async function syntheticProbes(graph: Graph, inputShapes: Record<string, number[]>, seed = 11): Promise<Record<string, PlainTensor>[]> {
  const inputs = graph.runtimeInputs;
  const rng = new Rng(seed);
  const shapes = inputs.map((i) => {
    const declared = (i.type?.tensor_type?.shape?.dim ?? []).map((d) => (d.value === 'dim_value' ? Number(d.dim_value) : d.dim_param || '?'));
    return probeShape(declared, inputShapes[i.name]);
  });
  const count = Math.max(...shapes.map(probeCount), 1);
  const kinds: ProbeKind[] = ['leaves', 'strokes'];
  const probes: Record<string, PlainTensor>[] = [];
  // Painting images takes turns of the event loop: the first image, painted before the JIT has
  // compiled its loops, takes 50 ms alone. The probes are plain tensors: onnxruntime-node is loaded
  // by the probe worker only, as its load would stall this thread for 20-60 ms.
  const pause = slices();
  for (let k = 0; k < count; k++) {
    await nextTurn();
    const feeds: Record<string, PlainTensor> = {};
    for (const [j, input] of inputs.entries()) {
      const type = input.type?.tensor_type?.elem_type;
      const shape = shapes[j];
      const size = shape.reduce((a, b) => a * b, 1);
      if (type === DataType.FLOAT || type === DataType.FLOAT16 || type === DataType.DOUBLE) {
        const values = await probeInTurns(kinds[k % 2], shape, rng, pause);
        if (type === DataType.FLOAT) feeds[input.name] = { type: 'float32', data: values, dims: shape };
        else if (type === DataType.DOUBLE) feeds[input.name] = { type: 'float64', data: Float64Array.from(values), dims: shape };
        else feeds[input.name] = { type: 'float16', data: fromNumbers(values, DataType.FLOAT16), dims: shape };
      } else if (type === DataType.INT64) {
        feeds[input.name] = { type: 'int64', data: BigInt64Array.from({ length: size }, () => BigInt(rng.int(10))), dims: shape };
      } else if (type === DataType.INT32) {
        feeds[input.name] = { type: 'int32', data: Int32Array.from({ length: size }, () => rng.int(10)), dims: shape };
      } else {
        throw new RedppError('INVALID_MODEL', `the budget cannot make probes for input '${input.name}' of element type ${dataTypeName(type ?? 0)}: give options.samples, or options.beta`);
      }
    }
    probes.push(feeds);
  }
  return probes;
}

/** The user's samples in `dir`, for a model with one float input of concrete `shape`. */
export function readSamples(dir: string, graph: Graph, inputShapes: Record<string, number[]>): Record<string, PlainTensor>[] {
  const inputs = graph.runtimeInputs;
  if (inputs.length !== 1 || inputs[0].type?.tensor_type?.elem_type !== 1) {
    throw new RedppError('INVALID_OPTION', `options.samples: a folder of samples serves a model with one float32 input (this one has ${inputs.length})`);
  }
  const name = inputs[0].name;
  const shape = inputShapes[name];
  const size = shape.reduce((a, b) => a * b, 1);
  const root = path.resolve(dir);
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(root, { withFileTypes: true });
  } catch (e) {
    throw new RedppError('INVALID_OPTION', `options.samples: cannot read the folder '${dir}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, { cause: e });
  }
  const files = entries
    .filter((e) => e.isFile() && /\.(npy|raw|bin|png)$/i.test(e.name))
    .map((e) => e.name)
    .sort();
  if (files.length === 0) throw new RedppError('INVALID_OPTION', `options.samples: '${dir}' holds no .npy, .raw, .bin or .png file`);
  return files.slice(0, MAX_SAMPLES).map((file) => {
    const bytes = fs.readFileSync(path.join(root, file));
    const what = `options.samples: '${file}'`;
    let data: Float32Array;
    if (/\.npy$/i.test(file)) data = readNpy(bytes, what);
    else if (/\.png$/i.test(file)) data = pngInput(bytes, shape, what);
    else {
      if (bytes.byteLength % 4 !== 0) throw new RedppError('INVALID_OPTION', `${what} is not a whole number of float32 values`);
      data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
    }
    if (data.length !== size) throw new RedppError('INVALID_OPTION', `${what} has ${data.length} values where input '${name}' [${shape.join(', ')}] takes ${size}`);
    if (!data.every(Number.isFinite)) throw new RedppError('INVALID_OPTION', `${what} holds NaN or infinite values`);
    return { [name]: { type: 'float32', data, dims: shape } };
  });
}

/** A .npy array's values as float32 (format 1.0-3.0, little-endian float32/float16 or uint8, C order). */
export function readNpy(bytes: Buffer, what: string): Float32Array {
  if (bytes.byteLength < 10 || bytes.toString('latin1', 0, 6) !== '\x93NUMPY') throw new RedppError('INVALID_OPTION', `${what} is not a .npy file`);
  const major = bytes[6];
  const headerLength = major === 1 ? bytes.readUInt16LE(8) : bytes.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + headerLength;
  const header = bytes.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*True/.test(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || shape === undefined || start > bytes.byteLength) throw new RedppError('INVALID_OPTION', `${what} has no readable .npy header`);
  if (fortran) throw new RedppError('INVALID_OPTION', `${what} is in Fortran order; save it in C order`);
  const count = shape.split(',').filter((d) => d.trim() !== '').reduce((a, d) => a * Number(d), 1);
  const body = bytes.subarray(start);
  const need = (width: number) => {
    if (!Number.isSafeInteger(count) || body.byteLength < count * width) throw new RedppError('INVALID_OPTION', `${what} ends before its ${count} values`);
  };
  switch (descr) {
    case '<f4': {
      need(4);
      return new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + count * 4));
    }
    case '<f2': {
      need(2);
      const h = new Uint16Array(body.buffer.slice(body.byteOffset, body.byteOffset + count * 2));
      return toFloat32(h, DataType.FLOAT16);
    }
    case '|u1':
      need(1);
      return Float32Array.from(body.subarray(0, count));
    default:
      throw new RedppError('INVALID_OPTION', `${what} holds '${descr}' values; redpp reads float32, float16 and uint8 .npy files`);
  }
}

/** A PNG image as an NCHW input of `shape` (batch 1): resized bilinearly, pixels p as 2p/255 - 1. */
function pngInput(bytes: Buffer, shape: readonly number[], what: string): Float32Array {
  if (shape.length !== 4 || shape[0] !== 1) throw new RedppError('INVALID_OPTION', `${what}: an image serves an input of shape [1, C, H, W], not [${shape.join(', ')}]`);
  const [, c, h, w] = shape;
  const img = decodePng(bytes, what);
  const out = new Float32Array(c * h * w);
  for (let y = 0; y < h; y++) {
    const fy = Math.max(0, ((y + 0.5) * img.height) / h - 0.5);
    const y0 = Math.min(Math.floor(fy), img.height - 1);
    const y1 = Math.min(y0 + 1, img.height - 1);
    for (let x = 0; x < w; x++) {
      const fx = Math.max(0, ((x + 0.5) * img.width) / w - 0.5);
      const x0 = Math.min(Math.floor(fx), img.width - 1);
      const x1 = Math.min(x0 + 1, img.width - 1);
      for (let ch = 0; ch < c; ch++) {
        const k = Math.min(ch, img.channels - 1);
        const at = (yy: number, xx: number) => img.data[(yy * img.width + xx) * img.channels + k];
        const top = at(y0, x0) + (at(y0, x1) - at(y0, x0)) * (fx - x0);
        const bottom = at(y1, x0) + (at(y1, x1) - at(y1, x0)) * (fx - x0);
        out[ch * h * w + y * w + x] = ((top + (bottom - top) * (fy - y0)) * 2) / 255 - 1;
      }
    }
  }
  return out;
}

/** 8-bit, non-interlaced PNG: grey (0), RGB (2) or RGBA (6); alpha is dropped. */
export function decodePng(bytes: Buffer, what: string): { width: number; height: number; channels: number; data: Uint8Array } {
  const bad = (why: string) => new RedppError('INVALID_OPTION', `${what}: ${why}`);
  if (bytes.byteLength < 33 || bytes.readUInt32BE(0) !== 0x89504e47) throw bad('not a PNG image');
  let width = 0;
  let height = 0;
  let colour = -1;
  const idat: Buffer[] = [];
  for (let at = 8; at + 8 <= bytes.byteLength; ) {
    const length = bytes.readUInt32BE(at);
    const type = bytes.toString('latin1', at + 4, at + 8);
    if (at + 12 + length > bytes.byteLength) throw bad('the PNG ends inside a chunk');
    const body = bytes.subarray(at + 8, at + 8 + length);
    if (type === 'IHDR') {
      [width, height] = [body.readUInt32BE(0), body.readUInt32BE(4)];
      colour = body[9];
      if (body[8] !== 8 || body[12] !== 0 || ![0, 2, 6].includes(colour)) throw bad('redpp reads 8-bit, non-interlaced grey, RGB or RGBA PNG images');
      if (width === 0 || height === 0 || width * height > 1 << 26) throw bad(`an image of ${width} × ${height} pixels`);
    } else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') break;
    at += 12 + length;
  }
  if (colour < 0 || idat.length === 0) throw bad('the PNG has no image data');
  const channels = colour === 0 ? 1 : colour === 2 ? 3 : 4;
  let raw: Buffer;
  try {
    raw = zlib.inflateSync(Buffer.concat(idat), { maxOutputLength: (width * channels + 1) * height });
  } catch (e) {
    throw bad(`its image data does not inflate (${(e as Error).message})`);
  }
  const stride = width * channels;
  if (raw.byteLength !== (stride + 1) * height) throw bad('its image data has the wrong size');
  const pixels = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= channels ? pixels[y * stride + i - channels] : 0;
      const b = y > 0 ? pixels[(y - 1) * stride + i] : 0;
      const c = y > 0 && i >= channels ? pixels[(y - 1) * stride + i - channels] : 0;
      let v = line[i];
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const [pa, pb, pc] = [Math.abs(p - a), Math.abs(p - b), Math.abs(p - c)];
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      } else if (filter !== 0) throw bad(`unknown PNG filter ${filter}`);
      pixels[y * stride + i] = v & 0xff;
    }
  }
  const keep = Math.min(channels, 3);
  const data = new Uint8Array(width * height * keep);
  for (let p = 0; p < width * height; p++) for (let k = 0; k < keep; k++) data[p * keep + k] = pixels[p * channels + k];
  return { width, height, channels: keep, data };
}
