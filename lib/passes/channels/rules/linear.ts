/**
 * Rules for the ops whose constant weights create channels (producers) and read them (consumers):
 * Conv, ConvTranspose, Gemm, MatMul, with their weight axes from the layer kinds (lib/layers). Depthwise
 * convs keep channels apart, so for them the channels pass through and the weights are per-channel
 * parameters.
 */
import { layerKind } from '../../../layers';
import type { Node } from '../../../model';
import { channelCount, type Layout } from '../layout';
import { registerChannelRule } from '../registry';
import type { ChannelContext } from '../types';
import { and, constantZeros, floatsOf, pass, rankOf } from './util';

/** Zeros pass a depthwise conv (zero padding) only where its bias is zero. */
function depthwise(ctx: ChannelContext, node: Node, l: Layout, rank: number): void {
  if (l.axis !== 1 || l.inner !== 1 || l.rank !== rank) {
    ctx.block(l, `${node.opType} '${node.label}' reads channels on axis ${l.axis} of ${l.rank}, not axis 1 of ${rank}`);
    return;
  }
  ctx.param(node, 1, 0, l);
  const bias = node.input(2) ? ctx.constant(node.input(2)) : undefined;
  if (node.input(2)) ctx.param(node, 2, 0, l);
  const biasZero = bias ? constantZeros(bias, 0, 1) : new Uint8Array(channelCount(l)).fill(1);
  pass(ctx, node, l, false);
  ctx.zero(node.outputs[0], (env) => and(env.mask(node.input(0)), biasZero));
  // One group per channel: the group count follows the channels that remain.
  ctx.rewrite(node, l, (rc, l) => node.setAttribute('group', rc.kept(l)));
}

/**
 * Conv and ConvTranspose: output channels on axis 1. Which weight axes hold the output neurons and the
 * input channels, and which of them one group's share, comes from the layer kind.
 */
function conv(node: Node, ctx: ChannelContext): void {
  const x = node.input(0);
  const l = ctx.layout(x);
  const w = ctx.constant(node.input(1));
  if (!w) {
    if (l) ctx.block(l, `${node.opType} '${node.label}' has weights that are not constant`);
    return;
  }
  const axes = layerKind(node)!.axes(w.dims, node);
  if (typeof axes === 'string') {
    if (l) ctx.block(l, `${node.opType} '${node.label}': ${axes}`);
    return;
  }
  const { group, outputs, inputs } = axes;
  const rank = w.dims.length;
  if (group === 1) {
    if (l) {
      if (l.axis === 1 && l.inner === 1 && l.rank === rank) ctx.consume(node, x, { input: 1, axis: inputs });
      else ctx.block(l, `${node.opType} '${node.label}' reads channels on axis ${l.axis} of ${l.rank}`);
    }
    const bias = node.input(2);
    const out = ctx.produce(node, { axis: 1, rank, channels: w.dims[outputs], weight: { input: 1, axis: outputs }, bias: bias ? { input: 2, axis: 0 } : undefined });
    if (bias && !ctx.constant(bias)) ctx.block(out, `${node.opType} '${node.label}' has a bias that is not constant`);
    return;
  }
  // The axis that holds one group's share, and the one that holds every channel.
  const [perGroup, whole] = axes.outputsPerGroup ? [outputs, inputs] : [inputs, outputs];
  if (w.dims[perGroup] === 1 && w.dims[whole] === group) {
    if (l) depthwise(ctx, node, l, rank);
    return;
  }
  // Grouped convs would need every group to keep the same count: not pruned.
  const [inPer, outPer] = axes.outputsPerGroup ? [w.dims[inputs] / group, w.dims[outputs]] : [w.dims[inputs], w.dims[outputs] / group];
  if (l) ctx.block(l, `grouped ${node.opType} '${node.label}' (group=${group}, ${inPer} in x ${outPer} out per group)`);
}

