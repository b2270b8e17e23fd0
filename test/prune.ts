import { createHash } from 'node:crypto';
import { getEventListeners } from 'node:events';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import t from 'tap';

import { loadModel } from '../lib/load';
import { GraphBuilder } from '../lib/model/builder';
import { readModel } from '../lib/model/read';
import { encodeModel, saveModel } from '../lib/model/write';
import { PACK_MARK } from '../lib/passes';
import { toFloat16 } from '../bench/fp16';
import { WorkerPool } from '../lib/pool';
import { prune } from '../lib/prune';

const ASSETS = path.join(__dirname, '..', 'node_modules', '@gutenye', 'ocr-models', 'assets');
const CLS = path.join(ASSETS, 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
const REC = path.join(ASSETS, 'ch_PP-OCRv4_rec_infer.onnx');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

t.test('prune a real model from a path: report, output file, input untouched', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-prune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'cls.onnx');
  const before = sha(fs.readFileSync(CLS));
  const phases = new Set<string>();
  const { model, report } = await prune(CLS, {
    output: out,
    validate: true,
    beta: 0.05,
    minFanIn: 0,
    threads: 2,
    inputShapes: { x: [1, 3, 48, 192] },
    onProgress: (e) => phases.add(e.phase),
  });
  t.equal(sha(fs.readFileSync(CLS)), before, 'the input file is not modified');
  t.equal(fs.statSync(out).size, report.file.after, 'the report has the written size');
  t.equal(report.file.before, fs.statSync(CLS).size);
  t.same([...phases], ['load', 'fold', 'hash', 'merge', 'kernel-split', 'pack', 'save', 'validate']);
  t.ok(report.params.after <= report.params.before, 'params do not grow');
  t.ok(report.macs.before! > 0 && report.macs.after! <= report.macs.before!, 'MACs are known and do not grow');
  const hashed = report.layers.filter((l) => l.hash);
  t.ok(hashed.length > 40, `${hashed.length} layers hashed`);
  const hashPassStats = report.passes.find((p) => p.pass === 'hash')!.stats;
  t.equal(hashPassStats.weights, hashed.reduce((a, l) => a + l.neurons.before * l.fanIn, 0), 'the hash pass counts every weight it hashed');
  for (const l of hashed) {
    if (!(l.distinctPerNeuron.max <= l.fanIn && l.distinctPerNeuron.min >= 1)) t.fail(`${l.node}: distinct values out of range`);
    if (!(l.weightError!.relative >= 0 && l.weightError!.relative < 0.2)) t.fail(`${l.node}: relative error ${l.weightError!.relative}`);
  }
  t.equal(report.validation!.outputs.length, 1);
  const o = report.validation!.outputs[0];
  t.ok(o.cosine > 0.99, `cosine ${o.cosine}`);
  t.equal(o.argmaxAgreement, 1, 'the direction classifier keeps its argmax on the probe');
  t.ok(report.validation!.latency!.original.medianMs > 0);
  t.equal(model.graph.nodes.filter((n) => n.opType === 'BatchNormalization').length, 0, 'BatchNorm folded');
});

t.test('prune from a Buffer and from a Model; the Model given is left as it is', async (t) => {
  const bytes = fs.readFileSync(CLS);
  const fromBuffer = await prune(bytes, { minFanIn: 0 });
  t.equal(fromBuffer.report.input, null);
  t.equal(fromBuffer.report.file.before, bytes.byteLength);
  const model = await loadModel(CLS);
  const snapshot = sha(encodeModel(model));
  const fromModel = await prune(model, { minFanIn: 0 });
  t.equal(sha(encodeModel(model)), snapshot, 'the input Model is unchanged');
  t.same(
    fromModel.report.layers.map((l) => l.distinctPerNeuron),
    fromBuffer.report.layers.map((l) => l.distinctPerNeuron),
    'same result whatever the input form',
  );
  t.equal(sha(encodeModel(fromModel.model)), sha(encodeModel(fromBuffer.model)), 'deterministic');
  t.equal(fromModel.report.file.before, encodeModel(model).byteLength, "the Model's size is its encoding's");
  t.equal(fromModel.model.path, undefined, 'the pruned Model names no file (its copy was staged in the temporary directory)');
  // The Model's staged copy, and the pruned model staged where validation reads it, are removed.
  const validated = await prune(model, { minFanIn: 0, validate: true, transferSize: true });
  t.ok(validated.report.validation!.worst.cosine > 0.9, `validated: cosine ${validated.report.validation!.worst.cosine}`);
  t.ok(validated.report.transfer!.after > 0 && validated.report.file.after === fromModel.report.file.after, 'validated and sized from the staged files');
  const mine = (f: string) => f.includes(`.${process.pid}.`) && (f.includes('redpp-prune-input') || f.includes('redpp-pruned'));
  t.same(fs.readdirSync(os.tmpdir()).filter(mine), [], 'no staged copies left (staging folders name their process)');
});

