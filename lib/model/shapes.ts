/**
 * Static shape inference over a Graph, for passes that need channel counts and for probe inputs.
 *
 * A dimension is a number when the inputs fix it, else a symbol (a string): the graph input's dim_param
 * where it passes through unchanged, or a fresh `unk_<n>` where arithmetic on symbols would be needed.
 * Small integer tensors (shapes, axes, pads, sizes: at most 64 elements) are also evaluated, symbols
 * included, so Shape -> Gather/Slice -> Concat -> Reshape chains keep static dims.
 */
import { allSteps } from '../turns';
import { DataType } from './dtype';
import type { Graph, Node } from './graph';
import { toNumber, type TypeProto, type ValueInfoProto } from './proto';
import { elementCount } from './tensor';
import { ValueTypes, type Dim, type ValueType } from './value-types';

export type { Dim, ValueType } from './value-types';

export interface ShapeInference {
  /** Every value's type: what the graph declares, filled in where rules know more. A snapshot: later edits do not change it. */
  types: ReadonlyMap<string, ValueType>;
  /** Evaluated values of small integer tensors (shape arithmetic). */
  values: Map<string, Dim[]>;
  /** Values whose rank could not be inferred (no rule for the op, or its inputs were unknown). */
  unresolved: string[];
}

/** Largest tensor whose values are tracked. */
const MAX_VALUES = 64;
const INT_MAX = 2 ** 62;

/** Per-input overrides: `{ x: [1, 3, 224, 224] }` replaces the declared shape of input x. */
export function inferShapes(graph: Graph, inputShapes: Record<string, readonly Dim[]> = {}): ShapeInference {
  return allSteps(shapeSteps(graph, inputShapes));
}

/** Nodes inferred between two steps of shapeSteps(). */
const NODES_PER_STEP = 32;

/**
 * inferShapes() as steps (turns.ts): it yields every NODES_PER_STEP nodes, so that a main-thread caller
 * can give the event loop its turns (ISNet's inference was one piece of 10-20 ms, twice a prune). The
 * graph must not change until it returns.
 */
export function* shapeSteps(graph: Graph, inputShapes: Record<string, readonly Dim[]> = {}): Generator<void, ShapeInference, void> {
  // Inputs, initializers and outer values; node outputs go to the ValueTypes made below.
  const seeded = new Map<string, ValueType>();
  const values = new Map<string, Dim[]>();
  let fresh = 0;
  const symbol = () => `unk_${fresh++}`;

  const seed = (name: string, t: TypeProto | null | undefined) => {
    const tt = t?.tensor_type;
    const shape = inputShapes[name]
      ? [...inputShapes[name]]
      : tt?.shape
        ? tt.shape.dim.map((d) => (d.value === 'dim_value' ? toNumber(d.dim_value!) : d.dim_param || symbol()))
        : undefined;
    seeded.set(name, { elemType: tt?.elem_type ?? 0, shape });
  };
  for (let g: Graph | undefined = graph.parent; g; g = g.parent) for (const i of g.inputs) seed(i.name, i.type);
  for (const i of graph.inputs) seed(i.name, i.type);
  const constantType = (name: string, dataType: number, dims: number[], data: () => ArrayLike<number | bigint>): ValueType => {
    if (elementCount(dims) <= MAX_VALUES && dataType !== DataType.STRING) {
      try {
        values.set(name, Array.from(data(), Number));
      } catch {
        // Undecodable element types carry a shape but no values.
      }
    }
    return { elemType: dataType, shape: dims };
  };
  for (const [name, t] of graph.initializers) {
    if (inputShapes[name] || graph.isGraphInput(name)) continue;
    seeded.set(name, constantType(name, t.dataType, t.dims, () => t.data));
  }
  const order = graph.topologicalOrder();
  // Types are kept by each node's place in the file: the order is that list where it is in file
  // order, else a copy of the node list is (edits change that list in place).
  const byFile = order.every((n, i) => n.filePosition === i) ? order : [...graph.nodes];
  const types = new ValueTypes(seeded, graph.producerIndex(), byFile, graph.producedTwice() !== undefined);

  const ctx: RuleContext = {
    type: (v) => (v ? types.get(v) : undefined),
    shape: (v) => (v ? types.get(v)?.shape : undefined),
    value: (v) => (v ? values.get(v) : undefined),
    symbol,
  };
  const unresolved: string[] = [];
  // graph.valueInfo() for every value, as one map (a search per value would be quadratic).
  const declaredTypes = new Map<string, ValueInfoProto>();
  for (const list of [graph.proto.value_info, graph.proto.input, graph.proto.output]) {
    for (const v of list) if (!declaredTypes.has(v.name)) declaredTypes.set(v.name, v);
  }
  let sinceStep = 0;
  for (const node of order) {
    if (++sinceStep === NODES_PER_STEP) {
      sinceStep = 0;
      yield;
    }
    if (node.opType === 'Constant' && node.domain === '') {
      const t = graph.constant(node.outputs[0]);
      if (t) {
        types.record(node, 0, constantType(node.outputs[0], t.dataType, t.dims, () => t.data));
        continue;
      }
    }
    let result: Inferred | undefined;
    const rule = node.domain === '' ? RULES[node.opType] : undefined;
    if (rule) {
      try {
        result = rule(node, ctx);
      } catch {
        result = undefined; // malformed attributes: leave the outputs unknown rather than fail the pass
      }
    }
    const outputs = node.outputs;
    for (let i = 0; i < outputs.length; i++) {
      const out = outputs[i];
      if (!out) continue;
      const inferred = result?.types[i];
      const declared = declaredTypes.get(out)?.type?.tensor_type;
      if (declared === undefined && inferred !== undefined) {
        // Nothing declared to fill in: the inferred type as it is (types are never changed once made,
        // so values of one type share it; a copy per value was an object per node).
        types.record(node, i, inferred);
        if (inferred.shape === undefined) unresolved.push(out);
      } else {
        const declaredShape = declared?.shape
          ? declared.shape.dim.map((d) => (d.value === 'dim_value' ? toNumber(d.dim_value!) : d.dim_param || symbol()))
          : undefined;
        const shape = inferred?.shape ?? declaredShape;
        const elemType = inferred?.elemType || declared?.elem_type || 0;
        types.record(node, i, { elemType, shape });
        if (shape === undefined) unresolved.push(out);
      }
      const v = result?.values?.[i];
      if (v && v.length <= MAX_VALUES) values.set(out, v);
    }
  }
  return { types, values, unresolved };
}

