/**
 * Rules for ops that move channels around without computing on them: Concat (channel offsets),
 * Split and Slice (channel ranges), Transpose, Flatten, Reshape, Squeeze, Unsqueeze, Gather, Shape.
 * Where a constant holds a channel count or offset (Split sizes, Slice bounds, a Reshape shape), the
 * rule registers a rewrite that recomputes it from the channels that remain.
 */
import { DataType, Tensor, fromNumbers, type Node } from '../../../model';
import type { Dim } from '../../../model/shapes';
import { FIXED, channelCount, cutLayout, sameSegments, type Layout, type Segment } from '../layout';
import { registerChannelRule } from '../registry';
import type { ChannelContext, RewriteContext } from '../types';
import {
  and,
  axisLength,
  constantZeros,
  dimProduct,
  dimsOf,
  divProducts,
  intsFrom,
  mulProducts,
  normalizeAxis,
  pass,
  rankOf,
  reshapedAxis,
  type DimProduct,
} from './util';

/** Writes small integers into a node's input (an int constant, copied when shared) or creates that input. */
function writeInts(rc: RewriteContext, node: Node, input: number, values: number[]): void {
  const name = node.input(input);
  const t = name ? rc.writable(node, input) : undefined;
  if (t) {
    t.setData(fromNumbers(values, t.dataType), t.dims.length === 0 ? [] : [values.length]);
    return;
  }
  const data = BigInt64Array.from(values.map((v) => BigInt(v)));
  const fresh = Tensor.create(rc.graph.uniqueName(`${node.label}_${input}`), DataType.INT64, [values.length], data);
  rc.graph.addInitializer(fresh);
  node.setInput(input, fresh.name);
}

/** Changes one entry of a constant in place, leaving the others bit for bit (INT64_MAX bounds stay). */
function setEntry(rc: RewriteContext, node: Node, input: number, index: number, value: number): void {
  const t = rc.writable(node, input);
  if (!t) return;
  const data = t.mutableData();
  if (data instanceof BigInt64Array || data instanceof BigUint64Array) data[index] = BigInt(value);
  else (data as Float32Array)[index] = value;
}

/** Attribute ints are rewritten whole: bounds past int32 are clamped (Slice clamps them anyway). */
const INT32_MAX = 2 ** 31 - 1;
const clampInt = (v: number) => Math.max(-INT32_MAX, Math.min(INT32_MAX, v));

function concat(node: Node, ctx: ChannelContext): void {
  const inputs = node.inputs;
  const layouts = inputs.map((v) => ctx.layout(v));
  const tracked = layouts.filter((l): l is Layout => !!l);
  if (tracked.length === 0) return;
  const rank = tracked[0].rank;
  const axis = normalizeAxis(node.attrInt('axis', 0), rank);
  const blockAll = (why: string) => tracked.forEach((l) => ctx.block(l, `Concat '${node.label}' ${why}`));
  if (tracked.some((l) => l.rank !== rank)) return blockAll('joins tensors of different ranks');
  const out = node.outputs[0];
  if (tracked.every((l) => l.axis === axis)) {
    const inner = tracked[0].inner;
    if (tracked.some((l) => l.inner !== inner)) return blockAll('joins channels of different block sizes');
    const segments: Segment[] = [];
    for (let i = 0; i < inputs.length; i++) {
      const l = layouts[i];
      if (l) {
        segments.push(...l.segments);
        continue;
      }
      const d = dimsOf(ctx, inputs[i])?.[axis];
      if (typeof d !== 'number' || d % inner !== 0) return blockAll(`has input '${inputs[i]}' of unknown channel count`);
      if (d > 0) segments.push({ group: FIXED, start: 0, length: d / inner });
    }
    const layout: Layout = { axis, rank, inner, segments };
    ctx.setLayout(node, out, layout);
    ctx.zero(out, (env) => {
      const parts = inputs.map((v, i) => {
        const l = layouts[i];
        const n = l ? channelCount(l) : (dimsOf(ctx, v)![axis] as number) / inner;
        return (l && env.mask(v)) || new Uint8Array(n);
      });
      const mask = new Uint8Array(channelCount(layout));
      let at = 0;
      for (const p of parts) {
        mask.set(p, at);
        at += p.length;
      }
      return mask;
    });
    return;
  }
  // Joined along another axis: channel c of every input lands in channel c of the output.
  const a = tracked[0].axis;
  if (tracked.some((l) => l.axis !== a)) return blockAll('joins channels on different axes');
  const params: number[] = [];
  for (let i = 0; i < inputs.length; i++) {
    if (layouts[i]) continue;
    if (!ctx.constant(inputs[i])) return blockAll(`joins '${inputs[i]}', which carries no tracked channels`);
    params.push(i);
  }
  if (tracked.length > 1) ctx.couple(node, tracked);
  const layout = tracked[0];
  for (const i of params) ctx.param(node, i, a, layout);
  ctx.setLayout(node, out, layout);
  ctx.zero(out, (env) => {
    let mask: Uint8Array | undefined = new Uint8Array(channelCount(layout)).fill(1);
    inputs.forEach((v, i) => {
      const c = layouts[i] ? undefined : ctx.constant(v);
      mask = and(mask, layouts[i] ? env.mask(v) : c && constantZeros(c, a, layout.inner));
    });
    return mask;
  });
}

