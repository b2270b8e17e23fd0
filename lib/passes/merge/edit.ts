/**
 * Applying merge decisions to the graph. Every decision is expressed on the original channel
 * indices (a group's *fate*: per channel, itself when kept, the kept channel it merges into, or -1
 * when deleted), and every constant is rebuilt once per axis from those fates, so the order in which
 * groups and constants are edited does not matter.
 *
 * - Producer rows and per-channel parameters keep the kept channels' slices.
 * - Consumer input slices are summed into the kept channel: W[:, keep] += W[:, dup]; a deleted
 *   (dead) channel's slice is dropped.
 * - Shape constants (Split sizes, Slice bounds, Reshape shapes, Resize sizes) are recomputed by the
 *   rewrites the rules registered.
 */
import { RedppError } from '../../errors';
import type { Node, TensorData } from '../../model';
import { exclusiveConstant } from '../constant-tensors';
import { FIXED, axisView, type ChannelAnalysis, type ChannelSite, type Layout, type RewriteContext } from '../channels';

/** For each new position along an axis: the old positions it takes (select) or sums (consumers). */
export interface AxisPlan {
  oldLength: number;
  sources: number[][];
}

/** The plan for a layout, or undefined when none of its channels change. */
export function planAxis(layout: Layout, fates: ReadonlyMap<number, Int32Array>): AxisPlan | undefined {
  if (!layout.segments.some((s) => s.group !== FIXED && fates.has(s.group))) return undefined;
  const sources: number[][] = [];
  let at = 0;
  for (const s of layout.segments) {
    const fate = s.group === FIXED ? undefined : fates.get(s.group);
    if (!fate) {
      for (let k = 0; k < s.length; k++) sources.push([at + k]);
    } else {
      const slot = new Map<number, number[]>();
      for (let c = s.start; c < s.start + s.length; c++) {
        if (fate[c] === c) {
          const list = [at + c - s.start];
          slot.set(c, list);
          sources.push(list);
        }
      }
      for (let c = s.start; c < s.start + s.length; c++) {
        const into = fate[c];
        if (into === c || into < 0) continue;
        const list = slot.get(into);
        if (!list) {
          throw new RedppError('INVALID_ARGUMENT', `merge: channel ${c} of group ${s.group} merges into ${into}, outside its segment`);
        }
        list.push(at + c - s.start);
      }
    }
    at += s.length;
  }
  return { oldLength: at, sources };
}

/** Rebuilds `data` along `axis` (each position `inner` wide) following the plan. */
export function applyPlan(
  data: TensorData,
  dims: readonly number[],
  axis: number,
  inner: number,
  plan: AxisPlan,
  sum: boolean,
): { data: TensorData; dims: number[] } {
  const view = axisView(dims, axis);
  if (view.length !== plan.oldLength * inner) {
    throw new RedppError('INVALID_ARGUMENT', `merge: axis ${axis} of [${dims}] is not ${plan.oldLength} x ${inner}`);
  }
  const positions = plan.sources.length;
  const newLength = positions * inner;
  const src = data as Float32Array;
  const out = new (data.constructor as new (n: number) => Float32Array)(view.outer * newLength * view.stride);
  const run = inner * view.stride;
  const firsts = Int32Array.from(plan.sources, (list) => list[0] * run);
  const summed = sum ? plan.sources.flatMap((list, j) => (list.length > 1 ? [j] : [])) : [];
  for (let o = 0; o < view.outer; o++) {
    const inBase = o * view.length * view.stride;
    const outBase = o * newLength * view.stride;
    // Every position takes its first source; merged consumer positions are then summed.
    if (run === 1) {
      for (let j = 0; j < positions; j++) out[outBase + j] = src[inBase + firsts[j]];
    } else if (run > 16) {
      for (let j = 0; j < positions; j++) out.set(src.subarray(inBase + firsts[j], inBase + firsts[j] + run), outBase + j * run);
    } else {
      for (let j = 0; j < positions; j++) {
        const [a, b] = [inBase + firsts[j], outBase + j * run];
        for (let k = 0; k < run; k++) out[b + k] = src[a + k];
      }
    }
    for (const j of summed) {
      // Sum in double precision, rounded once.
      for (let k = 0; k < run; k++) {
        let acc = 0;
        for (const p of plan.sources[j]) acc += src[inBase + p * run + k];
        out[outBase + j * run + k] = acc;
      }
    }
  }
  const next = [...dims];
  next[axis] = newLength;
  return { data: out, dims: next };
}