/** The last inference of each top-level graph, and what it was computed from (sharedShapes()). */
const lastInference = new WeakMap<Graph, { key: string; constants: ConstantsSnapshot; result: ShapeInference }>();

/**
 * inferShapes(), reused while the graph is as it was: the layer table, merging and the count after the
 * passes ask for the same shapes, and on a graph of a million nodes each inference costs a second and
 * hundreds of MB. Reused while the graph's revision (edits through Graph and Node) and the input shapes
 * are the same, and the constants too, read afresh each time (element type, dims, the values of those
 * small enough to be tracked): a tensor edited in place after mutableData() notifies no one. The result
 * is shared: callers must not change it.
 */
export function sharedShapes(graph: Graph, inputShapes: Record<string, readonly Dim[]> = {}): ShapeInference {
  return allSteps(sharedShapeSteps(graph, inputShapes));
}

/** sharedShapes() as steps (shapeSteps()). Kept under the key it began with: an edit meanwhile moves the graph past it. */
export function* sharedShapeSteps(graph: Graph, inputShapes: Record<string, readonly Dim[]> = {}): Generator<void, ShapeInference, void> {
  if (graph.parent) return yield* shapeSteps(graph, inputShapes);
  const key = `${graph.revision}|${JSON.stringify(inputShapes)}`;
  const constants = constantsOf(graph);
  const last = lastInference.get(graph);
  if (last?.key === key && sameConstants(last.constants, constants)) return last.result;
  const result = yield* shapeSteps(graph, inputShapes);
  lastInference.set(graph, { key, constants, result });
  return result;
}

/** What inferShapes() reads of each of a graph's constants, in graph order. */
interface ConstantSnapshot {
  name: string;
  dataType: number;
  dims: number[];
  /** A copy of the values where they are tracked (inferShapes() reads those), else undefined. */
  values: ArrayLike<number | bigint> | undefined;
}
type ConstantsSnapshot = ConstantSnapshot[];

/**
 * The constants as inferShapes() reads them: element type, dims, and a copy of the tracked values.
 * Copies compared element by element, not a string of the values: printing ISNet's few hundred small
 * float biases took 5-10 ms a call, four calls a prune.
 */
