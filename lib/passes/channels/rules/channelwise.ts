/**
 * Rules for ops that work on each channel separately: normalizations with per-channel parameters,
 * pooling, Resize, Pad, reductions and softmax over other axes.
 */
import type { Node } from '../../../model';
import type { Layout } from '../layout';
import { registerChannelRule } from '../registry';
import type { ChannelContext } from '../types';
import { and, axisLength, constantZeros, floatsOf, intsFrom, maskAnd, normalizeAxis, pass, usesOutputsFrom } from './util';

/** NCHW ops (BatchNormalization, pools) act on axis 1; channels elsewhere would be mixed or pooled. */
function onAxis1(ctx: ChannelContext, node: Node, l: Layout): boolean {
  if (l.axis === 1 && l.inner === 1) return true;
  ctx.block(l, `${node.opType} '${node.label}' treats axis 1 as channels but they are on axis ${l.axis}${l.inner > 1 ? ` in blocks of ${l.inner}` : ''}`);
  return false;
}

/** BatchNormalization: y = scale * (x - mean) / sqrt(var + eps) + B, zero only where mean = B = 0. */
function batchNorm(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l || !onAxis1(ctx, node, l)) return;
  if (usesOutputsFrom(node, 1)) return ctx.block(l, `BatchNormalization '${node.label}' is in training mode`);
  for (let i = 1; i <= 4; i++) ctx.param(node, i, 0, l);
  const bias = ctx.constant(node.input(2));
  const mean = ctx.constant(node.input(3));
  pass(ctx, node, l, false);
  const keep = bias && mean ? and(constantZeros(bias, 0, 1), constantZeros(mean, 0, 1)) : undefined;
  ctx.zero(node.outputs[0], maskAnd(x, keep));
}

function instanceNorm(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l || !onAxis1(ctx, node, l)) return;
  ctx.param(node, 1, 0, l);
  ctx.param(node, 2, 0, l);
  const bias = ctx.constant(node.input(2));
  pass(ctx, node, l, false);
  ctx.zero(node.outputs[0], maskAnd(x, bias && constantZeros(bias, 0, 1)));
}

/** LayerNormalization normalizes the axes from `axis` on: fine while the channels lie before them. */
function layerNorm(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  const axis = normalizeAxis(node.attrInt('axis', -1), l.rank);
  if (l.axis >= axis) return ctx.block(l, `${node.opType} '${node.label}' normalizes over the channels`);
  if (usesOutputsFrom(node, 1)) return ctx.block(l, `${node.opType} '${node.label}' has its statistics outputs in use`);
  pass(ctx, node, l, false);
}

function pool(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l || !onAxis1(ctx, node, l)) return;
  // MaxPool's indices flatten the channel index into their values.
  if (usesOutputsFrom(node, 1)) return ctx.block(l, `${node.opType} '${node.label}' has its indices output in use`);
  pass(ctx, node, l, true);
}

/** Resize/Upsample: the channel axis must keep scale 1 (or a size that is rewritten on pruning). */
function resize(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return;
  const why = (w: string) => ctx.block(l, `${node.opType} '${node.label}' ${w}`);
  if (node.attrString('coordinate_transformation_mode', '') === 'tf_crop_and_resize') return why('crops (tf_crop_and_resize)');
  const resizeV11 = node.opType === 'Resize' && ctx.opset >= 11;
  const axes = node.attrInts('axes')?.map((a) => normalizeAxis(a, l.rank));
  // Index of the channel axis in the scales/sizes list (which may list only `axes`).
  const k = axes ? axes.indexOf(l.axis) : l.axis;
  const scalesAttr = node.attrFloats('scales');
  const scalesName = resizeV11 ? node.input(2) : node.input(1);
  const sizesName = resizeV11 ? node.input(3) : '';
  const scales = scalesAttr ?? (scalesName ? floatsOf(ctx.constant(scalesName)) : undefined);
  if (scales && scales.length > 0) {
    if (k >= 0 && scales[k] !== 1) return why(`scales the channel axis by ${scales[k]}`);
    pass(ctx, node, l, true);
    return;
  }
  if (!sizesName) return why('has scales that are not constant');
  const sizes = ctx.ints(sizesName);
  if (!sizes || !ctx.constant(sizesName)) return why('has sizes that are not constant');
  if (node.attrString('keep_aspect_ratio_policy', 'stretch') !== 'stretch') return why('keeps an aspect ratio over the given sizes');
  pass(ctx, node, l, true);
  if (k < 0) return;
  if (sizes[k] !== axisLength(l)) return why(`resizes the channel axis to ${sizes[k]}`);
  ctx.rewrite(node, l, (rc, l) => {
    const t = rc.writable(node, 3)!;
    const next = Array.from(t.data as ArrayLike<number | bigint>, Number);
    next[k] = rc.kept(l) * l.inner;
    t.setData(BigInt64Array.from(next.map((v) => BigInt(v))), t.dims);
  });
}

