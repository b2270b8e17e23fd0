/**
 * The size/fidelity frontier on PP-OCRv4 det, rec and cls (float32 as shipped, and converted to
 * float16 by bench/fp16.ts): redpp's budget at several deviations against what a user could do
 * instead to every layer — float16 weights, weight-only int8 per output channel, uniform 6- and 4-bit
 * per channel, per-neuron k-means (Lloyd, near-optimal in 1-D) at the same bits. For each point: file
 * and transfer size, the probe deviation (the budget's own measure), the task check (bench/ocr), and
 * what it costs onnxruntime-node: session creation time and peak memory rise (fresh process), and
 * inference time (in alternation with the original, one process). Then, per model, how well the
 * probe deviation ranks the points as the task metric does (Spearman).
 *
 *   node dist/bench/frontier.js [--quick] [--models det,rec,cls] [--dtypes float32,float16] [--runs 3]
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { concreteInputShapes } from '../lib/input-shapes';
import { layerTable } from '../lib/layers';
import { decodeModel } from '../lib/load';
import { DataType } from '../lib/model/dtype';
import type { Model } from '../lib/model/model';
import { encodeModel } from '../lib/model/write';
import { DEFAULT_MAX_DEVIATION } from '../lib/options/prune';
import { FOLD_PASSES } from '../lib/passes';
import { ProbeModel, deviationBetween } from '../lib/passes/budget/probe-model';
import { syntheticProbes } from '../lib/passes/budget/samples';
import { encodedData } from '../lib/passes/codecs/encode';
import { packPass } from '../lib/passes/codecs/pack';
import type { CodecSetting } from '../lib/passes/codecs/settings';
import { LayerPlan } from '../lib/passes/layer-records';
import { runPasses } from '../lib/passes/pass';
import { WorkerPool, type PoolTasks } from '../lib/pool';
import { prune } from '../lib/prune';
import { transferBytes } from '../lib/transfer';
import { toFloat16 } from './fp16';
import { checkArgs, listArg, loadLine, machineLine, median, numberArg, resultsDir, table, writeResult } from './machine';
import { evaluateOcrFidelity, makeClsSamples, makeDetSamples, makeRecSamples, ocrModelPath, type OcrFidelity, type OcrKind } from './ocr';
import { INPUT_SHAPES } from './ocr-sweep';
import { creationRun, inferenceRuns, type SessionCreation } from './session-cost';

export const REDPP_FRONTIER = 'redpp budget';

/** The baselines: one codec setting on every layer. */
const BASELINES: { method: string; setting: CodecSetting; float32Only?: boolean }[] = [
  { method: 'float16 weights', setting: { codec: 'float16' }, float32Only: true },
  { method: 'int8 per channel', setting: { codec: 'linear', bits: 8, tables: 'float16' } },
  { method: 'uniform 6-bit per channel', setting: { codec: 'linear', bits: 6, tables: 'float16' } },
  { method: 'uniform 4-bit per channel', setting: { codec: 'linear', bits: 4, tables: 'float16' } },
  { method: 'k-means 6-bit per neuron', setting: { codec: 'hash', bits: 6, tables: 'float16' } },
  { method: 'k-means 4-bit per neuron', setting: { codec: 'hash', bits: 4, tables: 'float16' } },
];

const BUDGETS = [0.005, 0.01, 0.02, 0.03, 0.05];

export interface FrontierPoint {
  model: OcrKind;
  dtype: 'float32' | 'float16';
  method: string;
  setting: string;
  bytes: { original: number; after: number };
  transfer: { original: number; after: number };
  /** The probe deviation (at the logits, the budget's synthetic probes at the default input shapes). */
  deviation: number;
  /** With the budget: what it predicted and measured itself. */
  budget?: { predicted: number; measured: number };
  fidelity: { metric: string; value: number; pass: boolean; loss: number };
  session: { original: SessionCreation; after: SessionCreation };
  inferMs: { original: number; after: number };
  /** Time to produce it (redpp: prune(); baselines: coding and packing). */
  ms: number;
}

