/**
 * Whole-model pruning time, event-loop stalls and peak memory: `redpp prune` (the CLI, in a child
 * process) on ResNet-50, VGG-16 (float32 and float16) and MobileNetV2 built as ONNX with their real
 * layer shapes and random weights, ISNet (a float16 U-Net of 44 M weights), and three 16384² Gemms in
 * 3.2 GB of external data, in three modes:
 * RED++ hashing at one beta (`--beta 0.05`), the defaults (the fidelity budget), and the beta run with
 * `--validate` (validation is off in the others). Reports wall
 * time (median of the mode's runs, after its warm-up runs), the time of each
 * phase, the longest stall of the child's event loop (monitorEventLoopDelay), and peak RSS against the
 * model's size. Side by side, the same run times a NumPy peer (bench/peer/hash_numpy.py) hashing the
 * same weights per layer, vectorised, hashing alone (reading excluded), where python3 with NumPy is
 * installed.
 *
 *   node dist/bench/prune-speed.js [--runs N] [--threads 2] [--models resnet50,vgg16,vgg16-fp16,mobilenetv2,gemms-external,isnet-fp16] [--modes beta,defaults,validate] [--quick]
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { layerTable } from '../lib/layers';
import { toRows } from '../lib/layers/grid';
import type { Model } from '../lib/model/model';
import { saveModel } from '../lib/model/write';
import { modelStats } from '../lib/stats';
import { checkArgs, listArg, loadLine, machineLine, median, numberArg, table, writeResult } from './machine';
import { toFloat16 } from './fp16';
import { BENCH_MODELS, gemmsModel, isnetModel } from './models';

/**
 * Each mode: the CLI's arguments, and its runs (after untimed warm-up runs). The budget runs its probes
 * in onnxruntime for a minute on ResNet-50: one run of it, against a few of a beta run's seconds.
 */
export const SPEED_MODES: Record<string, { args: string[]; runs: number; warmup: number }> = {
  beta: { args: ['--beta', '0.05'], runs: 3, warmup: 1 },
  defaults: { args: [], runs: 1, warmup: 0 },
  // The beta run validated in onnxruntime (both models' sessions, 13 runs each): its stall column is
  // what a server embedding prune() with validation sees.
  validate: { args: ['--beta', '0.05', '--validate'], runs: 1, warmup: 0 },
};

/** A model of the speed bench: how to build it, its input's shape, the modes it runs in, whether the peer runs beside. */
interface SpeedModel {
  build: () => Model;
  input: number[];
  modes?: string[];
  peer: boolean;
}

export const SPEED_MODELS: Record<string, SpeedModel> = {
  ...Object.fromEntries(Object.entries(BENCH_MODELS).map(([name, build]) => [name, { build, input: [1, 3, 224, 224], peer: true }])),
  // 3.2 GB in external data. RED++ at one beta only: the budget would encode its 805 M weights at every
  // candidate setting in TypeScript quantizers (minutes); and no NumPy peer, which would read the
  // weights from 3.2 GB of files written for it.
  'gemms-external': { build: () => gemmsModel(), input: [1, 16384], modes: ['beta'], peer: false },
  // The float16 U-Net of the first row, at DIS's 1024x1024. RED++ at one beta only: the budget
  // and validation would run its 160 G MACs in onnxruntime many times over (minutes a run).
  'isnet-fp16': { build: () => toFloat16(isnetModel()), input: [1, 3, 1024, 1024], modes: ['beta'], peer: true },
};

export interface PruneSpeedRun {
  wallMs: number;
  maxRssKb: number;
  /** The child's longest event-loop stall (monitorEventLoopDelay's max). */
  maxStallMs: number;
  phases: Record<string, number>;
}

export interface PruneSpeedModel {
  model: string;
  mode: string;
  modelBytes: number;
  params: number;
  macs: number;
  threads: number;
  warmup: number;
  runs: PruneSpeedRun[];
  medianWallMs: number;
  medianPeakRssMiB: number;
  medianMaxStallMs: number;
  /** The NumPy peer hashing the same weights (ms), or why it did not run. */
  peer: { ms: number; numpy: string } | { error: string };
}

export interface PruneSpeed {
  models: PruneSpeedModel[];
  table: string;
}

