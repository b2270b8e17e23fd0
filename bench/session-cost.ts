/**
 * What a model costs onnxruntime-node to load and run, measured the same way for every bench: session
 * creation in a fresh process (its time, and the rise of peak RSS while onnxruntime folds constant
 * chains and holds what it computes), and inference of several models' sessions run in alternation
 * in one process, so that a change in the machine's load hits them all. One thread each.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';

import { packageRoot } from '../lib/binding';

export interface SessionCreation {
  createMs: number;
  /** Peak RSS during session creation above the RSS just before it (the file already read). */
  peakRiseMiB: number;
}

/**
 * Runs `script` (CommonJS, with `ort`, `fs` and lib/timing.ts as `timing` in scope, the latter compiled:
 * `npm run bench` builds first) in a fresh node process; returns what it prints as JSON.
 */
function inChild<T>(script: string): T {
  const ort = require.resolve('onnxruntime-node');
  const timing = path.join(packageRoot, 'dist', 'lib', 'timing.js');
  const prelude = `const ort = require(${JSON.stringify(ort)}); const fs = require('fs'); const timing = require(${JSON.stringify(timing)});`;
  const child = spawnSync(process.execPath, ['-e', `${prelude}\n(async () => {${script}})().catch((e) => { console.error(e); process.exit(1); });`], {
    encoding: 'utf8',
    maxBuffer: 1 << 24,
  });
  if (child.status !== 0) throw new Error(`bench child failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as T;
}

const SESSION_OPTIONS = `{ logSeverityLevel: 3, intraOpNumThreads: 1 }`;

/** Session creation of `file` in a fresh process (one thread), the file already read (peak RSS from /proc/self/status). */
export function creationRun(file: string): SessionCreation {
  return inChild(`
    const status = (k) => Number(new RegExp(k + ':\\\\s*(\\\\d+)').exec(fs.readFileSync('/proc/self/status', 'utf8'))[1]) / 1024;
    const bytes = fs.readFileSync(${JSON.stringify(file)});
    const before = status('VmRSS');
    const t0 = performance.now();
    await ort.InferenceSession.create(bytes, ${SESSION_OPTIONS});
    const createMs = performance.now() - t0;
    process.stdout.write(JSON.stringify({ createMs, peakRiseMiB: status('VmHWM') - before }));`);
}

/**
 * Median inference time of each file's session on one fixed input of `shape` (float32, or float16 for
 * models converted by bench/fp16.ts), the sessions run in alternation (one process, one thread each).
 */
export function inferenceRuns(files: string[], shape: number[], runs: number, type: 'float32' | 'float16' = 'float32'): number[] {
  const dtype = path.join(packageRoot, 'dist', 'lib', 'model', 'dtype.js');
  return inChild(`
    const shape = ${JSON.stringify(shape)};
    const x = new Float32Array(shape.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.37));
    const data = ${JSON.stringify(type)} === 'float16' ? Uint16Array.from(x, require(${JSON.stringify(dtype)}).numberToFloat16Bits) : x;
    const sessions = [];
    for (const f of ${JSON.stringify(files)}) sessions.push(await ort.InferenceSession.create(f, ${SESSION_OPTIONS}));
    const runs = sessions.map((s) => {
      const feed = { [s.inputNames[0]]: new ort.Tensor(${JSON.stringify(type)}, data, shape) };
      return () => s.run(feed);
    });
    const times = await timing.timeInterleaved(runs, ${runs}, { warmup: 1 });
    process.stdout.write(JSON.stringify(times.map(timing.median)));`);
}
