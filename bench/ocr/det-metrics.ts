/**
 * Detector map measures. PaddleOCR's DB post-processing starts from `prob > 0.3` (DBPostProcess thresh),
 * so the binarised map is what decides the boxes; comparing two models' binarised maps by IoU is the
 * direct measure of "finds the same text".
 */
import { fillContours } from './raster';
import type { DetLine } from './samples';

export const DET_THRESHOLD = 0.3;

export function binarize(map: Float32Array, threshold = DET_THRESHOLD): Uint8Array {
  const out = new Uint8Array(map.length);
  for (let i = 0; i < map.length; i++) out[i] = map[i]! > threshold ? 1 : 0;
  return out;
}

export function countOnes(mask: Uint8Array): number {
  let n = 0;
  for (let i = 0; i < mask.length; i++) n += mask[i]!;
  return n;
}

/** Intersection over union of two binary masks; two empty masks agree perfectly (1). */
export function maskIoU(a: Uint8Array, b: Uint8Array): number {
  let inter = 0;
  let union = 0;
  for (let i = 0; i < a.length; i++) {
    inter += a[i]! & b[i]!;
    union += a[i]! | b[i]!;
  }
  return union ? inter / union : 1;
}

/** Number of 4-connected components of at least `minArea` pixels (DB's boxes come from these). */
export function components(mask: Uint8Array, width: number, height: number, minArea = 4): number {
  const seen = new Uint8Array(mask.length);
  const stack: number[] = [];
  let count = 0;
  for (let start = 0; start < mask.length; start++) {
    if (!mask[start] || seen[start]) continue;
    let area = 0;
    seen[start] = 1;
    stack.push(start);
    while (stack.length) {
      const p = stack.pop()!;
      area++;
      const x = p % width;
      const y = (p - x) / width;
      const near = [x > 0 ? p - 1 : -1, x < width - 1 ? p + 1 : -1, y > 0 ? p - width : -1, y < height - 1 ? p + width : -1];
      for (const q of near) {
        if (q >= 0 && mask[q] && !seen[q]) {
          seen[q] = 1;
          stack.push(q);
        }
      }
    }
    if (area >= minArea) count++;
  }
  return count;
}

/** A line's quad shrunk towards its centre by `d` pixels on each side (kept at least 2 px thick). */
function shrinkQuad(quad: number[], d: number): number[] {
  const [x0, y0, x1, y1, , , x3, y3] = quad as [number, number, number, number, number, number, number, number];
  const ux = x1 - x0;
  const uy = y1 - y0;
  const vx = x3 - x0;
  const vy = y3 - y0;
  const w = Math.hypot(ux, uy);
  const h = Math.hypot(vx, vy);
  const dw = Math.min(d, Math.max(0, (w - 2) / 2));
  const dh = Math.min(d, Math.max(0, (h - 2) / 2));
  const a = dw / w;
  const b = dh / h;
  // Corners in the quad's own frame (origin at corner 0, axes u and v), moved inwards.
  const at = (s: number, t: number) => [x0 + s * ux + t * vx, y0 + s * uy + t * vy];
  return [...at(a, b), ...at(1 - a, b), ...at(1 - a, 1 - b), ...at(a, 1 - b)];
}

function scaleQuad(quad: number[], sx: number, sy: number): number[] {
  return quad.map((v, i) => (i % 2 ? v * sy : v * sx));
}

export interface DetCoverage {
  /** Mean over lines of the fraction of the line's core (the DB shrink kernel) that is above threshold. */
  coverage: number;
  /** Lines whose core is at least half covered. */
  linesFound: number;
  lines: number;
  /** Fraction of above-threshold pixels that lie outside every (generously padded) text box. */
  falsePositive: number;
  /** Per-line core coverage, in the order of the sample's lines. */
  perLine: number[];
}

/**
 * How well a binarised map covers the ground-truth lines. The probability map of DB is trained on each
 * box shrunk by D = A (1 - r^2) / L with r = 0.4 (about 0.42 x the height for a long line), so the core
 * that must be found is that shrunk box; pixels outside the box padded by half its height are false hits.
 */
export function detCoverage(
  mask: Uint8Array,
  width: number,
  height: number,
  lines: readonly DetLine[],
  scale: { x: number; y: number },
): DetCoverage {
  const perLine: number[] = [];
  const allowed = new Float32Array(width * height);
  for (const line of lines) {
    const q = scaleQuad(line.quad, scale.x, scale.y);
    const w = Math.hypot(q[2]! - q[0]!, q[3]! - q[1]!);
    const h = Math.hypot(q[6]! - q[0]!, q[7]! - q[1]!);
    const d = (w * h * (1 - 0.4 * 0.4)) / (2 * (w + h));
    const core = new Float32Array(width * height);
    fillContours(core, width, height, [shrinkQuad(q, d)]);
    let inside = 0;
    let total = 0;
    for (let i = 0; i < core.length; i++) {
      if (core[i]! >= 0.5) {
        total++;
        inside += mask[i]!;
      }
    }
    perLine.push(total ? inside / total : 0);
    fillContours(allowed, width, height, [shrinkQuad(q, -h / 2)]);
  }
  let positives = 0;
  let outside = 0;
  for (let i = 0; i < mask.length; i++) {
    if (!mask[i]) continue;
    positives++;
    if (allowed[i]! <= 0) outside++;
  }
  return {
    coverage: perLine.length ? perLine.reduce((s, v) => s + v, 0) / perLine.length : 1,
    linesFound: perLine.filter((v) => v >= 0.5).length,
    lines: perLine.length,
    falsePositive: positives ? outside / positives : 0,
    perLine,
  };
}
