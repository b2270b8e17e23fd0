/**
 * Throughput of the hashing kernel on the weight set of a ResNet-50 (real layer shapes, He-initialised
 * random weights, one hash group per output neuron): native at 1 and all threads, per instruction
 * set, against the TypeScript reference in the same process.
 *
 *   npm run bench:hash [-- --runs 5 --beta 0.05 --quick]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { hashCapabilities, hashWeights } from '../lib/hash';
import { hashWeightsReference } from '../lib/kernels/hash';
import type { HashOptions } from '../lib/options';
import { Rng } from '../lib/rng';
import { fanIn, resnet50, weightCount } from './architectures';
import { machineLine, median, table, timeRuns } from './machine';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const runs = arg('runs', quick ? 2 : 5);
  const beta = arg('beta', 0.05);
  const rng = new Rng(50);
  // Outputs are allocated once and reused, as prune() hashes into memory it already has: a fresh 100 MB
  // per run would time the kernel's page faults, not its work.
  const layers = resnet50().map((l) => {
    const weights = rng.normals(weightCount(l), Math.sqrt(2 / fanIn(l)));
    return { ...l, groupSize: fanIn(l), weights, output: new Float32Array(weights.length).fill(1) };
  });
  const total = layers.reduce((a, l) => a + l.weights.length, 0);
  const caps = hashCapabilities();
  const cores = os.availableParallelism();

  const hashAll = (o: HashOptions) => async () => {
    for (const l of layers) await hashWeights(l.weights, l.groupSize, { ...o, beta, output: l.output });
  };
  const configs: { name: string; threads: number | string; simd: string; fn: () => Promise<unknown> | unknown; runs: number }[] = [];
  if (caps.native) {
    const best = caps.simd[caps.simd.length - 1];
    for (const simd of caps.simd) configs.push({ name: 'native', threads: 1, simd, fn: hashAll({ threads: 1, simd: simd as HashOptions['simd'] }), runs });
    for (const threads of [...new Set([2, cores])]) {
      configs.push({ name: 'native', threads, simd: best, fn: hashAll({ threads, simd: best as HashOptions['simd'] }), runs });
    }
  }
  configs.push({
    name: 'TS reference',
    threads: 1,
    simd: '-',
    fn: () => {
      for (const l of layers) hashWeightsReference(l.weights, l.groupSize, { beta, center: 'mean' }, l.output);
    },
    runs: 1,
  });

  console.log(`# Hashing throughput: ResNet-50 weights (${(total / 1e6).toFixed(2)} M float32 in ${layers.length} layers), beta=${beta}, per-neuron groups`);
  console.log(`Machine: ${machineLine()}; load average ${os.loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  const results: { name: string; threads: number | string; simd: string; ms: number; mvps: number }[] = [];
  for (const c of configs) {
    const ms = median(await timeRuns(c.fn, c.runs, c.name === 'TS reference' ? 0 : 1));
    results.push({ name: c.name, threads: c.threads, simd: c.simd, ms, mvps: total / ms / 1e3 });
    process.stderr.write(`  ${c.name} threads=${c.threads} simd=${c.simd}: ${ms.toFixed(1)} ms\n`);
  }
  const ref = results[results.length - 1];
  console.log(
    table(
      ['kernel', 'threads', 'SIMD', 'time (ms, median)', 'M values/s', 'speedup vs TS'],
      results.map((r) => [r.name, r.threads, r.simd, r.ms.toFixed(1), r.mvps.toFixed(1), `${(ref.ms / r.ms).toFixed(1)}x`]),
    ),
  );
  const outDir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(
    path.join(outDir, 'hash.json'),
    JSON.stringify({ date: new Date().toISOString(), machine: machineLine(), values: total, beta, runs, results }, null, 2) + '\n',
  );
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