function constantsOf(graph: Graph): ConstantsSnapshot {
  const out: ConstantsSnapshot = [];
  const add = (name: string, t: { dataType: number; dims: number[]; data: ArrayLike<number | bigint> }) => {
    const dims = t.dims;
    let values: ArrayLike<number | bigint> | undefined;
    if (elementCount(dims) <= MAX_VALUES && t.dataType !== DataType.STRING) {
      try {
        values = Array.from(t.data);
      } catch {
        // Undecodable element types carry no values (as in inferShapes()).
      }
    }
    out.push({ name, dataType: t.dataType, dims, values });
  };
  for (const [name, t] of graph.initializers) add(name, t);
  for (const node of graph.nodes) {
    if (node.opType !== 'Constant' || node.domain !== '') continue;
    const t = graph.constant(node.outputs[0]);
    if (t) add(node.outputs[0], t);
  }
  return out;
}

/** Whether two snapshots would give inferShapes() the same constants (NaN equal to NaN, as their values are then). */
function sameConstants(a: ConstantsSnapshot, b: ConstantsSnapshot): boolean {
  if (a.length !== b.length) return false;
  const sameList = <T>(x: ArrayLike<T>, y: ArrayLike<T>): boolean => {
    if (x.length !== y.length) return false;
    for (let i = 0; i < x.length; i++) if (!Object.is(x[i], y[i]) && x[i] !== y[i]) return false;
    return true;
  };
  for (let i = 0; i < a.length; i++) {
    const p = a[i];
    const q = b[i];
    if (p.name !== q.name || p.dataType !== q.dataType || !sameList(p.dims, q.dims)) return false;
    if (p.values === undefined || q.values === undefined ? p.values !== q.values : !sameList(p.values, q.values)) return false;
  }
  return true;
}

interface RuleContext {
  type(v: string): ValueType | undefined;
  shape(v: string): Dim[] | undefined;
  value(v: string): Dim[] | undefined;
  symbol(): string;
}

interface Inferred {
  types: (ValueType | undefined)[];
  values?: (Dim[] | undefined)[];
}

type Rule = (node: Node, ctx: RuleContext) => Inferred | undefined;

const one = (elemType: number, shape: Dim[] | undefined, value?: Dim[]): Inferred => ({
  types: [{ elemType, shape }],
  values: [value],
});

function normAxis(axis: number, rank: number): number {
  return axis < 0 ? axis + rank : axis;
}

function broadcast(shapes: (Dim[] | undefined)[], ctx: RuleContext): Dim[] | undefined {
  if (shapes.some((s) => s === undefined)) return undefined;
  const rank = Math.max(...shapes.map((s) => s!.length));
  const out: Dim[] = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of shapes) {
      const x = s![s!.length - rank + i];
      if (x === undefined || x === 1) continue;
      if (d === 1) d = x;
      else if (typeof d === 'string' && typeof x === 'number') d = x;
      else if (typeof d === 'string' && typeof x === 'string' && d !== x) d = ctx.symbol();
    }
    out.push(d);
  }
  return out;
}

/** Elementwise integer arithmetic on tracked values (shape computations). */
function valueArith(a: Dim[] | undefined, b: Dim[] | undefined, f: (x: number, y: number) => number, ctx: RuleContext) {
  if (!a || !b) return undefined;
  const n = Math.max(a.length, b.length);
  if ((a.length !== n && a.length !== 1) || (b.length !== n && b.length !== 1)) return undefined;
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length === 1 ? 0 : i];
    const y = b[b.length === 1 ? 0 : i];
    out.push(typeof x === 'number' && typeof y === 'number' ? f(x, y) : ctx.symbol());
  }
  return out;
}

const dimMul = (dims: Dim[], ctx: RuleContext): Dim =>
  dims.every((d) => typeof d === 'number') ? (dims as number[]).reduce((a, b) => a * b, 1) : dims.length === 1 ? dims[0] : ctx.symbol();

const sameAsInput: Rule = (node, ctx) => {
  const t = ctx.type(node.input(0));
  return { types: node.outputs.map(() => t) };
};

const sameShapeAs = (elemType: (node: Node, ctx: RuleContext) => number): Rule => (node, ctx) =>
  one(elemType(node, ctx), ctx.shape(node.input(0)));

