/**
 * Finding neurons to merge inside one cell of a channel group.
 *
 * A neuron's *signature* is everything that decides its channel: its row (weights and bias) in every
 * producer of the group, then its slice of every per-channel parameter on the way (depthwise
 * weights, BatchNormalization, per-channel constants). Equal signatures give equal channels.
 *
 * - Exact duplicates: rows told apart by their bits (distinct-rows.ts). O(total weights).
 * - Near duplicates (epsilon > 0): greedy leader clustering. A neuron joins the first leader within
 *   relative distance epsilon (||a - b|| <= epsilon * max(||a||, ||b||)) on the producer rows, and
 *   within epsilon on each parameter slice separately (so a BatchNorm variance cannot hide a large
 *   difference in the weights, or the reverse); otherwise it becomes a leader. The distance bound
 *   implies | ||a|| - ||b|| | <= epsilon * max(||a||, ||b||), so only leaders whose norm lies in
 *   [(1 - eps)||a||, ||a|| / (1 - eps)] can match: leaders are kept sorted by norm and the window is
 *   scanned from the closest norm outwards, at most `candidates` of them, each distance stopping as
 *   soon as it exceeds the bound. O(n log n + n * candidates * d) at worst; the cap can only miss a
 *   merge, never make a wrong one. The leader is kept as it is (not the cluster mean): its values
 *   stay the hashed values that input splitting relies on, and every merged neuron is within
 *   epsilon of the neuron that replaces it.
 */
import type { Graph } from '../../model';
import { axisView, copySlice, sliceSize, type AxisView, type ChannelGroup, type ChannelSite } from '../channels';
import { floatsOf } from '../channels/rules/util';
import { DistinctRows } from '../distinct-rows';
import { channelPrint, type PrintTable, type PrintTask } from './prints';

interface Part {
  data: Float32Array | Float64Array;
  view: AxisView;
  inner: number;
  size: number;
  /** Position along the site's axis of each channel of the cell (relative to the cell start). */
  positions: number[];
}

export interface Signatures {
  /** Channels of the cell: [lo, hi). */
  lo: number;
  hi: number;
  /** Row length, and where the producer rows end (the parameter parts follow). */
  width: number;
  producerWidth: number;
  /** Boundaries of the parameter parts after producerWidth: [producerWidth, ..., width]. */
  paramBounds: number[];
  /**
   * One row per channel of the cell, -0 stored as +0 so equal values have equal bits; float32 when
   * every part is (the copy is exact either way).
   */
  rows: Float32Array | Float64Array;
}

/** Parts of the signature that cover channels [lo, hi) (a cell never straddles a segment edge). */
function parts(graph: Graph, sites: readonly ChannelSite[], group: number, lo: number, hi: number): Part[] {
  const out: Part[] = [];
  for (const site of sites) {
    const t = graph.constant(site.node.input(site.input));
    const data = t && (t.data instanceof Float64Array ? t.data : floatsOf(t));
    if (!t || !data) continue;
    const view = axisView(t.dims, site.axis);
    let at = 0;
    for (const s of site.layout.segments) {
      if (s.group === group && s.start <= lo && hi <= s.start + s.length) {
        const positions: number[] = [];
        for (let c = lo; c < hi; c++) positions.push(at + c - s.start);
        out.push({ data, view, inner: site.layout.inner, size: sliceSize(view, site.layout.inner), positions });
      }
      at += s.length;
    }
  }
  return out;
}

export function signatures(graph: Graph, group: ChannelGroup, lo: number, hi: number): Signatures {
  const prod = parts(graph, group.producers, group.id, lo, hi);
  const params = parts(graph, group.params, group.id, lo, hi);
  const producerWidth = prod.reduce((n, p) => n + p.size, 0);
  const paramBounds = [producerWidth];
  for (const p of params) paramBounds.push(paramBounds[paramBounds.length - 1] + p.size);
  const width = paramBounds[paramBounds.length - 1];
  const n = hi - lo;
  const all = [...prod, ...params];
  const rows = all.every((p) => p.data instanceof Float32Array) ? new Float32Array(n * width) : new Float64Array(n * width);
  for (let i = 0; i < n; i++) {
    let at = i * width;
    for (const p of all) at = copySlice(p.data, p.view, p.inner, p.positions[i], rows, at);
  }
  for (let k = 0; k < rows.length; k++) if (rows[k] === 0) rows[k] = 0;
  return { lo, hi, width, producerWidth, paramBounds, rows };
}

/**
 * Whether two of `members` could be exact duplicates: whether their rows in the group's first producer
 * have the same fingerprint (prints.ts), taken from `prints` where the pass computed them ahead, else
 * computed here. Read in place, without building signatures, so the usual case — trained or hashed
 * neurons, every row different — costs one pass over the weights and no copy. A false answer is a
 * proof (equal signatures need equal first rows); a true one only means: look closer.
 */
export function mayHaveDuplicates(graph: Graph, group: ChannelGroup, lo: number, hi: number, members: readonly number[], prints?: PrintTable): boolean {
  const [first] = parts(graph, group.producers, group.id, lo, hi);
  if (!first || !(first.data instanceof Float32Array)) return true;
  const ahead = prints?.get(first.data, first.view, first.inner);
  const words = new Uint32Array(first.data.buffer, first.data.byteOffset, first.data.length);
  const { outer, length, stride } = first.view;
  const seen = new Set<number>();
  for (const i of members) {
    const position = first.positions[i] * first.inner;
    const h = ahead ? ahead[first.positions[i]] : channelPrint(words, outer, length, stride, first.inner * stride, position);
    if (seen.has(h)) return true;
    seen.add(h);
  }
  return false;
}

