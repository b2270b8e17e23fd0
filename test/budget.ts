/**
 * The fidelity budget's parts (lib/passes/budget): the allocation path against brute force, the
 * checkpoints, the interpolation of sensitivities, the deviation the probe model measures, the
 * user's samples; and the budget end to end through prune(): within D as measured, smaller files for
 * looser budgets, the target size kept.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';

import t from 'tap';

import { layerTable } from '../lib/layers';
import { decodeModel } from '../lib/load';
import { GraphBuilder } from '../lib/model/builder';
import { encodeModel } from '../lib/model/write';
import { checkpointSteps, interpolate } from '../lib/passes/budget';
import { allocationPath, type Option } from '../lib/passes/budget/path';
import { ProbeModel, deviationBetween } from '../lib/passes/budget/probe-model';
import { PROBE_KINDS, probeInTurns } from '../lib/passes/budget/probes';
import { readSamples, syntheticProbes } from '../lib/passes/budget/samples';
import { prune } from '../lib/prune';
import { Rng } from '../lib/rng';
import { nextTurn } from '../lib/turns';

t.test('the allocation path visits every Lagrangian optimum (brute force on small instances)', async (t) => {
  const rng = new Rng(5);
  for (let trial = 0; trial < 40; trial++) {
    const layers = 2 + rng.int(3);
    const options: Option[][] = Array.from({ length: layers }, () => {
      const dense = 1000 + rng.int(9000);
      const rest = Array.from({ length: 1 + rng.int(4) }, () => ({ bytes: Math.round(dense * rng.next()), deviation: rng.next() * 0.01 }));
      return [{ bytes: dense, deviation: 0 }, ...rest];
    });
    const path = allocationPath(options);
    const points = [{ bytes: options.reduce((a, o) => a + o[0].bytes, 0), squares: 0 }, ...path.map((s) => ({ bytes: s.bytes, squares: s.deviation ** 2 }))];
    for (let i = 1; i < points.length; i++) {
      if (!(points[i].bytes <= points[i - 1].bytes && points[i].squares >= points[i - 1].squares - 1e-15)) t.fail(`trial ${trial}: step ${i} is not a trade`);
    }
    // Every assignment, by brute force.
    const all: { bytes: number; squares: number }[] = [];
    const walk = (l: number, bytes: number, squares: number) => {
      if (l === layers) return void all.push({ bytes, squares });
      for (const o of options[l]) walk(l + 1, bytes + o.bytes, squares + o.deviation ** 2);
    };
    walk(0, 0, 0);
    for (const lambda of [1e3, 1e5, 1e6, 1e7, 1e8, 1e9, 1e11]) {
      const best = Math.min(...all.map((p) => p.bytes + lambda * p.squares));
      const onPath = Math.min(...points.map((p) => p.bytes + lambda * p.squares));
      if (Math.abs(onPath - best) > 1e-6 * Math.max(1, best)) t.fail(`trial ${trial}, lambda ${lambda}: path ${onPath} > best ${best}`);
    }
  }
  t.pass('40 random instances: the path holds every optimum of bytes + lambda * deviation^2');
});

t.test('checkpoints: where the predicted deviation passes 1e-4 * 1.25^k, and the end', async (t) => {
  const path = [0, 5e-5, 1.1e-4, 1.2e-4, 2e-4, 2.1e-4, 1e-3].map((deviation, i) => ({ layer: 0, option: i, bytes: 100 - i, deviation }));
  t.same(checkpointSteps(path), [2, 4, 6]);
  t.same(checkpointSteps(path.slice(0, 2)), [1], 'a path that never reaches 1e-4 is measured at its end');
  t.same(checkpointSteps([]), []);
});

t.test('sensitivity: log-log between measured points, proportional beyond them', async (t) => {
  const points = [
    { error: 0.01, deviation: 0.001 },
    { error: 0.1, deviation: 0.1 },
  ];
  t.equal(interpolate(points, 0.01), 0.001);
  t.equal(interpolate(points, 0.005), 0.0005, 'below the finest: proportional');
  t.ok(Math.abs(interpolate(points, 0.2) - 0.2) < 1e-12, 'above the coarsest: proportional');
  t.ok(Math.abs(interpolate(points, Math.sqrt(0.001)) - 0.01) < 1e-12, 'between: a power law through both');
  t.equal(interpolate(points, 0), 0);
  // A third point (a measurement that corrected the prediction) bends the curve there.
  const three = [...points.slice(0, 1), { error: 0.02, deviation: 0.05 }, points[1]];
  t.ok(Math.abs(interpolate(three, 0.02) - 0.05) < 1e-12);
  t.ok(interpolate(three, 0.015) > interpolate(points, 0.015), 'between the first two points, the new one counts');
  t.equal(interpolate([{ error: 0.01, deviation: 0 }], 0.02), 0, 'a layer that changes nothing stays at zero');
});

/** x [1, 16] -> Gemm (W [10, 16]) -> Softmax -> y. */
function softmaxNet(): ReturnType<GraphBuilder['build']> {
  const b = new GraphBuilder(13, 3);
  const x = b.input('x', [1, 16]);
  const logits = b.op('Gemm', [x, b.weights('w', [10, 16], 0.5)], { transB: 1 });
  b.node('Softmax', [logits], ['y'], { axis: 1 });
  b.output('y', [1, 10]);
  return b.build();
}

