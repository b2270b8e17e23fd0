/**
 * The fidelity budget: per layer, the codec setting (codecs/settings.ts) that makes the file smallest
 * while the model's outputs stay within a deviation D of the original's (maxDeviation), or that keeps
 * them closest within a size (targetSize). Data-free: the deviation is measured on probe inputs
 * (probes.ts, or the user's samples) at the logits (probe-model.ts).
 *
 * 1. Every candidate setting of every layer is encoded (in the pool): its bytes and weight error.
 * 2. Each layer's sensitivity: the deviation its codec alone adds, measured at a fine and a coarse
 *    setting and interpolated (log-log, in the weight error) to the others.
 * 3. The allocation path (path.ts) from all dense to all smallest, by bytes saved per predicted
 *    deviation² added.
 * 4. Along the path, the whole model is measured at checkpoints (the predicted deviation growing by
 *    1.25× between them, and bisected where the measured one jumps) until one measures over D: the
 *    interactions the prediction leaves out are in the measurement. The answer is the smallest file
 *    among the checkpoints within D.
 * 5. A checkpoint that measures far more than predicted (SURPRISE), or the first over D, says a
 *    layer's prediction may be wrong (sensitivity is not a power law of the weight error for every
 *    layer and codec): each layer that moved since the checkpoint before is measured alone at its new
 *    setting and the measurement joins its reference points. Where one was wrong, the path is made
 *    again and walked (at most MAX_CORRECTIONS times). Surprises do not depend on D, so a tighter D
 *    measures the first checkpoints of a looser one's walk, and never gets a smaller file.
 * 6. The chosen settings are applied: each layer's tensor holds the values its codec gives, which the
 *    pack pass then stores in the codec's form.
 */
import { warnFallback } from '../../binding';
import { RedppError } from '../../errors';
import { sharedArray } from '../../kernels/pages';
import type { Layer, NeuronLayout } from '../../layers';
import { DataType, decodeInto, type TensorData } from '../../model/dtype';
import type { Model } from '../../model/model';
import type { Tensor } from '../../model/tensor';
import { inChunks, slices } from '../../turns';
import { encodedData, type Encoded } from '../codecs/encode';
import { exportBytes } from '../codecs/price';
import { candidateSettings, settingName, type CodecName, type CodecSetting } from '../codecs/settings';
import { isConstantNodeValue } from '../constant-tensors';
import type { Checkpoint, LayerPlan } from '../layer-records';
import { layoutsOf, matchesSkip, newReport, type Pass, type PassReport } from '../pass';
import type { TaskRunner } from '../tasks';
import { allocationPath, type Option, type PathStep } from './path';
import { ProbeModel } from './probe-model';
import type { PlainTensor } from './probe-session';

export interface BudgetOptions {
  /** The largest deviation allowed (see probe-model.ts), or, instead, the largest file as a fraction of `fileBytes`. */
  maxDeviation?: number;
  targetSize?: number;
  /** The input file's bytes (targetSize is a fraction of it). */
  fileBytes: number;
  codecs: readonly CodecName[];
  skip: readonly (string | RegExp)[];
  /** Layers whose neurons have fewer weights are left as they are. */
  minFanIn: number;
  /** The probe inputs (one feed per run). */
  probes: Record<string, PlainTensor>[];
  /** The CPU threads the prune has (its pool's): the probe sessions share them. */
  threads: number;
}

/**
 * Probe sessions that measure at once, at most. Each runs onnxruntime on threads / sessions intra-op
 * threads; one run of a CNN at batch 1 uses few cores well, so two sessions taking whole measurements
 * side by side made the layers' sensitivities about twice as fast on the 2-core machine (README,
 * Performance). Each holds a copy of the coded layers' weights: past PROBE_SESSIONS_BYTES of them, one
 * session (VGG-16, 528 MB: 7 % faster for 0.7 GB more at the peak, its time being in the search and
 * the encoding of its large layers, and timer gaps of 60-90 ms on the 2-core VM as both sessions
 * fault in their memory).
 */
const PROBE_SESSIONS = 2;
const PROBE_SESSIONS_BYTES = 256 * 2 ** 20;

/** Paths made again after a wrong prediction, at most (each costs a walk of checkpoints). */
const MAX_CORRECTIONS = 4;

/** A layer alone measured at this multiple of its prediction or more was mispredicted (step 5). */
const MISPREDICTED = 1.5;

/** Consecutive checkpoints whose measured deviations differ by more than this factor have the steps between them bisected, at most REFINE_DEPTH deep. */
const JUMP = 1.25 ** 2;
const REFINE_DEPTH = 3;