t.test('external data: the file size counts the data files, and external tensors stay external', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-prune-ext-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const b = new GraphBuilder(13, 2);
  let x = b.input('x', [1, 256]);
  for (let i = 0; i < 3; i++) x = b.op('Relu', [b.op('Gemm', [x, b.weights('w', [256, 256], 0.05), b.weights('b', [256], 0.05)], { transB: 1 })]);
  b.output(x);
  const input = path.join(dir, 'in.onnx');
  const saved = await saveModel(b.build(), input, { externalData: 'always' });
  t.equal(saved.externalTensors, 6, 'every weight and bias in in.onnx.data');
  const out = path.join(dir, 'out.onnx');
  const { report } = await prune(input, { beta: 0.05, minFanIn: 0, output: out });
  t.equal(report.file.before, fs.statSync(input).size + fs.statSync(`${input}.data`).size, 'file.before: the .onnx and its data');
  t.equal(report.file.after, fs.statSync(out).size + fs.statSync(`${out}.data`).size, 'file.after: the same');
  t.ok(report.layers.every((l) => l.hash && l.packed?.form === 'palette'), 'every layer hashed and packed');
  t.ok(fs.statSync(out).size < 4096, `the .onnx stays small (${fs.statSync(out).size} bytes): the packed forms are external data`);
  const raw = await readModel(out);
  const words = [...raw.graph.initializers.values()].filter((w) => w.name.includes(PACK_MARK) && w.size >= 1024);
  t.ok(words.length >= 3 && words.every((w) => w.external), `the packed weights' bulk is external (${words.map((w) => w.name).join(', ')})`);
  // Read back, the weights are dense again, and saved again they are external as they were.
  const back = await loadModel(out);
  const again = await saveModel(back, path.join(dir, 'again.onnx'));
  t.equal(again.externalTensors, 6, 'read back and saved: every weight and bias external again');
  const plain = await prune(input, { beta: 0.05, minFanIn: 0, pack: false, output: path.join(dir, 'plain.onnx') });
  t.equal(plain.report.file.after, fs.statSync(path.join(dir, 'plain.onnx')).size + fs.statSync(path.join(dir, 'plain.onnx.data')).size);
  t.equal(sha(encodeModel(back)), sha(encodeModel(plain.model)), 'the packed file reads back as the unpacked result');
});

t.test('layer protection: minFanIn, skip and layerBeta', async (t) => {
  const all = await prune(CLS, { beta: 0.05, minFanIn: 0 });
  const names = all.report.layers.filter((l) => l.hash).map((l) => l.node);
  const protectedRun = await prune(CLS, { minFanIn: 100, skip: [names[names.length - 1], /Conv\.1$/], layerBeta: { [names[1]]: 0.5 } });
  for (const l of protectedRun.report.layers) {
    if (l.node === names[names.length - 1]) t.match(l.skipped, /options\.skip/);
    else if (/Conv\.1$/.test(l.node)) t.match(l.skipped, /options\.skip/);
    else if (l.node === names[1]) t.equal(l.codec?.beta, 0.5, 'layerBeta hashes even a small fan-in');
    else if (l.fanIn < 100) t.match(l.skipped ?? '', /minFanIn/, `${l.node} protected`);
  }
});