export interface FrontierBench {
  points: FrontierPoint[];
  /** Models (and weight types) not measured, and why: a reference whose task output is empty judges nothing. */
  skipped?: { model: OcrKind; dtype: string; why: string }[];
  /** Per model and dtype: Spearman's rank correlation of the probe deviation with the task loss over the points. */
  spearman: { model: OcrKind; dtype: string; rho: number; points: number }[];
  table: string;
}

/** The task figure a point is judged by, and a loss that grows as fidelity falls (what the deviation should rank like). */
function judge(f: OcrFidelity): FrontierPoint['fidelity'] {
  if (f.kind === 'det') return { metric: 'min IoU', value: f.minIoU, pass: f.pass, loss: 1 - f.minIoU };
  if (f.kind === 'rec') return { metric: 'same strings', value: f.agreement, pass: f.pass, loss: f.cer };
  return { metric: 'same argmax', value: f.agreement, pass: f.pass, loss: f.maxProbDiff };
}

/** `model` (not changed) with one codec setting on every float layer, folded first and packed: the file. */
async function codedEverywhere(model: Model, setting: CodecSetting, pool: PoolTasks): Promise<Uint8Array> {
  const copy = decodeModel(encodeModel(model));
  const plan = new LayerPlan(copy);
  await runPasses(copy, FOLD_PASSES, plan);
  const seen = new Set<string>();
  const jobs: Promise<void>[] = [];
  for (const layer of layerTable(copy.graph)) {
    const layout = layer.layout();
    if ('skip' in layout || seen.has(layout.value)) continue;
    const { tensor } = layout;
    if (tensor.dataType !== DataType.FLOAT && tensor.dataType !== DataType.FLOAT16) continue;
    if (setting.codec === 'float16' && tensor.dataType !== DataType.FLOAT) continue;
    seen.add(layout.value);
    jobs.push(
      pool.encode({ layer: layer.name, weights: tensor.toFloat32(), grid: layout.grid, dataType: tensor.dataType, settings: [setting], values: true }).then(([e]) => {
        tensor.setData(encodedData(e));
        const record = plan.record(layer);
        record.codec = setting;
        plan.setEncoded(record, { data: tensor.data, uniform: e.uniform });
      }),
    );
  }
  await Promise.all(jobs);
  await runPasses(copy, [packPass({ runner: pool })], plan);
  return encodeModel(copy);
}

/** The probe deviation of `candidate` from `original`: both run whole, outputs compared at the logits. */
async function probeDeviation(original: Model, candidate: Uint8Array): Promise<number> {
  const probes = await syntheticProbes(original.graph, concreteInputShapes(original.graph, {}));
  const [a, b] = [await ProbeModel.create(original, [], probes, { at: 'logits' }), await ProbeModel.create(decodeModel(candidate), [], probes, { at: 'logits' })];
  try {
    return deviationBetween(await a.outputs(new Map()), await b.outputs(new Map()));
  } finally {
    await a.release();
    await b.release();
  }
}

/** Spearman's rho (average ranks for ties). */
export function spearman(xs: readonly number[], ys: readonly number[]): number {
  const ranks = (v: readonly number[]) => {
    const order = v.map((x, i) => [x, i] as const).sort((a, b) => a[0] - b[0]);
    const r = new Array<number>(v.length);
    for (let i = 0; i < order.length; ) {
      let j = i;
      while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
      for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2;
      i = j + 1;
    }
    return r;
  };
  const [rx, ry] = [ranks(xs), ranks(ys)];
  const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;
  const [mx, my] = [mean(rx), mean(ry)];
  let [sxy, sxx, syy] = [0, 0, 0];
  for (let i = 0; i < rx.length; i++) {
    sxy += (rx[i] - mx) * (ry[i] - my);
    sxx += (rx[i] - mx) ** 2;
    syy += (ry[i] - my) ** 2;
  }
  return sxx > 0 && syy > 0 ? sxy / Math.sqrt(sxx * syy) : 0;
}

export interface FrontierOptions {
  quick?: boolean;
  models?: OcrKind[];
  dtypes?: ('float32' | 'float16')[];
  /** Session creations per file (fresh processes), and inference runs. */
  runs?: number;
  inferRuns?: number;
  log?: (line: string) => void;
}