const elementwise = (resultType?: number): Rule => (node, ctx) => {
  const shapes = node.inputs.filter(Boolean).map((v) => ctx.shape(v));
  const first = ctx.type(node.opType === 'Where' ? node.input(1) : node.input(0));
  const elemType = resultType ?? first?.elemType ?? 0;
  const a = ctx.value(node.input(0));
  const b = ctx.value(node.input(1));
  const ops: Record<string, (x: number, y: number) => number> = {
    Add: (x, y) => x + y,
    Sub: (x, y) => x - y,
    Mul: (x, y) => x * y,
    Div: (x, y) => (isIntType(elemType) ? Math.trunc(x / y) : x / y),
  };
  const f = ops[node.opType];
  return one(elemType, broadcast(shapes, ctx), f ? valueArith(a, b, f, ctx) : undefined);
};

function isIntType(t: number): boolean {
  return [DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.UINT8, DataType.UINT16, DataType.UINT32, DataType.UINT64].includes(
    t as 2,
  );
}

/** Output size of a sliding window along one axis (Conv, pooling). */
function windowDim(
  input: Dim,
  kernel: number,
  stride: number,
  dilation: number,
  padBegin: number,
  padEnd: number,
  autoPad: string,
  ceil: boolean,
  ctx: RuleContext,
): Dim {
  const effective = (kernel - 1) * dilation + 1;
  if (typeof input !== 'number') {
    // A stride-1 window whose padding makes up for the kernel keeps the size, symbol and all.
    const same = autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' || (autoPad === 'NOTSET' && padBegin + padEnd === effective - 1);
    return stride === 1 && same ? input : ctx.symbol();
  }
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(input / stride);
  if (autoPad === 'VALID') return Math.floor((input - effective) / stride) + 1;
  const span = input + padBegin + padEnd - effective;
  let out = (ceil ? Math.ceil(span / stride) : Math.floor(span / stride)) + 1;
  // ceil_mode: the last window must start inside the input or its left padding.
  if (ceil && (out - 1) * stride >= input + padBegin) out--;
  return out;
}

function windowed(node: Node, x: Dim[], kernel: number[], ctx: RuleContext, ceil = false): Dim[] {
  const n = kernel.length;
  const strides = node.attrInts('strides') ?? new Array(n).fill(1);
  const dilations = node.attrInts('dilations') ?? new Array(n).fill(1);
  const pads = node.attrInts('pads') ?? new Array(2 * n).fill(0);
  const autoPad = node.attrString('auto_pad', 'NOTSET');
  return kernel.map((k, i) =>
    windowDim(x[2 + i], k, strides[i], dilations[i], pads[i], pads[i + n], autoPad, ceil, ctx),
  );
}

const conv: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const w = ctx.shape(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x || !w) return one(elemType, undefined);
  const kernel = node.attrInts('kernel_shape') ?? (w.slice(2) as number[]);
  if (kernel.some((k) => typeof k !== 'number')) return one(elemType, undefined);
  return one(elemType, [x[0], w[0], ...windowed(node, x, kernel, ctx)]);
};

const convTranspose: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const w = ctx.shape(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x || !w) return one(elemType, undefined);
  const group = node.attrInt('group', 1);
  const channels: Dim = typeof w[1] === 'number' ? w[1] * group : ctx.symbol();
  const kernel = node.attrInts('kernel_shape') ?? (w.slice(2) as number[]);
  const n = kernel.length;
  const outputShape = node.attrInts('output_shape');
  if (outputShape) return one(elemType, [x[0], channels, ...outputShape.slice(-n)]);
  const strides = node.attrInts('strides') ?? new Array(n).fill(1);
  const dilations = node.attrInts('dilations') ?? new Array(n).fill(1);
  const outPad = node.attrInts('output_padding') ?? new Array(n).fill(0);
  const pads = node.attrInts('pads') ?? new Array(2 * n).fill(0);
  const autoPad = node.attrString('auto_pad', 'NOTSET');
  const spatial = kernel.map((k, i) => {
    const d = x[2 + i];
    if (typeof d !== 'number' || typeof k !== 'number') return ctx.symbol();
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * strides[i];
    return strides[i] * (d - 1) + outPad[i] + (k - 1) * dilations[i] + 1 - pads[i] - pads[i + n];
  });
  return one(elemType, [x[0], channels, ...spatial]);
};