t.test('the probe model: weights as inputs, relative L2 at the logits', async (t) => {
  const model = softmaxNet();
  const rng = new Rng(2);
  const probes = Array.from({ length: 3 }, () => ({ x: { type: 'float32' as const, data: rng.normals(16, 1), dims: [1, 16] } }));
  const layers = layerTable(model.graph);
  const w = model.graph.constant(layers[0].weightValue)!;
  const scaled = Float32Array.from(w.data as Float32Array, (v) => v * 1.01);
  const atLogits = await ProbeModel.create(model, layers, probes, { at: 'logits' });
  const atOutputs = await ProbeModel.create(model, layers, probes, { at: 'outputs' });
  try {
    t.same(atLogits.inputs, [layers[0].weightValue]);
    t.equal(await atLogits.deviation(new Map()), 0, 'the original weights: no deviation');
    const d = await atLogits.deviation(new Map([[w.name, scaled]]));
    t.ok(Math.abs(d - 0.01) < 1e-5, `weights scaled by 1.01 move the logits by 1 % (${d})`);
    const p = await atOutputs.deviation(new Map([[w.name, scaled]]));
    t.ok(p > 0 && p < d, `the probabilities move less (${p})`);
  } finally {
    await atLogits.release();
    await atOutputs.release();
  }
  t.equal(decodeModel(encodeModel(model)).graph.initializers.size, 1, 'the model given is left as it is');
  // Over outputs: the root mean square of each output's relative L2.
  const ref = [[Float32Array.of(1, 0), Float32Array.of(0, 2)]];
  t.ok(Math.abs(deviationBetween(ref, [[Float32Array.of(1.1, 0), Float32Array.of(0, 2)]]) - Math.sqrt(0.01 / 2)) < 1e-7);
});

t.test('probe sessions side by side: each measurement the number one session gives', async (t) => {
  // Two layers, so that measurements interleaved on two sessions must each feed one and reset the other.
  const b = new GraphBuilder(13, 3);
  const x = b.input('x', [1, 16]);
  const h = b.op('Relu', [b.op('Gemm', [x, b.weights('w1', [16, 16], 0.5)], { transB: 1 })]);
  b.output(b.op('Gemm', [h, b.weights('w2', [10, 16], 0.5)], { transB: 1 }), [1, 10]);
  const model = b.build();
  const rng = new Rng(3);
  const probes = Array.from({ length: 3 }, () => ({ x: { type: 'float32' as const, data: rng.normals(16, 1), dims: [1, 16] } }));
  const layers = layerTable(model.graph);
  const assignments = Array.from({ length: 9 }, (_, i) => {
    const l = layers[i % 2];
    const w = model.graph.constant(l.weightValue)!;
    const scaled = Float32Array.from(w.data as Float32Array, (v) => v * (1 + 0.01 * (i + 1)));
    return new Map(i % 3 === 2 ? [] : [[w.name, scaled]]);
  });
  const one = await ProbeModel.create(model, layers, probes);
  const two = await ProbeModel.create(model, layers, probes, { sessions: 2, threadsPerSession: 1 });
  try {
    t.equal(two.sessions, 2);
    const alone: number[] = [];
    for (const a of assignments) alone.push(await one.deviation(a));
    const sideBySide = await Promise.all(assignments.map((a) => two.deviation(a)));
    t.same(sideBySide, alone, 'the same deviations, bit for bit');
    t.ok(alone.every((d, i) => (i % 3 === 2 ? d === 0 : d > 0)), 'the originals restored where nothing is assigned');
  } finally {
    await Promise.all([one.release(), two.release()]);
  }
});

