/**
 * 8-bit RGB images (what a decoded photo or scan gives PaddleOCR) and the few drawing operations the
 * samples need. Drawing happens on a float canvas so that noise and blur are applied before the single
 * rounding to 8 bits, as a camera or scanner would.
 */
import * as fs from 'node:fs';
import * as zlib from 'node:zlib';

import { fillContours, transformContours, type Contour } from './raster';
import type { Rng } from '../../lib/rng';

/** Interleaved RGB, row-major, 3 bytes per pixel. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

export type Color = readonly [number, number, number];

/** A float RGB canvas (0..255) for composing a sample. */
export class Canvas {
  readonly width: number;
  readonly height: number;
  readonly data: Float32Array;

  constructor(width: number, height: number, background: Color) {
    this.width = width;
    this.height = height;
    this.data = new Float32Array(width * height * 3);
    for (let i = 0; i < width * height * 3; i += 3) {
      this.data[i] = background[0];
      this.data[i + 1] = background[1];
      this.data[i + 2] = background[2];
    }
  }

  /** Paints `color` through the coverage of `contours` (anti-aliased), at `opacity`. */
  fill(contours: readonly Contour[], color: Color, opacity = 1): void {
    // Rasterise only the contours' bounding box: a page has many small shapes.
    let x0 = Infinity;
    let y0 = Infinity;
    let x1 = -Infinity;
    let y1 = -Infinity;
    for (const c of contours) {
      for (let i = 0; i < c.length; i += 2) {
        x0 = Math.min(x0, c[i]!);
        x1 = Math.max(x1, c[i]!);
        y0 = Math.min(y0, c[i + 1]!);
        y1 = Math.max(y1, c[i + 1]!);
      }
    }
    const left = Math.max(0, Math.floor(x0));
    const top = Math.max(0, Math.floor(y0));
    const w = Math.min(this.width, Math.ceil(x1) + 1) - left;
    const h = Math.min(this.height, Math.ceil(y1) + 1) - top;
    if (w <= 0 || h <= 0) return;
    const cov = new Float32Array(w * h);
    fillContours(cov, w, h, transformContours(contours, [1, 0, -left, 0, 1, -top]));
    this.paint(cov, { left, top, width: w, height: h }, color, opacity);
  }

  /** Blends `color` into the rectangle `at` with per-pixel weight `coverage * opacity` (coverage is at's size). */
  paint(coverage: Float32Array, at: { left: number; top: number; width: number; height: number }, color: Color, opacity = 1): void {
    const d = this.data;
    for (let y = 0; y < at.height; y++) {
      for (let x = 0; x < at.width; x++) {
        const a = coverage[y * at.width + x]! * opacity;
        if (a <= 0) continue;
        const p = ((at.top + y) * this.width + at.left + x) * 3;
        d[p] = d[p]! + (color[0] - d[p]!) * a;
        d[p + 1] = d[p + 1]! + (color[1] - d[p + 1]!) * a;
        d[p + 2] = d[p + 2]! + (color[2] - d[p + 2]!) * a;
      }
    }
  }

  /** A smooth brightness ramp (uneven lighting): adds up to `amount` grey levels along a random direction. */
  shade(rng: Rng, amount: number): void {
    const angle = rng.next() * 2 * Math.PI;
    const cx = Math.cos(angle) / this.width;
    const cy = Math.sin(angle) / this.height;
    for (let y = 0; y < this.height; y++) {
      for (let x = 0; x < this.width; x++) {
        const v = (x * cx + y * cy) * amount;
        const p = (y * this.width + x) * 3;
        this.data[p] = this.data[p]! + v;
        this.data[p + 1] = this.data[p + 1]! + v;
        this.data[p + 2] = this.data[p + 2]! + v;
      }
    }
  }