function split(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return;
  const axis = normalizeAxis(node.attrInt('axis', 0), l.rank);
  const outs = node.outputs;
  if (axis !== l.axis) {
    outs.forEach((_, i) => pass(ctx, node, l, true, x, i));
    return;
  }
  const why = (w: string) => ctx.block(l, `Split '${node.label}' ${w}`);
  if (l.inner !== 1) return why('cuts channel blocks');
  const n = channelCount(l);
  const splitInput = node.input(1);
  if (splitInput && !ctx.constant(splitInput)) return why('has split sizes that are not constant');
  let sizes = node.attrInts('split') ?? (splitInput ? ctx.ints(splitInput) : undefined);
  if (!sizes) {
    const k = outs.length;
    const each = node.attribute('num_outputs') ? Math.ceil(n / k) : n / k;
    if (!Number.isInteger(each)) return why(`splits ${n} channels into ${k} unequal parts`);
    sizes = outs.map((_, i) => Math.max(0, Math.min(each, n - i * each)));
  }
  if (sizes.length !== outs.length || sizes.reduce((s, v) => s + v, 0) !== n) return why(`has sizes [${sizes}] that do not add up to ${n}`);
  const offsets: number[] = [];
  let at = 0;
  for (const s of sizes) {
    offsets.push(at);
    at += s;
  }
  outs.forEach((o, i) => {
    ctx.setLayout(node, o, { ...l, segments: cutLayout(l, offsets[i], offsets[i] + sizes![i]) });
    ctx.zero(o, (env) => env.mask(x)?.slice(offsets[i], offsets[i] + sizes![i]));
  });
  const form = node.attribute('split') ? 'attr' : splitInput ? 'input' : 'none';
  ctx.rewrite(node, l, (rc, l) => {
    const next = offsets.map((off, i) => rc.kept(l, off, off + sizes![i]));
    if (form === 'attr' || (form === 'none' && rc.opset < 13)) {
      node.setAttribute('split', next);
      return;
    }
    // From opset 18 an explicit split and num_outputs exclude each other.
    node.removeAttribute('num_outputs');
    writeInts(rc, node, 1, next);
  });
}

