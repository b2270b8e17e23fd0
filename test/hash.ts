import { Worker } from 'node:worker_threads';

import t from 'tap';

import { native } from '../lib/binding';
import { RedppError, hashCapabilities, hashWeights, hashWeightsReference } from '../lib/index';
import { HASH_CONSTANTS } from '../lib/kernels/hash-constants';
import type { Center } from '../lib/kernels/hash';
import { Rng } from '../lib/rng';
import { encodeModel } from '../lib/model';
import { GraphBuilder } from '../lib/model/builder';
import { hashPass } from '../lib/passes/hash';
import { runPasses } from '../lib/passes/pass';
import { inProcess, type TaskRunner } from '../lib/passes/tasks';

const CENTERS: Center[] = ['mean', 'mode'];
const SIMD = hashCapabilities().simd as ('scalar' | 'avx2' | 'avx512')[];

/** Index of the first element where a and b differ bit for bit (NaN-aware), or -1. */
function firstDifference(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return 0;
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function groupsOf(x: Float32Array, size: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < x.length; i += size) out.push(x.subarray(i, i + size));
  return out;
}

function distinctCount(x: ArrayLike<number>): number {
  return new Set(Array.from(x, (v) => (v === 0 ? 0 : v))).size;
}

/** Awkward shapes: group sizes from the issue plus SIMD tails (8, 16 lanes) on either side. */
function awkwardCases(): { name: string; weights: Float32Array; groupSize: number }[] {
  const rng = new Rng(7);
  const cases = [
    { name: 'groups of 1', weights: rng.normals(37, 0.1), groupSize: 1 },
    { name: 'groups of 2', weights: rng.normals(2 * 31, 0.1), groupSize: 2 },
    { name: 'groups of 27 (3x3x3 conv)', weights: rng.normals(27 * 16, 0.2), groupSize: 27 },
    { name: 'groups of 4608 (3x3x512 conv)', weights: rng.normals(4608 * 12, 0.02), groupSize: 4608 },
    { name: 'one group of 15', weights: rng.normals(15, 1), groupSize: 15 },
    { name: 'groups of 17', weights: rng.normals(17 * 9, 1), groupSize: 17 },
    { name: 'groups of 33', weights: rng.normals(33 * 5, 1), groupSize: 33 },
    { name: 'groups of 1000 with a bias', weights: rng.normals(3000, 0.01).map((v) => v + 1000), groupSize: 1000 },
  ];
  const constant = new Float32Array(64 * 3).fill(0.25);
  constant.fill(-1.5, 64, 128);
  cases.push({ name: 'constant groups', weights: constant, groupSize: 64 });
  const huge = rng.normals(512, 1).map((v) => v * 1e37);
  huge[3] = 3.4e38;
  huge[300] = -3.4e38;
  cases.push({ name: 'huge values (±3.4e38)', weights: huge, groupSize: 256 });
  cases.push({ name: 'tiny values (1e-40, subnormal)', weights: rng.normals(96, 1e-40), groupSize: 48 });
  // A few well-separated clusters: the structure hashing is meant to find.
  const clustered = new Float32Array(600).map((_, i) => [-0.3, 0, 0.1, 0.5][i % 4] + rng.normal() * 1e-3);
  cases.push({ name: 'clustered values', weights: clustered, groupSize: 300 });
  // Two outliers far out of a narrow bulk: at beta 0.02 the grid wants ~78k bins and is capped at
  // 65536, where the kernel's weights are no longer those of the uncapped grids (native/grid.cc).
  const capped = rng.normals(8192 * 2, 2e-3);
  for (const g of [0, 8192]) {
    capped[g + 10] = 1;
    capped[g + 20] = -1;
  }
  cases.push({ name: 'two outliers (grid capped at 65536 bins at beta 0.02)', weights: capped, groupSize: 8192 });
  // Heavy duplication (already-quantized weights).
  cases.push({ name: 'already quantized', weights: new Float32Array(900).map(() => rng.int(9) / 8 - 0.5), groupSize: 90 });
  // 3000 equal values in a group: the density of that bin overflows 32-bit integers, so the native
  // kernel takes it in doubles (native/hash.cc: SlopesOfDensity).
  const equal = rng.normals(4096 * 2, 0.1);
  for (let i = 0; i < equal.length; i++) if (i % 4096 < 3000) equal[i] = 0.125;
  cases.push({ name: '3000 equal values in a group of 4096', weights: equal, groupSize: 4096 });
  // 1 and -1 cancel exactly and 2^-70 is lost when added to 1: an interval's sum depends on the order
  // of its terms, so the native kernel must add them in input order (hash.cc: IntervalSumsAreExact)
  // where adding its bins' sums gives 0 for every group.
  const t = 2 ** -70;
  const cancelling = Float32Array.from([1, -1, t, t, 1, -1, -1, 1, t, 1, t, -1]);
  cases.push({ name: 'cancelling values beside a tiny one (sums that round)', weights: cancelling, groupSize: 3 });
  // Groups past native/hash.cc's kKeptBins (65536), binned a chunk at a time, with an odd tail: the
  // second group holds a weight of 1e-30, so that its intervals are summed again in input order.
  const chunked = rng.normals(70001 * 2, 0.05);
  chunked[70001 + 5] = 1e-30;
  cases.push({ name: 'groups of 70001 (bins in chunks), one with a weight of 1e-30', weights: chunked, groupSize: 70001 });
  // Magnitudes from 1e-30 to 1, both signs: every group fails the exactness test.
  const spread = new Float32Array(256 * 4).map(() => (rng.next() < 0.5 ? -1 : 1) * 10 ** (-30 * rng.next()));
  cases.push({ name: 'magnitudes from 1e-30 to 1', weights: spread, groupSize: 256 });
  return cases;
}

