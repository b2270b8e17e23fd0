/**
 * Probe inputs for the fidelity budget, made without data: seeded, of an input's concrete shape.
 *
 * - `normal`: standard normal values (what validate() probes with);
 * - `pink`: 1/f noise per channel, the power spectrum of natural images;
 * - `leaves`: a dead-leaves image (occluding disks and boxes of random tone, sizes drawn from a power
 *   law: natural images' statistics, edges included) with a few dark strokes over it, like writing.
 * Images are made with pixel values in [0, 1] and then mapped to [-1, 1]. A 4-D input is taken as NCHW.
 */
import type { Rng } from '../../rng';
import { stepsInTurns } from '../../turns';

export type ProbeKind = 'normal' | 'pink' | 'leaves' | 'strokes';
export const PROBE_KINDS: readonly ProbeKind[] = ['normal', 'pink', 'leaves', 'strokes'];

/**
 * One probe of `kind` for a float input of `shape` (row-major), with `await pause()` between shares of
 * its painting (a main-thread caller's event loop keeps its turns); the values do not depend on the pauses.
 */
export async function probeInTurns(kind: ProbeKind, shape: readonly number[], rng: Rng, pause: () => Promise<void> | undefined): Promise<Float32Array> {
  return stepsInTurns(probeSteps(kind, shape, rng), pause);
}

/** A dead-leaves image yields after each this many shapes. */
const SHAPES_PER_STEP = 256;

function* probeSteps(kind: ProbeKind, shape: readonly number[], rng: Rng): Generator<void, Float32Array, void> {
  const size = shape.reduce((a, b) => a * b, 1);
  if (kind === 'normal' || shape.length !== 4) return rng.normals(size);
  const [n, c, h, w] = shape;
  const out = new Float32Array(size);
  for (let b = 0; b < n; b++) {
    const image = kind === 'pink' ? pinkImage(c, h, w, rng) : yield* leavesImage(c, h, w, rng, kind === 'strokes');
    for (let i = 0; i < image.length; i++) out[b * image.length + i] = 2 * image[i] - 1;
  }
  return out;
}

/** 1/f noise per channel in [0, 1]: a sum of octaves of smoothed noise, each halving in amplitude. */
function pinkImage(c: number, h: number, w: number, rng: Rng): Float32Array {
  const out = new Float32Array(c * h * w);
  for (let ch = 0; ch < c; ch++) {
    const plane = out.subarray(ch * h * w, (ch + 1) * h * w);
    for (let cell = Math.max(h, w), amp = 1; cell >= 1; cell >>= 1, amp *= 0.5) {
      const gh = Math.ceil(h / cell) + 1;
      const gw = Math.ceil(w / cell) + 1;
      const grid = Float32Array.from({ length: gh * gw }, () => rng.next() - 0.5);
      for (let y = 0; y < h; y++) {
        const fy = y / cell;
        const y0 = Math.floor(fy);
        const ty = fy - y0;
        for (let x = 0; x < w; x++) {
          const fx = x / cell;
          const x0 = Math.floor(fx);
          const tx = fx - x0;
          const a = grid[y0 * gw + x0] * (1 - tx) + grid[y0 * gw + x0 + 1] * tx;
          const b = grid[(y0 + 1) * gw + x0] * (1 - tx) + grid[(y0 + 1) * gw + x0 + 1] * tx;
          plane[y * w + x] += amp * (a * (1 - ty) + b * ty);
        }
      }
    }
    let lo = Infinity;
    let hi = -Infinity;
    for (const v of plane) {
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    for (let i = 0; i < plane.length; i++) plane[i] = hi > lo ? (plane[i] - lo) / (hi - lo) : 0.5;
  }
  return out;
}

/**
 * Dead leaves: shapes painted from the front back until the image is covered (here: a fixed count,
 * front first, each pixel keeping the first shape that covers it), radii with density ~ r^-3 between
 * 1/100 and 1/4 of the image, tones per channel near a shared grey; then 2 to 6 strokes of dark, thin,
 * parallel lines.
 */
function* leavesImage(c: number, h: number, w: number, rng: Rng, paper = false): Generator<void, Float32Array, void> {
  const out = new Float32Array(c * h * w).fill(paper ? 0.92 : -1);
  const side = Math.min(h, w);
  const [rMin, rMax] = [Math.max(1, side / 100), side / 4];
  let covered = 0;
  for (let shape = 0; !paper && shape < 4000 && covered < h * w; shape++) {
    if (shape > 0 && shape % SHAPES_PER_STEP === 0) yield;
    // Inverse-CDF sample of r^-3 on [rMin, rMax].
    const u = rng.next();
    const r = 1 / Math.sqrt(1 / (rMin * rMin) - u * (1 / (rMin * rMin) - 1 / (rMax * rMax)));
    const [cy, cx] = [rng.next() * h, rng.next() * w];
    const box = rng.next() < 0.5;
    const grey = rng.next();
    const tones = Array.from({ length: c }, () => Math.min(1, Math.max(0, grey + 0.15 * (rng.next() - 0.5))));
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(h, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(w, Math.ceil(cx + r)); x++) {
        if (!box && (y - cy) ** 2 + (x - cx) ** 2 > r * r) continue;
        if (out[y * w + x] >= 0) continue;
        for (let ch = 0; ch < c; ch++) out[ch * h * w + y * w + x] = tones[ch];
        covered++;
      }
    }
  }
  for (let i = 0; i < out.length; i++) if (out[i] < 0) out[i] = 0.5;
  const strokes = paper ? 6 + Math.floor(rng.next() * 10) : 2 + Math.floor(rng.next() * 5);
  for (let s = 0; s < strokes; s++) {
    const height = Math.max(2, Math.round(side * (0.03 + 0.07 * rng.next())));
    const [y0, x0] = [Math.floor(rng.next() * (h - height)), Math.floor(rng.next() * w * 0.7)];
    const length = Math.floor(w * (0.1 + 0.3 * rng.next()));
    // Glyph-like: short vertical bars and a baseline, dark on whatever lies beneath.
    for (let x = x0; x < Math.min(w, x0 + length); x++) {
      const bar = (x - x0) % Math.max(2, Math.round(height / 2)) < Math.max(1, Math.round(height / 6));
      for (let y = y0; y < y0 + height; y++) {
        if (!bar && y !== y0 + height - 1) continue;
        for (let ch = 0; ch < c; ch++) out[ch * h * w + y * w + x] = 0.05;
      }
    }
  }
  return out;
}

/** The probe inputs' shapes: the concrete ones, with spatial dims the model leaves free brought down to at most `maxSide`. */
export function probeShape(declared: readonly (number | string)[], concrete: readonly number[], maxSide = 320): number[] {
  const shape = [...concrete];
  if (shape.length !== 4) return shape;
  const free = [2, 3].filter((a) => typeof declared[a] !== 'number' || (declared[a] as number) < 0);
  const side = Math.max(...free.map((a) => shape[a]));
  if (free.length === 0 || side <= maxSide) return shape;
  for (const a of free) shape[a] = Math.max(32, Math.round((shape[a] * maxSide) / side / 32) * 32);
  return shape;
}

/**
 * How many probe images an input gets: enough for about two 320 × 320 images' worth of pixels, at
 * least two (one of each image kind) and at most eight.
 */
export function probeCount(shape: readonly number[]): number {
  if (shape.length !== 4) return 2;
  return Math.min(8, Math.max(2, Math.ceil((2 * 320 * 320) / (shape[2] * shape[3]))));
}