t.test('bad input and options are RedppErrors', async (t) => {
  await t.rejects(prune('/nonexistent/model.onnx'), { name: 'RedppError', code: 'IO_ERROR' });
  await t.rejects(prune(Buffer.from('not a model at all')), { name: 'RedppError', code: 'NOT_ONNX' });
  await t.rejects(prune(fs.readFileSync(CLS).subarray(0, 1000)), { name: 'RedppError', code: 'TRUNCATED_MODEL' });
  await t.rejects(prune(42 as unknown as string), { code: 'INVALID_ARGUMENT' });
  const bad: [object, RegExp][] = [
    [{ beta: -1 }, /options\.beta/],
    [{ epsilon: 1.5 }, /options\.epsilon/],
    [{ minFanIn: -3 }, /options\.minFanIn/],
    [{ skip: 'Conv' }, /options\.skip/],
    [{ layerBeta: { a: -1 } }, /options\.layerBeta/],
    [{ inputShapes: { x: [1, 0] } }, /options\.inputShapes\.x/],
    [{ validate: 'yes' }, /options\.validate/],
    [{ threads: 0 }, /options\.threads/],
    [{ center: 'median' }, /options\.center/],
    [{ output: '' }, /options\.output/],
    [{ onProgress: 3 }, /options\.onProgress/],
    [{ minFanin: 3 }, /Unknown option options\.minFanin/],
    [{ maxDeviation: -0.1 }, /options\.maxDeviation/],
    [{ maxDeviation: 'small' }, /options\.maxDeviation/],
    [{ maxDeviation: Number.NaN }, /options\.maxDeviation/],
    [{ targetSize: 0 }, /options\.targetSize/],
    [{ targetSize: 1.5 }, /options\.targetSize/],
    [{ maxDeviation: 0.1, targetSize: 0.5 }, /two budgets/],
    [{ beta: 0.05, maxDeviation: 0.1 }, /give one or the other/],
    [{ layerBeta: {}, targetSize: 0.5 }, /give one or the other/],
    [{ codecs: ['dense', 'int4'] }, /options\.codecs/],
    [{ codecs: [] }, /options\.codecs/],
    [{ codecs: 'hash' }, /options\.codecs/],
    [{ samples: '' }, /options\.samples/],
    [{ samples: 7 }, /options\.samples/],
    [{ samples: '/tmp', beta: 0.05 }, /options\.samples/],
    [{ pack: 'no' }, /options\.pack/],
  ];
  for (const [opts, message] of bad) await t.rejects(prune(CLS, opts), { code: 'INVALID_OPTION', message }, String(message));
});

t.test('the main thread stays responsive during a large prune', async (t) => {
  // Timer ticks and phase changes on one clock: the hashing (all the pool's work) must leave the event
  // loop free, so timers fire between the start of the hash phase and the start of the next one.
  const ticks: number[] = [];
  const phases = new Map<string, number>();
  const timer = setInterval(() => ticks.push(performance.now()), 2);
  const { report } = await prune(REC, {
    beta: 0.05,
    minFanIn: 0,
    threads: 2,
    onProgress: (e) => {
      if (!phases.has(e.phase)) phases.set(e.phase, performance.now());
    },
  });
  clearInterval(timer);
  t.ok(report.layers.filter((l) => l.hash).length > 30);
  const [from, to] = [phases.get('hash')!, phases.get('merge')!];
  const during = ticks.filter((x) => x > from && x < to).length;
  t.ok(during > 0, `${during} timer ticks during the ${(to - from).toFixed(0)} ms of hashing`);
});