/** A checkpoint is a surprise when it measures this multiple of its prediction or more, and its step added this multiple of the predicted deviation² or more. */
const SURPRISE = 1.5;

export interface BudgetProgress {
  step: 'analyse' | 'sensitivity' | 'search' | 'apply';
  done: number;
  total: number;
}

interface Candidate {
  setting: CodecSetting;
  bytes: number;
  /** Relative weight error, sqrt(sse / energy). */
  error: number;
  rms: number;
  /** Predicted deviation of the model's outputs with this layer alone at this setting. */
  deviation: number;
}

/** A layer's deviation alone measured at one weight error. */
interface Point {
  error: number;
  deviation: number;
}

interface Entry {
  layer: Layer;
  layout: NeuronLayout;
  /** The weights as float32 (original). */
  weights: Float32Array;
  candidates: Candidate[];
  /** The deviations measured with this layer alone, by weight error (what the candidates' are interpolated from). */
  points: Point[];
}

export function budgetPass(options: BudgetOptions, runner: TaskRunner, onProgress: (p: BudgetProgress) => void = () => undefined): Pass {
  if ((options.maxDeviation === undefined) === (options.targetSize === undefined)) {
    throw new RedppError('INVALID_ARGUMENT', 'budgetPass: give one of maxDeviation and targetSize');
  }
  return {
    name: 'budget',
    exact: false,
    async run(model: Model, plan: LayerPlan): Promise<PassReport> {
      const report = newReport('budget');
      const opset = model.opsetVersion('') ?? 0;
      const entries = await eligible(model, options, report, plan);
      // 1. Every candidate, priced.
      let done = 0;
      await Promise.all(
        entries.map(async (e) => {
          const encoded = await runner.encode({ layer: e.layer.name, weights: e.weights, grid: e.layout.grid, dataType: e.layout.tensor.dataType, settings: e.candidates.map((c) => c.setting), values: false });
          const constantNodes = isConstantNodeValue(model.graph, e.layout.value);
          encoded.forEach((x, i) => {
            const c = e.candidates[i];
            c.bytes = exportBytes(e.layout, c.setting, x.size, opset, constantNodes);
            c.error = x.energy > 0 ? Math.sqrt(x.sse / x.energy) : 0;
            c.rms = Math.sqrt(x.sse / e.weights.length);
          });
          onProgress({ step: 'analyse', done: ++done, total: entries.length });
        }),
      );
      const fedBytes = entries.reduce((a, e) => a + e.layout.tensor.size * (e.layout.tensor.dataType === DataType.FLOAT16 ? 2 : 4), 0);
      const sessions = fedBytes <= PROBE_SESSIONS_BYTES ? Math.min(PROBE_SESSIONS, options.threads) : 1;
      const probe = await ProbeModel.create(model, entries.map((e) => e.layer), options.probes, {
        at: 'logits',
        sessions,
        // One session keeps onnxruntime's own choice, as before sessions were shared out.
        threadsPerSession: sessions > 1 ? Math.max(1, Math.floor(options.threads / sessions)) : undefined,
      });
      try {
        // 2. Sensitivity, from a fine and a coarse setting of each layer alone: the layers side by
        // side, one per session (each measurement is whole on one session: the same numbers).
        let measured = 0;
        await atOnce(entries, probe.sessions, async (e) => {
          await predictDeviations(e, probe, runner);
          onProgress({ step: 'sensitivity', done: ++measured, total: entries.length });
        });
        // 3. The path, 4. the checkpoints on it, 5. corrections.
        const fixed = options.fileBytes - entries.reduce((a, e) => a + e.candidates[0].bytes, 0);
        const walk = await search(entries, probe, runner, options, fixed, onProgress);
        // 6. Apply, and each output measured as it is now.
        await apply(entries, walk, runner, plan, onProgress);
        const coded = new Map(entries.filter((e, l) => e.candidates[walk.assignment[l]].setting.codec !== 'dense').map((e) => [e.layout.value, e.layout.tensor.data] as const));
        const outputs = await probe.outputDeviations(coded);
        plan.budget = {
          maxDeviation: options.maxDeviation,
          targetSize: options.targetSize,
          predicted: walk.checkpoints[walk.chosen]?.predicted ?? 0,
          measured: walk.checkpoints[walk.chosen]?.measured ?? 0,
          checkpoints: walk.checkpoints,
          chosen: walk.chosen,
          probes: options.probes.length,
          corrected: walk.corrected,
          paths: walk.paths,
          outputs,
        };
        for (const [i, e] of entries.entries()) {
          const c = e.candidates[walk.assignment[i]];
          if (c.setting.codec !== 'dense') report.changes.push({ node: e.layer.name, action: `coded as ${settingName(c.setting)}` });
        }
        report.changed = report.changes.length > 0;
        report.stats = { layers: entries.length, checkpoints: walk.checkpoints.length, paths: walk.paths };
        return report;
      } finally {
        await probe.release();
      }
    },
  };
}

