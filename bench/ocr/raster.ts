/**
 * A small anti-aliased polygon rasteriser (non-zero winding, like canvas fill) for glyph outlines and
 * boxes. Coverage is exact horizontally and sampled on SUBROWS sub-scanlines vertically, which is enough
 * for text edges to look like a real rendering to the networks (grey ramps, not jagged binary steps).
 */

/** A closed polygon as a flat [x0, y0, x1, y1, ...] list in pixel coordinates (y down). */
export type Contour = number[];

/** opentype.js path commands (absolute coordinates). */
export interface PathCommand {
  type: 'M' | 'L' | 'Q' | 'C' | 'Z';
  x?: number;
  y?: number;
  x1?: number;
  y1?: number;
  x2?: number;
  y2?: number;
}

/** Row-major affine map [a, b, c, d, e, f]: (x, y) -> (a x + b y + c, d x + e y + f). */
export type Affine = [number, number, number, number, number, number];

const SUBROWS = 5;

/** Curves are cut into chords no longer than this many pixels (glyphs here are at most ~100 px tall). */
const MAX_CHORD = 1.5;

/** Flattens a path into polygons (quadratic and cubic Béziers become chords). */
export function flattenPath(commands: readonly PathCommand[]): Contour[] {
  const out: Contour[] = [];
  let cur: Contour = [];
  let x = 0;
  let y = 0;
  const close = () => {
    if (cur.length >= 6) out.push(cur);
    cur = [];
  };
  for (const c of commands) {
    switch (c.type) {
      case 'M':
        close();
        x = c.x!;
        y = c.y!;
        cur.push(x, y);
        break;
      case 'L':
        x = c.x!;
        y = c.y!;
        cur.push(x, y);
        break;
      case 'Q': {
        const n = segments(Math.hypot(c.x1! - x, c.y1! - y) + Math.hypot(c.x! - c.x1!, c.y! - c.y1!));
        for (let i = 1; i <= n; i++) {
          const t = i / n;
          const u = 1 - t;
          cur.push(u * u * x + 2 * u * t * c.x1! + t * t * c.x!, u * u * y + 2 * u * t * c.y1! + t * t * c.y!);
        }
        x = c.x!;
        y = c.y!;
        break;
      }
      case 'C': {
        const n = segments(
          Math.hypot(c.x1! - x, c.y1! - y) + Math.hypot(c.x2! - c.x1!, c.y2! - c.y1!) + Math.hypot(c.x! - c.x2!, c.y! - c.y2!),
        );
        for (let i = 1; i <= n; i++) {
          const t = i / n;
          const u = 1 - t;
          const a = u * u * u;
          const b = 3 * u * u * t;
          const d = 3 * u * t * t;
          const e = t * t * t;
          cur.push(a * x + b * c.x1! + d * c.x2! + e * c.x!, a * y + b * c.y1! + d * c.y2! + e * c.y!);
        }
        x = c.x!;
        y = c.y!;
        break;
      }
      case 'Z':
        close();
        break;
    }
  }
  close();
  return out;
}

function segments(controlLength: number): number {
  return Math.max(1, Math.min(64, Math.ceil(controlLength / MAX_CHORD)));
}

export function transformContours(contours: readonly Contour[], m: Affine): Contour[] {
  return contours.map((c) => {
    const out = new Array<number>(c.length);
    for (let i = 0; i < c.length; i += 2) {
      out[i] = m[0] * c[i]! + m[1] * c[i + 1]! + m[2];
      out[i + 1] = m[3] * c[i]! + m[4] * c[i + 1]! + m[5];
    }
    return out;
  });
}

/** Rotation by `angle` radians about (cx, cy), then a shift by (tx, ty). */
export function rotation(angle: number, cx: number, cy: number, tx = 0, ty = 0): Affine {
  const c = Math.cos(angle);
  const s = Math.sin(angle);
  return [c, -s, cx - c * cx + s * cy + tx, s, c, cy - s * cx - c * cy + ty];
}