t.test('native kernel matches the TypeScript reference bit for bit', { skip: !native() && 'no native addon' }, async (t) => {
  t.ok(SIMD.includes('scalar'), 'the scalar kernel is always available');
  for (const c of awkwardCases()) {
    for (const center of CENTERS) {
      for (const beta of [0.02, 0.05, 0.3, 2]) {
        const ref = hashWeightsReference(c.weights, c.groupSize, { beta, center });
        for (const simd of SIMD) {
          for (const threads of [1, 2]) {
            const got = await hashWeights(c.weights, c.groupSize, { beta, center, simd, threads });
            const where = `${c.name}, center=${center}, beta=${beta}, simd=${simd}, threads=${threads}`;
            t.equal(firstDifference(got.values, ref.values), -1, `values: ${where}`);
            t.equal(firstDifference(got.distinct, ref.distinct), -1, `distinct: ${where}`);
            t.equal(firstDifference(got.rmsError, ref.rmsError), -1, `rmsError: ${where}`);
          }
        }
      }
    }
  }
});

t.test("the kernel on the calling thread (a pool worker's) gives the libuv thread's outputs and refuses the same arguments", { skip: !native() && 'no native addon' }, async (t) => {
  const addon = native()!;
  for (const c of awkwardCases()) {
    for (const threads of [1, 2]) {
      const groups = c.weights.length / c.groupSize;
      const outputs = () => [new Float32Array(c.weights.length), new Uint32Array(groups), new Float64Array(groups)] as const;
      const [a, b] = [outputs(), outputs()];
      const args = (o: ReturnType<typeof outputs>) => [c.weights, c.groupSize, 0.05, 0, threads, 0, 0, ...o] as const;
      const viaLibuv = await addon.hashWeights(...args(a));
      const here = addon.hashWeightsBlocking(...args(b));
      const where = `${c.name}, threads=${threads}`;
      t.equal(here, viaLibuv, `first non-finite index: ${where}`);
      if (a.some((x, i) => firstDifference(x, b[i]) !== -1)) t.fail(`outputs differ: ${where}`);
    }
  }
  const w = new Float32Array([1, Number.NaN, 3, 4]);
  const out = [new Float32Array(4), new Uint32Array(2), new Float64Array(2)] as const;
  t.equal(addon.hashWeightsBlocking(w, 2, 0.05, 0, 1, 0, 0, ...out), 1, 'a NaN: its index');
  t.throws(() => addon.hashWeightsBlocking(w, 3, 0.05, 0, 1, 0, 0, ...out), RangeError, 'a group size that does not divide');
  t.throws(() => addon.hashWeightsBlocking(w, 2, 0.05, 0, 1, 0, 0, out[0], out[1], new Float64Array(3)), RangeError, 'a short output');
  t.throws(() => (addon.hashWeightsBlocking as (...a: unknown[]) => number)(w, 2), TypeError, 'missing arguments');
});