function slice(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return;
  const why = (w: string) => ctx.block(l, `Slice '${node.label}' ${w}`);
  const byAttr = ctx.opset < 10;
  const read = (attr: string, input: number): number[] | undefined => {
    if (byAttr) return node.attrInts(attr);
    const v = node.input(input);
    return v ? ctx.ints(v) : undefined;
  };
  const starts = read('starts', 1);
  const ends = read('ends', 2);
  if (!starts || !ends) return why('has bounds that are not constant');
  const axes = read('axes', 3) ?? starts.map((_, i) => i);
  const steps = read('steps', 4) ?? starts.map(() => 1);
  const k = axes.findIndex((a) => normalizeAxis(a, l.rank) === l.axis);
  if (k < 0) {
    pass(ctx, node, l, true);
    return;
  }
  if (steps[k] !== 1) return why(`steps by ${steps[k]} over the channels`);
  if (l.inner !== 1) return why('cuts channel blocks');
  if (!byAttr && !ctx.constant(node.input(1))) return why('has starts that are not constant');
  if (!byAttr && !ctx.constant(node.input(2))) return why('has ends that are not constant');
  const n = channelCount(l);
  const clamp = (v: number) => Math.min(n, Math.max(0, v < 0 ? v + n : v));
  const [s, e] = [clamp(starts[k]), clamp(ends[k])];
  if (e <= s) return why('selects no channel');
  const out = node.outputs[0];
  ctx.setLayout(node, out, { ...l, segments: cutLayout(l, s, e) });
  ctx.zero(out, (env) => env.mask(x)?.slice(s, e));
  ctx.rewrite(node, l, (rc, l) => {
    const [s2, e2] = [rc.kept(l, 0, s), rc.kept(l, 0, e)];
    if (byAttr) {
      node.setAttribute('starts', starts.map((v, i) => (i === k ? s2 : clampInt(v))));
      node.setAttribute('ends', ends.map((v, i) => (i === k ? e2 : clampInt(v))));
      return;
    }
    setEntry(rc, node, 1, k, s2);
    setEntry(rc, node, 2, k, e2);
  });
}

function transpose(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  const perm = node.attrInts('perm') ?? Array.from({ length: l.rank }, (_, i) => l.rank - 1 - i);
  const axis = perm.indexOf(l.axis);
  if (axis < 0 || perm.length !== l.rank) return ctx.block(l, `Transpose '${node.label}' has a bad perm [${perm}]`);
  pass(ctx, node, { ...l, axis }, true);
}

/** Flatten(axis k) to 2-D: channels keep blocks when the dims merged before them are all 1. */
function flatten(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return;
  const s = ctx.shape(x);
  const k = normalizeAxis(node.attrInt('axis', 1), l.rank);
  const why = (w: string) => ctx.block(l, `Flatten '${node.label}' ${w}`);
  if (!s || s.length !== l.rank) return why('has an input of unknown shape');
  const [lo, hi] = l.axis >= k ? [k, l.rank] : [0, k];
  let factor = 1;
  for (let i = lo; i < hi; i++) {
    if (i === l.axis) continue;
    const d = s[i];
    if (typeof d !== 'number') return why(`merges the channels with a dim of unknown size (${d})`);
    if (i < l.axis && d !== 1) return why('merges dims before the channels into their axis');
    if (i > l.axis) factor *= d;
  }
  pass(ctx, node, { ...l, axis: l.axis >= k ? 1 : 0, rank: 2, inner: l.inner * factor }, true);
}

/**
 * A literal remembers the constant it came from (its reader and index), so a rewrite can change it,
 * and whether a value on the way is read elsewhere too (then changing it would change that reader).
 */
type Traced =
  | { literal: number; source: { node: Node; input: number; index: number }; shared: boolean }
  | { dim: string; axis: number }
  | undefined;

