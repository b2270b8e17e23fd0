import * as ort from 'onnxruntime-node';
import t from 'tap';

import { FOLD_PASSES, foldBatchNorm, foldWeightTransforms, loadModel, runPasses, validate, type Model } from '../lib/index';
import { ModelBuilder, OCR_MODELS, randomFloats, runModel, textImage, valueInfo } from './helpers/onnx-builder';

const RTOL = 1e-4;

/** ||a - b|| / ||a|| over every output. */
async function drift(original: Model, changed: Model, feeds: Record<string, ort.Tensor>): Promise<number> {
  const a = await runModel(original, feeds);
  const b = await runModel(changed, feeds);
  let worst = 0;
  for (const k of Object.keys(a)) {
    const x = a[k].data as Float32Array;
    const y = b[k].data as Float32Array;
    let d = 0;
    let n = 0;
    for (let i = 0; i < x.length; i++) {
      d += (x[i] - y[i]) ** 2;
      n += x[i] ** 2;
    }
    worst = Math.max(worst, Math.sqrt(d / n));
  }
  return worst;
}

function bn(b: ModelBuilder, prefix: string, channels: number, seed: number, asConstants = false) {
  const add = (name: string, data: Float32Array) =>
    asConstants ? b.constant(`${prefix}_${name}`, [channels], data) : b.initializer(`${prefix}_${name}`, [channels], data);
  add('scale', randomFloats(channels, seed, 0.5, 1));
  add('bias', randomFloats(channels, seed + 1, 0.3));
  add('mean', randomFloats(channels, seed + 2, 0.2));
  add('var', randomFloats(channels, seed + 3, 0.4, 0.6));
  return ['scale', 'bias', 'mean', 'var'].map((n) => `${prefix}_${n}`);
}

const image = (shape: number[], seed = 11) => ({ x: new ort.Tensor('float32', randomFloats(shape.reduce((a, b) => a * b), seed), shape) });

t.test('Conv + BN + Relu folds exactly (Constant-node weights, no bias; grouped conv with bias)', async (t) => {
  const b = new ModelBuilder().input('x', ['N', 4, 10, 10]);
  b.constant('w1', [8, 4, 3, 3], randomFloats(8 * 4 * 9, 1, 0.3));
  b.node('Conv', ['x', 'w1'], ['c1'], { pads: [1, 1, 1, 1] }, { name: 'conv1' });
  b.node('BatchNormalization', ['c1', ...bn(b, 'bn1', 8, 10, true)], ['b1'], { epsilon: 1e-3 }, { name: 'bn1', floats: ['epsilon'] });
  b.node('Relu', ['b1'], ['r1']);
  b.initializer('w2', [8, 4, 1, 1], randomFloats(8 * 4, 2, 0.5));
  b.initializer('cb2', [8], randomFloats(8, 3, 0.1));
  b.node('Conv', ['r1', 'w2', 'cb2'], ['c2'], { group: 2, strides: [2, 2] }, { name: 'conv2' });
  b.node('BatchNormalization', ['c2', ...bn(b, 'bn2', 8, 20)], ['y'], {}, { name: 'bn2' });
  b.output('y', ['N', 8, 5, 5]);
  b.model.proto.graph!.value_info.push(valueInfo('c1', 1, ['N', 8, 10, 10]), valueInfo('b1', 1, ['N', 8, 10, 10]));
  const original = b.build();
  const model = b.build();
  const report = (await runPasses(model, [foldBatchNorm]))[0];
  t.equal(report.stats.batchNormsFolded, 2);
  t.same(model.proto.graph!.value_info.map((v) => v.name), ['b1'], 'value_info of the removed value is dropped');
  t.same(report.skipped, []);
  t.notOk(model.graph.nodes.some((n) => n.opType === 'BatchNormalization'));
  t.notOk(model.graph.nodes.some((n) => n.outputs.some((o) => o.startsWith('bn1_'))), 'BN constants removed');
  t.equal(model.graph.initializers.has('bn2_scale'), false, 'BN initializers removed');
  const conv1 = model.graph.nodes.find((n) => n.name === 'conv1')!;
  t.equal(conv1.outputs[0], 'c1'.replace('c1', 'b1'), 'the conv now produces the BN output name');
  t.equal(model.graph.producer(conv1.input(2))!.opType, 'Constant', 'a new bias follows the Constant-node style');
  t.equal(model.graph.producer(conv1.input(2))!.outputs[0], conv1.input(2));
  const d = await drift(original, model, image([2, 4, 10, 10]));
  t.ok(d < RTOL, `relative error ${d}`);
});