t.test("the kernel on the calling thread only in redpp's pool workers, not in a caller's own Worker", { skip: !native() && 'no native addon' }, async (t) => {
  // A Worker of the caller's that hashes through hashResolved() (as the passes' tasks do): its event
  // loop must keep turning during the call; a pool worker's (hashInPoolWorker()) need not.
  const hash = require.resolve('../dist/lib/hash.js');
  const run = (pool: boolean) =>
    new Promise<number>((resolve, reject) => {
      const script = `
        const { parentPort } = require('node:worker_threads');
        const h = require(${JSON.stringify(hash)});
        if (${pool}) h.hashInPoolWorker();
        const w = new Float32Array(1 << 23).map((_, i) => Math.sin(i));
        let turns = 0;
        const tick = setInterval(() => turns++, 1);
        h.hashResolved(w, 1024, { beta: 0.05, center: 'mean', threads: 1, device: 'cpu', simd: 'auto' }).then(() => {
          clearInterval(tick);
          parentPort.postMessage(turns);
        });`;
      const worker = new Worker(script, { eval: true });
      worker.once('message', resolve);
      worker.once('error', reject);
    });
  t.ok((await run(false)) > 0, "a caller's Worker: its timers fire while the kernel runs");
  t.equal(await run(true), 0, 'a pool worker: the kernel ran on its thread, no timer between');
});

t.test('native kernel matches the reference on a large input (4M values)', { skip: !native() && 'no native addon' }, async (t) => {
  const rng = new Rng(11);
  const w = rng.normals(4608 * 900, 0.02);
  const ref = hashWeightsReference(w, 4608, { beta: 0.05, center: 'mean' });
  const got = await hashWeights(w, 4608, { beta: 0.05, threads: 2 });
  t.equal(got.backend, 'cpu');
  t.equal(firstDifference(got.values, ref.values), -1);
  t.equal(firstDifference(got.distinct, ref.distinct), -1);
  t.equal(firstDifference(got.rmsError, ref.rmsError), -1);
});

t.test('native constants are the reference constants', { skip: !native() && 'no native addon' }, async (t) => {
  t.same(native()!.hashConstants, HASH_CONSTANTS);
});

t.test('empty input gives empty output', async (t) => {
  const r = await hashWeights(new Float32Array(0), 9);
  t.equal(r.values.length, 0);
  t.equal(r.distinct.length, 0);
  t.equal(r.rmsError.length, 0);
  // No weights, so no group past the native kernel's 2^32 - 1: any group size, as the reference takes it.
  t.equal((await hashWeights(new Float32Array(0), 2 ** 32)).values.length, 0, 'a group of 2^32 with no weights');
});