const pool: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  const kernel = node.attrInts('kernel_shape');
  if (!x || !kernel) return { types: [{ elemType, shape: undefined }] };
  const shape = [x[0], x[1], ...windowed(node, x, kernel, ctx, node.attrInt('ceil_mode', 0) === 1)];
  return { types: [{ elemType, shape }, { elemType: DataType.INT64, shape }] };
};

const globalPool: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  return one(ctx.type(node.input(0))?.elemType ?? 0, x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : undefined);
};

const gemm: Rule = (node, ctx) => {
  const a = ctx.shape(node.input(0));
  const b = ctx.shape(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!a || !b) return one(elemType, undefined);
  const m = node.attrInt('transA', 0) ? a[1] : a[0];
  const n = node.attrInt('transB', 0) ? b[0] : b[1];
  return one(elemType, [m, n]);
};

const matmul: Rule = (node, ctx) => {
  const a = ctx.shape(node.input(0));
  const b = ctx.shape(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!a || !b) return one(elemType, undefined);
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcast([a2.slice(0, -2), b2.slice(0, -2)], ctx)!;
  const out = [...batch, a2[a2.length - 2], b2[b2.length - 1]];
  if (a.length === 1) out.splice(out.length - 2, 1);
  if (b.length === 1) out.splice(out.length - 1, 1);
  return one(elemType, out);
};

const flatten: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x) return one(elemType, undefined);
  const axis = normAxis(node.attrInt('axis', 1), x.length);
  return one(elemType, [dimMul(x.slice(0, axis), ctx), dimMul(x.slice(axis), ctx)]);
};

const reshape: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  const target = node.input(1) ? ctx.value(node.input(1)) : node.attrInts('shape');
  if (!target) return one(elemType, undefined);
  const allowZero = node.attrInt('allowzero', 0) === 1;
  const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero && x ? x[i] : d));
  const inferAt = out.indexOf(-1);
  if (inferAt >= 0) {
    const known = out.filter((_, i) => i !== inferAt);
    if (x && x.every((d) => typeof d === 'number') && known.every((d) => typeof d === 'number')) {
      const total = (x as number[]).reduce((a, b) => a * b, 1);
      const rest = (known as number[]).reduce((a, b) => a * b, 1);
      out[inferAt] = rest === 0 ? 0 : total / rest;
    } else {
      out[inferAt] = reshapeSymbol(x, known, ctx);
    }
  }
  return one(elemType, out, ctx.value(node.input(0)));
};

/** The -1 of a Reshape whose input has symbols: the symbol itself when the other dims cancel exactly. */
function reshapeSymbol(x: Dim[] | undefined, known: Dim[], ctx: RuleContext): Dim {
  if (!x) return ctx.symbol();
  const rest = [...x];
  for (const d of known) {
    const at = rest.indexOf(d);
    if (at < 0) return ctx.symbol();
    rest.splice(at, 1);
  }
  const syms = rest.filter((d) => d !== 1);
  return syms.length === 1 ? syms[0] : syms.length === 0 ? 1 : ctx.symbol();
}

const transpose: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x) return one(elemType, undefined);
  const perm = node.attrInts('perm') ?? x.map((_, i) => x.length - 1 - i);
  return one(elemType, perm.map((p) => x[p]));
};

const concat: Rule = (node, ctx) => {
  const inputs = node.inputs.filter(Boolean);
  const shapes = inputs.map((v) => ctx.shape(v));
  const elemType = ctx.type(inputs[0])?.elemType ?? 0;
  const vals = inputs.map((v) => ctx.value(v));
  const value = vals.every(Boolean) ? vals.flatMap((v) => v!) : undefined;
  if (shapes.some((s) => !s)) return one(elemType, undefined, value);
  const rank = shapes[0]!.length;
  const axis = normAxis(node.attrInt('axis', 0), rank);
  const out = [...shapes[0]!];
  const along = shapes.map((s) => s![axis]);
  out[axis] = along.every((d) => typeof d === 'number') ? (along as number[]).reduce((a, b) => a + b, 0) : ctx.symbol();
  for (let i = 0; i < rank; i++) {
    if (i !== axis && typeof out[i] === 'string') {
      const n = shapes.find((s) => typeof s![i] === 'number');
      if (n) out[i] = n[i];
    }
  }
  return one(elemType, out, value);
};