t.test('ConvTranspose + BN folds per output channel (group 1 and 2)', async (t) => {
  for (const group of [1, 2]) {
    const b = new ModelBuilder().input('x', [1, 4, 6, 6]);
    b.initializer('w', [4, 6 / group, 2, 2], randomFloats((4 * 6 * 4) / group, 5, 0.4));
    b.node('ConvTranspose', ['x', 'w'], ['c'], { strides: [2, 2], group });
    b.node('BatchNormalization', ['c', ...bn(b, 'bn', 6, 30)], ['y']);
    b.output('y', [1, 6, 12, 12]);
    const model = b.build();
    const report = (await runPasses(model, [foldBatchNorm]))[0];
    t.equal(report.stats.batchNormsFolded, 1, `group ${group}`);
    const d = await drift(b.build(), model, image([1, 4, 6, 6]));
    t.ok(d < RTOL, `group ${group}: relative error ${d}`);
  }
});

t.test('Gemm + BN folds with transB, C and beta', async (t) => {
  const variants = [
    { transB: 1, c: [16], beta: 1 },
    { transB: 0, c: undefined, beta: 1 },
    { transB: 0, c: [1, 16], beta: 0.5 },
  ];
  for (const v of variants) {
    const b = new ModelBuilder().input('x', [3, 10]);
    b.initializer('w', v.transB ? [16, 10] : [10, 16], randomFloats(160, 7, 0.3));
    const inputs = ['x', 'w'];
    if (v.c) {
      b.initializer('c', v.c, randomFloats(16, 8, 0.2));
      inputs.push('c');
    }
    b.node('Gemm', inputs, ['g'], { transB: v.transB, beta: v.beta }, { floats: ['beta'] });
    b.node('BatchNormalization', ['g', ...bn(b, 'bn', 16, 40)], ['y']);
    b.output('y', [3, 16]);
    const model = b.build();
    const report = (await runPasses(model, [foldBatchNorm]))[0];
    t.equal(report.stats.batchNormsFolded, 1, JSON.stringify(v));
    const d = await drift(b.build(), model, image([3, 10]));
    t.ok(d < RTOL, `${JSON.stringify(v)}: relative error ${d}`);
  }
});

t.test('per-channel Mul/Add/Sub/Div by constants fold; other shapes do not', async (t) => {
  const b = new ModelBuilder().input('x', [1, 3, 8, 8]);
  b.initializer('w', [6, 3, 3, 3], randomFloats(6 * 27, 9, 0.3));
  b.node('Conv', ['x', 'w'], ['c']);
  b.initializer('s', [1, 6, 1, 1], randomFloats(6, 10, 0.5, 1));
  b.node('Mul', ['s', 'c'], ['m']);
  b.initializer('a', [6, 1, 1], randomFloats(6, 11));
  b.node('Add', ['m', 'a'], ['p']);
  b.initializer('k', [], new Float32Array([2]));
  b.node('Div', ['p', 'k'], ['q']);
  b.node('BatchNormalization', ['q', ...bn(b, 'bn', 6, 50)], ['r']);
  b.initializer('row', [6], randomFloats(6, 12)); // broadcasts along the width axis: not per-channel
  b.node('Add', ['r', 'row'], ['y']);
  b.output('y', [1, 6, 6, 6]);
  const model = b.build();
  const report = (await runPasses(model, [foldBatchNorm]))[0];
  t.same(report.stats, { batchNormsFolded: 1, scalesFolded: 3, constantsRemoved: 7 });
  t.same(model.graph.nodes.map((n) => n.opType), ['Conv', 'Add']);
  const d = await drift(b.build(), model, image([1, 3, 8, 8]));
  t.ok(d < RTOL, `relative error ${d}`);
});

t.test('not folded: a conv output with another reader, training mode, non-constant parameters', async (t) => {
  const b = new ModelBuilder().input('x', [1, 2, 4, 4]).input('live_scale', [4]);
  b.initializer('w', [4, 2, 1, 1], randomFloats(8, 13));
  b.node('Conv', ['x', 'w'], ['c']);
  b.node('BatchNormalization', ['c', ...bn(b, 'bn', 4, 60)], ['b'], {}, { name: 'shared-input' });
  b.node('Relu', ['c'], ['r']);
  b.initializer('w2', [4, 2, 1, 1], randomFloats(8, 14));
  b.node('Conv', ['x', 'w2'], ['c2']);
  const [, bias, mean, variance] = bn(b, 'bn2', 4, 70);
  b.node('BatchNormalization', ['c2', 'live_scale', bias, mean, variance], ['b2'], {}, { name: 'dynamic' });
  b.node('Sum', ['b', 'r', 'b2'], ['y']);
  b.output('y', [1, 4, 4, 4]);
  const model = b.build();
  const report = (await runPasses(model, [foldBatchNorm]))[0];
  t.equal(report.changed, false);
  t.same(
    report.skipped.map((s) => s.node).sort(),
    ['dynamic', 'shared-input'],
  );
  t.match(report.skipped.find((s) => s.node === 'shared-input')!.reason, /other readers/);
  t.match(report.skipped.find((s) => s.node === 'dynamic')!.reason, /not a float constant/);
});