t.test('properties of the hashing', async (t) => {
  for (const c of awkwardCases()) {
    for (const center of CENTERS) {
      const before = Float32Array.from(c.weights);
      const r = await hashWeights(c.weights, c.groupSize, { center, beta: 0.1 });
      t.equal(firstDifference(c.weights, before), -1, `${c.name}: the input is not modified`);
      const inputs = groupsOf(c.weights, c.groupSize);
      const outputs = groupsOf(r.values, c.groupSize);
      let bad = '';
      inputs.forEach((x, g) => {
        const y = outputs[g];
        if (distinctCount(y) > distinctCount(x)) bad ||= `group ${g}: more values out than in`;
        if (distinctCount(y) !== r.distinct[g]) bad ||= `group ${g}: distinct ${r.distinct[g]} but ${distinctCount(y)} seen`;
        let sq = 0;
        for (let i = 0; i < x.length; i++) sq += (y[i] - x[i]) ** 2;
        const rms = Math.sqrt(sq / x.length);
        if (Math.abs(rms - r.rmsError[g]) > 1e-6 * (rms + Number.MIN_VALUE) + 1e-300 && Math.abs(rms - r.rmsError[g]) / rms > 1e-6) {
          bad ||= `group ${g}: rmsError ${r.rmsError[g]} but ${rms} measured`;
        }
        // Every value maps into its own interval: the map is monotone, and each representative lies
        // between the largest value of the previous interval and the smallest of the next.
        const order = Array.from(x.keys()).sort((a, b) => x[a] - x[b]);
        const reps: { lo: number; hi: number; rep: number }[] = [];
        for (const i of order) {
          const last = reps[reps.length - 1];
          if (last && last.rep === y[i]) last.hi = x[i];
          else if (last && y[i] < last.rep) bad ||= `group ${g}: the map is not monotone`;
          else reps.push({ lo: x[i], hi: x[i], rep: y[i] });
        }
        reps.forEach((iv, k) => {
          const prevHi = k > 0 ? reps[k - 1].hi : -Infinity;
          const nextLo = k + 1 < reps.length ? reps[k + 1].lo : Infinity;
          if (!(iv.rep >= prevHi && iv.rep <= nextLo)) bad ||= `group ${g}: representative ${iv.rep} outside its interval`;
          if (center === 'mean' && !(iv.rep >= iv.lo && iv.rep <= iv.hi)) bad ||= `group ${g}: a mean outside its values`;
        });
      });
      t.equal(bad, '', `${c.name}, center=${center}`);
    }
  }
});

t.test('error shrinks as beta shrinks, and beta = 0 returns the input unchanged', async (t) => {
  const rng = new Rng(3);
  const w = rng.normals(4608 * 8, 0.05);
  for (const center of CENTERS) {
    let previous = Infinity;
    let previousDistinct = 0;
    for (const beta of [2, 1, 0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001]) {
      const r = await hashWeights(w, 4608, { beta, center });
      const rms = r.rmsError.reduce((a, b) => a + b, 0);
      const distinct = r.distinct.reduce((a, b) => a + b, 0);
      t.ok(rms < previous, `${center}: beta=${beta} error ${rms.toExponential(3)} < ${previous.toExponential(3)}`);
      t.ok(distinct >= previousDistinct, `${center}: beta=${beta} keeps at least as many values`);
      previous = rms;
      previousDistinct = distinct;
    }
    // Past the grid's cap the bin width, not h, bounds the error.
    const tiny = await hashWeights(w, 4608, { beta: 1e-7, center });
    groupsOf(w, 4608).forEach((x, g) => {
      const bin = (Math.max(...x) - Math.min(...x)) / (HASH_CONSTANTS.maxBins - 1);
      t.ok(tiny.rmsError[g] <= bin / 2, `${center}: beta=1e-7 error ${tiny.rmsError[g]} within half a bin (${bin})`);
    });
    const zero = await hashWeights(w, 4608, { beta: 0, center });
    t.equal(firstDifference(zero.values, w), -1, `${center}: beta=0 is the identity`);
    t.same(Array.from(zero.rmsError), new Array(8).fill(0));
    t.same(Array.from(zero.distinct), groupsOf(w, 4608).map(distinctCount));
  }
});

