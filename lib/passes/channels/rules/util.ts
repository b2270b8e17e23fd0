/** Helpers shared by the built-in channel rules. */
import { toFloat32, type Node, type Tensor } from '../../../model';
import type { Dim } from '../../../model/shapes';
import { channelCount, type Layout } from '../layout';
import { slicesWhere } from '../slices';
import type { ChannelContext, ZeroFn } from '../types';

export function normalizeAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

/** Rank of a value: from its layout, its constant, or shape inference. */
export function rankOf(ctx: ChannelContext, value: string): number | undefined {
  const l = ctx.layout(value);
  if (l) return l.rank;
  const c = ctx.constant(value);
  if (c) return c.dims.length;
  return ctx.shape(value)?.length;
}

/** Dims of a value: a constant's, or the inferred ones. */
export function dimsOf(ctx: ChannelContext, value: string): readonly Dim[] | undefined {
  const c = ctx.constant(value);
  return c ? c.dims : ctx.shape(value);
}

/** Whether any output from index `from` on is read by a node or is a graph output. */
export function usesOutputsFrom(node: Node, from: number): boolean {
  return node.outputs.some((o, i) => i >= from && o !== '' && (node.graph.consumers(o).length > 0 || node.graph.isGraphOutput(o)));
}

/** The channel elements along the axis: channels times positions per channel. */
export function axisLength(layout: Layout): number {
  return channelCount(layout) * layout.inner;
}

/** Output inherits the input's channels unchanged; zeros pass when `zero` (f(0) = 0). */
export function pass(ctx: ChannelContext, node: Node, layout: Layout, zero: boolean, input = node.input(0), output = 0): void {
  const out = node.outputs[output];
  ctx.setLayout(node, out, layout);
  if (zero) ctx.zero(out, (env) => env.mask(input));
}

/** Integer list from an attribute (older opsets) or a constant/evaluated input (newer ones). */
export function intsFrom(ctx: ChannelContext, node: Node, attr: string, input: number): number[] | undefined {
  const a = node.attrInts(attr);
  if (a) return a;
  const v = node.input(input);
  return v ? ctx.ints(v) : undefined;
}

/** Float values of a constant (any float type), or undefined. */
export function floatsOf(t: Tensor | undefined): Float32Array | undefined {
  if (!t) return undefined;
  try {
    return toFloat32(t.data, t.dataType);
  } catch {
    return undefined;
  }
}

/** Per channel position: whether a per-channel constant's slice is all zero (inner positions per channel). */
export function constantZeros(t: Tensor, axis: number, inner: number): Uint8Array | undefined {
  const f = floatsOf(t);
  return f ? slicesWhere(f, t.dims, axis, inner, (x) => x === 0) : undefined;
}

export function allZero(t: Tensor | undefined): boolean {
  const f = floatsOf(t);
  return !!f && f.every((x) => x === 0);
}

export function and(a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (!a || !b) return undefined;
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] & b[i];
  return out;
}

export function or(a: Uint8Array | undefined, b: Uint8Array | undefined): Uint8Array | undefined {
  if (!a) return b && Uint8Array.from(b);
  if (!b) return Uint8Array.from(a);
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] | b[i];
  return out;
}

/** A zero rule: the input's mask ANDed with a fixed per-position condition (e.g. bias == 0). */
export function maskAnd(input: string, condition: Uint8Array | undefined): ZeroFn {
  return (env) => and(env.mask(input), condition);
}

/** Products of dims, symbols kept apart, so [N, 4, 2] and [N, 8] compare equal. */
export interface DimProduct {
  n: number;
  symbols: string[];
}

export function dimProduct(dims: readonly Dim[]): DimProduct {
  let n = 1;
  const symbols: string[] = [];
  for (const d of dims) {
    if (typeof d === 'number') n *= d;
    else symbols.push(d);
  }
  return { n, symbols: symbols.sort() };
}

export function mulProducts(ps: readonly DimProduct[]): DimProduct {
  return { n: ps.reduce((a, p) => a * p.n, 1), symbols: ps.flatMap((p) => p.symbols).sort() };
}

/** a / b when it is a whole product (b's symbols all in a, numbers dividing), else undefined. */
export function divProducts(a: DimProduct, b: DimProduct): DimProduct | undefined {
  if (b.n === 0 || a.n % b.n !== 0) return undefined;
  const left = [...a.symbols];
  for (const s of b.symbols) {
    const i = left.indexOf(s);
    if (i < 0) return undefined;
    left.splice(i, 1);
  }
  return { n: a.n / b.n, symbols: left };
}

export function sameProduct(a: DimProduct, b: DimProduct): boolean {
  return a.n === b.n && a.symbols.length === b.symbols.length && a.symbols.every((s, i) => s === b.symbols[i]);
}

/**
 * Where a channel axis lands when a tensor of dims `s` is reshaped (row-major) to `t` (each output dim
 * a product of numbers and symbols): output axis j holds the channels when the dims before it
 * multiply to the dims before the channel axis and t[j] is the channel axis times whole following
 * dims (which become positions of each channel). Returns the new axis and the factor by which
 * positions per channel grow, or undefined when channels would be split or interleaved.
 */
export function reshapedAxis(s: readonly Dim[], t: readonly DimProduct[], axis: number): { axis: number; factor: number } | undefined {
  const n = s[axis];
  if (typeof n !== 'number') return undefined;
  const before = dimProduct(s.slice(0, axis));
  for (let j = 0; j < t.length; j++) {
    if (!sameProduct(mulProducts(t.slice(0, j)), before)) continue;
    const tj = t[j];
    if (tj.symbols.length > 0) continue;
    let q = 1;
    for (let m = axis + 1; m <= s.length; m++) {
      if (tj.n === n * q && sameProduct(mulProducts(t.slice(j + 1)), dimProduct(s.slice(m)))) return { axis: j, factor: q };
      if (m === s.length) break;
      const d = s[m];
      if (typeof d !== 'number') break;
      q *= d;
    }
  }
  return undefined;
}
