import * as path from 'node:path';

import t from 'tap';

import { toRows, type NeuronGrid } from '../lib/layers';
import { DataType, fromNumbers, toFloat32 } from '../lib/model/dtype';
import { inputSplitCounts, inputSplitCountsOf } from '../lib/passes/input-splitting';
import { inProcess } from '../lib/passes/tasks';
import { WorkerPool } from '../lib/pool';
import { prune } from '../lib/prune';
import { toJsonReport } from '../lib/report';

const CLS = path.join(__dirname, '..', 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

t.test('counts of input splitting on hand-made rows', async (t) => {
  // Neuron 0: values {0, 1, 2}, one zero weight; neuron 1: a single value; neuron 2: -0 and 0 are one zero value.
  const rows = Float32Array.from([1, 1, 2, 0, 3, 3, 3, 3, -0, 0, 5, -5]);
  const c = inputSplitCountsOf(rows, 4);
  t.same(c, {
    mults: 2 + 1 + 2, // distinct non-zero values
    adds: 2 + 3 + 1, // non-zero weights - 1
    distinct: { min: 1, mean: 7 / 3, max: 3 },
  });
  t.same(inputSplitCounts(4, [3, 1, 3], [1, 0, 2]), c, 'the same from per-neuron counts');
  t.same(inputSplitCountsOf(new Float32Array(0), 7).mults, 0, 'no neurons');
  t.equal(inputSplitCountsOf(new Float32Array(8), 8).adds, 0, 'an all-zero neuron costs nothing');
});

t.test('counting tasks: any element type and layout, a chunk of rows at a time, in the pool as here', async (t) => {
  const pool = new WorkerPool(2);
  t.teardown(() => pool.close());
  // Values from a few levels, so neurons have repeats and zeros; 1.2 M weights: more than one chunk.
  const levels = [-0.75, -0.5, 0, 0.25, 0.5, 1.5];
  let seed = 7;
  const next = () => (seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32;
  const cases: { what: string; dims: number[]; grid: NeuronGrid }[] = [
    { what: 'row-major, 4001 x 301', dims: [4001, 301], grid: { dims: [4001, 301], neuronAxes: [0] } },
    { what: 'neurons on the last axis (Gemm without transB), 37 x 53', dims: [37, 53], grid: { dims: [37, 53], neuronAxes: [1] } },
  ];
  for (const { what, dims, grid } of cases) {
    const size = dims.reduce((a, b) => a * b, 1);
    const values = Float32Array.from({ length: size }, () => levels[Math.floor(next() * levels.length)] * (next() < 0.01 ? 3 : 1));
    for (const dataType of [DataType.FLOAT, DataType.FLOAT16, DataType.DOUBLE]) {
      const data = dataType === DataType.FLOAT ? values.slice() : fromNumbers(values, dataType);
      const before = data.slice();
      const expected = inputSplitCountsOf(toRows(grid, toFloat32(data, dataType)), size / dims[grid.neuronAxes[0]]);
      const task = { layer: 'w', data, dataType, grid };
      t.same(await inProcess.count(task), expected, `${what}, type ${dataType}: in process`);
      t.same(await pool.tasks().count(task), expected, `${what}, type ${dataType}: in the pool`);
      t.ok(Buffer.from(data.buffer, data.byteOffset, data.byteLength).equals(Buffer.from(before.buffer, before.byteOffset, before.byteLength)), 'the weights are read, not changed');
    }
  }
});

t.test('prune reports input-splitting ops per layer and in total', async (t) => {
  const { report } = await prune(CLS, { minFanIn: 0, inputShapes: { x: [1, 3, 48, 192] } });
  const ops = report.ops!;
  t.ok(ops.mults.after < ops.mults.before, `multiplications ${ops.mults.before} -> ${ops.mults.after}`);
  t.ok(ops.adds.after <= ops.adds.before);
  t.equal(ops.mults.before, report.macs.before, 'dense multiplications are the MACs');
  t.equal(ops.mults.after, report.layers.reduce((a, l) => a + l.ops!.mults.after, 0), 'the total is the sum of the layers');
  for (const l of report.layers) {
    if (!(l.distinctPerNeuron.max <= l.fanIn && l.distinctPerNeuron.min >= 1)) t.fail(`${l.node}: distinct values out of range`);
    // Dense, a layer costs its MACs in multiplications; a hashed one fewer.
    t.equal(l.ops!.mults.before, l.macs.before, `${l.node}: dense multiplications are its MACs`);
    if (!(l.ops!.mults.after <= l.ops!.mults.before)) t.fail(`${l.node}: input splitting never costs more multiplications`);
  }
  const json = toJsonReport(report);
  t.same(Object.keys(json.ops!).sort(), ['adds', 'mults']);
  t.same(json.layers[0].distinctPerNeuron, report.layers[0].distinctPerNeuron);
});