/** Where entry `index` of a computed shape comes from: a literal, or a dim of some tensor. */
function traceEntry(ctx: ChannelContext, reader: Node, input: number, index: number, depth = 0, shared = false): Traced {
  const value = reader.input(input);
  if (depth > 32 || index < 0) return undefined;
  const c = ctx.constant(value);
  if (c) {
    const v = ctx.ints(value);
    return v && index < v.length ? { literal: v[index], source: { node: reader, input, index }, shared } : undefined;
  }
  const sharedHere = shared || ctx.graph.consumers(value).length > 1 || ctx.graph.isGraphOutput(value);
  const p = ctx.graph.producer(value);
  if (!p || p.domain !== '') return undefined;
  const next = (k: number, i: number) => traceEntry(ctx, p, k, i, depth + 1, sharedHere);
  switch (p.opType) {
    case 'Shape': {
      const r = rankOf(ctx, p.input(0));
      if (r === undefined) return undefined;
      return { dim: p.input(0), axis: normalizeAxis(p.attrInt('start', 0), r) + index };
    }
    case 'Cast':
    case 'Identity':
    case 'Squeeze':
      return next(0, index);
    case 'Unsqueeze':
      return rankOf(ctx, p.input(0)) === 0 && index === 0 ? next(0, 0) : undefined;
    case 'Concat': {
      let at = 0;
      for (let k = 0; k < p.inputs.length; k++) {
        const v = p.inputs[k];
        const len = dimsOf(ctx, v)?.[0] ?? (rankOf(ctx, v) === 0 ? 1 : undefined);
        if (typeof len !== 'number') return undefined;
        if (index < at + len) return next(k, index - at);
        at += len;
      }
      return undefined;
    }
    case 'Gather': {
      if (p.attrInt('axis', 0) !== 0) return undefined;
      const idx = ctx.ints(p.input(1));
      const len = dimsOf(ctx, p.input(0))?.[0];
      if (!idx || typeof len !== 'number' || index >= idx.length) return undefined;
      return next(0, idx[index] < 0 ? idx[index] + len : idx[index]);
    }
    case 'Slice': {
      const len = dimsOf(ctx, p.input(0))?.[0];
      const starts = intsFrom(ctx, p, 'starts', 1);
      const steps = intsFrom(ctx, p, 'steps', 4) ?? [1];
      if (typeof len !== 'number' || !starts || starts.length !== 1 || steps[0] !== 1) return undefined;
      const s = starts[0] < 0 ? Math.max(0, starts[0] + len) : Math.min(starts[0], len);
      return next(0, s + index);
    }
    default:
      return undefined;
  }
}

/** The output dims a Reshape's traced shape entries give, the -1 worked out; undefined when unsure. */
function outputDims(ctx: ChannelContext, s: readonly Dim[], entries: NonNullable<Traced>[], allowZero: boolean): DimProduct[] | undefined {
  let hole = -1;
  const t: DimProduct[] = [];
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if (!('literal' in e)) {
      const d = ctx.shape(e.dim)?.[e.axis];
      if (d === undefined) return undefined;
      t.push(dimProduct([d]));
    } else if (e.literal === -1) {
      hole = i;
      t.push({ n: 1, symbols: [] });
    } else if (e.literal === 0 && !allowZero) {
      if (i >= s.length) return undefined;
      t.push(dimProduct([s[i]]));
    } else {
      t.push({ n: e.literal, symbols: [] });
    }
  }
  if (hole >= 0) {
    const rest = divProducts(dimProduct(s), mulProducts(t));
    if (!rest) return undefined;
    t[hole] = rest;
  }
  return t;
}

const showProduct = (p: DimProduct) => [...(p.n !== 1 || p.symbols.length === 0 ? [p.n] : []), ...p.symbols].join('*');