const split: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  const outputs = node.outputs.length;
  if (!x) return { types: node.outputs.map(() => ({ elemType, shape: undefined })) };
  const axis = normAxis(node.attrInt('axis', 0), x.length);
  const sizes = (node.input(1) ? ctx.value(node.input(1)) : node.attrInts('split')) as Dim[] | undefined;
  let parts: Dim[];
  if (sizes) parts = sizes;
  else if (typeof x[axis] === 'number') {
    const d = x[axis] as number;
    const chunk = Math.ceil(d / outputs);
    parts = Array.from({ length: outputs }, (_, i) => Math.max(0, Math.min(chunk, d - i * chunk)));
  } else parts = node.outputs.map(() => ctx.symbol());
  return {
    types: parts.map((p) => {
      const s = [...x];
      s[axis] = p;
      return { elemType, shape: s };
    }),
  };
};

function sliceDim(d: Dim, start: number, end: number, step: number, ctx: RuleContext): Dim {
  if (typeof d !== 'number') {
    if (step === 1 && start === 0 && end >= INT_MAX) return d;
    return ctx.symbol();
  }
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    return Math.max(0, Math.ceil((e - s) / step));
  }
  s = clamp(s, -1, d - 1);
  e = clamp(e, -1, d - 1);
  return Math.max(0, Math.ceil((e - s) / step));
}

const slice: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  const fromInputs = node.inputs.length > 1;
  const num = (v: Dim[] | undefined) => (v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined);
  const starts = fromInputs ? num(ctx.value(node.input(1))) : node.attrInts('starts');
  const ends = fromInputs ? num(ctx.value(node.input(2))) : node.attrInts('ends');
  if (!x || !starts || !ends) return one(elemType, undefined);
  const axes = (fromInputs ? (node.input(3) ? num(ctx.value(node.input(3))) : undefined) : node.attrInts('axes')) ??
    starts.map((_, i) => i);
  const steps = (fromInputs && node.input(4) ? num(ctx.value(node.input(4))) : undefined) ?? starts.map(() => 1);
  const out = [...x];
  const xv = ctx.value(node.input(0));
  let value: Dim[] | undefined;
  axes.forEach((a, i) => {
    const axis = normAxis(a, x.length);
    out[axis] = sliceDim(x[axis], starts[i], ends[i], steps[i], ctx);
    if (xv && x.length === 1 && typeof x[0] === 'number') {
      const picked: Dim[] = [];
      const d = x[0];
      let s = starts[i] < 0 ? starts[i] + d : Math.min(starts[i], d);
      const e = ends[i] < 0 ? ends[i] + d : Math.min(ends[i], d);
      if (steps[i] > 0) for (s = Math.max(s, 0); s < e; s += steps[i]) picked.push(xv[s]);
      value = steps[i] > 0 ? picked : undefined;
    }
  });
  return one(elemType, out, value);
};

function axesOf(node: Node, ctx: RuleContext): number[] | undefined {
  if (node.input(1)) {
    const v = ctx.value(node.input(1));
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }
  return node.attrInts('axes');
}

const squeeze: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x) return one(elemType, undefined);
  const given = node.input(1) || node.attribute('axes');
  const axes = given ? axesOf(node, ctx)?.map((a) => normAxis(a, x.length)) : x.flatMap((d, i) => (d === 1 ? [i] : []));
  if (!axes) return one(elemType, undefined);
  return one(elemType, x.filter((_, i) => !axes.includes(i)), ctx.value(node.input(0)));
};

const unsqueeze: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  const axes = axesOf(node, ctx);
  if (!x || !axes) return one(elemType, undefined);
  const rank = x.length + axes.length;
  const norm = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
  const out = [...x];
  for (const a of norm) out.splice(a, 0, 1);
  return one(elemType, out, ctx.value(node.input(0)));
};

const shapeOp: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  if (!x) return one(DataType.INT64, [ctx.symbol()]);
  const start = normAxis(node.attrInt('start', 0), x.length);
  const endAttr = node.attrInt('end');
  const end = endAttr === undefined ? x.length : normAxis(endAttr, x.length);
  const value = x.slice(Math.max(0, start), Math.min(x.length, end));
  return one(DataType.INT64, [value.length], value);
};