t.test('weights shared by two convs are copied before folding', async (t) => {
  const b = new ModelBuilder().input('x', [1, 3, 5, 5]);
  b.initializer('w', [4, 3, 3, 3], randomFloats(4 * 27, 15, 0.3));
  b.node('Conv', ['x', 'w'], ['c1']);
  b.node('BatchNormalization', ['c1', ...bn(b, 'bnA', 4, 80)], ['y1']);
  b.node('Conv', ['x', 'w'], ['c2']);
  b.node('BatchNormalization', ['c2', ...bn(b, 'bnB', 4, 90)], ['y2']);
  b.output('y1', [1, 4, 3, 3]).output('y2', [1, 4, 3, 3]);
  const model = b.build();
  const report = (await runPasses(model, [foldBatchNorm]))[0];
  t.equal(report.stats.batchNormsFolded, 2);
  const weights = model.graph.nodes.filter((n) => n.opType === 'Conv').map((n) => n.input(1));
  t.equal(new Set(weights).size, 2, 'each conv has its own weights');
  t.ok(weights.includes('w'), 'the last reader keeps the original name, rewritten in place');
  const d = await drift(b.build(), model, image([1, 3, 5, 5]));
  t.ok(d < RTOL, `relative error ${d}`);
});

t.test('foldWeightTransforms: Transpose/Reshape of constants feeding Gemm and MatMul', async (t) => {
  const b = new ModelBuilder().input('x', [2, 6]);
  b.constant('wt', [5, 6], randomFloats(30, 16));
  b.node('Transpose', ['wt'], ['w'], { perm: [1, 0] }, { name: 'transpose' });
  b.node('Gemm', ['x', 'w'], ['g']);
  b.initializer('flat', [20], randomFloats(20, 17));
  b.initializer('shape', [2], BigInt64Array.from([5n, -1n]), 7);
  b.node('Reshape', ['flat', 'shape'], ['w2'], {}, { name: 'reshape' });
  b.node('MatMul', ['g', 'w2'], ['y']);
  b.output('y', [2, 4]);
  const model = b.build();
  const reports = await runPasses(model, FOLD_PASSES);
  t.equal(reports[0].pass, foldWeightTransforms.name);
  t.equal(reports[0].stats.transformsFolded, 2);
  t.same(model.graph.nodes.map((n) => n.opType).sort(), ['Constant', 'Gemm', 'MatMul']);
  t.same(model.graph.constant('w')!.dims, [6, 5]);
  t.same(model.graph.constant('w2')!.dims, [5, 4]);
  t.equal(model.graph.producer('w')!.opType, 'Constant', 'folded from a Constant: stays a Constant');
  t.ok(model.graph.initializers.has('w2'), 'folded from an initializer: an initializer');
  const d = await drift(b.build(), model, image([2, 6]));
  t.ok(d < 1e-6, `relative error ${d}`);
});

t.test('PP-OCRv4 models: every BatchNormalization folds and outputs stay within 1e-4', async (t) => {
  const expected = { det: 3, rec: 6, cls: 35 };
  for (const [name, { file, shape }] of Object.entries(OCR_MODELS)) {
    const model = await loadModel(file);
    const bns = model.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length;
    t.equal(bns, expected[name as keyof typeof expected], `${name} has ${bns} BatchNormalization nodes`);
    const [transforms, fold] = await runPasses(model, FOLD_PASSES);
    t.equal(transforms.changed, false, `${name}: no weight transforms to fold`);
    t.equal(fold.stats.batchNormsFolded, bns, `${name}: all folded (${fold.stats.scalesFolded} per-channel scales too)`);
    t.notOk(model.graph.nodes.some((n) => n.opType === 'BatchNormalization'));
    const report = await validate(file, model, { inputs: { x: textImage(shape) }, runs: 0 });
    for (const o of report.outputs) {
      t.ok(o.relL2Error < RTOL, `${name} ${o.name}: relative L2 ${o.relL2Error.toExponential(2)}, max abs ${o.maxAbsError.toExponential(2)}`);
      t.ok(o.cosine > 1 - 1e-6);
    }
  }
});
