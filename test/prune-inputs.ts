/**
 * prune() on the kinds of model a user brings: float16 weights, int8 (quantized) weights, dynamic
 * shapes, weights in Constant nodes. Each is handled or left alone and reported — never a crash.
 */
import t from 'tap';

import { DataType, GraphBuilder } from '../lib/index';
import { decodeModel } from '../lib/load';
import { fromNumbers } from '../lib/model/dtype';
import { encodeModel } from '../lib/model/write';
import { prune } from '../lib/prune';

t.test('float16 weights are hashed in float16; the model still runs', async (t) => {
  const b = new GraphBuilder(13, 4);
  const x = b.input('x', [1, 64, 8, 8], DataType.FLOAT16);
  const w = b.init('w', [32, 64, 3, 3], fromNumbers(b.rng.normals(32 * 64 * 9, 0.05), DataType.FLOAT16), { dataType: DataType.FLOAT16 });
  b.node('Conv', [x, w], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  b.output('y', [1, 32, 8, 8], DataType.FLOAT16);
  const { report } = await prune(encodeModel(b.build()), { beta: 0.05, validate: true });
  const conv = report.layers[0];
  t.ok(conv.hash, 'hashed');
  t.equal(conv.dtype, 'FLOAT16');
  t.ok(conv.distinctPerNeuron.max < 576, `${conv.distinctPerNeuron.max} distinct values of 576`);
  t.ok(report.validation!.outputs[0].cosine > 0.99, `cosine ${report.validation!.outputs[0].cosine}`);
  // The budget on float16 weights: float16 probes, codecs in float16, the file smaller.
  const budget = await prune(encodeModel(b.build()), { validate: true, maxDeviation: 0.02 });
  const coded = budget.report.layers[0];
  t.ok(coded.codec && coded.codec.codec !== 'float16', `coded as ${coded.codec?.codec} ${coded.codec?.bits ?? ''}`);
  t.ok(budget.report.file.after < budget.report.file.before, `${budget.report.file.before} -> ${budget.report.file.after} bytes`);
  t.ok(budget.report.budget!.measured <= 0.02, `deviation ${budget.report.budget!.measured}`);
  t.ok(budget.report.validation!.outputs[0].cosine > 0.999, `cosine ${budget.report.validation!.outputs[0].cosine}`);
});

t.test('int8 weights behind DequantizeLinear are reported and left alone', async (t) => {
  const b = new GraphBuilder(13, 5);
  const x = b.input('x', [1, 64, 8, 8]);
  const q = b.init('wq', [32, 64, 1, 1], Int8Array.from(b.rng.normals(32 * 64, 30).map((v) => Math.max(-127, Math.min(127, Math.round(v))))), {
    dataType: DataType.INT8,
  });
  const scale = b.init('scale', [], [0.01]);
  const zero = b.init('zero', [], Int8Array.of(0), { dataType: DataType.INT8 });
  const w = b.op('DequantizeLinear', [q, scale, zero]);
  b.node('Conv', [x, w], ['y'], { kernel_shape: [1, 1] });
  b.output('y', [1, 32, 8, 8]);
  for (const options of [{}, { beta: 0.05 }]) {
    const { report } = await prune(encodeModel(b.build()), options);
    t.equal(report.layers.length, 0, 'no float layer to prune');
    const select = report.passes.find((p) => p.pass === 'hash' || p.pass === 'budget')!;
    t.match(select.skipped, [{ reason: /int8|quantized/i }]);
  }
  const { report } = await prune(encodeModel(b.build()), { validate: true });
  t.equal(report.validation!.outputs[0].maxAbsError, 0, 'the function is unchanged');
});

t.test('dynamic shapes: MACs at the given or default shapes, unknown only when unresolvable', async (t) => {
  const b = new GraphBuilder(13, 6);
  const x = b.input('x', ['N', 16, 'H', 'W']);
  const { y } = b.convHe(x, 16, 256, 3);
  b.node('Relu', [y], ['out']);
  b.output('out');
  const bytes = encodeModel(b.build());
  const defaults = await prune(bytes);
  t.same(defaults.report.inputShapes, { x: [1, 16, 224, 224] }, 'symbolic dims default to batch 1 and 224');
  t.equal(defaults.report.macs.before, 224 * 224 * 256 * 16 * 9);
  const given = await prune(bytes, { inputShapes: { x: [2, 16, 10, 12] } });
  t.equal(given.report.macs.before, 2 * 10 * 12 * 256 * 16 * 9);
  await t.rejects(prune(bytes, { inputShapes: { x: [1, 3, 10, 12] } }), { code: 'INVALID_OPTION', message: /the model declares/ });
});

t.test('weights in Constant nodes stay Constant nodes', async (t) => {
  const b = new GraphBuilder(13, 7);
  const x = b.input('x', [1, 64, 4, 4]);
  const w = b.weights('w', [128, 64, 3, 3], 0.05, true);
  b.node('Conv', [x, w], ['y'], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  b.output('y', [1, 128, 4, 4]);
  const input = encodeModel(b.build());
  const plain = await prune(input, { beta: 0.05, pack: false, validate: true });
  t.ok(plain.report.layers[0].hash, 'hashed');
  t.equal(plain.model.graph.nodes.filter((n) => n.opType === 'Constant').length, 1);
  t.equal(plain.model.graph.initializers.size, 0);
  t.ok(plain.report.validation!.outputs[0].cosine > 0.999);
  // Packed (the budget's default), the form's constants are Constant nodes too, and it reads back as one.
  const { model, report } = await prune(input, { validate: true });
  t.ok(report.layers[0].packed, `packed (${report.layers[0].codec && JSON.stringify(report.layers[0].codec)})`);
  t.ok(model.graph.nodes.filter((n) => n.opType === 'Constant').length > 1, 'the form: several Constant nodes');
  t.equal(model.graph.initializers.size, 0, 'and no initializer');
  const back = decodeModel(encodeModel(model));
  t.equal(back.graph.nodes.filter((n) => n.opType === 'Constant').length, 1, 'read back: one Constant node again');
  t.equal(back.graph.initializers.size, 0);
});
