/**
 * The CUDA build of the addon (CMakeLists.txt, -DREDPP_CUDA=ON, native/cuda/hash.cu). Each check runs in
 * a child process with REDPP_ADDON pointing at the build, since a process loads one addon.
 *  - build-cuda/Release/redpp.node (npx cmake-js compile --out build-cuda --CDREDPP_CUDA=ON): without a
 *    usable GPU, cudaStatus() says why, device 'auto' falls back to the CPU (bit-identical with the
 *    reference) and device 'cuda' is a CUDA_UNAVAILABLE error; with one, the CUDA kernel must match the
 *    CPU kernel bit for bit on awkward shapes.
 *  - build-cuda-emu/Release/redpp.node (npx cmake-js compile --out build-cuda-emu
 *    --CDREDPP_CUDA_EMULATE=ON): the same CUDA kernels run on CPU threads, so the GPU comparison runs on
 *    machines without a GPU too.
 * A build that is not there is skipped, with the command that makes it.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

const root = path.resolve(__dirname, '..');
const CUDA_ADDON = path.join(root, 'build-cuda', 'Release', 'redpp.node');
const EMULATED_ADDON = path.join(root, 'build-cuda-emu', 'Release', 'redpp.node');

interface ChildReport {
  addon: string;
  status: string;
  auto: { backend: string; matchesReference: boolean };
  cuda: { backend?: string; error?: { name: string; code: string; message: string } };
  /** Only when status is '': CUDA against the CPU kernel. */
  comparison?: { compared: number; mismatches: string[] };
}

/**
 * The child: loads the addon named by REDPP_ADDON through lib/ and prints a ChildReport as JSON. When
 * CUDA is usable it hashes random data of awkward shapes on both devices and lists every difference.
 */
const CHILD = `
const { hashWeights, hashWeightsReference } = require('./lib/index.ts');
const { addonCandidates, native } = require('./lib/binding.ts');
const { Rng } = require('./lib/rng.ts');

function sameBits(a, b) {
  if (a.length !== b.length) return false;
  const x = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const y = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
  return true;
}

function firstDifference(a, b) {
  for (let i = 0; i < a.length; i++) if (!Object.is(a[i], b[i])) return i;
  return -1;
}

function cases() {
  const rng = new Rng(20261125);
  const list = [
    { name: 'groups of 1', weights: rng.normals(37, 0.1), groupSize: 1 },
    { name: 'groups of 2', weights: rng.normals(2 * 31, 0.1), groupSize: 2 },
    { name: 'groups of 27', weights: rng.normals(27 * 16, 0.2), groupSize: 27 },
    { name: 'groups of 4608', weights: rng.normals(4608 * 6, 0.02), groupSize: 4608 },
  ];
  // Tiny weights next to normal ones: intervals whose sums the kernel must add in input order.
  const tiny = rng.normals(4608 * 2, 0.05).map((v, i) => (i % 97 === 0 ? v * 1e-11 : i % 89 === 0 ? 0 : v));
  list.push({ name: 'tiny weights among normal ones', weights: tiny, groupSize: 4608 });
  const constant = new Float32Array(27 * 3).fill(0.25);
  constant.set(rng.normals(27, 0.1), 27);
  list.push({ name: 'a constant group between random ones', weights: constant, groupSize: 27 });
  const quantized = new Float32Array(900).map(() => rng.int(9) / 8 - 0.5);
  list.push({ name: 'already quantized', weights: quantized, groupSize: 90 });
  list.push({ name: 'subnormal values', weights: rng.normals(96, 1e-40), groupSize: 48 });
  return list;
}

async function compare() {
  const mismatches = [];
  let compared = 0;
  const runs = [];
  for (const c of cases()) {
    for (const center of ['mean', 'mode']) {
      for (const beta of [0.05, 0.3]) runs.push({ ...c, options: { center, beta } });
    }
  }
  // A grid capped at 65536 bins, where the kernel is narrower than a bin (every bin an interval).
  const capped = new Rng(3).normals(4608 * 2, 0.05);
  runs.push({ name: 'capped grid', weights: capped, groupSize: 4608, options: { beta: 1e-5 } });
  runs.push({ name: 'capped grid', weights: capped, groupSize: 4608, options: { beta: 1e-5, center: 'mode' } });
  for (const r of runs) {
    const label = r.name + ' ' + JSON.stringify(r.options);
    const cpu = await hashWeights(r.weights, r.groupSize, { ...r.options, device: 'cpu' });
    const gpu = await hashWeights(r.weights, r.groupSize, { ...r.options, device: 'cuda' });
    compared++;
    if (gpu.backend !== 'cuda') mismatches.push(label + ': backend ' + gpu.backend);
    for (const key of ['values', 'distinct', 'rmsError']) {
      if (!sameBits(cpu[key], gpu[key])) {
        const i = firstDifference(cpu[key], gpu[key]);
        mismatches.push(label + ': ' + key + '[' + i + '] cpu ' + cpu[key][i] + ' cuda ' + gpu[key][i]);
      }
    }
  }
  // In place (options.output is the input).
  const w = new Rng(11).normals(27 * 40, 0.1);
  const expected = await hashWeights(w, 27, { device: 'cpu' });
  const inPlace = Float32Array.from(w);
  await hashWeights(inPlace, 27, { device: 'cuda', output: inPlace });
  compared++;
  if (!sameBits(expected.values, inPlace)) mismatches.push('in place: values differ');
  // A NaN: both devices name the same weight.
  const bad = new Rng(12).normals(27 * 8, 0.1);
  bad[5 * 27 + 3] = NaN;
  bad[7 * 27] = Infinity;
  const errors = [];
  for (const device of ['cpu', 'cuda']) {
    try {
      await hashWeights(bad, 27, { device });
      errors.push(device + ': no error');
    } catch (e) {
      errors.push(e.code + ' ' + e.message);
    }
  }
  compared++;
  if (errors[0] !== errors[1] || !errors[0].startsWith('NON_FINITE_WEIGHT')) {
    mismatches.push('NaN: cpu says ' + errors[0] + '; cuda says ' + errors[1]);
  }
  return { compared, mismatches };
}

(async () => {
  const status = native().cudaStatus();
  const w = new Rng(5).normals(27 * 16, 0.2);
  const a = await hashWeights(w, 27, { device: 'auto' });
  const ref = hashWeightsReference(w, 27, { beta: 0.05, center: 'mean' });
  const report = {
    addon: addonCandidates().find((f) => fs.existsSync(f)),
    status,
    auto: {
      backend: a.backend,
      matchesReference:
        sameBits(a.values, ref.values) && sameBits(a.distinct, ref.distinct) && sameBits(a.rmsError, ref.rmsError),
    },
    cuda: {},
  };
  try {
    report.cuda.backend = (await hashWeights(w, 27, { device: 'cuda' })).backend;
  } catch (e) {
    report.cuda.error = { name: e.name, code: e.code, message: e.message };
  }
  if (status === '') report.comparison = await compare();
  console.log(JSON.stringify(report));
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
`;