t.test('at the default beta a 4608-wide neuron keeps ~1-3 % error with far fewer values', async (t) => {
  const w = new Rng(5).normals(4608 * 4, 0.02);
  const r = await hashWeights(w, 4608);
  for (let g = 0; g < 4; g++) {
    const rel = r.rmsError[g] / 0.02;
    t.ok(rel > 0.005 && rel < 0.03, `group ${g}: relative RMS error ${rel.toFixed(4)}`);
    t.ok(r.distinct[g] < 400, `group ${g}: ${r.distinct[g]} distinct values out of 4608`);
  }
});

t.test('NaN and Inf give a clear error', async (t) => {
  for (const bad of [NaN, Infinity, -Infinity]) {
    const w = new Rng(1).normals(27 * 4, 1);
    w[27 * 2 + 5] = bad;
    w[27 * 3 + 1] = bad; // a later one too: the first is reported
    for (const simd of SIMD) {
      await t.rejects(
        hashWeights(w, 27, { simd }),
        { name: 'RedppError', code: 'NON_FINITE_WEIGHT', message: new RegExp(`weights\\[59\\] is ${bad} \\(group 2\\)`) },
        `${bad} (${simd})`,
      );
    }
    // In the SIMD body of a long group, not only in the scalar tail.
    const long = new Rng(2).normals(4608, 1);
    long[1000] = bad;
    await t.rejects(hashWeights(long, 4608), { code: 'NON_FINITE_WEIGHT', message: /weights\[1000\]/ });
    t.equal(hashWeightsReference(w, 27, { beta: 0.05, center: 'mean' }).nonFiniteIndex, 59, `${bad} (reference)`);
  }
});

t.test('bad arguments and options are rejected with the option named', async (t) => {
  const w = new Float32Array(12);
  const cases: [unknown[], RegExp][] = [
    [[[1, 2, 3], 3], /weights must be a Float32Array/],
    [[new Float64Array(3), 3], /weights must be a Float32Array/],
    [[w, 0], /groupSize must be a positive integer/],
    [[w, 2.5], /groupSize must be a positive integer/],
    [[w, 5], /not a multiple of groupSize/],
    [[w, 3, { beta: -1 }], /options\.beta/],
    [[w, 3, { beta: NaN }], /options\.beta/],
    [[w, 3, { beta: '0.1' }], /options\.beta/],
    [[w, 3, { center: 'median' }], /options\.center.*'median'/],
    [[w, 3, { threads: 0 }], /options\.threads/],
    [[w, 3, { threads: 1.5 }], /options\.threads/],
    [[w, 3, { device: 'tpu' }], /options\.device/],
    [[w, 3, { simd: 'neon' }], /options\.simd/],
    [[w, 3, null], /options/],
  ];
  for (const [args, message] of cases) {
    const call = hashWeights as (...a: unknown[]) => Promise<unknown>;
    await t.rejects(call(...args), { name: 'RedppError', message }, String(message));
  }
  const e = await hashWeights(w, 3, { beta: -1 }).catch((err: unknown) => err);
  t.ok(e instanceof RedppError && e.code === 'INVALID_OPTION');
});

t.test('an unsupported instruction set is refused, not silently replaced', { skip: !native() && 'no native addon' }, async (t) => {
  const missing = (['avx2', 'avx512'] as const).find((s) => !SIMD.includes(s));
  if (!missing) return t.pass('this CPU has every instruction set');
  await t.rejects(hashWeights(new Float32Array(8), 8, { simd: missing }), { code: 'INVALID_OPTION' });
});

t.test('the event loop keeps running while a large hash runs', { skip: !native() && 'no native addon' }, async (t) => {
  const w = new Rng(9).normals(4608 * 2000, 0.02);
  let ticks = 0;
  const timer = setInterval(() => ticks++, 1);
  const started = Date.now();
  await hashWeights(w, 4608, { threads: 1 });
  const elapsed = Date.now() - started;
  clearInterval(timer);
  // A blocking call would let no timer fire at all.
  t.ok(ticks >= Math.min(5, elapsed / 4), `${ticks} timer ticks during a ${elapsed} ms hash`);
});