/** The layers the budget codes: constant float32 or float16 weights, not skipped, fan-in at least minFanIn, not shared. */
async function eligible(model: Model, o: BudgetOptions, report: PassReport, plan: LayerPlan): Promise<Entry[]> {
  const out: Entry[] = [];
  const seen = new Set<string>();
  const pause = slices();
  for (const { layer, layout, skip } of layoutsOf(model, report, plan)) {
    const { tensor } = layout;
    if (tensor.dataType !== DataType.FLOAT && tensor.dataType !== DataType.FLOAT16) skip(`${tensor.dataType === DataType.DOUBLE ? 'float64' : 'these'} weights are left as they are`);
    else if (seen.has(layout.value)) skip('shares its weights with an earlier layer, coded there');
    else if (matchesSkip(o.skip, layer.name)) skip('matches options.skip');
    else if (layout.fanIn < o.minFanIn) skip(`fan-in ${layout.fanIn} < minFanIn ${o.minFanIn} (protected)`);
    else {
      seen.add(layout.value);
      const settings = candidateSettings(layout.fanIn, tensor.dataType === DataType.FLOAT, o.codecs);
      out.push({
        layer,
        layout,
        weights: await sharedWeights(tensor, pause),
        candidates: settings.map((setting) => ({ setting, bytes: 0, error: 0, rms: 0, deviation: 0 })),
        points: [],
      });
    }
  }
  return out;
}

/**
 * A layer's weights as float32 in shared memory, where every encode task reads them as they are: made
 * once, a chunk at a time, the event loop served between. A copy per task, which is what any other
 * array costs (pool.ts), was 410 MB on the main thread for VGG-16's fc1 at every measurement.
 */
async function sharedWeights(tensor: Tensor, pause: () => Promise<void> | undefined): Promise<Float32Array> {
  const data = tensor.data;
  if (tensor.dataType === DataType.FLOAT && data.buffer instanceof SharedArrayBuffer) return data as Float32Array;
  const out = sharedArray(Float32Array, tensor.size);
  await inChunks(out.length, (from, to) => decodeInto(data.subarray(from, to), tensor.dataType, out.subarray(from, to)), { pause });
  return out;
}

/** The reference settings: the finest and the coarsest lossy candidate by weight error (a moderate one where they are far apart). */
async function predictDeviations(e: Entry, probe: ProbeModel, runner: TaskRunner): Promise<void> {
  const lossy = e.candidates.filter((c) => c.error > 0).sort((a, b) => a.error - b.error);
  if (lossy.length === 0) return;
  const fine = lossy[0];
  // The coarse reference: the candidate nearest to a 5 % weight error (where codecs begin to matter), else the coarsest.
  const coarse = lossy.reduce((best, c) => (Math.abs(Math.log(c.error / 0.05)) < Math.abs(Math.log(best.error / 0.05)) ? c : best), lossy[lossy.length - 1]);
  const refs = coarse === fine ? [fine] : [fine, coarse];
  const encoded = await runner.encode({ layer: e.layer.name, weights: e.weights, grid: e.layout.grid, dataType: e.layout.tensor.dataType, settings: refs.map((c) => c.setting), values: true });
  for (const [i, x] of encoded.entries()) {
    e.points.push({ error: refs[i].error, deviation: await probe.deviation(new Map([[e.layout.value, encodedData(x)]])) });
  }
  reinterpolate(e);
}

function reinterpolate(e: Entry): void {
  e.points.sort((a, b) => a.error - b.error);
  for (const c of e.candidates) c.deviation = interpolate(e.points, c.error);
}

/**
 * Step 5: measures alone, at its setting in `to`, every layer that moved there from `from`, and adds
 * what it measures to the layer's points; returns how many were mispredicted (their predictions
 * change, and the path with them).
 */
async function correct(entries: Entry[], from: readonly number[], to: readonly number[], probe: ProbeModel, runner: TaskRunner): Promise<number> {
  let wrong = 0;
  const moved = entries.flatMap((e, l) => {
    const c = e.candidates[to[l]];
    return to[l] === from[l] || c.error === 0 || e.points.some((p) => p.error === c.error) ? [] : [{ e, c }];
  });
  await atOnce(moved, probe.sessions, async ({ e, c }) => {
    const [x] = await runner.encode({ layer: e.layer.name, weights: e.weights, grid: e.layout.grid, dataType: e.layout.tensor.dataType, settings: [c.setting], values: true });
    const deviation = await probe.deviation(new Map([[e.layout.value, encodedData(x)]]));
    e.points.push({ error: c.error, deviation });
    if (deviation >= MISPREDICTED * c.deviation) wrong++;
    reinterpolate(e);
  });
  return wrong;
}