/** Prunes each model with the CLI `runs` times (after `warmup` untimed runs; default: the mode's) and reports medians. */
export async function runPruneSpeed(
  options: { models?: string[]; modes?: string[]; runs?: number; warmup?: number; threads?: number } = {},
): Promise<PruneSpeed> {
  const names = options.models ?? Object.keys(SPEED_MODELS);
  const modes = options.modes ?? Object.keys(SPEED_MODES);
  const threads = options.threads ?? os.availableParallelism();
  const cli = path.join(__dirname, '..', 'lib', 'cli.js');
  // The child runs `redpp` as a user does (lib/cli.js, which starts a prune's pool before it loads the
  // rest of the package), with a preload that measures its event loop from when the package has loaded
  // (monitorEventLoopDelay: loading modules is not a prune's stall) and reports at exit. With its peak
  // RSS (worker threads included): VmHWM, the high-water mark of its address space. Not getrusage's
  // maxRSS: on Linux a child starts with its parent's maxRSS, so it would report this process's size
  // (the models it built) when that is larger.
  const probe = `const Module = require('module');
    const load = Module._load;
    let delay;
    Module._load = function (request, ...rest) {
      const loaded = load.call(this, request, ...rest);
      if (request === './command-line' && !delay) {
        Module._load = load;
        delay = require('perf_hooks').monitorEventLoopDelay({ resolution: 5 });
        delay.enable();
      }
      return loaded;
    };
    const hwm = () => { try { return Number(/VmHWM:\\s*(\\d+)/.exec(require('fs').readFileSync('/proc/self/status', 'utf8'))[1]); } catch { return process.resourceUsage().maxRSS; } };
    process.on('exit', (code) => { delay?.disable(); process.stderr.write('@@' + JSON.stringify({ code, maxRssKb: hwm(), maxStallMs: delay ? delay.max / 1e6 : NaN }) + '\\n'); });`;
  const out: PruneSpeedModel[] = [];
  for (const name of names) {
    const spec = SPEED_MODELS[name];
    if (!spec) throw new Error(`unknown model '${name}' (one of ${Object.keys(SPEED_MODELS).join(', ')})`);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-'));
    try {
      const probeFile = path.join(dir, 'probe.js');
      fs.writeFileSync(probeFile, probe);
      const file = path.join(dir, `${name}.onnx`);
      const model = spec.build();
      const stats = modelStats(model, { x: spec.input });
      const saved = await saveModel(model, file);
      const bytes = saved.bytes + saved.externalBytes;
      const peer = spec.peer ? runPeer(model, dir) : { error: 'not run on this model' };
      for (const mode of modes.filter((m) => !spec.modes || spec.modes.includes(m))) {
        if (!SPEED_MODES[mode]) throw new Error(`unknown mode '${mode}' (one of ${Object.keys(SPEED_MODES).join(', ')})`);
        const runs = options.runs ?? SPEED_MODES[mode].runs;
        const warmup = options.warmup ?? SPEED_MODES[mode].warmup;
        const results: PruneSpeedRun[] = [];
        for (let r = 0; r < warmup + runs; r++) {
          const t0 = performance.now();
          const child = spawnSync(
            process.execPath,
            ['-r', probeFile, cli, 'prune', file, '-o', path.join(dir, 'pruned.onnx'), '--json', '--threads', String(threads), '--input-shape', `x=${spec.input.join('x')}`, ...SPEED_MODES[mode].args],
            { encoding: 'utf8', maxBuffer: 1 << 28 },
          );
          const wallMs = performance.now() - t0;
          const tail = /@@(.*)/.exec(child.stderr);
          if (child.status !== 0 || !tail) throw new Error(`redpp prune failed on ${name}: ${child.stderr}`);
          const { maxRssKb, maxStallMs } = JSON.parse(tail[1]);
          if (r < warmup) continue;
          results.push({ wallMs, maxRssKb, maxStallMs, phases: JSON.parse(child.stdout).timingsMs });
          process.stderr.write(`  prune ${name} (${mode}) run ${r - warmup + 1}: ${wallMs.toFixed(0)} ms, stall ${maxStallMs.toFixed(0)} ms, peak RSS ${(maxRssKb / 1024).toFixed(0)} MiB\n`);
        }
        out.push({
          model: name,
          mode,
          modelBytes: bytes,
          params: stats.params,
          macs: stats.macs ?? NaN,
          threads,
          warmup,
          runs: results,
          medianWallMs: median(results.map((r) => r.wallMs)),
          medianPeakRssMiB: median(results.map((r) => r.maxRssKb)) / 1024,
          medianMaxStallMs: median(results.map((r) => r.maxStallMs)),
          peer,
        });
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }
  const phases = [...new Set(out.flatMap((m) => Object.keys(m.runs[0].phases)))];
  const md = table(
    ['model', 'mode', 'params', 'file', 'runs', 'wall (median)', 'NumPy peer, hashing alone', 'peer / wall', 'longest stall', 'peak RSS', 'peak / file', ...phases],
    out.map((m) => {
      const mib = m.modelBytes / 2 ** 20;
      return [
        m.model,
        m.mode,
        `${(m.params / 1e6).toFixed(1)} M`,
        `${mib.toFixed(1)} MiB`,
        String(m.runs.length),
        `${m.medianWallMs.toFixed(0)} ms`,
        'ms' in m.peer ? `${m.peer.ms.toFixed(0)} ms` : '—',
        'ms' in m.peer ? `${(m.peer.ms / m.medianWallMs).toFixed(2)}x` : '—',
        `${m.medianMaxStallMs.toFixed(0)} ms`,
        `${m.medianPeakRssMiB.toFixed(0)} MiB`,
        `${(m.medianPeakRssMiB / mib).toFixed(2)}x`,
        ...phases.map((k) => `${median(m.runs.map((r) => r.phases[k] ?? 0)).toFixed(0)} ms`),
      ];
    }),
  );
  const peerError = out.find((m) => 'error' in m.peer && SPEED_MODELS[m.model].peer)?.peer as { error: string } | undefined;
  if (peerError) process.stderr.write(`  NumPy peer: ${peerError.error}\n`);
  return { models: out, table: md };
}

/**
 * The NumPy peer on the model's weighted layers, each as rows of one neuron's weights (the groups
 * redpp hashes): the layers are written as raw float32 for it, and it times its hashing alone.
 */
function runPeer(model: Model, dir: string): { ms: number; numpy: string } | { error: string } {
  const layers: { file: string; rows: number; fanIn: number }[] = [];
  for (const [i, layer] of layerTable(model.graph).entries()) {
    const layout = layer.layout();
    if ('skip' in layout) continue;
    const file = path.join(dir, `layer${i}.f32`);
    const rows = toRows(layout.grid, layout.tensor.toFloat32());
    fs.writeFileSync(file, new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
    layers.push({ file, rows: layout.neurons, fanIn: layout.fanIn });
  }
  const manifest = path.join(dir, 'peer.json');
  fs.writeFileSync(manifest, JSON.stringify({ beta: 0.05, layers }));
  const script = path.join(__dirname, '..', '..', 'bench', 'peer', 'hash_numpy.py');
  const r = spawnSync('python3', [script, manifest], { encoding: 'utf8', maxBuffer: 1 << 20 });
  for (const l of layers) fs.rmSync(l.file, { force: true });
  if (r.error) return { error: `python3 did not run (${r.error.message})` };
  if (r.status !== 0) return { error: `the peer failed: ${r.stderr.trim().split('\n').pop()}` };
  const { ms, numpy } = JSON.parse(r.stdout) as { ms: number; numpy: string };
  return { ms, numpy };
}

async function main(): Promise<void> {
  checkArgs('prune-speed', { values: { runs: 'N', threads: 'N', models: Object.keys(SPEED_MODELS).join(','), modes: Object.keys(SPEED_MODES).join(',') }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const r = await runPruneSpeed({
    models: listArg('models', quick ? ['mobilenetv2', 'resnet50'] : Object.keys(SPEED_MODELS)),
    modes: listArg('modes', Object.keys(SPEED_MODES)),
    ...(process.argv.includes('--runs') ? { runs: numberArg('runs', 1) } : {}),
    ...(quick ? { runs: 1, warmup: 0 } : {}),
    threads: numberArg('threads', os.availableParallelism()),
  });
  console.log(`# redpp prune (CLI, validation off but in the validate mode) on standard CNNs built as ONNX (random weights), beside a NumPy peer's hashing\n`);
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
