/**
 * Channel layouts: which channels a tensor carries along which axis, and where.
 *
 * A tensor's channel axis is a sequence of *segments*, each a run of consecutive channels of one group
 * (a Concat output has several; a Split output may carry part of one group). One channel occupies
 * `inner` consecutive positions along the axis: 1 for an NCHW activation, H*W after a Flatten, so a
 * Gemm after Flatten reads channel c as the feature block [c*inner, (c+1)*inner).
 */

/** Segments whose channels redpp does not track (an input from outside any group) use this group id. */
export const FIXED = -1;

export interface Segment {
  /** The group the channels belong to, or FIXED for channels that are never pruned. */
  group: number;
  /** First channel of the group in this run. */
  start: number;
  /** Number of channels in the run. */
  length: number;
}

export interface Layout {
  /** The axis that carries the channels (non-negative). */
  axis: number;
  /** The tensor's rank. */
  rank: number;
  /** Consecutive positions along `axis` that one channel occupies. */
  inner: number;
  segments: readonly Segment[];
}

/** Number of channels along the axis (its length is this times `inner`). */
export function channelCount(layout: Layout): number {
  let n = 0;
  for (const s of layout.segments) n += s.length;
  return n;
}

/** The layout of the channels at positions [from, to) of the axis (in channels, not elements). */
export function cutLayout(layout: Layout, from: number, to: number): Segment[] {
  const out: Segment[] = [];
  let at = 0;
  for (const s of layout.segments) {
    const lo = Math.max(from, at);
    const hi = Math.min(to, at + s.length);
    if (hi > lo) out.push({ group: s.group, start: s.start + (lo - at), length: hi - lo });
    at += s.length;
  }
  return out;
}

/** Joins adjacent runs that continue each other (a Split followed by a Concat of its parts). */
export function normalizeSegments(segments: readonly Segment[]): Segment[] {
  const out: Segment[] = [];
  for (const s of segments) {
    if (s.length === 0) continue;
    const last = out[out.length - 1];
    if (last && last.group === s.group && last.group !== FIXED && last.start + last.length === s.start) {
      out[out.length - 1] = { ...last, length: last.length + s.length };
    } else {
      out.push({ ...s });
    }
  }
  return out;
}

export function sameSegments(a: readonly Segment[], b: readonly Segment[]): boolean {
  return (
    a.length === b.length &&
    a.every((s, i) => s.group === b[i].group && s.start === b[i].start && s.length === b[i].length)
  );
}

/** Positions (in channels) where a segment starts, plus the end: [0, ..., channelCount]. */
export function segmentOffsets(layout: Layout): number[] {
  const out = [0];
  for (const s of layout.segments) out.push(out[out.length - 1] + s.length);
  return out;
}

export function describeLayout(layout: Layout): string {
  const segs = layout.segments.map((s) => (s.group === FIXED ? `fixed(${s.length})` : `g${s.group}[${s.start}:${s.start + s.length}]`));
  return `axis ${layout.axis}/${layout.rank}${layout.inner > 1 ? ` x${layout.inner}` : ''} ${segs.join('+')}`;
}