/** A minimal 8-bit RGB PNG (filter 0 on every row). */
function png(width: number, height: number, pixel: (x: number, y: number) => [number, number, number]): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Buffer) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, body: Buffer) => {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(body.length);
    const tail = Buffer.alloc(4);
    tail.writeUInt32BE(crc(Buffer.concat([Buffer.from(type, 'latin1'), body])));
    return Buffer.concat([head, Buffer.from(type, 'latin1'), body, tail]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc((width * 3 + 1) * height);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) raw.set(pixel(x, y), y * (width * 3 + 1) + 1 + x * 3);
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', zlib.deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

function npy(values: Float32Array, shape: number[]): Buffer {
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const head = Buffer.alloc(10);
  head.write('\x93NUMPY', 0, 'latin1');
  head.set([1, 0], 6);
  head.writeUInt16LE(header.length, 8);
  return Buffer.concat([head, Buffer.from(header, 'latin1'), Buffer.from(values.buffer)]);
}

t.test("the user's samples: .npy, .raw and .png, checked against the input", async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-samples-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const b = new GraphBuilder(13, 1);
  const x = b.input('x', [1, 3, 4, 6]);
  b.output(b.op('Relu', [x]));
  const graph = b.build().graph;
  const shapes = { x: [1, 3, 4, 6] };
  const values = Float32Array.from({ length: 72 }, (_, i) => i / 10 - 3);
  fs.writeFileSync(path.join(dir, 'a.npy'), npy(values, [1, 3, 4, 6]));
  fs.writeFileSync(path.join(dir, 'b.raw'), Buffer.from(values.buffer));
  // A 12 × 8 image, red rising left to right: bilinear to 6 × 4, pixels p as 2p/255 - 1.
  fs.writeFileSync(path.join(dir, 'c.png'), png(12, 8, (px) => [px * 20, 255, 0]));
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'ignored');
  const feeds = readSamples(dir, graph, shapes);
  t.equal(feeds.length, 3, 'one feed per sample file, other files ignored');
  t.same([...(feeds[0].x.data as Float32Array)], [...values], '.npy');
  t.same([...(feeds[1].x.data as Float32Array)], [...values], '.raw');
  const img = feeds[2].x.data as Float32Array;
  t.same(feeds[2].x.dims, [1, 3, 4, 6]);
  t.ok(Math.abs(img[0] - ((10 * 2) / 255 - 1)) < 1e-6, `red at the first pixel: the mean of two source pixels (${img[0]})`);
  t.ok(img.slice(24, 48).every((v) => v === 1), 'green: 255 everywhere');
  t.ok(img.slice(48).every((v) => v === -1), 'blue: 0 everywhere');

  const bad = (name: string, bytes: Buffer, message: RegExp) => {
    const d = fs.mkdtempSync(path.join(dir, 'bad-'));
    fs.writeFileSync(path.join(d, name), bytes);
    t.throws(() => readSamples(d, graph, shapes), { code: 'INVALID_OPTION', message }, name);
  };
  bad('short.raw', Buffer.from(values.buffer, 0, 40), /has 10 values where input 'x' \[1, 3, 4, 6\] takes 72/);
  bad('odd.raw', Buffer.alloc(7), /not a whole number of float32 values/);
  bad('nan.raw', Buffer.from(Float32Array.from({ length: 72 }, (_, i) => (i === 5 ? NaN : 0)).buffer), /NaN or infinite/);
  bad('f64.npy', Buffer.from(npy(values, [72]).toString('latin1').replace("'<f4'", "'<f8'"), 'latin1'), /holds '<f8' values/);
  bad('cut.npy', npy(values, [72]).subarray(0, 200), /ends before its 72 values/);
  bad('not.npy', Buffer.from('hello world, not numpy'), /is not a .npy file/);
  bad('bad.png', Buffer.concat([png(4, 4, () => [0, 0, 0]).subarray(0, 40)]), /PNG/);
  t.throws(() => readSamples(path.join(dir, 'none'), graph, shapes), { code: 'INVALID_OPTION', message: /cannot read the folder/ });
  const empty = fs.mkdtempSync(path.join(dir, 'empty-'));
  t.throws(() => readSamples(empty, graph, shapes), { code: 'INVALID_OPTION', message: /holds no .npy, .raw, .bin or .png file/ });
});