  /** Separable Gaussian blur (the softness of a lens or of resampling); sigma <= 0 does nothing. */
  blur(sigma: number): void {
    if (sigma <= 0) return;
    const r = Math.max(1, Math.ceil(3 * sigma));
    const k = new Float32Array(2 * r + 1);
    let sum = 0;
    for (let i = -r; i <= r; i++) sum += k[i + r] = Math.exp(-(i * i) / (2 * sigma * sigma));
    for (let i = 0; i < k.length; i++) k[i] = k[i]! / sum;
    const { width: w, height: h } = this;
    const d = this.data;
    const tmp = new Float32Array(d.length);
    // Clamped neighbour offsets, precomputed so the inner loops are plain multiply-adds.
    const along = (n: number) => {
      const idx = new Int32Array(n * (2 * r + 1));
      for (let i = 0; i < n; i++) for (let j = -r; j <= r; j++) idx[i * (2 * r + 1) + j + r] = Math.min(n - 1, Math.max(0, i + j));
      return idx;
    };
    const ix = along(w);
    const iy = along(h);
    const taps = 2 * r + 1;
    for (let y = 0; y < h; y++) {
      const rowBase = y * w;
      for (let x = 0; x < w; x++) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        for (let j = 0; j < taps; j++) {
          const p = (rowBase + ix[x * taps + j]!) * 3;
          const kj = k[j]!;
          s0 += kj * d[p]!;
          s1 += kj * d[p + 1]!;
          s2 += kj * d[p + 2]!;
        }
        const q = (rowBase + x) * 3;
        tmp[q] = s0;
        tmp[q + 1] = s1;
        tmp[q + 2] = s2;
      }
    }
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        let s0 = 0;
        let s1 = 0;
        let s2 = 0;
        for (let j = 0; j < taps; j++) {
          const p = (iy[y * taps + j]! * w + x) * 3;
          const kj = k[j]!;
          s0 += kj * tmp[p]!;
          s1 += kj * tmp[p + 1]!;
          s2 += kj * tmp[p + 2]!;
        }
        const q = (y * w + x) * 3;
        d[q] = s0;
        d[q + 1] = s1;
        d[q + 2] = s2;
      }
    }
  }

  /** Adds Gaussian sensor noise of `std` grey levels (the same on the three channels, like luminance noise). */
  noise(rng: Rng, std: number): void {
    if (std <= 0) return;
    for (let i = 0; i < this.width * this.height; i++) {
      const v = rng.normal() * std;
      this.data[i * 3] = this.data[i * 3]! + v;
      this.data[i * 3 + 1] = this.data[i * 3 + 1]! + v;
      this.data[i * 3 + 2] = this.data[i * 3 + 2]! + v;
    }
  }

  /** Rounds to 8 bits. */
  toImage(): RgbImage {
    const data = new Uint8Array(this.data.length);
    for (let i = 0; i < data.length; i++) data[i] = Math.max(0, Math.min(255, Math.round(this.data[i]!)));
    return { width: this.width, height: this.height, data };
  }
}

/** The image turned by 180° (what an upside-down text line looks like to the direction classifier). */
export function rotate180(img: RgbImage): RgbImage {
  const n = img.width * img.height;
  const data = new Uint8Array(img.data.length);
  for (let i = 0; i < n; i++) data.set(img.data.subarray(i * 3, i * 3 + 3), (n - 1 - i) * 3);
  return { width: img.width, height: img.height, data };
}

// PNG writing: enough of the format for a human to look at samples (8-bit RGB, no interlace).
const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Buffer {
  const out = Buffer.alloc(12 + body.length);
  out.writeUInt32BE(body.length, 0);
  out.write(type, 4, 'latin1');
  out.set(body, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + body.length)), 8 + body.length);
  return out;
}

export function encodePng(img: RgbImage): Buffer {
  const { width, height } = img;
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8 bits, truecolour, deflate, adaptive filtering, no interlace
  const raw = Buffer.alloc(height * (1 + width * 3));
  for (let y = 0; y < height; y++) {
    raw[y * (1 + width * 3)] = 0; // filter: none
    raw.set(img.data.subarray(y * width * 3, (y + 1) * width * 3), y * (1 + width * 3) + 1);
  }
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', zlib.deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

export function savePng(img: RgbImage, file: string): void {
  fs.writeFileSync(file, encodePng(img));
}

/** A single-channel map (0..1, e.g. a detector's probability map) as a grey image, for looking at. */
export function mapToImage(map: ArrayLike<number>, width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) data.fill(Math.round(Math.max(0, Math.min(1, map[i]!)) * 255), i * 3, i * 3 + 3);
  return { width, height, data };
}