/** `work` on every item, at most `n` at once, started in order. */
async function atOnce<T>(items: readonly T[], n: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const lane = async () => {
    while (next < items.length) await work(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
}

/**
 * Deviation at weight error `error` from measured points sorted by error: log-log between the two
 * around it, proportional to the nearest beyond them (and from points of zero deviation).
 */
export function interpolate(points: readonly Point[], error: number): number {
  if (error <= 0 || points.length === 0) return 0;
  const proportional = (p: Point) => (p.error > 0 ? (p.deviation * error) / p.error : 0);
  const i = points.findIndex((p) => p.error >= error);
  if (i === 0) return proportional(points[0]);
  if (i < 0) return proportional(points[points.length - 1]);
  const [a, b] = [points[i - 1], points[i]];
  if (!(a.deviation > 0) || !(b.deviation > 0) || a.error === b.error) return proportional(b.deviation > 0 ? b : a);
  const t = Math.log(error / a.error) / Math.log(b.error / a.error);
  return Math.exp(Math.log(a.deviation) + t * Math.log(b.deviation / a.deviation));
}

/** The search's outcome: every checkpoint measured (over all paths), the one chosen and its assignment (an option per layer). */
interface Walk {
  checkpoints: Checkpoint[];
  chosen: number;
  assignment: number[];
  corrected: number;
  paths: number;
  /** The encodings the model was last measured with, by layer: each layer's option then, and its encoding where not dense. */
  last: { options: readonly number[]; encoded: ReadonlyMap<number, Encoded> };
}

/**
 * Steps 3 to 5. Which checkpoints are measured, and where paths are made again, depends on the
 * measurements only, not on D (a checkpoint over D ends the walk unless it is a surprise that
 * corrected the path): so the checkpoints a tighter D sees are the first of those a looser one sees.
 * The answer is the smallest file among the checkpoints that measure within D (then the closer), so
 * a looser D never gives a larger file.
 */
async function search(entries: Entry[], probe: ProbeModel, runner: TaskRunner, o: BudgetOptions, fixed: number, onProgress: (p: BudgetProgress) => void): Promise<Walk> {
  const layerBytes0 = entries.reduce((a, e) => a + e.candidates[0].bytes, 0);
  const checkpoints: Checkpoint[] = [{ layerBytes: layerBytes0, fileBytes: fixed + layerBytes0, predicted: 0, measured: 0 }];
  const assignments: number[][] = [entries.map(() => 0)];
  // The state of the model being measured: each layer's option and the values it gives.
  const at = entries.map(() => 0);
  const values = new Map<string, TensorData>();
  const encoded = new Map<number, Encoded>();
  const last = { options: at, encoded };
  const moveTo = async (next: readonly number[]) => {
    const changed = entries.map((_, l) => l).filter((l) => next[l] !== at[l]);
    await Promise.all(
      changed.map(async (l) => {
        const e = entries[l];
        const c = e.candidates[next[l]];
        if (c.setting.codec === 'dense') {
          values.delete(e.layout.value);
          encoded.delete(l);
          return;
        }
        const [x] = await runner.encode({ layer: e.layer.name, weights: e.weights, grid: e.layout.grid, dataType: e.layout.tensor.dataType, settings: [c.setting], values: true });
        values.set(e.layout.value, encodedData(x));
        encoded.set(l, x);
      }),
    );
    for (const l of changed) at[l] = next[l];
  };
  const measure = async (path: PathStep[], step: number) => {
    const next = entries.map(() => 0);
    for (let s = 0; s <= step; s++) next[path[s].layer] = path[s].option;
    await moveTo(next);
    const measured = await probe.deviation(values);
    checkpoints.push({ layerBytes: path[step].bytes, fileBytes: fixed + path[step].bytes, predicted: path[step].deviation, measured });
    assignments.push(next);
    return measured;
  };
  // Where the deviation measured jumps between two checkpoints, the steps between are measured by bisection.
  const refine = async (path: PathStep[], lo: number, mLo: number, hi: number, mHi: number, depth: number): Promise<void> => {
    if (depth === 0 || hi - lo < 2 || !(mHi > JUMP * mLo)) return;
    const mid = (lo + hi) >> 1;
    const m = await measure(path, mid);
    await refine(path, lo, mLo, mid, m, depth - 1);
    await refine(path, mid, m, hi, mHi, depth - 1);
  };
  const makePath = () => allocationPath(entries.map((e) => e.candidates.map<Option>((c) => ({ bytes: c.bytes, deviation: c.deviation }))));

  if (o.targetSize !== undefined) {
    const path = makePath();
    const target = o.targetSize * o.fileBytes - fixed;
    let step = path.findIndex((s) => s.bytes <= target);
    if (step < 0) step = path.length - 1;
    if (step >= 0) await measure(path, step);
    onProgress({ step: 'search', done: 1, total: 1 });
    return { checkpoints, chosen: checkpoints.length - 1, assignment: assignments[assignments.length - 1], corrected: 0, paths: 1, last };
  }

  const budget = o.maxDeviation!;
  let corrected = 0;
  let paths = 0;
  // A path made again is walked from where the last one was still as predicted (half the deviation measured there).
  let resumeAt = 0;
  for (let revised = true; revised; ) {
    revised = false;
    const path = makePath();
    paths++;
    const stops = checkpointSteps(path).filter((step) => path[step].deviation >= resumeAt);
    let before: { checkpoint: Checkpoint; assignment: number[]; step: number } | undefined;
    for (const [i, step] of stops.entries()) {
      const m = await measure(path, step);
      onProgress({ step: 'search', done: i + 1, total: stops.length });
      const now = checkpoints[checkpoints.length - 1];
      const surprise =
        before !== undefined && m >= SURPRISE * now.predicted && m ** 2 - before.checkpoint.measured ** 2 >= SURPRISE ** 2 * (now.predicted ** 2 - before.checkpoint.predicted ** 2);
      if (surprise && paths <= MAX_CORRECTIONS) {
        const wrong = await correct(entries, before!.assignment, assignments[assignments.length - 1], probe, runner);
        if (wrong > 0) {
          corrected += wrong;
          resumeAt = before!.checkpoint.measured / 2;
          revised = true;
          break;
        }
      }
      const assignment = assignments[assignments.length - 1];
      if (before) await refine(path, before.step, before.checkpoint.measured, step, m, REFINE_DEPTH);
      if (m > budget) break;
      before = { checkpoint: now, assignment, step };
    }
  }
  let chosen = 0;
  for (const [i, c] of checkpoints.entries()) {
    const best = checkpoints[chosen];
    if (c.measured <= budget && (c.fileBytes < best.fileBytes || (c.fileBytes === best.fileBytes && c.measured < best.measured))) chosen = i;
  }
  return { checkpoints, chosen, assignment: assignments[chosen], corrected, paths, last };
}

/** Path steps where the predicted deviation first reaches 1e-4 · 1.25^k, and the path's end. */
export function checkpointSteps(path: readonly PathStep[]): number[] {
  const out: number[] = [];
  let level = 1e-4;
  for (let i = 0; i < path.length; i++) {
    if (path[i].deviation < level && i < path.length - 1) continue;
    out.push(i);
    while (level <= path[i].deviation) level *= 1.25;
  }
  return out;
}

/**
 * Sets every layer's weights to its chosen setting's values and fills its record. A layer at the
 * option the search last measured it at takes that encoding (the same values: encoding is a function
 * of the weights and the setting); the others are encoded (VGG-16 spent 34-42 s encoding its layers
 * again here, most of them as the last checkpoint held them).
 */
async function apply(entries: Entry[], walk: Walk, runner: TaskRunner, plan: LayerPlan, onProgress: (p: BudgetProgress) => void): Promise<void> {
  const { assignment, last } = walk;
  let done = 0;
  await Promise.all(
    entries.map(async (e, l) => {
      const c = e.candidates[assignment[l]];
      const record = plan.record(e.layer);
      record.codec = c.setting;
      record.deviation = { predicted: c.deviation };
      if (c.setting.codec !== 'dense') {
        const held = last.options[l] === assignment[l] ? last.encoded.get(l) : undefined;
        const [x] = held ? [held] : await runner.encode({ layer: e.layer.name, weights: e.weights, grid: e.layout.grid, dataType: e.layout.tensor.dataType, settings: [c.setting], values: true });
        const data = encodedData(x);
        e.layout.tensor.setData(data);
        plan.setEncoded(record, { data: e.layout.tensor.data, uniform: x.uniform });
        record.weightError = { rms: c.rms, relative: c.error };
        if (x.backend) {
          record.hash = { backend: x.backend };
          if (x.backend === 'reference') warnFallback();
        }
        delete record.skipped;
      }
      onProgress({ step: 'apply', done: ++done, total: entries.length });
    }),
  );
}