t.test('synthetic probes: one feed per probe, seeded, in the input element type', async (t) => {
  const b = new GraphBuilder(13, 1);
  const x = b.input('x', [1, 3, 'h', 'w']);
  b.output(b.op('Relu', [x]));
  const graph = b.build().graph;
  const probes = await syntheticProbes(graph, { x: [1, 3, 640, 640] });
  t.equal(probes.length, 2, 'two 320 × 320 images');
  t.same(probes[0].x.dims, [1, 3, 320, 320], 'free spatial dims brought down to 320');
  const again = await syntheticProbes(graph, { x: [1, 3, 640, 640] });
  t.same([...(again[1].x.data as Float32Array).slice(0, 50)], [...(probes[1].x.data as Float32Array).slice(0, 50)], 'same seed, same probes');
  const small = await syntheticProbes(graph, { x: [1, 3, 48, 160] });
  t.equal(small.length, 8, 'small inputs get more probes, at most 8');
});

t.test('a probe painted in turns is the probe painted at once, bit for bit, and the event loop turns meanwhile', async (t) => {
  for (const kind of PROBE_KINDS) {
    for (const shape of [[2, 3, 96, 128], [1, 1, 33, 17], [4, 10]]) {
      const atOnce = await probeInTurns(kind, shape, new Rng(5), () => undefined);
      let turns = 0;
      const inTurns = await probeInTurns(kind, shape, new Rng(5), () => nextTurn().then(() => void turns++));
      t.ok(Buffer.from(atOnce.buffer).equals(Buffer.from(inTurns.buffer)), `${kind} [${shape.join(', ')}]: the same values`);
      if (kind === 'leaves' && shape.length === 4 && shape[2] > 64) t.ok(turns > 0, `${kind} [${shape.join(', ')}]: ${turns} turns while painting`);
    }
  }
});

/** A small CNN whose layers all have enough weights for every codec. */
function smallCnn(): Uint8Array {
  const b = new GraphBuilder(13, 9);
  let y = b.input('x', [1, 8, 16, 16]);
  for (const [cin, cout] of [
    [8, 32],
    [32, 32],
    [32, 48],
  ]) {
    y = b.op('Relu', [b.op('Conv', [y, b.weights('w', [cout, cin, 3, 3], Math.sqrt(2 / (cin * 9))), b.weights('b', [cout], 0.05)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] })]);
  }
  const f = b.op('Flatten', [b.op('GlobalAveragePool', [y])], { axis: 1 });
  b.node('Gemm', [f, b.weights('fc', [10, 48], 0.3), b.weights('fb', [10], 0.1)], ['y'], { transB: 1 });
  b.output('y', [1, 10]);
  return encodeModel(b.build());
}