/**
 * The fingerprint tasks that mayHaveDuplicates() will look for: one per producer weight (float32) of
 * the groups a merge considers, read along its channel axis.
 */
export function printTasks(graph: Graph, groups: readonly ChannelGroup[]): PrintTask[] {
  const tasks = new Map<Float32Array, PrintTask>();
  for (const g of groups) {
    if (g.blocked.length > 0) continue;
    for (const site of g.producers) {
      // float32 weights only: others are converted per read, and the merge computes theirs in place.
      const t = graph.constant(site.node.input(site.input));
      if (!t || !(t.data instanceof Float32Array) || tasks.has(t.data)) continue;
      tasks.set(t.data, { layer: site.node.label, data: t.data, inner: site.layout.inner, ...axisView(t.dims, site.axis) });
    }
  }
  return [...tasks.values()];
}

/**
 * Exact duplicates among `members` (cell-relative indices): returns, per member, the member it
 * merges into (itself when kept: the first of its equals).
 */
export function exactDuplicates(sig: Signatures, members: readonly number[]): Map<number, number> {
  const perValue = sig.rows.BYTES_PER_ELEMENT / 4;
  const words = new Uint32Array(sig.rows.buffer, sig.rows.byteOffset, sig.rows.length * perValue);
  const w = sig.width * perValue;
  const rows = new DistinctRows(words, w, members.length);
  const firstOf: number[] = [];
  const into = new Map<number, number>();
  for (const i of members) {
    const n = rows.add(i * w);
    if (n === firstOf.length) firstOf.push(i);
    into.set(i, firstOf[n]);
  }
  return into;
}

export interface NearMerge {
  /** Per member: the leader it merges into (itself for leaders). */
  into: Map<number, number>;
  /** Largest relative distance (producer rows) among the merges made. */
  maxDistance: number;
}

/** Greedy leader clustering within relative distance epsilon (see the file comment). */
export function nearDuplicates(sig: Signatures, members: readonly number[], epsilon: number, candidates: number): NearMerge {
  const { rows, width, producerWidth, paramBounds } = sig;
  const norm = (i: number, from: number, to: number) => {
    let s = 0;
    for (let k = i * width + from; k < i * width + to; k++) s += rows[k] * rows[k];
    return Math.sqrt(s);
  };
  /** Squared distance over [from, to), or Infinity as soon as it passes `limit2`. */
  const dist2 = (a: number, b: number, from: number, to: number, limit2: number) => {
    let s = 0;
    const [oa, ob] = [a * width, b * width];
    for (let k = from; k < to; k++) {
      const d = rows[oa + k] - rows[ob + k];
      s += d * d;
      if (s > limit2) return Infinity;
    }
    return s;
  };
  const norms = new Map<number, number>(members.map((i) => [i, norm(i, 0, producerWidth)]));
  const close = (a: number, b: number): number | undefined => {
    const bound = epsilon * Math.max(norms.get(a)!, norms.get(b)!);
    const d = dist2(a, b, 0, producerWidth, bound * bound);
    if (d === Infinity) return undefined;
    for (let p = 0; p + 1 < paramBounds.length; p++) {
      const [from, to] = [paramBounds[p], paramBounds[p + 1]];
      const pb = epsilon * Math.max(norm(a, from, to), norm(b, from, to));
      if (dist2(a, b, from, to, pb * pb) === Infinity) return undefined;
    }
    const m = Math.max(norms.get(a)!, norms.get(b)!);
    return m > 0 ? Math.sqrt(d) / m : 0;
  };
  const leaders: number[] = []; // sorted by norm
  const into = new Map<number, number>();
  let maxDistance = 0;
  for (const i of members) {
    const n = norms.get(i)!;
    const [lo, hi] = [n * (1 - epsilon), n / (1 - epsilon)];
    // First leader with norm >= n, then walk outwards by norm distance.
    let a = 0;
    let b = leaders.length;
    while (a < b) {
      const mid = (a + b) >> 1;
      if (norms.get(leaders[mid])! < n) a = mid + 1;
      else b = mid;
    }
    let left = a - 1;
    let right = a;
    let found = -1;
    for (let tried = 0; tried < candidates; tried++) {
      const ln = left >= 0 ? norms.get(leaders[left])! : -Infinity;
      const rn = right < leaders.length ? norms.get(leaders[right])! : Infinity;
      const [leftOk, rightOk] = [ln >= lo, rn <= hi];
      if (!leftOk && !rightOk) break;
      const useLeft = leftOk && (!rightOk || n - ln <= rn - n);
      const cand = useLeft ? left-- : right++;
      const r = close(i, leaders[cand]);
      if (r !== undefined) {
        found = leaders[cand];
        maxDistance = Math.max(maxDistance, r);
        break;
      }
    }
    if (found >= 0) {
      into.set(i, found);
    } else {
      into.set(i, i);
      leaders.splice(a, 0, i);
    }
  }
  return { into, maxDistance };
}