function pad(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  if (!l) return;
  const why = (w: string) => ctx.block(l, `Pad '${node.label}' ${w}`);
  const byAttr = ctx.opset < 11;
  const pads = byAttr ? node.attrInts('pads') ?? node.attrInts('paddings') : ctx.ints(node.input(1));
  if (!pads) return why('has pads that are not constant');
  const axes = byAttr ? undefined : intsFrom(ctx, node, 'axes', 3)?.map((a) => normalizeAxis(a, l.rank));
  const k = axes ? axes.indexOf(l.axis) : l.axis;
  const n = pads.length / 2;
  if (k >= 0 && (pads[k] !== 0 || pads[k + n] !== 0)) return why('pads the channel axis');
  const mode = node.attrString('mode', 'constant');
  let value = byAttr ? node.attrFloat('value', 0) : 0;
  if (!byAttr && node.input(2)) {
    const f = floatsOf(ctx.constant(node.input(2)));
    value = f && f.length === 1 ? f[0] : NaN;
  }
  pass(ctx, node, l, mode !== 'constant' || value === 0);
}

/** Reductions over axes other than the channels keep each channel apart. */
function reduce(zero: boolean) {
  return (node: Node, ctx: ChannelContext): void => {
    const l = ctx.layout(node.input(0));
    if (!l) return;
    const raw = intsFrom(ctx, node, 'axes', 1);
    if (!raw && node.input(1)) return ctx.block(l, `${node.opType} '${node.label}' has axes that are not constant`);
    if (!raw || raw.length === 0) {
      if (node.attrInt('noop_with_empty_axes', 0) === 1) return pass(ctx, node, l, true);
      return ctx.block(l, `${node.opType} '${node.label}' reduces over every axis`);
    }
    const axes = raw.map((a) => normalizeAxis(a, l.rank));
    if (axes.includes(l.axis)) return ctx.block(l, `${node.opType} '${node.label}' reduces over the channels`);
    const keep = node.attrInt('keepdims', 1) === 1;
    const axis = keep ? l.axis : l.axis - axes.filter((a) => a < l.axis).length;
    pass(ctx, node, { ...l, axis, rank: keep ? l.rank : l.rank - axes.length }, zero);
  };
}

/** Softmax mixes what lies along its axis (before opset 13: every axis from `axis` on). */
function softmax(node: Node, ctx: ChannelContext): void {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  const axis = normalizeAxis(node.attrInt('axis', ctx.opset >= 13 ? -1 : 1), l.rank);
  const mixes = ctx.opset >= 13 ? axis === l.axis : l.axis >= axis;
  if (mixes) return ctx.block(l, `${node.opType} '${node.label}' normalizes over the channels`);
  pass(ctx, node, l, false);
}

registerChannelRule('BatchNormalization', batchNorm);
registerChannelRule('InstanceNormalization', instanceNorm);
registerChannelRule('LayerNormalization', layerNorm);
for (const op of ['MaxPool', 'AveragePool', 'LpPool', 'GlobalAveragePool', 'GlobalMaxPool', 'GlobalLpPool']) registerChannelRule(op, pool);
registerChannelRule('Resize', resize);
registerChannelRule('Upsample', resize);
registerChannelRule('Pad', pad);
for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceSumSquare']) {
  registerChannelRule(op, reduce(true));
}
registerChannelRule('ReduceLogSumExp', reduce(false));
registerChannelRule('ReduceLogSum', reduce(false));
for (const op of ['Softmax', 'LogSoftmax', 'Hardmax']) registerChannelRule(op, softmax);