const gather: Rule = (node, ctx) => {
  const data = ctx.shape(node.input(0));
  const indices = ctx.shape(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!data || !indices) return one(elemType, undefined);
  const axis = normAxis(node.attrInt('axis', 0), data.length);
  const out = [...data.slice(0, axis), ...indices, ...data.slice(axis + 1)];
  const dv = ctx.value(node.input(0));
  const iv = ctx.value(node.input(1));
  let value: Dim[] | undefined;
  if (dv && iv && data.length === 1 && typeof data[0] === 'number') {
    const n = data[0];
    value = iv.every((i) => typeof i === 'number') ? (iv as number[]).map((i) => dv[i < 0 ? i + n : i]) : undefined;
  }
  return one(elemType, out, value);
};

const reduce: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x) return one(elemType, undefined);
  const keep = node.attrInt('keepdims', 1) === 1;
  const given = node.input(1) || node.attribute('axes');
  let axes = given ? axesOf(node, ctx) : [];
  if (!axes) return one(elemType, undefined);
  if (axes.length === 0) {
    if (node.attrInt('noop_with_empty_axes', 0) === 1) return one(elemType, [...x]);
    axes = x.map((_, i) => i);
  }
  const norm = axes.map((a) => normAxis(a, x.length));
  const out = keep ? x.map((d, i) => (norm.includes(i) ? 1 : d)) : x.filter((_, i) => !norm.includes(i));
  return one(elemType, out);
};

const argReduce: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  if (!x) return one(DataType.INT64, undefined);
  const axis = normAxis(node.attrInt('axis', 0), x.length);
  const keep = node.attrInt('keepdims', 1) === 1;
  return one(DataType.INT64, keep ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis));
};

const resize: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x) return one(elemType, undefined);
  const upsample = node.opType === 'Upsample' || node.inputs.length === 2;
  const scalesName = upsample ? node.input(1) : node.input(2);
  const sizesName = upsample ? '' : node.input(3);
  const sizes = sizesName ? ctx.value(sizesName) : undefined;
  if (sizes && sizes.length > 0) {
    const axes = node.attrInts('axes');
    if (!axes) return one(elemType, sizes);
    const out = [...x];
    axes.forEach((a, i) => (out[normAxis(a, x.length)] = sizes[i]));
    return one(elemType, out);
  }
  const scales = scalesName ? ctx.value(scalesName) : node.attrFloats('scales');
  if (!scales || scales.length === 0) return one(elemType, sizesName ? x.map(() => ctx.symbol()) : undefined);
  const axes = node.attrInts('axes') ?? x.map((_, i) => i);
  const out = [...x];
  axes.forEach((a, i) => {
    const ax = normAxis(a, x.length);
    const d = x[ax];
    const s = scales[i];
    out[ax] = typeof d === 'number' && typeof s === 'number' ? Math.floor(d * s + 1e-9) : s === 1 ? d : ctx.symbol();
  });
  return one(elemType, out);
};

const pad: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  const pads = node.input(1) ? ctx.value(node.input(1)) : node.attrInts('pads');
  if (!x || !pads || pads.some((p) => typeof p !== 'number')) return one(elemType, undefined);
  const p = pads as number[];
  const axesV = node.input(3) ? ctx.value(node.input(3)) : undefined;
  const axes = axesV ? (axesV as number[]).map((a) => normAxis(a, x.length)) : x.map((_, i) => i);
  const out = [...x];
  axes.forEach((a, i) => {
    const d = x[a];
    out[a] = typeof d === 'number' ? d + p[i] + p[i + axes.length] : p[i] + p[i + axes.length] === 0 ? d : ctx.symbol();
  });
  return one(elemType, out);
};

const expand: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const target = ctx.value(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x || !target) return one(elemType, undefined);
  return one(elemType, broadcast([x, target], ctx));
};

const tile: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const repeats = ctx.value(node.input(1));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x || !repeats) return one(elemType, undefined);
  return one(
    elemType,
    x.map((d, i) => (typeof d === 'number' && typeof repeats[i] === 'number' ? d * (repeats[i] as number) : repeats[i] === 1 ? d : ctx.symbol())),
  );
};

const constantOfShape: Rule = (node, ctx) => {
  const shape = ctx.value(node.input(0));
  const t = node.attribute('value')?.t;
  return one(t ? t.data_type : DataType.FLOAT, shape ? [...shape] : undefined);
};

const cast: Rule = (node, ctx) => {
  const to = node.attrInt('to', 0);
  const v = ctx.value(node.input(0));
  return one(to, ctx.shape(node.input(0)), v && isIntType(to) ? v.map((d) => (typeof d === 'number' ? Math.trunc(d) : d)) : v);
};

