/**
 * The allocation path: from every layer at its first option (the dense weights) to every layer at its
 * smallest, one layer's step at a time, always the step that saves the most bytes per unit of predicted
 * deviation added. Deviations of different layers add as squares (independent errors), so a layer's
 * options are compared in (deviation², bytes): only the lower convex hull of each layer's options is
 * ever taken, in order, and the path visits every allocation that minimises bytes + λ·deviation² for
 * some λ (a Lagrangian search over all λ at once). Along the path, bytes fall and the predicted
 * deviation rises: a budget then picks a point on it.
 */
import { MinHeap } from '../../heap';

/** One way to store a layer: its bytes in the file, and the deviation of the model's outputs it is predicted to add. */
export interface Option {
  bytes: number;
  deviation: number;
}

export interface PathStep {
  /** The layer that moves, and the option it moves to. */
  layer: number;
  option: number;
  /** Totals after the step: bytes of every layer, and the predicted deviation sqrt(sum of squares). */
  bytes: number;
  deviation: number;
}

/**
 * The path for layers whose options are `options[l]` (option 0 is where each starts). Options off a
 * layer's lower convex hull, and options that cost more bytes than option 0, are never taken.
 */
export function allocationPath(options: readonly (readonly Option[])[]): PathStep[] {
  const hulls = options.map(hull);
  const at = hulls.map(() => 0);
  let bytes = options.reduce((a, o) => a + o[0].bytes, 0);
  let squares = options.reduce((a, o) => a + o[0].deviation ** 2, 0);
  const steps: PathStep[] = [];
  // Each layer's next step, by its efficiency (bytes saved per deviation² added), best first.
  const efficiency = (l: number) => {
    const h = hulls[l];
    if (at[l] + 1 >= h.length) return -Infinity;
    const [a, b] = [options[l][h[at[l]]], options[l][h[at[l] + 1]]];
    const dd = b.deviation ** 2 - a.deviation ** 2;
    return dd <= 0 ? Infinity : (a.bytes - b.bytes) / dd;
  };
  // The most efficient step first; between equals, the one pushed first (keys may be ±Infinity).
  const heap = new MinHeap<{ key: number; seq: number; layer: number }>((a, b) => (a.key > b.key ? -1 : a.key < b.key ? 1 : a.seq - b.seq));
  let seq = 0;
  const push = (l: number) => heap.push({ key: efficiency(l), seq: seq++, layer: l });
  options.forEach((_, l) => push(l));
  while (heap.size > 0) {
    const { key: e, layer: l } = heap.pop()!;
    if (e === -Infinity) break;
    const [a, b] = [options[l][hulls[l][at[l]]], options[l][hulls[l][at[l] + 1]]];
    at[l]++;
    bytes += b.bytes - a.bytes;
    squares += b.deviation ** 2 - a.deviation ** 2;
    steps.push({ layer: l, option: hulls[l][at[l]], bytes, deviation: Math.sqrt(Math.max(0, squares)) });
    push(l);
  }
  return steps;
}

/**
 * The indices of a layer's options on the lower convex hull of (deviation², bytes), from option 0 on:
 * each further one saves bytes, at a falling rate per deviation² added.
 */
export function hull(options: readonly Option[]): number[] {
  const start = options[0];
  // Pareto front from the start: fewer bytes, and no option both smaller and closer.
  const candidates = options
    .map((o, i) => ({ i, x: o.deviation ** 2, y: o.bytes }))
    .filter((p) => p.i === 0 || (p.y < start.bytes && p.x >= start.deviation ** 2))
    .sort((p, q) => p.x - q.x || p.y - q.y || p.i - q.i);
  const front: typeof candidates = [];
  for (const p of candidates) if (front.length === 0 || p.y < front[front.length - 1].y) front.push(p);
  // The start itself first, even where an option with the same deviation is smaller.
  if (front[0].i !== 0) front.unshift({ i: 0, x: start.deviation ** 2, y: start.bytes });
  const out: typeof candidates = [];
  for (const p of front) {
    // Keep the hull convex: drop the last point while it lies on or above the segment to p.
    while (out.length >= 2) {
      const [a, b] = [out[out.length - 2], out[out.length - 1]];
      const cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x);
      if (cross > 0) break;
      out.pop();
    }
    out.push(p);
  }
  return out.map((p) => p.i);
}
