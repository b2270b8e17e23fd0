import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Worker } from 'node:worker_threads';

import t from 'tap';

import { addonCandidates, native } from '../lib/binding';
import { hashWeights, hashWeightsReference } from '../lib/index';

const root = path.resolve(__dirname, '..');

/** Runs a snippet in a fresh node process that can load the TypeScript sources, as this test does. */
function runNode(code: string, env: Record<string, string>): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [...process.execArgv, '-e', code], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

t.test('the addon loads and hashes in worker threads as well as on the main thread', { skip: !native() && 'no native addon' }, async (t) => {
  const file = addonCandidates().find((f) => fs.existsSync(f))!;
  const code = `
    const { parentPort, workerData } = require('node:worker_threads');
    const addon = require(workerData.file);
    const w = new Float32Array(4096).map((_, i) => Math.sin(i * 12.9898) * 0.1);
    const out = [new Float32Array(w.length), new Uint32Array(4), new Float64Array(4)];
    addon.hashWeights(w, 1024, 0.05, 0, 2, 0, 0, ...out).then((bad) => parentPort.postMessage({ bad, values: out[0] }));
  `;
  const runs = await Promise.all(
    [1, 2, 3].map(
      () =>
        new Promise<{ bad: number; values: Float32Array }>((resolve, reject) => {
          const worker = new Worker(code, { eval: true, workerData: { file } });
          worker.once('message', (m) => {
            resolve(m);
            void worker.terminate();
          });
          worker.once('error', reject);
        }),
    ),
  );
  const w = new Float32Array(4096).map((_, i) => Math.sin(i * 12.9898) * 0.1);
  const onMain = await hashWeights(w, 1024);
  for (const r of runs) {
    t.equal(r.bad, -1);
    t.same(Array.from(r.values), Array.from(onMain.values), 'same result in a worker');
  }
});

// What a signal during pruning does to the pool: the process exits, or a worker is terminated, while
// kernels are running on its behalf. Their completion then meets an environment that can no longer
// run JavaScript; it must be dropped, not end the process in std::terminate (found by the signal test
// of hostile-api.ts on a loaded machine: SIGABRT instead of exit 143).
t.test('a kernel that finishes after its worker or the process has begun to exit is dropped quietly', { skip: !native() && 'no native addon' }, async (t) => {
  const file = addonCandidates().find((f) => fs.existsSync(f))!;
  const code = (ending: string) => `
    const { Worker } = require('node:worker_threads');
    const body = \`
      const { parentPort } = require('node:worker_threads');
      const addon = require(\${JSON.stringify(${JSON.stringify(file)})});
      const n = 1 << 21, w = new Float32Array(n).map((_, i) => Math.sin(i * 12.9898));
      const go = () => addon.hashWeights(w, 2048, 0.05, 0, 2, 0, 0, new Float32Array(n), new Uint32Array(n / 2048), new Float64Array(n / 2048)).then(go);
      go();
      parentPort.postMessage('hashing');
    \`;
    const workers = [0, 1].map(() => new Worker(body, { eval: true }));
    let hashing = 0;
    for (const w of workers) w.once('message', () => { if (++hashing === 2) setTimeout(() => { ${ending} }, 30); });
  `;
  const endings = {
    'process.exit while workers hash': 'process.exit(0);',
    'worker.terminate while it hashes, then a normal exit': 'Promise.all(workers.map((w) => w.terminate())).then(() => process.exit(0));',
  };
  for (const [what, ending] of Object.entries(endings)) {
    for (let run = 0; run < 3; run++) {
      const r = spawnSync(process.execPath, ['-e', code(ending)], { encoding: 'utf8', timeout: 60_000 });
      t.equal(r.signal, null, `${what}: no signal (${r.signal ?? ''} ${r.stderr.split('\n')[0]})`);
      t.equal(r.status, 0, `${what}: exit 0`);
      t.notMatch(r.stderr, /terminate called/, `${what}: nothing thrown past the addon`);
    }
  }
});

