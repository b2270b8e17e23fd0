import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import * as ort from 'onnxruntime-node';
import t from 'tap';

import { loadModel, validate } from '../lib/index';
import { GraphBuilder } from '../lib/model/builder';
import { encodeModel } from '../lib/model/write';
import { resolveValidateOptions } from '../lib/options/validate';
import { inferenceWorker } from '../lib/inference';
import { ModelBuilder, OCR_MODELS, randomFloats, tempDir } from './helpers/onnx-builder';

/** This process's staging folders of validate()'s copies of Models and Buffers (other test files stage theirs beside). */
function stagedCopies(): string[] {
  return fs.readdirSync(os.tmpdir()).filter((f) => f.includes('redpp-validate-') && f.includes(`.${process.pid}.`));
}

/** y = softmax(x W), with W scaled by `scale` and column 0 of W (class 0) nudged by `nudge`. */
function classifier(scale = 1, nudge = 0) {
  const w = randomFloats(8 * 4, 1).map((v) => v * scale);
  for (let i = 0; i < 8; i++) w[i * 4] += nudge;
  return new ModelBuilder()
    .input('x', ['N', 8])
    .initializer('w', [8, 4], w)
    .node('MatMul', ['x', 'w'], ['logits'])
    .node('Softmax', ['logits'], ['probs'], { axis: -1 })
    .node('ArgMax', ['logits'], ['label'], { axis: -1, keepdims: 0 })
    .output('logits', ['N', 4])
    .output('probs', ['N', 4])
    .output('label', ['N'], 7)
    .build();
}

t.test('identical models: zero error, cosine 1, full argmax agreement', async (t) => {
  const { file } = OCR_MODELS.cls;
  const report = await validate(file, await loadModel(file), { inputShapes: { x: [2, 3, 48, 192] }, runs: 2, warmup: 1 });
  t.equal(report.outputs.length, 1);
  const [o] = report.outputs;
  t.same(o.shape, [2, 2]);
  t.equal(o.maxAbsError, 0);
  t.equal(o.relL2Error, 0);
  t.equal(o.cosine, 1);
  t.equal(o.argmaxAgreement, 1);
  t.same(report.inputs, [{ name: 'x', shape: [2, 3, 48, 192], type: 'float32', source: 'probe' }]);
  t.ok(report.latency!.original.medianMs > 0 && report.latency!.changed.medianMs > 0);
  t.equal(report.latency!.original.runs, 2);
  t.ok(Number.isFinite(report.latency!.speedup));
  t.ok(report.sessionMs.original > 0 && report.sessionMs.changed > 0, `sessions created in ${report.sessionMs.original.toFixed(1)} and ${report.sessionMs.changed.toFixed(1)} ms`);
});

t.test('a perturbed model: the metrics measure the change', async (t) => {
  const report = await validate(classifier(), classifier(1.01), { inputShapes: { x: [64, 8] }, runs: 0, probes: 3 });
  t.equal(report.inputSets, 3);
  t.equal(report.latency, undefined, 'runs: 0 skips timing');
  t.ok(report.sessionMs.changed > 0, 'session creation is timed whatever runs is');
  const logits = report.outputs.find((o) => o.name === 'logits')!;
  t.ok(Math.abs(logits.relL2Error - 0.01) < 1e-5, `logits scaled by 1.01: relative L2 ${logits.relL2Error}`);
  t.ok(Math.abs(logits.cosine - 1) < 1e-6, 'a scaled vector keeps its direction');
  t.equal(logits.argmaxAgreement, 1, 'scaling keeps every argmax');
  t.equal(logits.elements, 3 * 64 * 4);
  const label = report.outputs.find((o) => o.name === 'label')!;
  t.equal(label.argmaxAgreement, null, 'integer outputs are not class-like');
  t.equal(label.maxAbsError, 0);

  const moved = await validate(classifier(), classifier(1, 0.8), { inputShapes: { x: [256, 8] }, runs: 0 });
  const probs = moved.outputs.find((o) => o.name === 'probs')!;
  t.ok(probs.argmaxAgreement! < 1 && probs.argmaxAgreement! > 0, `argmax agreement ${probs.argmaxAgreement}`);
  t.ok(moved.outputs.find((o) => o.name === 'label')!.maxAbsError >= 1);
  t.equal(moved.worst.argmaxAgreement, probs.argmaxAgreement);
});

t.test('user-supplied inputs: typed data or onnxruntime tensors, one set or several', async (t) => {
  const x = randomFloats(16, 3);
  const one = await validate(classifier(), classifier(), { inputs: { x: { data: x, dims: [2, 8] } }, runs: 0 });
  t.same(one.inputs, [{ name: 'x', shape: [2, 8], type: 'float32', source: 'given' }]);
  const many = await validate(classifier(), classifier(2), {
    inputs: [{ x: new ort.Tensor('float32', x, [2, 8]) }, { x: { data: Array.from(x), dims: [2, 8] } }],
    runs: 0,
  });
  t.equal(many.inputSets, 2);
  t.ok(Math.abs(many.outputs[0].relL2Error - 1) < 1e-5, 'doubling the weights: relative error 1');
  await t.rejects(validate(classifier(), classifier(), { inputs: {}, runs: 0 }), { code: 'INVALID_OPTION', message: /inputs\[0\]\.x/ });
  await t.rejects(validate(classifier(), classifier(), { inputs: { x: { data: x, dims: [3, 8] } }, runs: 0 }), {
    code: 'INVALID_OPTION',
  });
});

