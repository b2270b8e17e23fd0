/**
 * Rules for element-wise ops. Unary ones pass channels through (identical inputs give identical
 * outputs). Binary/variadic ones (Add, Mul, ...) tie the channels of every operand that carries
 * channels (a residual Add, the SE gate x * gate(x), Swish x * sigmoid(x)); a constant operand is
 * either uniform over channels or a per-channel parameter; any other operand must not vary along
 * the channel axis.
 */
import type { Node, Tensor } from '../../../model';
import type { Layout } from '../layout';
import { registerChannelRule } from '../registry';
import { slicesWhere } from '../slices';
import type { ChannelContext, ZeroFn } from '../types';
import { and, axisLength, floatsOf, or, pass, rankOf, usesOutputsFrom } from './util';

/** Unary ops with f(0) = 0 let exact zeros through (dead channels stay dead). */
const ZERO_PRESERVING = [
  'Relu', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'ThresholdedRelu', 'HardSwish', 'Swish', 'Mish', 'Gelu',
  'Tanh', 'Softsign', 'Erf', 'Neg', 'Abs', 'Sqrt', 'Sign', 'Sin', 'Floor', 'Ceil', 'Round', 'Identity',
  'Cast', 'Atan', 'Asin', 'Sinh', 'Asinh', 'Atanh', 'Tan', 'Shrink',
];
const NOT_ZERO_PRESERVING = ['Sigmoid', 'Softplus', 'Exp', 'Log', 'Reciprocal', 'Cos', 'Cosh', 'Acos', 'Acosh'];

function unary(zero: boolean | ((node: Node, ctx: ChannelContext) => boolean)) {
  return (node: Node, ctx: ChannelContext): void => {
    const l = ctx.layout(node.input(0));
    if (!l) return;
    pass(ctx, node, l, typeof zero === 'function' ? zero(node, ctx) : zero);
  };
}

for (const op of ZERO_PRESERVING) registerChannelRule(op, unary(op !== 'Shrink' ? true : (n) => n.attrFloat('bias', 0) === 0));
for (const op of NOT_ZERO_PRESERVING) registerChannelRule(op, unary(false));

registerChannelRule('HardSigmoid', unary((n) => n.attrFloat('beta', 0.5) <= 0));

/** Clip keeps zeros when min <= 0 <= max (attributes before opset 11, inputs after). */
registerChannelRule(
  'Clip',
  unary((n, ctx) => {
    const bound = (attr: string, input: number, fallback: number): number | undefined => {
      const a = n.attrFloat(attr);
      if (a !== undefined) return a;
      const v = n.input(input);
      if (!v) return fallback;
      const f = floatsOf(ctx.constant(v));
      return f && f.length === 1 ? f[0] : undefined;
    };
    const lo = bound('min', 1, -Infinity);
    const hi = bound('max', 2, Infinity);
    return lo !== undefined && hi !== undefined && lo <= 0 && hi >= 0;
  }),
);

/** Dropout at inference is the identity; its mask output is per element, so it may not be used. */
registerChannelRule('Dropout', (node, ctx) => {
  const l = ctx.layout(node.input(0));
  if (!l) return;
  if (usesOutputsFrom(node, 1)) ctx.block(l, `Dropout '${node.label}' has its mask output in use`);
  pass(ctx, node, l, true);
});

type Operand =
  | { kind: 'channels'; value: string; layout: Layout }
  | { kind: 'uniform'; value: string; tensor?: Tensor }
  | { kind: 'param'; value: string; input: number; axis: number; tensor: Tensor };

/** How zeros combine: Add-like ops need every operand zero, Mul-like ones any. */
type Combine = 'all' | 'any' | 'div' | 'pow' | 'first';