t.test('without the addon the reference runs, with one clear warning', async (t) => {
  const r = runNode(
    `
    const { hashWeights } = require('./lib/index.ts');
    const w = new Float32Array(270).map((_, i) => Math.cos(i * 7.31) * 0.2);
    (async () => {
      const a = await hashWeights(w, 27);
      const b = await hashWeights(w, 27, { center: 'mode' });
      console.log(JSON.stringify({ backend: a.backend, values: Array.from(a.values), mode: b.backend }));
    })();
    `,
    { REDPP_ADDON: path.join(root, 'no-such-dir', 'redpp.node') },
  );
  t.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.equal(out.backend, 'reference');
  t.equal(out.mode, 'reference');
  const w = new Float32Array(270).map((_, i) => Math.cos(i * 7.31) * 0.2);
  t.same(out.values, Array.from(hashWeightsReference(w, 27, { beta: 0.05, center: 'mean' }).values));
  const warnings = r.stderr.split('\n').filter((l) => l.includes('REDPP_NATIVE_FALLBACK'));
  t.equal(warnings.length, 1, 'warned once');
  t.match(warnings[0], /could not load the native addon \(tried .*no-such-dir.*\).*npm run build:native/);
});

const localBuild = path.join(root, 'build', 'Release', 'redpp.node');

t.test('an addon without an export the code calls (an older build) does not load: the references run, and the warning names what it lacks', { skip: !fs.existsSync(localBuild) && 'no local build' }, async (t) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-old-addon-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  // The real addon's exports but one.
  const old = path.join(dir, 'old-addon.js');
  fs.writeFileSync(old, `const real = require(${JSON.stringify(localBuild)}); const { kernelSharing, ...rest } = real; module.exports = rest;`);
  const r = runNode(
    `
    const { hashWeights } = require('./lib/index.ts');
    hashWeights(new Float32Array(270).map((_, i) => Math.cos(i * 7.31) * 0.2), 27).then((a) => console.log(a.backend));
    `,
    { REDPP_ADDON: old },
  );
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stdout.trim(), 'reference');
  t.match(r.stderr, /a build older than this package, without kernelSharing/);
});

t.test('without the addon, prune says which backend ran, and the CLI warns once on stderr', async (t) => {
  const env = { REDPP_ADDON: path.join(root, 'no-such-dir', 'redpp.node') };
  const cls = path.join(root, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');
  const api = runNode(
    `
    const { prune } = require('./lib/index.ts');
    prune(${JSON.stringify(cls)}, { threads: 2, beta: 0.05 }).then(({ report }) => {
      console.log(JSON.stringify({ backend: report.hashBackend, layers: report.layers.filter((l) => l.hash).map((l) => l.hash.backend) }));
    });
    `,
    env,
  );
  t.equal(api.status, 0, api.stderr);
  const out = JSON.parse(api.stdout);
  t.equal(out.backend, 'reference', 'the report names the TypeScript reference');
  t.ok(out.layers.length > 0 && out.layers.every((b: string) => b === 'reference'), 'per layer too');
  t.equal(api.stderr.split('\n').filter((l) => l.includes('REDPP_NATIVE_FALLBACK')).length, 1, 'the API warns once, on the main thread');

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-fallback-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const cli = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli.js'), 'prune', cls, '-o', path.join(dir, 'cls.onnx'), '--json', '--threads', '2', '--beta', '0.05'], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  t.equal(cli.status, 0, cli.stderr);
  t.equal(JSON.parse(cli.stdout).hashBackend, 'reference', '--json names the backend');
  const lines = cli.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line on stderr: ${cli.stderr}`);
  t.match(lines[0], /^redpp: warning: could not load the native addon .*Falling back to the TypeScript reference/);
});

t.test("device 'cuda' without a CUDA build is a clear error", async (t) => {
  await t.rejects(hashWeights(new Float32Array(4), 4, { device: 'cuda' }), {
    name: 'RedppError',
    code: 'CUDA_UNAVAILABLE',
    message: /device 'cuda' was requested but/,
  });
});

t.test('the loader tries a local build first, then the prebuilt binary for this platform', async (t) => {
  const r = runNode(`const { addonCandidates } = require('./lib/binding.ts'); console.log(JSON.stringify(addonCandidates()));`, { REDPP_ADDON: '' });
  t.equal(r.status, 0, r.stderr);
  const [local, prebuilt] = JSON.parse(r.stdout) as string[];
  t.equal(path.relative(root, prebuilt), path.join('prebuilds', `${process.platform}-${process.arch}`, 'redpp.napi.node'));
  t.equal(path.relative(root, local), path.join('build', 'Release', 'redpp.node'));
});