export async function runFrontier(options: FrontierOptions = {}): Promise<FrontierBench> {
  const quick = options.quick ?? false;
  const models = options.models ?? (quick ? ['cls'] : ['det', 'rec', 'cls']);
  const dtypes = options.dtypes ?? (quick ? ['float32'] : ['float32', 'float16']);
  const runs = options.runs ?? (quick ? 1 : 3);
  const inferRuns = options.inferRuns ?? (quick ? 3 : 15);
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const budgets = quick ? [DEFAULT_MAX_DEVIATION] : BUDGETS;
  const baselines = quick ? BASELINES.filter((b) => b.method === 'int8 per channel') : BASELINES;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpp-bench-frontier-'));
  const pool = new WorkerPool(os.availableParallelism());
  const points: FrontierPoint[] = [];
  const skipped: NonNullable<FrontierBench['skipped']> = [];
  try {
    for (const kind of models) {
      const samples = kind === 'det' ? makeDetSamples() : kind === 'rec' ? makeRecSamples() : makeClsSamples();
      for (const dtype of dtypes) {
        const source = decodeModel(fs.readFileSync(ocrModelPath(kind)));
        const model = dtype === 'float16' ? toFloat16(source) : source;
        const originalBytes = encodeModel(model);
        const originalFile = path.join(dir, `${kind}.${dtype}.onnx`);
        fs.writeFileSync(originalFile, originalBytes);
        const originalTransfer = await transferBytes([originalBytes]);
        // A reference that finds no text (the float16 conversion of det overflows to an empty map)
        // would pass every candidate: such a model is not measured, and the report says so.
        const self = await evaluateOcrFidelity(kind, originalBytes, originalBytes, { samples, latency: false } as Parameters<typeof evaluateOcrFidelity>[3]);
        if (self.kind === 'det' && self.task.original.linesFound === 0) {
          const why = `the ${dtype} model finds none of the ${self.task.original.lines} text lines (its probability map is empty): nothing to judge candidates by`;
          skipped.push({ model: kind, dtype, why });
          log(`  frontier ${kind} ${dtype}: skipped, ${why}`);
          continue;
        }
        const originalSession = medianCreation(originalFile, runs);
        const candidates: { method: string; setting: string; make: () => Promise<{ bytes: Uint8Array; budget?: FrontierPoint['budget'] }> }[] = [
          ...budgets.map((d) => ({
            method: REDPP_FRONTIER,
            setting: `max deviation ${d}${d === DEFAULT_MAX_DEVIATION ? ' (default)' : ''}`,
            make: async () => {
              const { model: out, report } = await prune(originalBytes, { maxDeviation: d });
              return { bytes: encodeModel(out), budget: { predicted: report.budget!.predicted, measured: report.budget!.measured } };
            },
          })),
          ...baselines
            .filter((b) => !(b.float32Only && dtype === 'float16'))
            .map((b) => ({ method: b.method, setting: 'every layer', make: async () => ({ bytes: await codedEverywhere(model, b.setting, pool.tasks()) }) })),
        ];
        for (const c of candidates) {
          const t0 = performance.now();
          const { bytes, budget } = await c.make();
          const ms = performance.now() - t0;
          const file = path.join(dir, `${kind}.${dtype}.candidate.onnx`);
          fs.writeFileSync(file, bytes);
          const f = await evaluateOcrFidelity(kind, originalBytes, bytes, { samples, latency: false } as Parameters<typeof evaluateOcrFidelity>[3]);
          const [inferOriginal, inferAfter] = inferenceRuns([originalFile, file], INPUT_SHAPES[kind], inferRuns, dtype);
          const p: FrontierPoint = {
            model: kind,
            dtype,
            method: c.method,
            setting: c.setting,
            bytes: { original: originalBytes.byteLength, after: bytes.byteLength },
            transfer: { original: originalTransfer, after: await transferBytes([bytes]) },
            deviation: await probeDeviation(model, bytes),
            ...(budget ? { budget } : {}),
            fidelity: judge(f),
            session: { original: originalSession, after: medianCreation(file, runs) },
            inferMs: { original: inferOriginal, after: inferAfter },
            ms,
          };
          points.push(p);
          log(
            `  frontier ${kind} ${dtype} ${c.method} ${c.setting}: ${pct(p.bytes.after, p.bytes.original)}, deviation ${p.deviation.toExponential(2)}, ${p.fidelity.metric} ${p.fidelity.value.toFixed(4)} ${p.fidelity.pass ? 'pass' : 'FAIL'}, ${(ms / 1000).toFixed(1)} s`,
          );
        }
      }
    }
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  const spearmanRows = [...new Set(points.map((p) => `${p.model}|${p.dtype}`))].map((key) => {
    const [model, dtype] = key.split('|') as [OcrKind, string];
    const mine = points.filter((p) => p.model === model && p.dtype === dtype);
    return { model, dtype, rho: spearman(mine.map((p) => p.deviation), mine.map((p) => p.fidelity.loss)), points: mine.length };
  });
  return { points, skipped, spearman: spearmanRows, table: frontierTable(points, skipped) };
}

function medianCreation(file: string, runs: number): SessionCreation {
  const r = Array.from({ length: runs }, () => creationRun(file));
  return { createMs: median(r.map((x) => x.createMs)), peakRiseMiB: median(r.map((x) => x.peakRiseMiB)) };
}

const pct = (a: number, b: number) => `${((a / b) * 100).toFixed(1)} %`;
const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}×`;

export function frontierTable(points: readonly FrontierPoint[], skipped: FrontierBench['skipped'] = []): string {
  const notes = skipped.map((k) => `\n\nNot measured: ${k.model} ${k.dtype}: ${k.why}.`).join('');
  return table(
    ['model', 'weights', 'method', 'setting', 'file', 'transfer', 'probe deviation', 'task check', 'pass', 'session creation', 'peak memory rise', 'inference', 'time'],
    points.map((p) => [
      p.model,
      p.dtype,
      p.method,
      p.setting,
      pct(p.bytes.after, p.bytes.original),
      pct(p.transfer.after, p.transfer.original),
      p.deviation.toExponential(2),
      `${p.fidelity.metric} ${p.fidelity.value.toFixed(4)}`,
      p.fidelity.pass ? 'yes' : 'no',
      `${p.session.original.createMs.toFixed(0)} → ${p.session.after.createMs.toFixed(0)} ms (${ratio(p.session.after.createMs, p.session.original.createMs)})`,
      `${p.session.original.peakRiseMiB.toFixed(0)} → ${p.session.after.peakRiseMiB.toFixed(0)} MiB (${ratio(p.session.after.peakRiseMiB, p.session.original.peakRiseMiB)})`,
      `${p.inferMs.original.toFixed(2)} → ${p.inferMs.after.toFixed(2)} ms`,
      `${(p.ms / 1000).toFixed(1)} s`,
    ]),
  ) + notes;
}

export function spearmanTable(rows: FrontierBench['spearman']): string {
  return table(
    ['model', 'weights', 'points', 'Spearman (probe deviation vs task loss)'],
    rows.map((r) => [r.model, r.dtype, r.points, r.rho.toFixed(3)]),
  );
}

async function main(): Promise<void> {
  checkArgs('frontier', { values: { models: 'det,rec,cls', dtypes: 'float32,float16', runs: 'N' }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const r = await runFrontier({
    quick,
    models: listArg('models', quick ? ['cls'] : ['det', 'rec', 'cls']) as OcrKind[],
    dtypes: listArg('dtypes', quick ? ['float32'] : ['float32', 'float16']) as ('float32' | 'float16')[],
    runs: numberArg('runs', quick ? 1 : 3),
  });
  console.log('# The size/fidelity frontier (PP-OCRv4)\n');
  console.log(`Machine: ${machineLine()}; ${loadLine()}\n`);
  console.log(r.table, '\n');
  console.log(spearmanTable(r.spearman));
  const { table: _, ...data } = r;
  const dir = quick ? path.join(resultsDir(), 'quick') : resultsDir();
  fs.mkdirSync(dir, { recursive: true });
  writeResult('frontier', data, dir);
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