t.test('the budget through prune(): within D as measured again, monotone in D, target size kept', async (t) => {
  const bytes = smallCnn();
  const runs = [];
  for (const maxDeviation of [0.001, 0.003, 0.01, 0.03, 0.1]) {
    const { model, report } = await prune(bytes, { maxDeviation, pack: false });
    const b = report.budget!;
    t.ok(b.measured <= maxDeviation, `D ${maxDeviation}: measured ${b.measured.toExponential(2)}, ${b.checkpoints.length} checkpoints, ${b.paths} paths`);
    // Measured again from scratch, on the same probes, with the coded weights as the model holds them.
    const original = decodeModel(bytes);
    const layers = layerTable(original.graph);
    const probe = await ProbeModel.create(original, layers, await syntheticProbes(original.graph, report.inputShapes), { at: 'logits' });
    try {
      const coded = new Map(layers.map((l) => [l.weightValue, model.graph.constant(l.weightValue)!.data]));
      const again = await probe.deviation(coded);
      t.ok(Math.abs(again - b.measured) <= 1e-6 + 1e-3 * b.measured, `the report's deviation is the model's (${again.toExponential(3)})`);
      const rms = Math.sqrt(b.outputs.reduce((a, o) => a + o.measured ** 2, 0) / b.outputs.length);
      t.same(b.outputs.map((o) => o.name), original.graph.outputs.map((o) => o.name), 'a deviation per output, by name');
      t.ok(Math.abs(rms - b.measured) <= 1e-6 + 1e-3 * b.measured, `the outputs' deviations make the model's (${rms.toExponential(3)})`);
    } finally {
      await probe.release();
    }
    const packed = await prune(bytes, { maxDeviation });
    runs.push({ maxDeviation, file: packed.report.file.after, measured: packed.report.budget!.measured, checkpoints: packed.report.budget!.checkpoints });
  }
  for (let i = 1; i < runs.length; i++) {
    const [tight, loose] = [runs[i - 1], runs[i]];
    t.ok(loose.file <= tight.file && loose.measured >= tight.measured, `D ${tight.maxDeviation} -> ${loose.maxDeviation}: file ${tight.file} -> ${loose.file}, deviation ${tight.measured.toExponential(2)} -> ${loose.measured.toExponential(2)}`);
    t.same(loose.checkpoints.slice(0, tight.checkpoints.length), tight.checkpoints, 'the tighter walk is the start of the looser one');
  }
  t.ok(runs[runs.length - 1].file < 0.5 * bytes.byteLength, `D 0.1 halves the file at least (${runs[runs.length - 1].file} of ${bytes.byteLength})`);
  const target = await prune(bytes, { targetSize: 0.4 });
  t.ok(target.report.file.after <= 0.4 * bytes.byteLength * 1.01, `targetSize 0.4: ${target.report.file.after} of ${bytes.byteLength}`);
  t.equal(target.report.budget!.targetSize, 0.4);
  t.ok(target.report.budget!.measured > 0);
});

t.test('options.samples: the budget measures on the given inputs instead of synthetic probes', async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-samples-prune-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const rng = new Rng(4);
  for (const name of ['a.raw', 'b.raw', 'c.npy']) {
    const values = rng.normals(8 * 16 * 16, 1);
    fs.writeFileSync(path.join(dir, name), name.endsWith('.npy') ? npy(values, [1, 8, 16, 16]) : Buffer.from(values.buffer));
  }
  const bytes = smallCnn();
  const { model, report } = await prune(bytes, { samples: dir, maxDeviation: 0.02, pack: false });
  t.equal(report.budget!.probes, 3, 'one run per sample file');
  t.equal(report.options.samples, dir);
  t.ok(report.budget!.measured <= 0.02);
  const original = decodeModel(bytes);
  const layers = layerTable(original.graph);
  const probe = await ProbeModel.create(original, layers, readSamples(dir, original.graph, report.inputShapes), { at: 'logits' });
  try {
    const again = await probe.deviation(new Map(layers.map((l) => [l.weightValue, model.graph.constant(l.weightValue)!.data])));
    t.ok(Math.abs(again - report.budget!.measured) <= 1e-6 + 1e-3 * report.budget!.measured, `measured on the samples: ${again.toExponential(3)}`);
  } finally {
    await probe.release();
  }
  await t.rejects(prune(bytes, { samples: path.join(dir, 'a.raw') }), { code: 'INVALID_OPTION', message: /cannot read the folder/ });
});
