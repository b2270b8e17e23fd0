/**
 * Hostile use of the API and the process: the native entry point's own checks, errors from workers,
 * options that try to smuggle keys, outputs that are the input under another name, a failure after the
 * save, and signals during a write or during the budget's onnxruntime runs. (test/fuzz.ts covers hostile models through the CLI.)
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { native } from '../lib/binding';
import { RedppError } from '../lib/errors';
import { hashWeights } from '../lib/hash';
import { hashWeightsReference } from '../lib/kernels/hash';
import { decodeModel } from '../lib/index';
import { GraphBuilder } from '../lib/model/builder';
import { encodeModel, saveModel } from '../lib/model/write';
import { prune } from '../lib/prune';
import { CLI } from './helpers/fuzz';
import { convNet } from './helpers/hostile-models';
import { OCR_MODELS, randomFloats, tempDir } from './helpers/onnx-builder';

const addon = native();

t.test('the native entry point refuses bad values itself, without crashing', { skip: addon ? false : 'no native addon' }, async (t) => {
  const w = randomFloats(24, 1);
  const call = (o: { groupSize?: number; beta?: number; center?: number; threads?: number; simd?: number; device?: number; values?: Float32Array; groups?: number }) =>
    addon!.hashWeights(
      w,
      o.groupSize ?? 8,
      o.beta ?? 0.05,
      o.center ?? 0,
      o.threads ?? 1,
      o.simd ?? 0,
      o.device ?? 0,
      o.values ?? new Float32Array(24),
      new Uint32Array(o.groups ?? 3),
      new Float64Array(o.groups ?? 3),
    );
  const cases: [string, Parameters<typeof call>[0]][] = [
    ['groupSize 0', { groupSize: 0 }],
    ['groupSize NaN', { groupSize: NaN }],
    ['groupSize that does not divide', { groupSize: 7 }],
    ['a short output', { values: new Float32Array(23) }],
    ['short per-group outputs', { groups: 2 }],
    ['beta NaN', { beta: NaN }],
    ['beta Infinity', { beta: Infinity }],
    ['center 7', { center: 7 }],
    ['threads 0', { threads: 0 }],
    ['threads 1e9', { threads: 1e9 }],
    ['an unknown instruction set', { simd: 9 }],
    ['an unknown device', { device: 5 }],
  ];
  for (const [what, o] of cases) t.throws(() => call(o), RangeError, what);
  t.equal(await call({}), -1, 'good values still hash');
});

t.test('a bandwidth past the float range: one interval, native and reference alike', async (t) => {
  const w = randomFloats(4 * 300, 2, 0.5);
  for (const beta of [1e30, 1e38, 1e308]) {
    const r = await hashWeights(w, 300, { beta });
    const ref = hashWeightsReference(w, 300, { beta, center: 'mean' });
    t.same(Buffer.from(r.values.buffer), Buffer.from(ref.values.buffer), `beta ${beta}: bit-identical to the reference`);
    t.ok([...r.distinct].every((d) => d <= 4), `beta ${beta}: a value or few per neuron (${[...r.distinct]})`);
  }
});

t.test('errors from the worker pool keep their code and name the layer', async (t) => {
  const model = convNet();
  for (const name of ['w1', 'w2']) {
    const tensor = model.model.graph.initializers.get(name)!;
    const data = tensor.toFloat32().slice();
    data[1] = NaN;
    data[2] = -Infinity;
    tensor.setData(data);
  }
  const bytes = model.bytes();
  for (const options of [{}, { beta: 0.05, minFanIn: 1 }]) {
    for (let run = 0; run < 3; run++) {
      const e = await prune(bytes, options).then(
        () => undefined,
        (err: unknown) => err,
      );
      t.ok(e instanceof RedppError, `${JSON.stringify(options)}: a RedppError`);
      t.equal((e as RedppError).code, 'NON_FINITE_WEIGHT');
      t.match((e as RedppError).message, /^layer 'conv[12]': /, 'the layer is named');
    }
  }
});

t.test('options: unknown keys are refused by name, __proto__ has no effect', async (t) => {
  const bytes = convNet().bytes();
  await t.rejects(prune(bytes, { minFanin: 3 } as never), { code: 'INVALID_OPTION', message: /options\.minFanin/ });
  const smuggled = JSON.parse('{"__proto__": {"beta": 5, "validate": true}, "beta": 0.05}');
  const { report } = await prune(bytes, smuggled);
  t.same(report.options.selection, { mode: 'hash', beta: 0.05 });
  t.equal(report.options.validate, false);
  t.equal(({} as Record<string, unknown>).beta, undefined, 'Object.prototype untouched');
});

t.test('an output that is the input under another name is refused; the input stays as it was', async (t) => {
  const dir = tempDir(t);
  const input = path.join(dir, 'model', 'in.onnx');
  fs.mkdirSync(path.dirname(input));
  fs.writeFileSync(input, convNet().bytes());
  const before = fs.readFileSync(input);
  fs.symlinkSync('model', path.join(dir, 'alias'));
  fs.linkSync(input, path.join(dir, 'hard.onnx'));
  fs.symlinkSync(input, path.join(dir, 'soft.onnx'));
  for (const output of ['alias/in.onnx', 'hard.onnx', 'soft.onnx', 'model/../model/in.onnx']) {
    await t.rejects(prune(input, { output: path.join(dir, output), beta: 0.05 }), { code: 'INVALID_ARGUMENT', message: /would overwrite the input/ }, output);
  }
  t.same(fs.readFileSync(input), before, 'the input is unchanged');
  // Nor may the output's external-data file be one of the input's files: a.onnx keeps its weights in
  // b.onnx.data, which an output b.onnx would write.
  const a = path.join(dir, 'model', 'a.onnx');
  await saveModel(convNet().build(), a, { externalData: 'always', externalDataThreshold: 0, externalDataFile: 'b.onnx.data' });
  const data = fs.readFileSync(path.join(dir, 'model', 'b.onnx.data'));
  await t.rejects(prune(a, { output: path.join(dir, 'model', 'b.onnx'), beta: 0.05 }), { code: 'INVALID_ARGUMENT', message: /b\.onnx\.data/ });
  t.same(fs.readFileSync(path.join(dir, 'model', 'b.onnx.data')), data, 'the external data is unchanged');
});

t.test('a failure after the save (validation) leaves no output behind', async (t) => {
  const dir = tempDir(t);
  const b = convNet();
  // An op onnxruntime does not know: redpp passes it through, and validation is where it fails.
  b.node('Frobnicate', ['y'], ['z'], {}, { name: 'custom', domain: 'com.example' });
  b.model.proto.graph!.output[0].name = 'z';
  b.model.proto.opset_import.push({ domain: 'com.example', version: 1 } as never);
  const output = path.join(dir, 'out.onnx');
  await t.rejects(prune(b.bytes(), { output, beta: 0.05, validate: true }), { code: 'INFERENCE_FAILED' });
  t.same(fs.readdirSync(dir), [], 'no output, no staging folder');
});

t.test('SIGINT or SIGTERM at any moment leaves a complete output or none, and no staging folder', async (t) => {
  const dir = tempDir(t);
  const delays = [150, 400, 700, 1000, 1400, 1900];
  for (const [i, delay] of delays.entries()) {
    const signal = i % 2 ? 'SIGTERM' : 'SIGINT';
    const output = path.join(dir, `out${i}.onnx`);
    const child = spawn(process.execPath, [CLI, 'prune', OCR_MODELS.rec.file, '-o', output, '--beta', '0.05'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const timer = setTimeout(() => child.kill(signal), delay);
    const [code, sig] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(timer);
    // A signal before redpp has set up its handlers (while Node loads it) ends the process the default
    // way, when nothing can have been written yet; after, redpp removes what it staged and exits. Once
    // the work is done, Node's teardown (its handlers gone, the pool's threads stopping) can also end
    // by the signal's default: then the output was renamed into place already and must be complete.
    const what = `${signal} after ${delay} ms (${sig ?? `exit ${code}`})`;
    if (sig === null) {
      t.ok(code === 0 || code === (signal === 'SIGINT' ? 130 : 143), `${what}: exit status`);
      if (code !== 0) t.match(stderr, /^redpp: INTERRUPTED: /m, `${what}: says so`);
    } else t.equal(sig, signal, what);
    const left = fs.readdirSync(dir).filter((f) => f.startsWith('.'));
    t.same(left, [], `${what}: no staging folder`);
    if (sig !== null && fs.existsSync(output)) t.ok(decodeModel(fs.readFileSync(output)).graph.nodes.length > 0, `${what}: the output, written before the signal, is complete`);
    else if (code !== 0) t.notOk(fs.existsSync(output), `${what}: no output`);
    else t.ok(decodeModel(fs.readFileSync(output)).graph.nodes.length > 0, `${what}: the output is complete`);
  }
});

t.test('SIGINT or SIGTERM while onnxruntime runs (the budget, validation): redpp exits as interrupted, not aborted', async (t) => {
  // Three 3x3 convs of 32 channels at 320x320 (2.8 GMACs a run): the budget spends its seconds in runs
  // on its probe worker, validation in runs on its worker. A worker stopped in the middle of one aborted
  // the whole process (onnxruntime-node's uncaught C++ exception: exit 134, 'terminate called ...').
  const b = new GraphBuilder(13, 3);
  let x = b.input('x', [1, 32, 320, 320]);
  for (let i = 0; i < 3; i++) x = b.op('Relu', [b.convHe(x, 32, 32, 3).y]);
  b.output(x, [1, 32, 320, 320]);
  const dir = tempDir(t);
  const input = path.join(dir, 'slow.onnx');
  fs.writeFileSync(input, encodeModel(b.model()));
  // Each mode's signals fall inside its onnxruntime work: the budget's 5-6 s, or validation's last 2 s
  // of a prune of 2.6 s (the 2-core machine, quiet).
  const modes: [string, string[], number[]][] = [
    ['the budget', [], [1500, 2500, 3500]],
    ['validation', ['--beta', '0.05', '--validate'], [1000, 1500, 2000]],
  ];
  for (const [mode, args, delays] of modes) {
    for (const [i, delay] of delays.entries()) {
      const signal = i % 2 ? 'SIGTERM' : 'SIGINT';
      const output = path.join(dir, `out${i}.onnx`);
      const child = spawn(process.execPath, [CLI, 'prune', input, '-o', output, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
      const timer = setTimeout(() => child.kill(signal), delay);
      const [code, sig] = await new Promise<[number | null, string | null]>((resolve) => child.on('close', (c, s) => resolve([c, s])));
      clearTimeout(timer);
      const what = `${mode}, ${signal} after ${delay} ms`;
      t.same([code, sig], [signal === 'SIGINT' ? 130 : 143, null], `${what}: the interrupted exit status (${stderr.trim().split('\n').pop()})`);
      t.match(stderr, /^redpp: INTERRUPTED: /m, `${what}: says so`);
      t.notMatch(stderr, /terminate called/, `${what}: no native abort`);
      t.notOk(fs.existsSync(output), `${what}: no output`);
      t.same(fs.readdirSync(dir).filter((f) => f.startsWith('.')), [], `${what}: no staging folder`);
    }
  }
});
