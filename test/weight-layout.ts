import t from 'tap';

import { GraphBuilder } from '../lib/model/builder';
import { neuronLayout, type NeuronLayout } from '../lib/passes/weight-layout';

/** A layer of each kind with an arange weight, and the layout of its weight. */
function layout(op: string, dims: number[], attributes: Record<string, number | number[]> = {}): NeuronLayout {
  const b = new GraphBuilder(13, 1);
  const x = b.input('x', [1, 4]);
  const size = dims.reduce((a, d) => a * d, 1);
  b.output(b.op(op, [x, b.init('w', dims, Float32Array.from({ length: size }, (_, i) => i))], attributes));
  const model = b.build();
  const l = neuronLayout(model.graph, model.graph.nodes.find((n) => n.opType === op)!);
  if ('skip' in l) throw new Error(l.skip);
  return l;
}

/** Rows from the ONNX weight layouts written out by hand: element index of (neuron, place). */
function check(t: Tap.Test, l: NeuronLayout, neurons: number, fanIn: number, element: (n: number, c: number) => number, what: string): void {
  t.equal(l.neurons, neurons, `${what}: neurons`);
  t.equal(l.fanIn, fanIn, `${what}: fan-in`);
  const rows = l.toRows(l.tensor.toFloat32());
  const want = new Float32Array(neurons * fanIn);
  for (let n = 0; n < neurons; n++) for (let c = 0; c < fanIn; c++) want[n * fanIn + c] = element(n, c);
  t.same(rows, want, `${what}: rows`);
  t.same(l.fromRows(rows), l.tensor.toFloat32(), `${what}: fromRows inverts toRows`);
}

t.test('each weight layout as rows, against the ONNX layouts written out by hand', async (t) => {
  check(t, layout('Conv', [6, 2, 3, 3]), 6, 18, (n, c) => n * 18 + c, 'Conv [O, I, k, k]');
  check(t, layout('Gemm', [5, 4], { transB: 1 }), 5, 4, (n, c) => n * 4 + c, 'Gemm transB=1 [N, K]');
  check(t, layout('Gemm', [4, 5], { transB: 0 }), 5, 4, (n, c) => c * 5 + n, 'Gemm transB=0 [K, N]');
  check(t, layout('MatMul', [4, 7]), 7, 4, (n, c) => c * 7 + n, 'MatMul [K, N]');
  // ConvTranspose [C_in, C_out / group, k, k]: output channel g * C_out/group + o reads W[g * C_in/group + i, o].
  for (const group of [1, 2]) {
    const [cin, outPer, k] = [4, 3, 2 * 2];
    const inPer = cin / group;
    check(
      t,
      layout('ConvTranspose', [cin, outPer, 2, 2], { group }),
      group * outPer,
      inPer * k,
      (n, c) => ((Math.floor(n / outPer) * inPer + Math.floor(c / k)) * outPer + (n % outPer)) * k + (c % k),
      `ConvTranspose group ${group}`,
    );
  }
});
