/**
 * Compression against fidelity on the real PP-OCRv4 models: prune() at several settings, and for each
 * the params, MACs, file size, onnxruntime-node latency (1 thread) before/after, and the task-level
 * fidelity of bench/ocr (det IoU of the binarised map, rec string agreement, cls argmax agreement).
 *
 *   node dist/bench/ocr-sweep.js [--quick] [--models det,rec,cls]
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

import { encodeModel } from '../lib/model/write';
import type { PruneOptions } from '../lib/options';
import { prune } from '../lib/prune';
import { evaluateOcrFidelity, makeClsSamples, makeDetSamples, makeRecSamples, ocrModelPath, type OcrFidelity, type OcrKind } from './ocr';
import { checkArgs, machineLine, table } from './machine';

/** The input shapes at which MACs are counted. */
export const INPUT_SHAPES: Record<OcrKind, number[]> = { det: [1, 3, 640, 640], rec: [1, 3, 48, 320], cls: [1, 3, 48, 192] };

const RED = { beta: 0.05 };
const SETTINGS: { name: string; options: PruneOptions }[] = [
  { name: 'defaults (budget, maxDeviation 0.01)', options: {} },
  { name: 'budget, maxDeviation 0.03', options: { maxDeviation: 0.03 } },
  { name: 'RED++ beta 0.05 (mean, minFanIn 200)', options: RED },
  { name: 'RED++ center mode', options: { ...RED, center: 'mode' } },
  { name: 'RED++ minFanIn 64', options: { ...RED, minFanIn: 64 } },
  { name: 'RED++ minFanIn 0 (every layer)', options: { ...RED, minFanIn: 0 } },
  { name: 'RED++ beta 0.1', options: { beta: 0.1 } },
  { name: 'RED++ beta 0.2', options: { beta: 0.2 } },
  { name: 'RED++ epsilon 0.02', options: { ...RED, epsilon: 0.02 } },
  { name: 'RED++ epsilon 0.05', options: { ...RED, epsilon: 0.05 } },
  { name: 'RED++ epsilon 0.1', options: { ...RED, epsilon: 0.1 } },
  { name: 'RED++ epsilon 0.2', options: { ...RED, epsilon: 0.2 } },
];
const QUICK = new Set(['defaults (budget, maxDeviation 0.01)', 'RED++ beta 0.05 (mean, minFanIn 200)', 'RED++ epsilon 0.05']);

export interface SweepPoint {
  model: OcrKind;
  setting: string;
  options: PruneOptions;
  params: { before: number; after: number };
  macs: { before: number; after: number };
  file: { before: number; after: number };
  hashedLayers: number;
  neuronsRemoved: number;
  fidelity: { metric: string; value: number; pass: boolean };
  latencyMs: { before: number; after: number };
  pruneMs: number;
}

/** The one fidelity figure a sweep point is judged by: det min IoU, rec same-string rate, cls same-argmax rate. */
export function headlineFidelity(f: OcrFidelity): { metric: string; value: number; pass: boolean } {
  return f.kind === 'det'
    ? { metric: 'min IoU', value: f.minIoU, pass: f.pass }
    : { metric: f.kind === 'rec' ? 'same string' : 'same argmax', value: f.agreement, pass: f.pass };
}

const pct = (b: number, a: number) => `${(((b - a) / b) * 100).toFixed(1)} %`;

async function main(): Promise<void> {
  checkArgs('ocr-sweep', { values: { models: 'det,rec,cls' }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const mi = process.argv.indexOf('--models');
  const kinds = (mi >= 0 ? process.argv[mi + 1].split(',') : ['det', 'rec', 'cls']) as OcrKind[];
  const samples = { det: makeDetSamples(), rec: makeRecSamples(), cls: makeClsSamples() };
  const points: SweepPoint[] = [];
  for (const kind of kinds) {
    for (const s of SETTINGS) {
      if (quick && !QUICK.has(s.name)) continue;
      const t0 = performance.now();
      const { model, report } = await prune(ocrModelPath(kind), { ...s.options, inputShapes: { x: INPUT_SHAPES[kind] } });
      const pruneMs = performance.now() - t0;
      const f = await evaluateOcrFidelity(kind, ocrModelPath(kind), encodeModel(model), {
        samples: samples[kind],
        latency: { warmup: 2, runs: quick ? 5 : 15 },
      } as Parameters<typeof evaluateOcrFidelity>[3]);
      const fidelity = headlineFidelity(f);
      points.push({
        model: kind,
        setting: s.name,
        options: s.options,
        params: report.params,
        macs: { before: report.macs.before ?? NaN, after: report.macs.after ?? NaN },
        file: report.file,
        hashedLayers: report.layers.filter((l) => l.hash).length,
        neuronsRemoved: report.layers.reduce((a, l) => a + l.neurons.before - l.neurons.after, 0),
        fidelity,
        latencyMs: { before: f.latency!.singleThread.original, after: f.latency!.singleThread.candidate },
        pruneMs,
      });
      process.stderr.write(`  ${kind} / ${s.name}: ${fidelity.metric} ${fidelity.value.toFixed(4)} ${fidelity.pass ? 'pass' : 'FAIL'}\n`);
    }
  }
  console.log(`# Compression vs fidelity on PP-OCRv4 (rendered text; bench/ocr)\n`);
  console.log(`Machine: ${machineLine()}. Latency: onnxruntime-node, 1 thread, median.\n`);
  console.log(
    table(
      ['model', 'setting', 'hashed layers', 'neurons removed', 'params removed', 'MACs removed', 'file', 'fidelity', 'pass', 'latency ms before → after'],
      points.map((p) => [
        p.model,
        p.setting,
        p.hashedLayers,
        p.neuronsRemoved,
        pct(p.params.before, p.params.after),
        pct(p.macs.before, p.macs.after),
        pct(p.file.before, p.file.after),
        `${p.fidelity.metric} ${p.fidelity.value.toFixed(4)}`,
        p.fidelity.pass ? 'yes' : '**no**',
        `${p.latencyMs.before.toFixed(2)} → ${p.latencyMs.after.toFixed(2)}`,
      ]),
    ),
  );
  const dir = path.join(__dirname, '..', '..', 'bench', 'results');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, `ocr-sweep${quick ? '-quick' : ''}.json`), JSON.stringify({ date: new Date().toISOString(), machine: machineLine(), points }, null, 2) + '\n');
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