/** Reshape: follows the channel axis when it keeps whole channel blocks (see reshapedAxis). */
function reshape(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return guardUntracked(node, ctx);
  const why = (w: string) => ctx.block(l, `Reshape '${node.label}' ${w}`);
  const s = ctx.shape(x);
  if (!s || s.length !== l.rank) return why('has an input of unknown shape');
  if (s[l.axis] !== axisLength(l)) return why(`has ${String(s[l.axis])} elements on the channel axis, expected ${axisLength(l)}`);
  const allowZero = node.attrInt('allowzero', 0) === 1;
  const rank = ctx.shape(node.input(1))?.[0];
  if (typeof rank !== 'number') return why('has a shape of unknown length');
  const entries: NonNullable<Traced>[] = [];
  for (let i = 0; i < rank; i++) {
    const e = traceEntry(ctx, node, 1, i);
    if (!e) return why(`has shape entry ${i} computed in a way redpp does not follow`);
    entries.push(e);
  }
  const t = outputDims(ctx, s, entries, allowZero) ?? ctx.shape(node.outputs[0])?.map((d) => dimProduct([d]));
  if (!t) return why('has an output shape that could not be worked out');
  const m = reshapedAxis(s, t, l.axis);
  if (!m) return why(`splits or interleaves the channels ([${s}] -> [${t.map(showProduct)}])`);
  const out: Layout = { axis: m.axis, rank: t.length, inner: l.inner * m.factor, segments: l.segments };
  let rewriteAt: { node: Node; input: number; index: number } | undefined;
  for (let i = 0; i < entries.length; i++) {
    const e = entries[i];
    if ('literal' in e) {
      const v = e.literal;
      const copies = v === 0 && !allowZero; // 0 copies the input's dim i
      if (i === m.axis) {
        if (v === -1 || (copies && i === l.axis && m.factor === 1)) continue;
        if (copies) return why(`copies input dim ${i} into the channel axis`);
        if (e.shared) return why('takes its channel count from a shape computation that other nodes read too');
        rewriteAt = e.source;
      } else if (copies && i === l.axis) {
        return why(`copies the channel count into dim ${i}`);
      }
    } else {
      const src = ctx.layout(e.dim);
      const channelDim = !!src && src.axis === e.axis;
      if (i === m.axis) {
        if (!(channelDim && sameSegments(src!.segments, l.segments) && src!.inner === out.inner)) {
          return why(`takes its channel count from dim ${e.axis} of '${e.dim}'`);
        }
      } else if (channelDim) {
        return why(`takes dim ${i} from the channel count of '${e.dim}'`);
      }
    }
  }
  pass(ctx, node, out, true);
  if (rewriteAt) {
    const at = rewriteAt;
    ctx.rewrite(node, l, (rc, l) => setEntry(rc, at.node, at.input, at.index, rc.kept(l) * out.inner));
  }
}

function squeeze(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return;
  let axes = intsFrom(ctx, node, 'axes', 1)?.map((a) => normalizeAxis(a, l.rank));
  if (!axes) {
    const s = ctx.shape(x);
    if (!s || s.some((d) => typeof d !== 'number')) return ctx.block(l, `Squeeze '${node.label}' without axes on a shape with unknown dims`);
    axes = s.flatMap((d, i) => (d === 1 ? [i] : []));
  }
  if (axes.includes(l.axis)) return ctx.block(l, `Squeeze '${node.label}' removes the channel axis`);
  pass(ctx, node, { ...l, axis: l.axis - axes.filter((a) => a < l.axis).length, rank: l.rank - axes.length }, true);
}

function unsqueeze(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  const raw = intsFrom(ctx, node, 'axes', 1);
  if (!raw) return ctx.block(l, `Unsqueeze '${node.label}' has axes that are not constant`);
  const rank = l.rank + raw.length;
  const axes = new Set(raw.map((a) => normalizeAxis(a, rank)));
  let i = 0;
  for (let p = 0; p < rank; p++) {
    if (axes.has(p)) continue;
    if (i++ === l.axis) {
      pass(ctx, node, { ...l, axis: p, rank }, true);
      return;
    }
  }
  ctx.block(l, `Unsqueeze '${node.label}' has bad axes [${raw}]`);
}