function elementwise(combine: Combine) {
  return (node: Node, ctx: ChannelContext): void => {
    const inputs = node.inputs.map((v, i) => ({ v, i })).filter((x) => x.v !== '');
    const tracked = inputs.filter((x) => ctx.layout(x.v));
    if (tracked.length === 0) return;
    const layouts = tracked.map((x) => ctx.layout(x.v)!);
    const ranks = inputs.map((x) => rankOf(ctx, x.v));
    if (ranks.some((r) => r === undefined)) {
      for (const l of layouts) ctx.block(l, `${node.opType} '${node.label}' has an operand of unknown rank`);
      return;
    }
    const rank = Math.max(...(ranks as number[]));
    const axis = layouts[0].axis + rank - layouts[0].rank;
    if (layouts.some((l) => l.axis + rank - l.rank !== axis)) {
      for (const l of layouts) ctx.block(l, `${node.opType} '${node.label}' combines channels on different axes`);
      return;
    }
    const length = axisLength(layouts[0]);
    const operands: Operand[] = [];
    let why = '';
    inputs.forEach(({ v, i }, k) => {
      const l = ctx.layout(v);
      if (l) {
        operands.push({ kind: 'channels', value: v, layout: l });
        return;
      }
      const r = ranks[k]!;
      const at = axis - (rank - r);
      const t = ctx.constant(v);
      const dims = t ? t.dims : ctx.shape(v);
      const d = at < 0 ? 1 : dims?.[at];
      if (d === 1) operands.push({ kind: 'uniform', value: v, tensor: t });
      else if (t && d === length) operands.push({ kind: 'param', value: v, input: i, axis: at, tensor: t });
      else why ||= `input ${i} ('${v}') varies along the channel axis (${d ?? 'unknown'}) but carries no tracked channels`;
    });
    if (why) {
      for (const l of layouts) ctx.block(l, `${node.opType} '${node.label}': ${why}`);
      return;
    }
    if (layouts.length > 1) ctx.couple(node, layouts);
    const out: Layout = { ...layouts[0], axis, rank };
    for (const o of operands) if (o.kind === 'param') ctx.param(node, o.input, o.axis, out);
    ctx.setLayout(node, node.outputs[0], out);
    ctx.zero(node.outputs[0], zeroRule(combine, operands, out));
  };
}

function zeroRule(combine: Combine, operands: Operand[], out: Layout): ZeroFn {
  const positions = axisLength(out) / out.inner;
  const constant = (o: Operand, test: (x: number) => boolean): Uint8Array | undefined => {
    if (o.kind === 'param') {
      const f = floatsOf(o.tensor);
      return f && slicesWhere(f, o.tensor.dims, o.axis, out.inner, test);
    }
    if (o.kind === 'uniform' && o.tensor) {
      const f = floatsOf(o.tensor);
      return f && f.every(test) ? new Uint8Array(positions).fill(1) : undefined;
    }
    return undefined;
  };
  return (env) => {
    const zeroOf = (o: Operand) => (o.kind === 'channels' ? env.mask(o.value) : constant(o, (x) => x === 0));
    switch (combine) {
      case 'all':
        return operands.map(zeroOf).reduce((a, b) => and(a, b));
      case 'any':
        return operands.map(zeroOf).reduce((a, b) => or(a, b));
      case 'first':
        return operands[0].kind === 'channels' ? env.mask(operands[0].value) : undefined;
      case 'div': {
        // 0 / d is 0 only where d is not 0 as well.
        const [num, den] = operands;
        if (!den || num.kind !== 'channels') return undefined;
        const top = env.mask(num.value);
        if (den.kind === 'channels') {
          const bottom = env.mask(den.value);
          return top && bottom ? top.map((z, i) => z & (1 - bottom[i])) : top;
        }
        if (den.kind === 'uniform' && !den.tensor) return top; // a runtime divisor, assumed non-zero
        return and(top, constant(den, (x) => x !== 0));
      }
      case 'pow': {
        const [base, exp] = operands;
        if (!exp || base.kind !== 'channels' || exp.kind === 'channels') return undefined;
        return and(env.mask(base.value), constant(exp, (x) => x > 0));
      }
    }
  };
}

for (const op of ['Add', 'Sub', 'Sum', 'Mean', 'Max', 'Min']) registerChannelRule(op, elementwise('all'));
registerChannelRule('Mul', elementwise('any'));
registerChannelRule('Div', elementwise('div'));
registerChannelRule('Pow', elementwise('pow'));
registerChannelRule('PRelu', elementwise('first'));
