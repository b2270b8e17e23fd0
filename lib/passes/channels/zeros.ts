/**
 * Which channels are exactly zero where: producers whose weight row and bias are all zero start a
 * zero channel, and each op's zero rule says whether it stays zero (ReLU keeps it, a BatchNorm with
 * a bias or a Sigmoid does not). Merging deletes a channel without touching other weights only where
 * every consumer reads it as zero.
 */
import type { Graph } from '../../model';
import type { ChannelAnalysis } from './analysis';
import { slicesWhere, isZero } from './slices';
import type { ChannelSite } from './types';
import { and, floatsOf } from './rules/util';

/** Per channel position of the site's layout: whether its slice of the constant is all zero. */
export function siteZeros(graph: Graph, site: ChannelSite): Uint8Array {
  const t = graph.constant(site.node.input(site.input));
  const f = floatsOf(t);
  if (!t || !f) return new Uint8Array(site.layout.segments.reduce((n, s) => n + s.length, 0));
  return slicesWhere(f, t.dims, site.axis, site.layout.inner, isZero);
}

/** Zero masks of every channel-carrying value that has one (per channel position of its layout). */
export function zeroMasks(
  analysis: ChannelAnalysis,
  rowZero: (site: ChannelSite) => Uint8Array = (site) => siteZeros(analysis.graph, site),
): Map<string, Uint8Array> {
  const masks = new Map<string, Uint8Array>();
  for (const [value, sites] of analysis.produced) {
    let mask: Uint8Array | undefined;
    for (const s of sites) mask = mask ? and(mask, rowZero(s)) : rowZero(s);
    if (mask) masks.set(value, mask);
  }
  const env = { mask: (v: string) => masks.get(v), rowZero };
  for (const { value, fn } of analysis.zeros) {
    if (masks.has(value)) continue;
    const m = fn(env);
    if (m) masks.set(value, m);
  }
  return masks;
}