/**
 * Adds the coverage (0..1) of the union of `contours` to `target` (width x height, row-major), clamping
 * at 1. All contours are filled together, so overlapping glyph parts and counters (holes) are right.
 */
export function fillContours(target: Float32Array, width: number, height: number, contours: readonly Contour[]): void {
  type Edge = { x0: number; y0: number; x1: number; y1: number; dir: number };
  const edges: Edge[] = [];
  let minY = Infinity;
  let maxY = -Infinity;
  for (const c of contours) {
    const n = c.length / 2;
    for (let i = 0; i < n; i++) {
      const j = (i + 1) % n;
      const xa = c[2 * i]!;
      const ya = c[2 * i + 1]!;
      const xb = c[2 * j]!;
      const yb = c[2 * j + 1]!;
      if (ya === yb) continue;
      edges.push(ya < yb ? { x0: xa, y0: ya, x1: xb, y1: yb, dir: 1 } : { x0: xb, y0: yb, x1: xa, y1: ya, dir: -1 });
      minY = Math.min(minY, ya, yb);
      maxY = Math.max(maxY, ya, yb);
    }
  }
  if (!edges.length) return;
  edges.sort((a, b) => a.y0 - b.y0);
  const row = new Float32Array(width + 1);
  // Crossings of one sub-scanline, kept in typed arrays (this loop runs per glyph row and sub-row).
  let xs = new Float64Array(64);
  let dirs = new Int8Array(64);
  const r0 = Math.max(0, Math.floor(minY));
  const r1 = Math.min(height - 1, Math.ceil(maxY));
  const w = 1 / SUBROWS;
  for (let r = r0; r <= r1; r++) {
    row.fill(0);
    let any = false;
    for (let s = 0; s < SUBROWS; s++) {
      const sy = r + (s + 0.5) * w;
      let n = 0;
      for (const e of edges) {
        if (e.y0 > sy) break;
        if (sy >= e.y1) continue;
        if (n === xs.length) {
          const grownX = new Float64Array(2 * n);
          grownX.set(xs);
          xs = grownX;
          const grownD = new Int8Array(2 * n);
          grownD.set(dirs);
          dirs = grownD;
        }
        // Insertion sort as we go: a glyph row crosses only a handful of edges.
        const x = e.x0 + ((sy - e.y0) * (e.x1 - e.x0)) / (e.y1 - e.y0);
        let k = n++;
        while (k > 0 && xs[k - 1]! > x) {
          xs[k] = xs[k - 1]!;
          dirs[k] = dirs[k - 1]!;
          k--;
        }
        xs[k] = x;
        dirs[k] = e.dir;
      }
      if (n < 2) continue;
      let winding = 0;
      let start = 0;
      for (let k = 0; k < n; k++) {
        const before = winding;
        winding += dirs[k]!;
        if (before === 0 && winding !== 0) start = xs[k]!;
        else if (before !== 0 && winding === 0) {
          addSpan(row, width, start, xs[k]!, w);
          any = true;
        }
      }
    }
    if (!any) continue;
    const base = r * width;
    for (let x = 0; x < width; x++) {
      if (row[x]! > 0) target[base + x] = Math.min(1, target[base + x]! + row[x]!);
    }
  }
}

function addSpan(row: Float32Array, width: number, a: number, b: number, weight: number): void {
  a = Math.max(0, a);
  b = Math.min(width, b);
  if (b <= a) return;
  const ia = Math.floor(a);
  const ib = Math.floor(b);
  if (ia === ib) {
    row[ia] += (b - a) * weight;
    return;
  }
  row[ia] += (ia + 1 - a) * weight;
  for (let i = ia + 1; i < ib; i++) row[i] += weight;
  if (ib < width) row[ib] += (b - ib) * weight;
}

/** The four corners of an axis-aligned box after an affine map, as one contour. */
export function boxContour(x0: number, y0: number, x1: number, y1: number, m?: Affine): Contour {
  const c = [x0, y0, x1, y0, x1, y1, x0, y1];
  return m ? transformContours([c], m)[0]! : c;
}