export interface EditStats {
  /** Per edited weight: its node, input, and the axis lengths before and after. */
  edits: { site: ChannelSite; before: number; after: number }[];
  /** Elements of the edited constants before and after. */
  elementsBefore: number;
  elementsAfter: number;
  /** Constants that were copied before editing (shared ones); unused ones can be removed. */
  replaced: string[];
}

export function applyFates(analysis: ChannelAnalysis, fates: ReadonlyMap<number, Int32Array>): EditStats {
  const graph = analysis.graph;
  const stats: EditStats = { edits: [], elementsBefore: 0, elementsAfter: 0, replaced: [] };
  const byConstant = new Map<Node, Map<number, ChannelSite[]>>();
  for (const g of analysis.groups) {
    if (!fates.has(g.id)) continue;
    for (const site of [...g.producers, ...g.consumers, ...g.params]) {
      let m = byConstant.get(site.node);
      if (!m) byConstant.set(site.node, (m = new Map()));
      const list = m.get(site.input) ?? [];
      if (!list.includes(site)) list.push(site);
      m.set(site.input, list);
    }
  }
  for (const [node, inputs] of byConstant) {
    for (const [input, sites] of inputs) {
      const original = node.input(input);
      const t = exclusiveConstant(graph, node, input);
      if (node.input(input) !== original) stats.replaced.push(original);
      if (!t) throw new RedppError('INVALID_ARGUMENT', `merge: input ${input} of '${node.label}' is no longer a constant`);
      stats.elementsBefore += t.size;
      let data = t.data;
      let dims = t.dims;
      for (const site of sites) {
        const plan = planAxis(site.layout, fates);
        if (!plan) continue;
        const before = dims[site.axis];
        ({ data, dims } = applyPlan(data, dims, site.axis, site.layout.inner, plan, site.role === 'consumer'));
        stats.edits.push({ site, before, after: dims[site.axis] });
      }
      stats.elementsAfter += data.length;
      if (data !== t.data) t.setData(data, dims);
    }
  }
  const rc: RewriteContext = {
    graph,
    opset: analysis.opset,
    kept: (layout, from = 0, to = Infinity) => kept(layout, fates, from, to),
    writable: (node, input) => {
      const original = node.input(input);
      const t = exclusiveConstant(graph, node, input);
      if (node.input(input) !== original) stats.replaced.push(original);
      return t;
    },
  };
  for (const r of analysis.rewrites) {
    if (planAxis(r.layout, fates)) r.fn(rc, r.layout);
  }
  fixValueInfo(analysis, fates);
  return stats;
}

/** Channels at positions [from, to) of a layout that remain. */
function kept(layout: Layout, fates: ReadonlyMap<number, Int32Array>, from: number, to: number): number {
  let n = 0;
  let at = 0;
  for (const s of layout.segments) {
    const fate = s.group === FIXED ? undefined : fates.get(s.group);
    for (let k = 0; k < s.length; k++, at++) {
      if (at < from || at >= to) continue;
      if (!fate || fate[s.start + k] === s.start + k) n++;
    }
  }
  return n;
}

/** Declared shapes of values whose channel count changed get the new count (or lose a stale one). */
function fixValueInfo(analysis: ChannelAnalysis, fates: ReadonlyMap<number, Int32Array>): void {
  let edited = false;
  for (const vi of analysis.graph.proto.value_info) {
    const layout = analysis.layouts.get(vi.name);
    const dims = vi.type?.tensor_type?.shape?.dim;
    if (!layout || !dims || !planAxis(layout, fates)) continue;
    const d = dims[layout.axis];
    if (d && d.value === 'dim_value') {
      d.dim_value = kept(layout, fates, 0, Infinity) * layout.inner;
      edited = true;
    }
  }
  // Only a changed declaration makes the shapes inferred so far stale (a merge that changed nothing must not cost a second inference).
  if (edited) analysis.graph.noteEdit();
}
