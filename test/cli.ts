import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import t from 'tap';

import { decodeModel } from '../lib/load';
import { DEFAULT_MAX_DEVIATION } from '../lib/options';

const root = path.resolve(__dirname, '..');
const CLS = path.join(root, 'node_modules', '@gutenye', 'ocr-models', 'assets', 'ch_ppocr_mobile_v2.0_cls_infer.onnx');

/** Runs the built CLI (`npm test` compiles first), as a user runs `redpp`. */
function redpp(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(root, 'dist', 'lib', 'cli.js'), ...args], {
    cwd: root,
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-cli-'));
t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));

t.test('--json prints only the JSON report, with the documented fields', async (t) => {
  const out = path.join(dir, 'cls.json.onnx');
  const r = redpp('prune', CLS, '-o', out, '--json', '--validate', '--transfer-size', '--input-shape', 'x=1x3x48x192', '--min-fan-in', '0', '--threads', '2');
  t.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  for (const k of ['params', 'macs', 'file', 'transfer']) {
    t.type(j[k].before, 'number', `${k}.before`);
    t.type(j[k].after, 'number', `${k}.after`);
  }
  t.ok(Array.isArray(j.layers) && j.layers.length > 10);
  // The budget: what it aimed at, what it predicted and measured, the checkpoints it chose among.
  t.equal(j.budget.maxDeviation, DEFAULT_MAX_DEVIATION);
  t.ok(j.budget.measured <= DEFAULT_MAX_DEVIATION && j.budget.predicted >= 0, `deviation ${j.budget.measured} (predicted ${j.budget.predicted})`);
  t.ok(j.budget.checkpoints.length > 2 && j.budget.checkpoints.every((c: { fileBytes: number; measured: number }) => c.fileBytes > 0 && c.measured >= 0));
  for (const l of j.layers) {
    if (!l.codec || !['dense', 'float16', 'linear', 'hash'].includes(l.codec.codec)) t.fail(`${l.node}: codec ${JSON.stringify(l.codec)}`);
    if (l.codec.codec !== 'dense' && !(l.weightError.relative >= 0 && l.deviation.predicted >= 0)) t.fail(`${l.node}: weight error and predicted deviation`);
    if (l.packed && !(l.packed.bytes.after < l.packed.bytes.before)) t.fail(`${l.node}: packed bytes`);
  }
  t.same(j.inputShapes, { x: [1, 3, 48, 192] });
  const o = j.validation.outputs[0];
  for (const k of ['relL2', 'cosine', 'maxAbs', 'argmaxAgreement']) t.type(o[k], 'number', `validation.outputs[0].${k}`);
  t.type(j.validation.latencyMs.before, 'number');
  t.type(j.validation.latencyMs.after, 'number');
  t.ok(j.validation.sessionMs.before > 0 && j.validation.sessionMs.after > 0, 'validation.sessionMs.before/after');
  t.equal(fs.statSync(out).size, j.file.after);
  t.notMatch(r.stderr, /\[#/, 'no progress bar when stderr is not a terminal');
});

t.test('the summary names the figures before and after', async (t) => {
  const r = redpp('prune', CLS, '-o', path.join(dir, 'cls.onnx'), '--beta', '0.1', '--center', 'mode');
  t.equal(r.status, 0, r.stderr);
  t.match(r.stdout, /params\s+[\d,]+\s+[\d,]+\s+-[\d.]+ %/);
  t.match(r.stdout, /MACs\s+[\d.]+ M\s+[\d.]+ M/);
  t.match(r.stdout, /file size\s+[\d.]+ KiB\s+[\d.]+ KiB/);
  t.notMatch(r.stdout, /transfer/, 'the transfer size only when --transfer-size asks for it');
  t.match(r.stdout, /RED\+\+ hashing at beta 0\.1, center mode/);
  t.match(r.stdout, /codecs\s+(\d+ dense, )?\d+ hash beta 0\.1/);
  const budget = redpp('prune', CLS, '-o', path.join(dir, 'cls.budget.onnx'), '--max-deviation', '0.05', '--input-shape', 'x=1x3x48x192', '--transfer-size');
  t.equal(budget.status, 0, budget.stderr);
  t.match(budget.stdout, /budget max deviation 0\.05: deviation [\d.e+-]+ measured \([\d.e+-]+ predicted\) on \d+ synthetic probes/);
  t.match(budget.stdout, /transfer \(brotli\)\s+[\d.]+ KiB\s+[\d.]+ KiB/);
  t.match(budget.stdout, /packed\s+\d+ layers \(/);
});

t.test('bad input: one line on stderr and a non-zero exit', async (t) => {
  const notOnnx = path.join(dir, 'not.onnx');
  fs.writeFileSync(notOnnx, 'hello, I am not a model');
  const truncated = path.join(dir, 'truncated.onnx');
  fs.writeFileSync(truncated, fs.readFileSync(CLS).subarray(0, 5000));
  const cases: [string[], RegExp][] = [
    [['prune', notOnnx, '-o', path.join(dir, 'x.onnx')], /not an ONNX model/],
    [['prune', truncated, '-o', path.join(dir, 'x.onnx')], /truncated/i],
    [['prune', path.join(dir, 'missing.onnx'), '-o', path.join(dir, 'x.onnx')], /missing\.onnx/],
    [['prune', CLS, '-o', CLS], /would overwrite the input/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--beta', 'abc'], /--beta expects a number/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--center', 'median'], /--center/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--input-shape', 'x=1by3'], /--input-shape expects/],
    [['prune', CLS, '--frobnicate'], /Unknown option/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--max-deviation', '-1'], /--max-deviation/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--max-deviation=-1'], /--max-deviation/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--target-size', '2'], /--target-size/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--codecs', 'hash,int4'], /--codecs/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--samples', path.join(dir, 'no-such-dir')], /--samples: cannot read the folder/],
    [['prune', CLS, '-o', path.join(dir, 'x.onnx'), '--beta', '0.1', '--max-deviation', '0.1'], /--beta .* --max-deviation .* give one or the other/],
  ];
  for (const [args, message] of cases) {
    const r = redpp(...args);
    t.not(r.status, 0, `${args.join(' ')}: exit ${r.status}`);
    t.match(r.stderr, message);
    // The code first; 2 for a command line that cannot run, 1 for a model that cannot be pruned.
    const code = /^redpp: ([A-Z_]+): /.exec(r.stderr)?.[1];
    t.ok(code, `the code leads the line: ${r.stderr.trim()}`);
    t.equal(r.status, code === 'INVALID_OPTION' || code === 'INVALID_ARGUMENT' ? 2 : 1, `exit status of ${code}`);
    t.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr.trim()}`);
    t.equal(r.stdout, '');
  }
  t.notOk(fs.existsSync(path.join(dir, 'x.onnx')), 'no output written on failure');
  t.equal(fs.readdirSync(dir).filter((f) => f.startsWith('.')).length, 0, 'no staging folder left');
});

t.test('usage errors say what is missing in one line; --help and --version succeed', async (t) => {
  const none = redpp();
  t.equal(none.status, 2);
  t.match(none.stderr, /^redpp: INVALID_ARGUMENT: no command given \(redpp --help lists the options\)\n$/);
  const noOut = redpp('prune', CLS);
  t.equal(noOut.status, 2);
  t.match(noOut.stderr, /no output given/);
  const help = redpp('--help');
  t.equal(help.status, 0);
  t.match(help.stdout, /--epsilon E/);
  const version = redpp('--version');
  t.equal(version.status, 0);
  t.match(version.stdout, /^\d+\.\d+\.\d+\n$/);
});

t.test('a signal while the package loads is handled once it has loaded', { skip: process.platform === 'win32' ? 'POSIX signals' : false }, async (t) => {
  // A preload that sends the signal to its own process just as cli.ts requires the rest of the package:
  // without a handler registered by then, the signal's default action ends the process mid-load.
  const preload = path.join(dir, 'signal-on-load.js');
  fs.writeFileSync(
    preload,
    `const Module = require('module');
    const load = Module._load;
    Module._load = function (request, ...rest) {
      if (request === './command-line') { Module._load = load; process.kill(process.pid, process.env.SIGNAL); }
      return load.call(this, request, ...rest);
    };`,
  );
  // Through a shell that clears NODE_OPTIONS: the test runner puts its own preload in every child it
  // spawns, whose signal handlers would keep the default action from ending the process.
  const run = (signal: string, ...args: string[]) =>
    spawnSync('/bin/sh', ['-c', 'NODE_OPTIONS= exec "$@"', 'sh', process.execPath, '-r', preload, path.join(root, 'dist', 'lib', 'cli.js'), ...args], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, SIGNAL: signal },
    });
  for (const signal of ['SIGINT', 'SIGTERM']) {
    const out = path.join(dir, `signal-on-load-${signal}.onnx`);
    const r = run(signal, 'prune', CLS, '-o', out, '--beta', '0.05');
    t.same([r.status, r.signal], [signal === 'SIGINT' ? 130 : 143, null], `prune, ${signal}: the interrupted exit status (${r.stderr.trim()})`);
    t.match(r.stderr, /^redpp: INTERRUPTED: stopped by SIG/m, `prune, ${signal}: says so`);
    t.notOk(fs.existsSync(out), `prune, ${signal}: no output`);
    // A service stops on its own terms (here its handlers are in by the time the signal is handled, and
    // the unreachable queue ends it first); not as a prune.
    if (signal === 'SIGINT') continue;
    const w = run(signal, 'worker', '--queue', 'redis://127.0.0.1:1');
    t.ok(w.status !== null || w.signal === signal, `worker, ${signal}: ends (${w.status ?? w.signal})`);
    t.notMatch(w.stderr, /INTERRUPTED/, `worker, ${signal}: not handled as a prune`);
  }
});

t.test('a signal once the output is in place: the prune finishes, and does not say nothing was written', { skip: process.platform === 'win32' ? 'POSIX signals' : false }, async (t) => {
  // A preload that sends the signal just as the output has been renamed into place.
  const preload = path.join(dir, 'signal-on-commit.js');
  fs.writeFileSync(
    preload,
    `const fsp = require('fs').promises;
    const rename = fsp.rename;
    fsp.rename = async function (from, to) {
      await rename.call(this, from, to);
      if (to === process.env.OUTPUT) process.kill(process.pid, process.env.SIGNAL);
    };`,
  );
  for (const signal of ['SIGTERM']) {
    const out = path.join(dir, `signal-on-commit-${signal}.onnx`);
    // Through a shell that clears NODE_OPTIONS, as above.
    const r = spawnSync('/bin/sh', ['-c', 'NODE_OPTIONS= exec "$@"', 'sh', process.execPath, '-r', preload, path.join(root, 'dist', 'lib', 'cli.js'), 'prune', CLS, '-o', out, '--beta', '0.05'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, SIGNAL: signal, OUTPUT: out },
    });
    t.same([r.status, r.signal], [0, null], `${signal}: the prune's own exit status (${r.stderr.trim()})`);
    t.notMatch(r.stderr, /INTERRUPTED/, `${signal}: not reported as interrupted`);
    t.ok(decodeModel(fs.readFileSync(out)).graph.nodes.length > 0, `${signal}: the output is complete`);
  }
});

t.test("a prune runs on the pool started before the package loads: no second pool's threads", async (t) => {
  // A preload that counts the threads piscina starts (its Worker is the one it finds at its load).
  const preload = path.join(dir, 'count-workers.js');
  fs.writeFileSync(
    preload,
    `const wt = require('worker_threads');
    let made = 0;
    wt.Worker = class extends wt.Worker { constructor(file, ...rest) { super(file, ...rest); if (String(file).includes('piscina')) made++; } };
    process.on('exit', () => process.stderr.write('pool threads: ' + made + '\\n'));`,
  );
  for (const threads of [['--threads', '2'], ['--threads=1']]) {
    const out = path.join(dir, `early-${threads.join('')}.onnx`);
    const r = spawnSync(process.execPath, ['-r', preload, path.join(root, 'dist', 'lib', 'cli.js'), 'prune', CLS, '-o', out, '--beta', '0.05', ...threads], { cwd: root, encoding: 'utf8' });
    t.equal(r.status, 0, r.stderr);
    const asked = Number(threads.join('=').split('=').pop());
    t.match(r.stderr, new RegExp(`^pool threads: ${asked}$`, 'm'), `${threads.join(' ')}: ${asked} pool threads in all`);
  }
});
