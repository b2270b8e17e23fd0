/**
 * Whole-model pruning time and peak memory: `redpp prune` (the CLI, in a child process, validation
 * off) on a ResNet-50 built as ONNX with its real layer shapes and random weights. Reports wall time
 * (median of runs), the time of each phase, and peak RSS against the model's size.
 *
 *   node dist/bench/prune-speed.js [--runs 3] [--threads 2]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { saveModel } from '../lib/model/write';
import { machineLine, median, table } from './machine';
import { resnet50Model } from './models';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

async function main(): Promise<void> {
  const runs = arg('runs', 3);
  const threads = arg('threads', os.availableParallelism());
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-'));
  try {
    const file = path.join(dir, 'resnet50.onnx');
    const { bytes } = await saveModel(resnet50Model(), file);
    const cli = path.join(__dirname, '..', 'lib', 'cli.js');
    // The child reports its own peak RSS (worker threads included) after the CLI is done.
    const probe = `const { main } = require(${JSON.stringify(cli)});
      main(process.argv.slice(1)).then((code) => { process.stderr.write('@@' + JSON.stringify({ code, maxRssKb: process.resourceUsage().maxRSS }) + '\\n'); });`;
    const results: { wallMs: number; maxRssKb: number; phases: Record<string, number> }[] = [];
    for (let r = 0; r < runs; r++) {
      const t0 = performance.now();
      const out = spawnSync(
        process.execPath,
        ['-e', probe, 'prune', file, '-o', path.join(dir, 'pruned.onnx'), '--json', '--threads', String(threads), '--input-shape', 'x=1x3x224x224'],
        { encoding: 'utf8', maxBuffer: 1 << 28 },
      );
      const wallMs = performance.now() - t0;
      const tail = /@@(.*)/.exec(out.stderr);
      if (out.status !== 0 || !tail) throw new Error(`redpp prune failed: ${out.stderr}`);
      const { maxRssKb } = JSON.parse(tail[1]);
      results.push({ wallMs, maxRssKb, phases: JSON.parse(out.stdout).timingsMs });
      process.stderr.write(`  run ${r + 1}: ${wallMs.toFixed(0)} ms, peak RSS ${(maxRssKb / 1024).toFixed(0)} MiB\n`);
    }
    const mib = bytes / 2 ** 20;
    const peak = median(results.map((r) => r.maxRssKb)) / 1024;
    console.log(`# redpp prune on ResNet-50 (${mib.toFixed(1)} MiB, random weights), ${threads} threads, validation off\n`);
    console.log(`Machine: ${machineLine()}\n`);
    console.log(
      table(
        ['wall (median of ' + runs + ')', 'peak RSS', 'peak / model size', ...Object.keys(results[0].phases)],
        [[
          `${median(results.map((r) => r.wallMs)).toFixed(0)} ms`,
          `${peak.toFixed(0)} MiB`,
          `${(peak / mib).toFixed(2)}x`,
          ...Object.keys(results[0].phases).map((k) => `${median(results.map((r) => r.phases[k])).toFixed(0)} ms`),
        ]],
      ),
    );
    const outDir = path.join(__dirname, '..', '..', 'bench', 'results');
    fs.mkdirSync(outDir, { recursive: true });
    fs.writeFileSync(path.join(outDir, 'prune-speed.json'), JSON.stringify({ date: new Date().toISOString(), machine: machineLine(), modelBytes: bytes, threads, results }, null, 2) + '\n');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
