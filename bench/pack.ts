/**
 * The packed export against the hashed model it rebuilds, on the PP-OCRv4 models (float32 as shipped,
 * and converted to float16) at three settings, and on ResNet-50 and VGG-16 built with random weights:
 *
 * - file size: packed ÷ hashed and ÷ original, beside the floor that no exact packing of the hashed
 *   weights can go under (everything in the file but those weights: the layers left dense, biases, graph);
 * - session creation in onnxruntime-node (a fresh process each time): time and the rise of peak RSS, since
 *   onnxruntime folds the packed chains then and holds what it computes until the session is made;
 * - inference latency of both sessions, run in alternation in one process (the folded graph is the
 *   hashed one: they should tie).
 *
 *   node dist/bench/pack.js [--quick] [--runs 5]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { decodeModel, loadModel } from '../lib/load';
import { encodeModel } from '../lib/model';
import { LayerPlan } from '../lib/passes/layer-records';
import type { Model } from '../lib/model/model';
import { packPass } from '../lib/passes/codecs/pack';
import { runPasses } from '../lib/passes/pass';
import { prune } from '../lib/prune';
import { toFloat16 } from './fp16';
import { checkArgs, loadLine, machineLine, median, numberArg, resultsDir, table, writeResult } from './machine';
import { BENCH_MODELS } from './models';
import { ocrModelPath } from './ocr/paths';
import { INPUT_SHAPES } from './ocr-sweep';
import { creationRun, inferenceRuns, type SessionCreation } from './session-cost';

interface Setting {
  name: string;
  options: { beta: number; minFanIn?: number };
}

const SETTINGS: Setting[] = [
  { name: 'defaults', options: { beta: 0.05 } },
  { name: 'minFanIn 0', options: { beta: 0.05, minFanIn: 0 } },
  { name: 'beta 0.2, minFanIn 0', options: { beta: 0.2, minFanIn: 0 } },
];

export interface PackSizePoint {
  model: string;
  dtype: 'float32' | 'float16';
  setting: string;
  bytes: { original: number; hashed: number; packed: number };
  /** Bytes of the hashed file that are not weights of hashed layers: a floor for any exact packing. */
  floorBytes: number;
  packedLayers: number;
  hashedLayers: number;
  /** Packed layers per index width (bits). */
  indexBits: Record<string, number>;
}

export interface PackSessionPoint {
  model: string;
  setting: string;
  form: 'hashed' | 'packed';
  bytes: number;
  /** Median inference time, the hashed and packed sessions run in alternation in one process. */
  inferMs: number;
  /** Session creation, a fresh process each. */
  creation: SessionCreation[];
}

export interface PackBench {
  sizes: PackSizePoint[];
  sessions: PackSessionPoint[];
  sizeTable: string;
  sessionTable: string;
}

interface Source {
  name: string;
  dtype: 'float32' | 'float16';
  load: () => Promise<Model>;
  shape: number[];
  settings: Setting[];
  /** Time session creation for these settings. */
  sessions: string[];
}

function sources(quick: boolean): Source[] {
  const kinds = quick ? (['cls'] as const) : (['det', 'rec', 'cls'] as const);
  const ocr = kinds.map((name) => ({ name, path: ocrModelPath(name), shape: INPUT_SHAPES[name] }));
  const out: Source[] = [];
  for (const m of ocr) {
    out.push({ name: m.name, dtype: 'float32', load: () => loadModel(m.path), shape: m.shape, settings: SETTINGS, sessions: quick ? ['defaults'] : ['defaults', 'beta 0.2, minFanIn 0'] });
  }
  if (quick) return out;
  for (const m of ocr) {
    out.push({ name: m.name, dtype: 'float16', load: async () => toFloat16(await loadModel(m.path)), shape: m.shape, settings: SETTINGS, sessions: [] });
  }
  for (const name of ['resnet50', 'vgg16']) {
    out.push({ name, dtype: 'float32', load: async () => BENCH_MODELS[name](), shape: [1, 3, 224, 224], settings: SETTINGS.slice(0, 1), sessions: ['defaults'] });
  }
  return out;
}