const topk: Rule = (node, ctx) => {
  const x = ctx.shape(node.input(0));
  const elemType = ctx.type(node.input(0))?.elemType ?? 0;
  if (!x) return { types: [{ elemType, shape: undefined }, { elemType: DataType.INT64, shape: undefined }] };
  const axis = normAxis(node.attrInt('axis', -1), x.length);
  const k = node.input(1) ? ctx.value(node.input(1))?.[0] : node.attrInt('k');
  const shape = x.map((d, i) => (i === axis ? (k ?? ctx.symbol()) : d));
  return { types: [{ elemType, shape }, { elemType: DataType.INT64, shape }] };
};

const UNARY = [
  'Relu', 'Sigmoid', 'Tanh', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'Clip', 'Softmax',
  'LogSoftmax', 'Hardmax', 'Identity', 'Neg', 'Abs', 'Exp', 'Log', 'Sqrt', 'Reciprocal', 'Erf', 'Gelu', 'Softplus',
  'Softsign', 'Mish', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos', 'Tan', 'Asin', 'Acos', 'Atan', 'Sinh', 'Cosh',
  'ThresholdedRelu', 'Shrink', 'InstanceNormalization', 'LRN', 'CumSum', 'LpNormalization', 'MeanVarianceNormalization',
  'Not', 'BitwiseNot', 'DepthToSpace', 'SpaceToDepth',
];

const RULES: Record<string, Rule> = {
  ...Object.fromEntries(UNARY.map((op) => [op, sameAsInput])),
  Identity: (node, ctx) => ({ ...one(ctx.type(node.input(0))?.elemType ?? 0, ctx.shape(node.input(0)), ctx.value(node.input(0))) }),
  Dropout: (node, ctx) => ({
    types: [ctx.type(node.input(0)), { elemType: DataType.BOOL, shape: ctx.shape(node.input(0)) }],
  }),
  BatchNormalization: (node, ctx) => ({ types: [ctx.type(node.input(0))] }),
  LayerNormalization: (node, ctx) => ({ types: [ctx.type(node.input(0))] }),
  GroupNormalization: (node, ctx) => ({ types: [ctx.type(node.input(0))] }),
  IsNaN: sameShapeAs(() => DataType.BOOL),
  IsInf: sameShapeAs(() => DataType.BOOL),
  Cast: cast,
  CastLike: (node, ctx) => one(ctx.type(node.input(1))?.elemType ?? 0, ctx.shape(node.input(0)), ctx.value(node.input(0))),
  DequantizeLinear: (node, ctx) => one(ctx.type(node.input(1))?.elemType ?? DataType.FLOAT, ctx.shape(node.input(0))),
  QuantizeLinear: (node, ctx) =>
    one(node.input(2) ? (ctx.type(node.input(2))?.elemType ?? DataType.UINT8) : DataType.UINT8, ctx.shape(node.input(0))),
  ...Object.fromEntries(
    ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Mod', 'PRelu', 'BitShift', 'Where',
      'BitwiseAnd', 'BitwiseOr', 'BitwiseXor'].map((op) => [op, elementwise()]),
  ),
  ...Object.fromEntries(
    ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor'].map((op) => [
      op,
      elementwise(DataType.BOOL),
    ]),
  ),
  Conv: conv,
  ConvTranspose: convTranspose,
  MaxPool: pool,
  AveragePool: pool,
  LpPool: pool,
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  GlobalLpPool: globalPool,
  Gemm: gemm,
  MatMul: matmul,
  Flatten: flatten,
  Reshape: reshape,
  Transpose: transpose,
  Concat: concat,
  Split: split,
  Slice: slice,
  Squeeze: squeeze,
  Unsqueeze: unsqueeze,
  Shape: shapeOp,
  Size: () => one(DataType.INT64, []),
  Gather: gather,
  ...Object.fromEntries(
    ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
      'ReduceLogSumExp', 'ReduceSumSquare'].map((op) => [op, reduce]),
  ),
  ArgMax: argReduce,
  ArgMin: argReduce,
  Resize: resize,
  Upsample: resize,
  Pad: pad,
  Expand: expand,
  Tile: tile,
  ConstantOfShape: constantOfShape,
  TopK: topk,
};

/** Ops with a shape rule (default domain), for reports and tests. */
export const SHAPE_RULE_OPS: readonly string[] = Object.keys(RULES);
