/**
 * The checks of the operators redpp rewrites against the ONNX spec. Conv and ConvTranspose: a weight
 * input, a weight of the input's rank, a group that divides the channels, channels that match the
 * input, positive strides and dilations, non-negative pads. Gemm and MatMul: inner dims that match.
 * Such a model is refused when it is read, naming the node, rather than rewritten into another wrong
 * model: onnxruntime refuses most of these only when the model runs. Shapes come from static
 * inference; what it cannot resolve is not checked.
 */
import { RedppError } from '../errors';
import { allSteps } from '../turns';
import type { Graph, Node } from './graph';
import { shapeSteps, type Dim } from './shapes';

const CHECKED: Record<string, (node: Node, a: Dim[] | undefined, b: Dim[] | undefined) => void> = {
  Conv: checkConv,
  ConvTranspose: checkConv,
  Gemm: checkGemm,
  MatMul: checkMatMul,
};

export function checkOps(graph: Graph): void {
  allSteps(checkOpsSteps(graph));
}

/**
 * checkOps() as steps (turns.ts), for a main-thread caller to give the event loop turns during the
 * shape inference. Not the shared one: a prune asks for shapes with its concrete input shapes, which
 * never meet this one's key, and keeping it would cost a snapshot of the constants for nothing.
 */
export function* checkOpsSteps(graph: Graph): Generator<void, void, void> {
  const nodes = graph.nodes.filter((n) => n.domain === '' && Object.hasOwn(CHECKED, n.opType));
  if (nodes.length === 0) return;
  const shapes = yield* shapeSteps(graph);
  for (const node of nodes) CHECKED[node.opType](node, shapes.types.get(node.input(0))?.shape, shapes.types.get(node.input(1))?.shape);
}

function failer(node: Node): (why: string) => never {
  return (why) => {
    throw new RedppError('INVALID_MODEL', `node '${node.name || node.opType}' (${node.opType}): ${why}`);
  };
}

/** Gemm: A [M, K] (or [K, M] with transA) times B [K, N] (or [N, K] with transB); both rank 2. */
function checkGemm(node: Node, a: Dim[] | undefined, b: Dim[] | undefined): void {
  const fail = failer(node);
  if (!node.input(0) || !node.input(1)) fail('needs two inputs');
  for (const [name, s] of [['A', a], ['B', b]] as const) if (s && s.length !== 2) fail(`${name} has rank ${s.length}, not 2`);
  if (!a || !b) return;
  const k = node.attrInt('transA', 0) ? a[0] : a[1];
  const kb = node.attrInt('transB', 0) ? b[1] : b[0];
  if (typeof k === 'number' && typeof kb === 'number' && k !== kb) fail(`A [${a}] and B [${b}] do not share K (transA ${node.attrInt('transA', 0)}, transB ${node.attrInt('transB', 0)})`);
}

/** MatMul with a matrix on the right (the layers redpp rewrites): the input's last dim is the matrix's first. */
function checkMatMul(node: Node, a: Dim[] | undefined, b: Dim[] | undefined): void {
  const fail = failer(node);
  if (!a || !b || b.length !== 2 || a.length < 1) return;
  const k = a[a.length - 1];
  if (typeof k === 'number' && typeof b[0] === 'number' && k !== b[0]) fail(`the input's last dim ${k} does not match the weight [${b}]`);
}

function checkConv(node: Node, x: Dim[] | undefined, w: Dim[] | undefined): void {
  const fail = failer(node);
  if (!node.input(0) || !node.input(1)) fail('needs an input and a weight');
  const group = node.attrInt('group', 1);
  if (!(Number.isSafeInteger(group) && group >= 1)) fail(`group is ${group}, not a positive integer`);
  for (const name of ['strides', 'dilations'] as const) {
    const v = node.attrInts(name);
    if (v && !v.every((s) => Number.isSafeInteger(s) && s >= 1)) fail(`${name} [${v}] must be positive`);
  }
  const pads = node.attrInts('pads');
  if (pads && !pads.every((p) => Number.isSafeInteger(p) && p >= 0)) fail(`pads [${pads}] must not be negative`);
  if (!w) return;
  if (w.length < 3) fail(`the weight has rank ${w.length}; a ${node.opType} weight has rank 3 or more`);
  if (x && x.length !== w.length) fail(`the input has rank ${x.length} but the weight rank ${w.length}`);
  const spatial = w.length - 2;
  for (const name of ['strides', 'dilations', 'kernel_shape'] as const) {
    const v = node.attrInts(name);
    if (v && v.length !== spatial) fail(`${name} has ${v.length} values for ${spatial} spatial axes`);
  }
  if (pads && pads.length !== 2 * spatial) fail(`pads has ${pads.length} values for ${spatial} spatial axes`);
  const kernel = node.attrInts('kernel_shape');
  if (kernel && kernel.some((k, i) => typeof w[2 + i] === 'number' && w[2 + i] !== k)) {
    fail(`kernel_shape [${kernel}] does not match the weight [${w}]`);
  }
  const [wOut, wIn] = w;
  const channels = x?.[1];
  if (node.opType === 'Conv') {
    // Weight [M, C/group, k...]: M outputs in `group` groups, C input channels.
    if (typeof wOut === 'number' && wOut % group !== 0) fail(`${wOut} output channels do not split into ${group} groups`);
    if (typeof channels === 'number' && typeof wIn === 'number' && wIn * group !== channels) {
      fail(`the weight takes ${wIn} × ${group} group(s) = ${wIn * group} input channels, the input has ${channels}`);
    }
  } else if (typeof wOut === 'number') {
    // ConvTranspose weight [C, M/group, k...].
    if (wOut % group !== 0) fail(`${wOut} input channels do not split into ${group} groups`);
    if (typeof channels === 'number' && wOut !== channels) fail(`the weight takes ${wOut} input channels, the input has ${channels}`);
  }
}