/** Sizes and, where asked, session figures of every source at every setting. */
export async function runPackBench(options: { quick?: boolean; runs?: number } = {}): Promise<PackBench> {
  const quick = options.quick ?? false;
  const runs = options.runs ?? (quick ? 1 : 5);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-pack-'));
  const sizes: PackSizePoint[] = [];
  const sessions: PackSessionPoint[] = [];
  try {
    for (const src of sources(quick)) {
      const original = encodeModel(await src.load());
      for (const setting of src.settings) {
        const { model, report } = await prune(original, { ...setting.options, pack: false, inputShapes: { x: src.shape } });
        const hashed = encodeModel(model);
        const copy = decodeModel(hashed);
        const plan = new LayerPlan(copy);
        await runPasses(copy, [packPass()], plan);
        const packedRecords = plan.records.flatMap((r) => (r.packed ? [r.packed] : []));
        const packed = encodeModel(copy);
        const elementBytes = src.dtype === 'float16' ? 2 : 4;
        const hashedLayers = report.layers.filter((l) => l.hash);
        const hashedWeightBytes = hashedLayers.reduce((a, l) => a + l.neurons.after * l.fanIn * elementBytes, 0);
        const indexBits: Record<string, number> = {};
        for (const p of packedRecords) indexBits[p.indexBits ?? 16] = (indexBits[p.indexBits ?? 16] ?? 0) + 1;
        sizes.push({
          model: src.name,
          dtype: src.dtype,
          setting: setting.name,
          bytes: { original: original.byteLength, hashed: hashed.byteLength, packed: packed.byteLength },
          floorBytes: hashed.byteLength - hashedWeightBytes,
          packedLayers: packedRecords.length,
          hashedLayers: hashedLayers.length,
          indexBits,
        });
        process.stderr.write(`  pack ${src.name} ${src.dtype} ${setting.name}: ${hashed.byteLength} -> ${packed.byteLength} bytes\n`);
        if (!src.sessions.includes(setting.name)) continue;
        const forms = [['hashed', hashed], ['packed', packed]] as const;
        const files = forms.map(([form, bytes]) => {
          const file = path.join(dir, `${src.name}.${form}.onnx`);
          fs.writeFileSync(file, bytes);
          return file;
        });
        const inferMs = inferenceRuns(files, src.shape, quick ? 3 : 20);
        forms.forEach(([form, bytes], k) => {
          const point: PackSessionPoint = { model: src.name, setting: setting.name, form, bytes: bytes.byteLength, inferMs: inferMs[k], creation: [] };
          for (let r = 0; r < runs; r++) point.creation.push(creationRun(files[k]));
          sessions.push(point);
          const m = (k: keyof SessionCreation) => median(point.creation.map((x) => x[k])).toFixed(1);
          process.stderr.write(`  session ${src.name} ${setting.name} ${form}: create ${m('createMs')} ms, +${m('peakRiseMiB')} MiB, infer ${inferMs[k].toFixed(2)} ms\n`);
        });
      }
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
  return { sizes, sessions, sizeTable: sizeTable(sizes), sessionTable: sessionTable(sessions, runs) };
}

const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(1)} %`;
const mib = (n: number) => `${(n / 2 ** 20).toFixed(2)} MiB`;

function sizeTable(points: PackSizePoint[]): string {
  return table(
    ['model', 'weights', 'setting', 'hashed', 'packed', 'packed ÷ hashed', 'packed ÷ original', 'floor ÷ hashed', 'layers packed / hashed', 'index bits (layers)'],
    points.map((p) => [
      p.model,
      p.dtype,
      p.setting,
      mib(p.bytes.hashed),
      mib(p.bytes.packed),
      pct(p.bytes.packed, p.bytes.hashed),
      pct(p.bytes.packed, p.bytes.original),
      pct(p.floorBytes, p.bytes.hashed),
      `${p.packedLayers} / ${p.hashedLayers}`,
      Object.entries(p.indexBits)
        .map(([b, n]) => `${b}: ${n}`)
        .join(', '),
    ]),
  );
}

function sessionTable(points: PackSessionPoint[], runs: number): string {
  const rows: string[][] = [];
  for (const hashed of points.filter((p) => p.form === 'hashed')) {
    const packed = points.find((p) => p.form === 'packed' && p.model === hashed.model && p.setting === hashed.setting)!;
    const m = (p: PackSessionPoint, k: keyof SessionCreation) => median(p.creation.map((r) => r[k]));
    rows.push([
      hashed.model,
      hashed.setting,
      `${mib(hashed.bytes)} → ${mib(packed.bytes)}`,
      `${m(hashed, 'createMs').toFixed(0)} → ${m(packed, 'createMs').toFixed(0)} ms`,
      `${m(hashed, 'peakRiseMiB').toFixed(0)} → ${m(packed, 'peakRiseMiB').toFixed(0)} MiB`,
      `${hashed.inferMs.toFixed(2)} → ${packed.inferMs.toFixed(2)} ms`,
    ]);
  }
  return table(['model', 'setting', 'file hashed → packed', `session creation (median of ${runs})`, 'peak RSS rise during creation', 'inference (median, in alternation)'], rows);
}

async function main(): Promise<void> {
  checkArgs('pack', { values: { runs: 'N' }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const r = await runPackBench({ quick, runs: numberArg('runs', quick ? 1 : 5) });
  console.log('# Packed export (--pack) against the hashed model\n');
  console.log(`Machine: ${machineLine()}; ${loadLine()}\n`);
  console.log(r.sizeTable, '\n');
  console.log(r.sessionTable);
  const { sizeTable: _s, sessionTable: _t, ...data } = r;
  const dir = quick ? path.join(resultsDir(), 'quick') : resultsDir();
  fs.mkdirSync(dir, { recursive: true });
  writeResult('pack', data, dir);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
