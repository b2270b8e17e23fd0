/**
 * Throughput of the hashing kernel on the weight set of a ResNet-50 (real layer shapes, He-initialised
 * random weights, one hash group per output neuron): native at 1 and all threads, per instruction
 * set, against the TypeScript reference in the same process.
 *
 *   npm run bench:hash [-- --runs 5 --beta 0.05 --quick]
 */
import * as os from 'node:os';

import { hashCapabilities, hashWeights } from '../lib/hash';
import { hashWeightsReference } from '../lib/kernels/hash';
import type { HashOptions } from '../lib/options';
import { Rng } from '../lib/rng';
import { fanIn, resnet50, weightCount } from './architectures';
import { timeInterleaved } from '../lib/timing';
import { checkArgs, loadLine, machineLine, median, numberArg, table, writeResult } from './machine';

export interface HashBenchRow {
  name: string;
  threads: number | string;
  simd: string;
  /** Median milliseconds to hash every layer. */
  ms: number;
  mvps: number;
}

export interface HashBench {
  values: number;
  beta: number;
  runs: number;
  results: HashBenchRow[];
  /** The Markdown table. */
  table: string;
}

export async function runHashBench(options: { runs?: number; beta?: number; quick?: boolean } = {}): Promise<HashBench> {
  const quick = options.quick ?? false;
  const runs = options.runs ?? (quick ? 2 : 5);
  const beta = options.beta ?? 0.05;
  const rng = new Rng(50);
  const layers = resnet50().map((l) => {
    const weights = rng.normals(weightCount(l), Math.sqrt(2 / fanIn(l)));
    return { ...l, groupSize: fanIn(l), weights, output: new Float32Array(weights.length) };
  });
  const total = layers.reduce((a, l) => a + l.weights.length, 0);
  const caps = hashCapabilities();
  const cores = os.availableParallelism();

  // Into each layer's own output array, reused across runs (options.output): the kernel's time, not
  // that of zeroing and faulting in 100 MB of new arrays per run, which one row shows apart.
  const hashAll = (o: HashOptions, reuse = true) => async () => {
    for (const l of layers) await hashWeights(l.weights, l.groupSize, { ...o, beta, ...(reuse ? { output: l.output } : {}) });
  };
  const configs: { name: string; threads: number | string; simd: string; fn: () => Promise<unknown> | unknown; runs: number; warmup?: number }[] = [];
  if (caps.native) {
    const best = caps.simd[caps.simd.length - 1];
    // Quick: the best instruction set only.
    for (const simd of quick ? [best] : caps.simd) configs.push({ name: 'native', threads: 1, simd, fn: hashAll({ threads: 1, simd: simd as HashOptions['simd'] }), runs });
    for (const threads of [...new Set([2, cores])]) {
      configs.push({ name: 'native', threads, simd: best, fn: hashAll({ threads, simd: best as HashOptions['simd'] }), runs });
    }
    const fresh = { threads: cores, simd: best as HashOptions['simd'] };
    configs.push({ name: 'native, new output arrays', threads: cores, simd: best, fn: hashAll(fresh, false), runs });
  }
  configs.push({
    name: 'TS reference',
    threads: 1,
    simd: '-',
    fn: () => {
      for (const l of layers) hashWeightsReference(l.weights, l.groupSize, { beta, center: 'mean' }, l.output);
    },
    runs: quick ? 1 : 3,
    warmup: quick ? 0 : 1,
  });
  const results: HashBenchRow[] = [];
  for (const c of configs) {
    const [times] = await timeInterleaved([async () => c.fn()], c.runs, { warmup: c.warmup ?? 1 });
    const ms = median(times);
    results.push({ name: c.name, threads: c.threads, simd: c.simd, ms, mvps: total / ms / 1e3 });
    process.stderr.write(`  hash: ${c.name} threads=${c.threads} simd=${c.simd}: ${ms.toFixed(1)} ms\n`);
  }
  const ref = results[results.length - 1];
  const md = table(
    ['kernel', 'threads', 'SIMD', 'time (ms, median)', 'M values/s', 'speedup vs TS'],
    results.map((r) => [r.name, r.threads, r.simd, r.ms.toFixed(1), r.mvps.toFixed(1), `${(ref.ms / r.ms).toFixed(1)}x`]),
  );
  return { values: total, beta, runs, results, table: md };
}

async function main(): Promise<void> {
  checkArgs('hash', { values: { runs: 'N', beta: 'B' }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const r = await runHashBench({ quick, runs: numberArg('runs', quick ? 2 : 5), beta: numberArg('beta', 0.05) });
  console.log(`# Hashing throughput: ResNet-50 weights (${(r.values / 1e6).toFixed(2)} M float32), beta=${r.beta}, per-neuron groups`);
  console.log(`Machine: ${machineLine()}; ${loadLine()}\n`);
  console.log(r.table);
  const { table: _, ...data } = r;
  writeResult('hash', data);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