t.test('probes: shapes from the model (lib/input-shapes.ts), symbolic dims by name or default, seeded', async (t) => {
  const rec = OCR_MODELS.rec.file;
  const report = await validate(rec, rec, { dims: { 'p2o.DynamicDimension.1': 160 }, runs: 0 });
  t.same(report.inputs[0].shape, [1, 3, 48, 160], 'rec input: declared 3 and 48, named width from options.dims');
  t.same(report.outputs[0].shape, [1, 20, 6625]);

  const a = await validate(classifier(), classifier(1.5), { inputShapes: { x: [32, 8] }, runs: 0, seed: 7 });
  const b = await validate(classifier(), classifier(1.5), { inputShapes: { x: [32, 8] }, runs: 0, seed: 7 });
  const c = await validate(classifier(), classifier(1.5), { inputShapes: { x: [32, 8] }, runs: 0, seed: 8 });
  t.same(a.outputs, b.outputs, 'same seed, same report');
  t.not(a.outputs[1].maxAbsError, c.outputs[1].maxAbsError, 'another seed, other probes');
  const u = await validate(classifier(), classifier(), { inputShapes: { x: [4, 8] }, runs: 0, distribution: 'uniform' });
  t.equal(u.worst.maxAbsError, 0);
});

t.test('failures: bad options, models onnxruntime cannot run, missing outputs', async (t) => {
  await t.rejects(validate(classifier(), classifier(), { probes: 0 }), { code: 'INVALID_OPTION', message: /options.probes/ });
  await t.rejects(validate(classifier(), classifier(), { distribution: 'cauchy' as 'normal' }), { code: 'INVALID_OPTION' });
  await t.rejects(validate(classifier(), classifier(), { outputs: ['nope'] }), { code: 'INVALID_OPTION' });
  await t.rejects(validate(classifier(), 42 as unknown as string), { code: 'INVALID_ARGUMENT' });
  await t.rejects(validate(classifier(), Buffer.from('not a model')), { code: 'INFERENCE_FAILED' });
  await t.rejects(validate(classifier(), classifier(), { sessionOptions: { executionProviders: [() => 'cpu'] } as unknown as ort.InferenceSession.SessionOptions }), {
    code: 'INVALID_OPTION',
    message: /options.sessionOptions/,
  });
  const custom = new ModelBuilder({ opsets: { 'com.example': 1 } })
    .input('x', [1, 8])
    .node('Frobnicate', ['x'], ['logits'], {}, { domain: 'com.example' })
    .output('logits', [1, 8])
    .build();
  await t.rejects(validate(classifier(), custom), { code: 'INFERENCE_FAILED', message: /changed model/ });

  const fewer = classifier();
  fewer.proto.graph!.output.splice(1, 1); // drop 'probs'
  const r = await validate(classifier(), fewer, { inputShapes: { x: [2, 8] }, runs: 0 });
  const probs = r.outputs.find((o) => o.name === 'probs')!;
  t.match(probs.error, /missing from the changed model/);
  t.ok(Number.isNaN(probs.maxAbsError));
  t.equal(r.outputs.find((o) => o.name === 'logits')!.maxAbsError, 0);
  t.same(stagedCopies(), [], 'no staged copies left');
});

t.test('options.signal stops the validation between two runs, its worker ended', async (t) => {
  // A 3x3 conv of 64 channels at 160x160 timed 100000 times: minutes, unless stopped.
  const b = new GraphBuilder(13, 3);
  b.output(b.convHe(b.input('x', [1, 64, 160, 160]), 64, 64, 3).y, [1, 64, 160, 160]);
  const model = b.model();
  const controller = new AbortController();
  const t0 = performance.now();
  setTimeout(() => controller.abort(), 1000);
  await t.rejects(validate(model, model, { runs: 100_000, signal: controller.signal }), { code: 'CANCELLED' });
  const ms = performance.now() - t0;
  t.ok(ms < 20_000, `stopped ${(ms - 1000).toFixed(0)} ms after the abort`);
  await t.rejects(validate(model, model, { runs: 100_000, signal: AbortSignal.timeout(800) }), { code: 'TIMED_OUT' });
  const aborted = new AbortController();
  aborted.abort();
  await t.rejects(validate(model, model, { signal: aborted.signal }), { code: 'CANCELLED' }, 'an aborted signal: nothing runs');
  await t.rejects(validate(model, model, { signal: 'soon' as unknown as AbortSignal }), { code: 'INVALID_OPTION', message: /options.signal/ });
  t.same(stagedCopies(), [], 'the staged copies of the models are removed');
  const r = await validate(model, model, { runs: 1, warmup: 0 });
  t.equal(r.worst.maxAbsError, 0, 'a validation after them runs as usual');
});

t.test('the inference worker answers an op it does not have with an Error, and goes on answering', async (t) => {
  const worker = await inferenceWorker('a test');
  try {
    for (const op of ['nope', 'constructor', '__proto__', 'hasOwnProperty']) {
      await t.rejects(worker.request(op as never, {} as never), { name: 'Error', message: `this worker has no op '${op}'` }, `'${op}': a plain Error (a bug, not a typed failure)`);
    }
    const b = new GraphBuilder(13, 1);
    b.output(b.op('Relu', [b.input('x', [1, 4])]), [1, 4]);
    const file = path.join(tempDir(t), 'relu.onnx');
    fs.writeFileSync(file, encodeModel(b.model()));
    const r = await worker.request('validate', { original: file, changed: file, options: { ...resolveValidateOptions({ runs: 0 }), inputs: undefined } });
    t.equal(r.worst.maxAbsError, 0, 'then validates as usual');
  } finally {
    await worker.release();
  }
});