/** Gemm: Y = alpha * A' B' + beta * C; output neurons are B' columns. */
function gemm(node: Node, ctx: ChannelContext): void {
  const a = node.input(0);
  const l = ctx.layout(a);
  const b = ctx.constant(node.input(1));
  const transA = node.attrInt('transA', 0);
  const axes = b && layerKind(node)!.axes(b.dims, node);
  if (!b || !axes || typeof axes === 'string') {
    if (l) ctx.block(l, `Gemm '${node.label}' has a B that is not a constant matrix`);
    return;
  }
  if (l) {
    if (l.rank === 2 && l.axis === (transA ? 0 : 1)) ctx.consume(node, a, { input: 1, axis: axes.inputs });
    else ctx.block(l, `Gemm '${node.label}' reads channels on a non-contracted axis`);
  }
  const channels = b.dims[axes.outputs];
  const cName = node.input(2);
  const c = cName ? ctx.constant(cName) : undefined;
  let bias: { input: number; axis: number } | undefined;
  let why = '';
  const offset = !!c && c.size === 1 && floatsOf(c)?.[0] !== 0 && node.attrFloat('beta', 1) !== 0;
  if (cName && !c) why = 'a C that is not constant';
  else if (c && c.size > 1) {
    const d = c.dims;
    if (d.length === 1 && d[0] === channels) bias = { input: 2, axis: 0 };
    else if (d.length === 2 && d[0] === 1 && d[1] === channels) bias = { input: 2, axis: 1 };
    else why = `a C of shape [${d}] that is not per output`;
  }
  const out = ctx.produce(node, { axis: 1, rank: 2, channels, weight: { input: 1, axis: axes.outputs }, bias, offset });
  if (why) ctx.block(out, `Gemm '${node.label}' has ${why}`);
}

/**
 * MatMul with a constant matrix B [K, N]: a producer of N channels on the last axis, a consumer of
 * channels on A's last axis. Between two activations it passes channels that it does not contract
 * (A's rows, B's columns: attention's softmax @ V).
 */
function matmul(node: Node, ctx: ChannelContext): void {
  const [a, bName] = [node.input(0), node.input(1)];
  const la = ctx.layout(a);
  const lb = ctx.layout(bName);
  const b = ctx.constant(bName);
  const rankA = rankOf(ctx, a);
  const rankB = rankOf(ctx, bName);
  const axes = b && layerKind(node)!.axes(b.dims, node);
  if (b && axes && typeof axes !== 'string' && rankA !== undefined && rankA >= 2) {
    if (la && la.axis !== rankA - 1) {
      // Channels on A's rows: each row is mapped on its own, so they pass through.
      pass(ctx, node, la, true);
      return;
    }
    if (la) ctx.consume(node, a, { input: 1, axis: axes.inputs });
    ctx.produce(node, { axis: rankA - 1, rank: rankA, channels: b.dims[axes.outputs], weight: { input: 1, axis: axes.outputs } });
    return;
  }
  if (rankA === undefined || rankB === undefined || rankA < 2 || rankB < 2) {
    for (const l of [la, lb]) if (l) ctx.block(l, `MatMul '${node.label}' with operands of unknown or vector rank`);
    return;
  }
  const outRank = Math.max(rankA, rankB);
  if (la && !lb && la.axis === rankA - 2) {
    pass(ctx, node, { ...la, axis: outRank - 2, rank: outRank }, true);
    return;
  }
  if (lb && !la && lb.axis === rankB - 1) {
    pass(ctx, node, { ...lb, axis: outRank - 1, rank: outRank }, true, bName);
    return;
  }
  for (const l of [la, lb]) if (l) ctx.block(l, `MatMul '${node.label}' contracts or broadcasts the channels`);
}

registerChannelRule('Conv', conv);
registerChannelRule('ConvTranspose', conv);
registerChannelRule('Gemm', gemm);
registerChannelRule('MatMul', matmul);