function gather(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  const axis = normalizeAxis(node.attrInt('axis', 0), l.rank);
  const q = rankOf(ctx, node.input(1));
  if (axis === l.axis) return ctx.block(l, `Gather '${node.label}' picks channels`);
  if (q === undefined) return ctx.block(l, `Gather '${node.label}' has indices of unknown rank`);
  const a = l.axis < axis ? l.axis : l.axis - 1 + q;
  pass(ctx, node, { ...l, axis: a, rank: l.rank - 1 + q }, true);
}

/** Ops that only carry shape values along (a Shape's dims on their way to a Reshape). */
const SHAPE_PLUMBING = new Set(['Cast', 'Identity', 'Slice', 'Gather', 'Concat', 'Squeeze', 'Unsqueeze']);

/**
 * Shape reads the dims, channel count included, which change with pruning. Allowed when its value
 * only flows (through shape plumbing) into Reshape shapes, whose rules check each entry.
 */
function shape(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  const seen = new Set<string>();
  const stack = [...node.outputs];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (!v || seen.has(v)) continue;
    seen.add(v);
    if (ctx.graph.isGraphOutput(v)) return ctx.block(l, `its shape reaches graph output '${v}'`);
    for (const c of ctx.graph.consumers(v)) {
      if (c.opType === 'Reshape' && c.domain === '' && c.input(1) === v && c.input(0) !== v) continue;
      if (c.domain !== '' || !SHAPE_PLUMBING.has(c.opType)) {
        return ctx.block(l, `its shape is read by ${c.opType} '${c.label}'`);
      }
      stack.push(...c.outputs);
    }
  }
}

/**
 * A Reshape of a tensor without tracked channels may still take a dim from a tracked tensor's
 * shape: pruning would change it, so those channels are blocked.
 */
function guardUntracked(node: Node, ctx: ChannelContext): void {
  const rank = ctx.shape(node.input(1))?.[0];
  const sources = () => shapeSources(ctx, node.input(1));
  if (typeof rank !== 'number') {
    for (const l of sources()) ctx.block(l, `its shape feeds Reshape '${node.label}' in a way redpp does not follow`);
    return;
  }
  for (let i = 0; i < rank; i++) {
    const e = traceEntry(ctx, node, 1, i);
    if (!e) {
      for (const l of sources()) ctx.block(l, `its shape feeds Reshape '${node.label}' in a way redpp does not follow`);
      return;
    }
    if (!('literal' in e)) {
      const src = ctx.layout(e.dim);
      if (src && src.axis === e.axis) ctx.block(src, `its channel count sets dim ${i} of Reshape '${node.label}', which carries no tracked channels`);
    }
  }
}

/** Layouts of tracked tensors whose Shape flows into `value`. */
function shapeSources(ctx: ChannelContext, value: string): Layout[] {
  const out: Layout[] = [];
  const seen = new Set<string>();
  const stack = [value];
  while (stack.length > 0) {
    const v = stack.pop()!;
    if (!v || seen.has(v) || seen.size > 256) continue;
    seen.add(v);
    const p = ctx.graph.producer(v);
    if (!p) continue;
    if (p.opType === 'Shape') {
      const l = ctx.layout(p.input(0));
      if (l) out.push(l);
    } else {
      stack.push(...p.inputs);
    }
  }
  return out;
}

/** Size is the element count, channels included; nothing follows how it is used. */
function size(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (l) ctx.block(l, `its element count is read by Size '${node.label}'`);
}

registerChannelRule('Concat', concat);
registerChannelRule('Split', split);
registerChannelRule('Slice', slice);
registerChannelRule('Transpose', transpose);
registerChannelRule('Flatten', flatten);
registerChannelRule('Reshape', reshape);
registerChannelRule('Squeeze', squeeze);
registerChannelRule('Unsqueeze', unsqueeze);
registerChannelRule('Gather', gather);
registerChannelRule('Shape', shape);
registerChannelRule('Size', size);