t.test('options.output receives the result, and hashing in place gives the same result', async (t) => {
  const w = new Rng(21).normals(27 * 40 + 0, 0.1);
  const expected = await hashWeights(w, 27);
  const out = new Float32Array(w.length);
  const r = await hashWeights(w, 27, { output: out });
  t.equal(r.values, out, 'the given array is returned');
  t.equal(firstDifference(out, expected.values), -1);
  for (const simd of SIMD) {
    const copy = Float32Array.from(w);
    const inPlace = await hashWeights(copy, 27, { output: copy, simd });
    t.equal(firstDifference(copy, expected.values), -1, `in place (${simd})`);
    t.equal(firstDifference(inPlace.rmsError, expected.rmsError), -1, `in-place RMS error (${simd})`);
  }
  const ref = Float32Array.from(w);
  const refOut = hashWeightsReference(ref, 27, { beta: 0.05, center: 'mean' }, ref);
  t.equal(firstDifference(ref, expected.values), -1, 'reference in place');
  t.equal(firstDifference(refOut.rmsError, expected.rmsError), -1, 'reference in-place RMS error');
  await t.rejects(hashWeights(w, 27, { output: new Float32Array(3) }), { code: 'INVALID_ARGUMENT', message: /options\.output has 3/ });
  await t.rejects(hashWeights(w, 27, { output: new Float64Array(w.length) as unknown as Float32Array }), { code: 'INVALID_OPTION', message: /options\.output/ });
});

t.test('concurrent calls on many threads each get their own, correct result', { skip: !native() && 'no native addon' }, async (t) => {
  const rng = new Rng(31);
  const inputs = [4608, 576, 27, 1].map((g) => ({ g, w: rng.normals(g * 97, 0.05) }));
  const runs = await Promise.all(
    inputs.flatMap(({ g, w }) => [1, 2, 2].map((threads) => hashWeights(w, g, { threads }).then((r) => ({ g, w, r })))),
  );
  for (const { g, w, r } of runs) {
    const ref = hashWeightsReference(w, g, { beta: 0.05, center: 'mean' });
    t.equal(firstDifference(r.values, ref.values), -1, `group size ${g}`);
    t.equal(firstDifference(r.rmsError, ref.rmsError), -1);
  }
});

t.test('the hash pass: a layer of more than an eighth of the weights on the runner\'s threads, the same weights', { skip: !native() && 'no native addon' }, async (t) => {
  // One Gemm of 89 % of the weights (hashed on 2 threads) and one of 11 % (on one), as VGG-16's fc1 and the rest.
  const build = () => {
    const b = new GraphBuilder(13, 5);
    let y = b.op('Gemm', [b.input('x', [1, 64]), b.weights('w1', [192, 64])], { transB: 1 });
    y = b.op('Gemm', [y, b.weights('w2', [8, 192])], { transB: 1 });
    b.output(y);
    return b.build();
  };
  const hashed = async (runner: TaskRunner) => {
    const model = build();
    let threads = 0;
    const counting: TaskRunner = { ...runner, hash: (task) => ((threads = Math.max(threads, task.threads ?? 1)), runner.hash(task)) };
    await runPasses(model, [hashPass({ beta: 0.05, center: 'mean', minFanIn: 1, skip: [], layerBeta: {} }, counting)]);
    return { bytes: encodeModel(model), threads };
  };
  const one = await hashed(inProcess);
  const two = await hashed({ ...inProcess, threads: 2 });
  t.equal(one.threads, 1);
  t.equal(two.threads, 2, 'the large layer asked for 2 threads');
  t.equal(Buffer.compare(one.bytes, two.bytes), 0, 'the same hashed model');
});