function runChild(addon: string): { report?: ChildReport; status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [...process.execArgv, '-e', CHILD], {
    cwd: root,
    env: { ...process.env, REDPP_ADDON: addon },
    encoding: 'utf8',
    maxBuffer: 16 << 20,
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  let report: ChildReport | undefined;
  try {
    report = JSON.parse(line) as ChildReport;
  } catch {
    report = undefined;
  }
  return { report, status: r.status, stderr: r.stderr };
}

function checkComparison(t: tap.Test, report: ChildReport, device: string): void {
  t.equal(report.auto.backend, 'cuda', `device 'auto' uses ${device}`);
  t.ok(report.auto.matchesReference, `'auto' on ${device} matches the TypeScript reference bit for bit`);
  t.equal(report.cuda.backend, 'cuda', `device 'cuda' runs on ${device}`);
  t.ok(report.comparison, 'compared CUDA with the CPU kernel');
  if (!report.comparison) return;
  t.ok(report.comparison.compared >= 36, `${report.comparison.compared} comparisons`);
  t.same(report.comparison.mismatches, [], `${device} matches the CPU kernel bit for bit`);
}

t.test(
  'the CUDA build (build-cuda)',
  {
    skip:
      !fs.existsSync(CUDA_ADDON) &&
      'no CUDA build: make it with `npx cmake-js compile --out build-cuda --CDREDPP_CUDA=ON` (needs nvcc)',
  },
  async (t) => {
    const { report, status, stderr } = runChild(CUDA_ADDON);
    t.equal(status, 0, stderr);
    t.ok(report, 'the child reported');
    if (!report) return;
    t.equal(report.addon, CUDA_ADDON, 'the child loaded the CUDA build');
    if (report.status === '') {
      checkComparison(t, report, 'the GPU');
      return;
    }
    // No usable GPU (no driver, no device, or no code for it): a sentence that says which.
    t.match(report.status, /^(no CUDA device is usable: .+|CUDA device \d+ .* cannot run this build's kernels: .+)$/);
    t.notMatch(report.status, /has no CUDA kernels/, 'the build does have CUDA kernels');
    t.equal(report.auto.backend, 'cpu', "device 'auto' falls back to the CPU");
    t.ok(report.auto.matchesReference, "the fallback matches the TypeScript reference bit for bit");
    t.equal(report.cuda.backend, undefined, "device 'cuda' does not run");
    t.match(report.cuda.error, {
      name: 'RedppError',
      code: 'CUDA_UNAVAILABLE',
      message: `device 'cuda' was requested but ${report.status}`,
    });
  },
);

t.test(
  'the CUDA kernels on CPU threads (build-cuda-emu) match the CPU kernel',
  {
    skip:
      !fs.existsSync(EMULATED_ADDON) &&
      'no emulated CUDA build: make it with `npx cmake-js compile --out build-cuda-emu --CDREDPP_CUDA_EMULATE=ON`',
  },
  async (t) => {
    const { report, status, stderr } = runChild(EMULATED_ADDON);
    t.equal(status, 0, stderr);
    t.ok(report, 'the child reported');
    if (!report) return;
    t.equal(report.addon, EMULATED_ADDON, 'the child loaded the emulated build');
    t.equal(report.status, '', 'the emulation reports a usable device');
    checkComparison(t, report, 'the emulated device');
  },
);
