/**
 * The package as a dependent gets it: `npm pack`, then installed into a fresh project with
 * --ignore-scripts and nothing but node on PATH (no compiler, no python, no make), without
 * onnxruntime-node. It must hash on the native backend (the prebuilt binary), prune the bundled cls
 * model with --beta, refuse the budget and --validate with the one-line hint, and validate once
 * onnxruntime-node is added. Dependencies come from npm's cache or the registry; nothing else is fetched.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';

import t from 'tap';

import { packageRoot } from '../lib/binding';
import { GraphBuilder } from '../lib/model/builder';
import { encodeModel } from '../lib/model/write';
import { OCR_MODELS, tempDir } from './helpers/onnx-builder';

/** npm's own CLI script, to run with this node under a bare PATH. */
function npmCli(): string | undefined {
  if (process.env.npm_execpath?.endsWith('.js')) return process.env.npm_execpath;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const npm = path.join(dir, 'npm');
    if (fs.existsSync(npm)) {
      const cli = path.join(path.dirname(fs.realpathSync(npm)), 'npm-cli.js');
      if (fs.existsSync(cli)) return cli;
    }
  }
  return undefined;
}

const cli = npmCli();

t.test('installs from the packed tarball without scripts or a compiler, and prunes', { skip: cli ? false : 'npm not found', timeout: 600_000 }, async (t) => {
  const dir = tempDir(t);
  // What prepack does, and no more: npm pack would also run prepare (a rebuild of the addon and of
  // dist/ under the other tests' feet).
  const prebuild = spawnSync(process.execPath, [path.join(packageRoot, 'native', 'prebuild.js'), '--copy'], { cwd: packageRoot, encoding: 'utf8' });
  t.equal(prebuild.status, 0, `prebuild: ${prebuild.stderr}`);
  const pack = spawnSync(process.execPath, [cli!, 'pack', '--ignore-scripts', '--json', '--pack-destination', dir], { cwd: packageRoot, encoding: 'utf8' });
  t.equal(pack.status, 0, `npm pack: ${pack.stderr.slice(-500)}`);
  const [info] = JSON.parse(pack.stdout.slice(pack.stdout.indexOf('['))) as { filename: string; size: number; unpackedSize: number; files: { path: string }[] }[];
  const files = info.files.map((f) => f.path);
  t.ok(files.includes(`prebuilds/${process.platform}-${process.arch}/redpp.napi.node`), 'the prebuilt binary is in the package');
  t.same(files.filter((f) => /(^|\/)(build|obj\.target|\.deps)\//.test(f) || f.endsWith('.o')), [], 'no build intermediates');
  t.notOk(files.some((f) => f.startsWith('test/') || f.startsWith('bench/') || f.startsWith('dist/bench') || f.startsWith('dist/test')), 'no tests or benchmarks');

  // A PATH with node alone: whatever tried to build would fail.
  const bin = path.join(dir, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  const env: NodeJS.ProcessEnv = { HOME: process.env.HOME, PATH: bin, npm_config_cache: process.env.npm_config_cache, npm_config_update_notifier: 'false' };
  const app = path.join(dir, 'app');
  fs.mkdirSync(app);
  fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
  const install = spawnSync(process.execPath, [cli!, 'install', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline', path.join(dir, info.filename)], {
    cwd: app,
    env,
    encoding: 'utf8',
  });
  t.equal(install.status, 0, `npm install: ${install.stderr.slice(-1000)}`);
  const modules = path.join(app, 'node_modules');
  t.notOk(fs.existsSync(path.join(modules, 'onnxruntime-node')), 'onnxruntime-node is not installed with it (an optional peer)');
  // Node also looks in every node_modules above the app: one in the temp folder's parents would
  // hand the package onnxruntime-node and turn the refusals below into successes.
  t.equal(resolvable('onnxruntime-node', app), undefined, 'nor found in a node_modules above the temp folder');
  t.comment(`packed ${(info.size / 1024).toFixed(0)} KiB, unpacked ${(info.unpackedSize / 1024).toFixed(0)} KiB, node_modules ${(duBytes(modules) / 2 ** 20).toFixed(1)} MiB`);

  const run = (args: string[], opts: { node?: boolean } = {}): SpawnSyncReturns<string> =>
    opts.node
      ? spawnSync(process.execPath, args, { cwd: app, env, encoding: 'utf8' })
      : spawnSync(path.join(modules, '.bin', 'redpp'), args, { cwd: app, env, encoding: 'utf8' });
  const backend = run(['-e', "require('redpp').hashWeights(new Float32Array(64).map((_, i) => Math.sin(i)), 8).then((r) => console.log(r.backend))"], { node: true });
  t.equal(backend.stdout.trim(), 'cpu', `hashWeights runs on the native backend: ${backend.stderr}`);
  t.notMatch(backend.stderr, /warning/, 'no fallback warning');

  const cls = OCR_MODELS.cls.file;
  const pruned = run(['prune', cls, '-o', 'cls.onnx', '--beta', '0.05']);
  t.equal(pruned.status, 0, `redpp prune --beta without onnxruntime-node: ${pruned.stderr}`);
  t.ok(fs.existsSync(path.join(app, 'cls.onnx')), 'the output is written');

  // A conv whose filters share one kernel per input channel: the kernel split splits it, and times the
  // split only where onnxruntime-node is installed (here it is not: split, untimed, no failure).
  const shared = new GraphBuilder(13, 3);
  const k = new Float32Array(64 * 64 * 9);
  const kernels = shared.rng.normals(64 * 9, 0.3);
  for (let o = 0; o < 64; o++) for (let c = 0; c < 64; c++) k.set(kernels.subarray(c * 9, c * 9 + 9), (o * 64 + c) * 9);
  const y = shared.op('Conv', [shared.input('x', [1, 64, 32, 32]), shared.init('w', [64, 64, 3, 3], k)], { kernel_shape: [3, 3], pads: [1, 1, 1, 1] });
  shared.output(y, [1, 64, 32, 32]);
  fs.writeFileSync(path.join(app, 'shared.onnx'), encodeModel(shared.model()));
  const split = run(['prune', 'shared.onnx', '-o', 'split.onnx', '--beta', '0', '--json']);
  t.equal(split.status, 0, `the kernel split without onnxruntime-node: ${split.stderr}`);
  const [conv] = JSON.parse(split.stdout || '{"layers":[{}]}').layers as { kernelSplit?: { split: boolean; latencyMs?: unknown } }[];
  t.ok(conv.kernelSplit?.split, 'the shared-kernel conv is split');
  t.equal(conv.kernelSplit?.latencyMs, undefined, 'and not timed');

  for (const args of [['--beta', '0.05', '--validate'], []]) {
    const r = run(['prune', cls, '-o', 'x.onnx', ...args]);
    t.equal(r.status, 1, `${args.join(' ') || 'the budget'}: exit 1`);
    t.match(r.stderr, /^redpp: INFERENCE_UNAVAILABLE: .*npm install onnxruntime-node.*--beta/, 'the one-line hint');
    t.equal(r.stderr.trim().split('\n').length, 1, 'one line');
    t.notOk(fs.existsSync(path.join(app, 'x.onnx')), 'nothing written');
  }

  // onnxruntime-node added (linked from this repository's own install, not downloaded again).
  for (const name of ['onnxruntime-node', 'onnxruntime-common']) {
    fs.symlinkSync(fs.realpathSync(path.join(packageRoot, 'node_modules', name)), path.join(modules, name));
  }
  const validated = run(['prune', cls, '-o', 'v.onnx', '--beta', '0.05', '--validate', '--json']);
  t.equal(validated.status, 0, `--validate with onnxruntime-node: ${validated.stderr}`);
  t.ok(JSON.parse(validated.stdout).validation, 'the report has the validation');
});

function duBytes(dir: string): number {
  let total = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += duBytes(p);
    else if (e.isFile()) total += fs.statSync(p).size;
  }
  return total;
}

/** Where `name` resolves from `dir`, or undefined where it does not. */
function resolvable(name: string, dir: string): string | undefined {
  try {
    return require.resolve(name, { paths: [dir] });
  } catch {
    return undefined;
  }
}