t.test('a shared pool: two prunes on it at once give what each gives alone, and it stays open for the next', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-prune-'));
  const pool = new WorkerPool(2);
  t.teardown(async () => {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const alone = encodeModel((await prune(CLS, { beta: 0.05 })).model);
  const [a, b] = await Promise.all([prune(CLS, { beta: 0.05, pool }), prune(REC, { beta: 0.05, pool })]);
  t.equal(sha(encodeModel(a.model)), sha(alone), 'the same model as with a pool of its own');
  t.ok(b.report.params.after > 0);
  t.equal(a.report.options.threads, 2, "threads are the pool's");
  t.equal(pool.threads, 2, 'the pool is still open');
  t.equal(sha(encodeModel((await prune(CLS, { beta: 0.05, pool })).model)), sha(alone));
  await t.rejects(prune(CLS, { pool: {} as WorkerPool }), { code: 'INVALID_OPTION', message: /options\.pool/ });
});

t.test('an AbortSignal stops a prune: CANCELLED (TIMED_OUT for a timeout), nothing written', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-prune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'out.onnx');
  await t.rejects(prune(CLS, { beta: 0.05, output: out, signal: AbortSignal.abort() }), { name: 'RedppError', code: 'CANCELLED' });
  // Mid-way: aborted once the budget has begun. What was running finishes (a worker's task is not
  // interrupted), nothing more starts: no later step, and no more reports than the tasks in flight at
  // the abort (one per thread) and those done whose report was on its way (as many again).
  const controller = new AbortController();
  const after: string[] = [];
  let stoppedAt = 0;
  const running = prune(CLS, {
    output: out,
    signal: controller.signal,
    onProgress: (p) => {
      if (controller.signal.aborted) after.push(`${p.phase}${p.detail ? ` ${p.detail}` : ''}`);
      else if (p.phase === 'budget') {
        stoppedAt = performance.now();
        controller.abort();
      }
    },
  });
  await t.rejects(running, { code: 'CANCELLED' });
  t.ok(
    after.every((p) => p === 'budget analyse') && after.length <= 2 * os.availableParallelism(),
    `after the abort, only tasks started before it reported (${after.length}: ${[...new Set(after)].join(', ') || 'none'}; stopped ${(performance.now() - stoppedAt).toFixed(0)} ms after it)`,
  );
  // A signal that outlives its prunes (a server's) is left without their listeners.
  const lasting = new AbortController();
  for (let i = 0; i < 2; i++) await prune(CLS, { beta: 0.05, signal: lasting.signal });
  t.equal(getEventListeners(lasting.signal, 'abort').length, 0, 'no listeners left on a signal that outlives the prunes');
  const timeout = new AbortController();
  timeout.abort(new DOMException('too slow', 'TimeoutError'));
  await t.rejects(prune(CLS, { beta: 0.05, output: out, report: path.join(dir, 'out.html'), signal: timeout.signal }), { code: 'TIMED_OUT' });
  t.same(fs.readdirSync(dir), [], 'nothing written (model or report), nothing staged');
  await t.rejects(prune(CLS, { signal: 'stop' as unknown as AbortSignal }), { code: 'INVALID_OPTION', message: /options\.signal/ });
});

t.test('report: the page written with the model; refused where it would overwrite the output or the input', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-prune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const out = path.join(dir, 'cls.onnx');
  const html = path.join(dir, 'cls.html');
  const { report } = await prune(CLS, { beta: 0.05, output: out, report: html });
  const page = fs.readFileSync(html, 'utf8');
  t.match(page, /^<!doctype html>/);
  t.match(page, new RegExp(`data-file-after="${report.file.after}"`));
  t.equal((page.match(/<g class="layer"/g) ?? []).length, report.layers.length, 'a bar per layer');
  // A dense layer's bytes are its tensor's, by its element type (float16: 2 bytes a weight).
  const half = encodeModel(toFloat16(await loadModel(CLS)));
  const fp16 = await prune(half, { beta: 0.05, pack: false, report: path.join(dir, 'fp16.html') });
  const l = fp16.report.layers.find((r) => r.dtype === 'FLOAT16')!;
  t.match(fs.readFileSync(path.join(dir, 'fp16.html'), 'utf8'), new RegExp(`data-layer="${l.node.replace(/[.]/g, '\\.')}" data-before="${l.params.before * 2}"`), 'a float16 layer counts 2 bytes a weight');
  t.notMatch(page, /<script|https?:\/\//, 'no script, nothing to fetch');
  t.equal(report.options.threads > 0, true);
  t.notOk('report' in report.options, 'the page path is not an option of the result');
  await t.rejects(prune(CLS, { beta: 0.05, output: out, report: out }), { code: 'INVALID_OPTION', message: /same file/ });
  await t.rejects(prune(CLS, { beta: 0.05, report: CLS }), { code: 'INVALID_ARGUMENT' });
  await t.rejects(prune(CLS, { report: 42 as unknown as string }), { code: 'INVALID_OPTION', message: /options\.report/ });
});
