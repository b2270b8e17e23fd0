/**
 * Whole-model pruning time and peak memory: `redpp prune` (the CLI, in a child process, validation
 * off) on ResNet-50, VGG-16 and MobileNetV2 built as ONNX with their real layer shapes and random
 * weights. Reports wall time (median of runs after one warm-up run), the time of each phase, and peak
 * RSS against the model's size.
 *
 *   node dist/bench/prune-speed.js [--runs 3] [--threads 2] [--models resnet50,vgg16,mobilenetv2] [--quick]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { saveModel } from '../lib/model/write';
import { modelStats } from '../lib/stats';
import { listArg, loadLine, machineLine, median, numberArg, table, writeResult } from './machine';
import { BENCH_MODELS } from './models';

export interface PruneSpeedRun {
  wallMs: number;
  maxRssKb: number;
  phases: Record<string, number>;
}

export interface PruneSpeedModel {
  model: string;
  modelBytes: number;
  params: number;
  macs: number;
  threads: number;
  warmup: number;
  runs: PruneSpeedRun[];
  medianWallMs: number;
  medianPeakRssMiB: number;
}

export interface PruneSpeed {
  models: PruneSpeedModel[];
  table: string;
}

/** Prunes each model with the CLI `runs` times (after `warmup` untimed runs) and reports medians. */
export async function runPruneSpeed(
  options: { models?: string[]; runs?: number; warmup?: number; threads?: number } = {},
): Promise<PruneSpeed> {
  const names = options.models ?? Object.keys(BENCH_MODELS);
  const runs = options.runs ?? 3;
  const warmup = options.warmup ?? 1;
  const threads = options.threads ?? os.availableParallelism();
  const cli = path.join(__dirname, '..', 'lib', 'cli.js');
  // The child reports its own peak RSS (worker threads included) after the CLI is done: VmHWM, the
  // high-water mark of its address space. Not getrusage's maxRSS: on Linux a child starts with its
  // parent's maxRSS, so it would report this process's size (the models it built) when that is larger.
  const probe = `const { main } = require(${JSON.stringify(cli)});
    const hwm = () => { try { return Number(/VmHWM:\\s*(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]); } catch { return process.resourceUsage().maxRSS; } };
    main(process.argv.slice(1)).then((code) => { process.stderr.write('@@' + JSON.stringify({ code, maxRssKb: hwm() }) + '\\n'); });`;
  const out: PruneSpeedModel[] = [];
  for (const name of names) {
    const build = BENCH_MODELS[name];
    if (!build) throw new Error(`unknown model '${name}' (one of ${Object.keys(BENCH_MODELS).join(', ')})`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-'));
    try {
      const file = path.join(dir, `${name}.onnx`);
      const model = build();
      const stats = modelStats(model, { x: [1, 3, 224, 224] });
      const { bytes } = await saveModel(model, file);
      const results: PruneSpeedRun[] = [];
      for (let r = 0; r < warmup + runs; r++) {
        const t0 = performance.now();
        const child = spawnSync(
          process.execPath,
          ['-e', probe, 'prune', file, '-o', path.join(dir, 'pruned.onnx'), '--json', '--threads', String(threads), '--input-shape', 'x=1x3x224x224'],
          { encoding: 'utf8', maxBuffer: 1 << 28 },
        );
        const wallMs = performance.now() - t0;
        const tail = /@@(.*)/.exec(child.stderr);
        if (child.status !== 0 || !tail) throw new Error(`redpp prune failed on ${name}: ${child.stderr}`);
        const { maxRssKb } = JSON.parse(tail[1]);
        if (r < warmup) continue;
        results.push({ wallMs, maxRssKb, phases: JSON.parse(child.stdout).timingsMs });
        process.stderr.write(`  prune ${name} run ${r - warmup + 1}: ${wallMs.toFixed(0)} ms, peak RSS ${(maxRssKb / 1024).toFixed(0)} MiB\n`);
      }
      out.push({
        model: name,
        modelBytes: bytes,
        params: stats.params,
        macs: stats.macs ?? NaN,
        threads,
        warmup,
        runs: results,
        medianWallMs: median(results.map((r) => r.wallMs)),
        medianPeakRssMiB: median(results.map((r) => r.maxRssKb)) / 1024,
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const phases = [...new Set(out.flatMap((m) => Object.keys(m.runs[0].phases)))];
  const md = table(
    ['model', 'params', 'GMACs', 'file', `wall (median of ${runs})`, 'peak RSS', 'peak / file', ...phases],
    out.map((m) => {
      const mib = m.modelBytes / 2 ** 20;
      return [
        m.model,
        `${(m.params / 1e6).toFixed(1)} M`,
        (m.macs / 1e9).toFixed(2),
        `${mib.toFixed(1)} MiB`,
        `${m.medianWallMs.toFixed(0)} ms`,
        `${m.medianPeakRssMiB.toFixed(0)} MiB`,
        `${(m.medianPeakRssMiB / mib).toFixed(2)}x`,
        ...phases.map((k) => `${median(m.runs.map((r) => r.phases[k] ?? 0)).toFixed(0)} ms`),
      ];
    }),
  );
  return { models: out, table: md };
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const r = await runPruneSpeed({
    models: listArg('models', quick ? ['mobilenetv2', 'resnet50'] : Object.keys(BENCH_MODELS)),
    runs: numberArg('runs', quick ? 1 : 3),
    warmup: quick ? 0 : 1,
    threads: numberArg('threads', os.availableParallelism()),
  });
  console.log(`# redpp prune (CLI, validation off) on standard CNNs built as ONNX (random weights)\n`);
  console.log(`Machine: ${machineLine()}; ${loadLine()}\n`);
  console.log(r.table);
  const { table: _, ...data } = r;
  writeResult('prune-speed', data);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
