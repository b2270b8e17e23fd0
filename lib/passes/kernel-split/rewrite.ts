/**
 * The kernel split's rewrite: a k×k conv becomes the plan's grouped conv(s) over the distinct kernels of
 * each input channel, and a 1×1 conv of 0/1 selectors that sums them into the outputs and carries the
 * bias (see index.ts).
 */
import { DataType } from '../../model/dtype';
import type { Graph, Node } from '../../model/graph';
import { addConstant, isConstantNodeValue, removeIfUnused } from '../constant-tensors';
import type { SplitPlan } from './cost-model';
import type { KernelSharing } from './sharing';

/** Replaces `node` by the plan's grouped conv(s) and 1×1 conv; returns the new nodes in order. */
export function rewrite(graph: Graph, node: Node, sh: KernelSharing, plan: SplitPlan): Node[] {
  const wName = node.input(1);
  const asNode = isConstantNodeValue(graph, wName);
  const bName = node.input(2);
  const x = node.input(0);
  const base = node.name || node.outputs[0];
  const carried: Record<string, number | number[] | string> = {};
  for (const a of ['strides', 'pads', 'dilations', 'kernel_shape'] as const) {
    const v = node.attrInts(a);
    if (v) carried[a] = v;
  }
  const autoPad = node.attrString('auto_pad');
  if (autoPad) carried.auto_pad = autoPad;
  const kh = graph.constant(wName)!.dims[2];
  const kw = graph.constant(wName)!.dims[3];
  const added: Node[] = [];
  const mids: string[] = [];
  const w2 = new Float32Array(sh.cout * plan.mid);
  let offset = 0;
  for (const [bi, b] of plan.buckets.entries()) {
    const n = b.channels.length;
    const w1 = new Float32Array(n * b.mult * sh.k);
    b.channels.forEach((c, i) => {
      w1.set(sh.kernels[c], i * b.mult * sh.k);
      for (let o = 0; o < sh.cout; o++) {
        const j = sh.index[o * sh.cin + c];
        if (j >= 0) w2[o * plan.mid + offset + i * b.mult + j] = 1;
      }
    });
    let input = x;
    const whole = n === sh.cin && b.channels.every((c, i) => c === i);
    if (!whole) {
      const idx = addConstant(graph, `${base}_split_channels${bi}`, DataType.INT64, [n], BigInt64Array.from(b.channels, BigInt), node, asNode);
      input = graph.uniqueName(`${base}_split_x${bi}`);
      added.push(graph.addNode({ opType: 'Gather', inputs: [x, idx], outputs: [input], name: graph.uniqueName(`${base}_split_gather${bi}`), attributes: { axis: 1 } }, { before: node }));
    }
    const w1Name = addConstant(graph, `${base}_split_w${bi}`, DataType.FLOAT, [n * b.mult, 1, kh, kw], w1, node, asNode);
    const out = graph.uniqueName(`${base}_split_y${bi}`);
    added.push(
      graph.addNode(
        { opType: 'Conv', inputs: [input, w1Name], outputs: [out], name: graph.uniqueName(`${base}_split_grouped${bi}`), attributes: { ...carried, group: n } },
        { before: node },
      ),
    );
    mids.push(out);
    offset += n * b.mult;
  }
  let mid = mids[0];
  if (mids.length > 1) {
    mid = graph.uniqueName(`${base}_split_cat`);
    added.push(graph.addNode({ opType: 'Concat', inputs: mids, outputs: [mid], name: graph.uniqueName(`${base}_split_concat`), attributes: { axis: 1 } }, { before: node }));
  }
  const w2Name = addConstant(graph, `${base}_split_sum`, DataType.FLOAT, [sh.cout, plan.mid, 1, 1], w2, node, asNode);
  added.push(
    graph.addNode(
      { opType: 'Conv', inputs: bName ? [mid, w2Name, bName] : [mid, w2Name], outputs: [...node.outputs], name: node.name || undefined, attributes: { kernel_shape: [1, 1] } },
      { before: node },
    ),
  );
  graph.removeNode(node);
  removeIfUnused(graph, [wName]);
  return added;
}
