/**
 * prune(): the pipeline on one model. Read; the layer records (one per layer, with its cost before);
 * fold BatchNorm and weight transforms; choose and apply each layer's codec — by the fidelity budget
 * (passes/budget), or RED++ hashing at one beta (passes/hash.ts) — in the worker pool; merge identical
 * neurons; the kernel split where it pays; pack every layer in its codec's form; write; optionally
 * check the result against the original in onnxruntime-node. Every pass fills the layers' records, and
 * the report is those records with the totals.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

import { invalidOption, RedppError } from './errors';
import { concreteInputShapes } from './input-shapes';
import { loadModel } from './load';
import { Model } from './model/model';
import { sharedShapeSteps } from './model/shapes';
import { encodedBytes, refuseOverwriting, stageFile, stageModel } from './model/write';
import { pipelineOptions, resolvePruneOptions, type PruneOptions, type PruneProgress, type ResolvedPruneOptions } from './options';
import { FOLD_PASSES } from './passes';
import { budgetPass } from './passes/budget';
import { readSamples, syntheticProbes } from './passes/budget/samples';
import { hashPass } from './passes/hash';
import { opCounts } from './passes/input-splitting';
import { kernelSplitPass } from './passes/kernel-split';
import { LayerPlan, type BudgetRecord, type InputSplitCounts, type LayerRecord, type OpCounts } from './passes/layer-records';
import { mergePassResolved } from './passes/merge';
import { packPass } from './passes/codecs/pack';
import { runPasses, type Pass, type PassReport } from './passes/pass';
import type { TaskRunner } from './passes/tasks';
import { WorkerPool, poolFor } from './pool';
import { floatParams } from './stats';
import { requireOnnxruntimeInstalled } from './runtime';
import { nextTurn, stepsInTurns } from './turns';
import { toJsonReport, type PruneReport } from './report';
import { reportPage } from './report-page';
import { transferBytes } from './transfer';
import { validate, type ValidationReport } from './validate';

export type { LayerRecord, OpCounts } from './passes/layer-records';
export type { PruneReport } from './report';

export interface PruneResult {
  model: Model;
  report: PruneReport;
}

/**
 * prune()'s options, and the worker pool to run on: one shared with other prunes (a server's, `new
 * WorkerPool(threads)`, closed by its owner; `threads` is then the pool's). Default: a pool of
 * `threads` for this prune alone. The pool is a resource, not a setting: it is not among the options
 * resolved (lib/options knows nothing of the pool).
 */
export interface PruneCallOptions extends PruneOptions {
  pool?: WorkerPool;
}

/**
 * Prunes a model given as a path, the bytes of an .onnx file, or a loaded Model (which is left as it
 * is: prune works on a copy). The input file is never written.
 */
export async function prune(input: string | Uint8Array | Model, options: PruneCallOptions = {}): Promise<PruneResult> {
  // Temporary files (a Model's staged copy, the output's where none is asked for), removed at the end.
  const cleanup: (() => Promise<void>)[] = [];
  try {
    return await pruneWith(input, options, cleanup);
  } finally {
    for (const release of cleanup) await release();
  }
}

/** prune(), each temporary file it makes put in `cleanup` to be removed. */
async function pruneWith(input: string | Uint8Array | Model, options: PruneCallOptions, cleanup: (() => Promise<void>)[]): Promise<PruneResult> {
  const shared = options !== null && typeof options === 'object' ? options.pool : undefined;
  if (shared !== undefined && !(shared instanceof WorkerPool)) throw invalidOption('options.pool', 'a WorkerPool', shared);
  const opts = resolvePruneOptions(shared ? { ...options, pool: undefined } : options);
  if (shared) opts.threads = shared.threads;
  const progress = opts.onProgress ?? (() => undefined);
  // The pool's workers start (load the addon) while the main thread reads the model.
  const pool = shared ?? poolFor(opts.threads);
  const tasks = pool.tasks(opts.signal);
  /** A step begins, unless the prune was cancelled. */
  const begin = (name: PruneProgress['phase']) => {
    tasks.throwIfCancelled();
    progress({ phase: name, done: 0, total: 1 });
  };
  const timings: Record<string, number> = {};
  const clock = () => {
    const t0 = performance.now();
    return (name: string) => (timings[name] = Math.round((performance.now() - t0) * 10) / 10);
  };
  const phase = (name: PruneProgress['phase']) => (p: { done: number; total: number; layer: string }) =>
    progress({ phase: name, done: p.done, total: p.total, detail: p.layer || undefined });

  let original: Awaited<ReturnType<typeof open>>['original'];
  let transferBefore: Promise<number> | undefined;
  let model: Model;
  let inputShapes: Record<string, number[]>;
  let plan: LayerPlan;
  let paramsBefore: number;
  let paramsAfter: number;
  let passes: PassReport[];
  let steps: ReturnType<typeof pipelineOptions>;
  try {
    const stop = clock();
    begin('load');
    let release: (() => Promise<void>) | undefined;
    ({ original, model, release } = await open(input));
    if (release) cleanup.push(release);
    const written = [...(opts.output ? [opts.output, `${opts.output}.data`] : []), ...(opts.report ? [opts.report] : [])];
    if (written.length) refuseOverwriting(written, [...(typeof input === 'string' ? [input] : []), ...model.externalFiles]);
    // The original's transfer size is worked out on one of libuv's threads while the passes run (more
    // would take the pool's cores); the output's, at the end, on every core.
    if (opts.transferSize) {
      transferBefore = transferBytes(original.files, 1);
      transferBefore.catch(() => undefined);
    }
    stop('load');
    inputShapes = concreteInputShapes(model.graph, opts.inputShapes);
    steps = pipelineOptions(opts, inputShapes);
    // Fail before any work where what was asked needs onnxruntime-node and it is not installed (it is
    // loaded in workers only: lib/runtime-worker.ts).
    if (!steps.hash) requireOnnxruntimeInstalled('the fidelity budget (the default; --beta needs none)');
    if (steps.validate) requireOnnxruntimeInstalled('--validate');
    // The layer table's shapes in turns of their own after the read's last check, and the table in the
    // next (the inference is shared: sharedShapes()); together, ISNet's were one 20-30 ms piece.
    await nextTurn();
    await stepsInTurns(sharedShapeSteps(model.graph, inputShapes));
    await nextTurn();
    plan = new LayerPlan(model, inputShapes);
    await nextTurn();
    paramsBefore = floatParams(model.graph);
    const select = steps.hash
      ? hashPass(steps.hash, tasks, phase('hash'))
      : budgetPass(
          {
            ...opts.selection,
            fileBytes: original.bytes,
            codecs: opts.codecs,
            skip: opts.skip,
            minFanIn: opts.minFanIn,
            threads: opts.threads,
            probes: opts.samples ? readSamples(opts.samples, model.graph, inputShapes) : await syntheticProbes(model.graph, inputShapes),
          },
          tasks,
          (p) => progress({ phase: 'budget', done: p.done, total: p.total, detail: p.step }),
        );
    const fold = FOLD_PASSES.map((p) => timed(p, timings, () => begin('fold')));
    const merge = timed(mergePassResolved(steps.merge, tasks), timings, () => begin('merge'));
    const split = timed(kernelSplitPass(steps.kernelSplit, { onLayer: phase('kernel-split'), runner: tasks }), timings, () => tasks.throwIfCancelled());
    // RED++ merges the neurons its hashing made identical, so it hashes first. The budget codes last:
    // the exact rewrites edit weights (merging sums rows), which would undo a codec's form.
    const order = steps.hash ? [...fold, timed(select, timings), merge, split] : [...fold, merge, split, timed(select, timings)];
    passes = await runPasses(model, order, plan);
    // Counted on the plain weights, before packing replaces them by gathers.
    plan.measureAfter(model.graph, inputShapes);
    await countInputSplitting(plan, tasks);
    paramsAfter = floatParams(model.graph);
    if (steps.pack) {
      begin('pack');
      passes.push(...(await runPasses(model, [timed(packPass({ runner: tasks, releaseReplaced: true }), timings)], plan)));
    }
  } finally {
    await tasks.settled();
    if (!shared) await pool.close();
  }

  // The output is written to a staging folder and moved into place only when every step that can fail
  // (validation included) has passed: a failed prune leaves no output behind.
  let stop = clock();
  begin('save');
  let fileAfter: number;
  const staged = opts.output ? await stageModel(model, opts.output) : undefined;
  // Without an output, the model is staged in the temporary directory only where the transfer size
  // or validation reads it as a file; else its size is counted without encoding it (encoding it in
  // memory held the event loop: 0.4 s for a packed VGG-16).
  const scratch = !staged && (transferBefore || steps.validate) ? await stageModel(model, path.join(os.tmpdir(), 'redpp-pruned.onnx')) : undefined;
  if (scratch) cleanup.push(scratch.discard);
  const file = staged ?? scratch;
  let validation: ValidationReport | undefined;
  let transfer: PruneReport['transfer'] = null;
  let report: PruneReport;
  let page: Awaited<ReturnType<typeof stageFile>> | undefined;
  try {
    // Without an output, the size of the model encoded whole, whether staged for validation or not.
    fileAfter = staged ? staged.result.bytes + staged.result.externalBytes : encodedBytes(model);
    stop('save');
    if (transferBefore) {
      stop = clock();
      transfer = { before: await transferBefore, after: await transferBytes(file!.files) };
      stop('transfer');
    }
    if (steps.validate) {
      stop = clock();
      begin('validate');
      validation = await validate(original.source, file!.path, { ...steps.validate, signal: opts.signal });
      stop('validate');
    }
    // The report is complete before anything is committed: its page is written beside the model, and
    // both appear, or neither.
    const layers = plan.records;
    const macsBefore = sumOrNull(layers.map((l) => l.macs.before));
    const macsAfter = sumOrNull(layers.map((l) => l.macs.after));
    const backends = [...new Set(layers.flatMap((l) => (l.hash ? [l.hash.backend] : [])))];
    const { onProgress: _p, output: _o, signal: _s, report: _r, ...shownOptions } = opts;
    report = {
      input: typeof input === 'string' ? input : null,
      output: opts.output ?? null,
      options: shownOptions,
      params: { before: paramsBefore, after: paramsAfter },
      macs: { before: macsBefore, after: macsAfter },
      file: { before: original.bytes, after: fileAfter },
      ops: totalOps(layers),
      inputShapes,
      hashBackend: backends.length ? backends.join(', ') : 'none',
      ...(plan.budget ? { budget: plan.budget } : {}),
      transfer,
      layers,
      passes,
      validation,
      timingsMs: timings,
    };
    if (opts.report) page = await stageFile(opts.report, Buffer.from(reportPage(toJsonReport(report), path.basename(typeof input === 'string' ? input : (opts.output ?? 'model')))));
    tasks.throwIfCancelled();
    // The page first: a failure to move the model into place then takes the page away again.
    await page?.commit();
    try {
      await staged?.commit();
    } catch (e) {
      if (opts.report) await fs.promises.rm(opts.report, { force: true });
      throw e;
    }
  } catch (e) {
    await staged?.discard();
    await page?.discard();
    throw e;
  }
  return { model, report };
}

/**
 * The model to prune (a private copy), how to show the original to the validator and the transfer size,
 * and what to release at the end.
 */
async function open(input: string | Uint8Array | Model): Promise<{
  original: { source: string | Uint8Array; bytes: number; files: (string | Uint8Array)[] };
  model: Model;
  release?: () => Promise<void>;
}> {
  if (typeof input === 'string') {
    const model = await loadModel(input);
    const files = [input, ...model.externalFiles];
    return { original: { source: input, bytes: files.reduce((a, f) => a + fs.statSync(f).size, 0), files }, model };
  }
  if (input instanceof Uint8Array) {
    const model = await loadModel(input);
    return { original: { source: input, bytes: input.byteLength, files: [input] }, model };
  }
  if (input instanceof Model) {
    // Copied through a file staged in the temporary directory (removed on SIGINT and SIGTERM too),
    // written on libuv's threads and read back as a file is: encoding and decoding it in memory held
    // the event loop for the whole model (VGG-16: 4.8 s here), and a Model over 2 GiB could not be
    // encoded at all. Inline, as an encoding in memory was (tensors the Model read from external data
    // are not external in the copy), unless that is over the protobuf limit.
    const target = path.join(os.tmpdir(), 'redpp-prune-input.onnx');
    const staged = await stageModel(input, target, { externalData: 'never' }).catch((e: unknown) => {
      if (e instanceof RedppError && e.code === 'MODEL_TOO_LARGE') return stageModel(input, target, { externalData: 'auto' });
      throw e;
    });
    try {
      const read = await loadModel(staged.path);
      return {
        original: { source: staged.path, bytes: staged.result.bytes + staged.result.externalBytes, files: staged.files },
        model: new Model(read.proto, { baseDir: input.baseDir, graph: read.graph }),
        release: staged.discard,
      };
    } catch (e) {
      await staged.discard();
      throw e;
    }
  }
  throw new RedppError('INVALID_ARGUMENT', 'prune: input must be a file path, a Buffer/Uint8Array or a Model');
}

function timed(pass: Pass, timings: Record<string, number>, onStart?: () => void): Pass {
  return {
    name: pass.name,
    exact: pass.exact,
    async run(model, plan) {
      onStart?.();
      const t0 = performance.now();
      const r = await pass.run(model, plan);
      timings[pass.name] = Math.round((performance.now() - t0) * 10) / 10;
      return r;
    },
  };
}

/**
 * Each layer's input splitting on its final weights: as the hash pass counted it where the weights are
 * still as hashing left them, else counted on the weights (layers left alone, layers a merge edited,
 * layers a rewrite added; none for a layer a rewrite removed); and its arithmetic for one run.
 */
async function countInputSplitting(plan: LayerPlan, runner: TaskRunner): Promise<void> {
  // Counting sorts every neuron's weights: in the pool, all layers at once.
  const counted = await Promise.all(
    plan.records.map((r) => {
      const counts = plan.inputSplitting(r);
      if (counts) return counts;
      const layout = r.layer.present ? r.layer.layout() : undefined;
      return layout && !('skip' in layout) ? runner.count({ layer: r.layer.name, data: layout.tensor.data, dataType: layout.tensor.dataType, grid: layout.grid }) : NONE;
    }),
  );
  for (const [i, r] of plan.records.entries()) {
    const counts = counted[i];
    r.distinctPerNeuron = counts.distinct;
    if (!r.addedBy) {
      r.ops = r.macs.before === null ? null : opCounts(counts, r.macs.before, r.neurons.before, r.fanIn);
      continue;
    }
    // A layer a rewrite added costs nothing before; after, what its own weights need.
    const layout = r.layer.layout();
    if (r.macs.after === null || 'skip' in layout) r.ops = null;
    else {
      const after = opCounts(counts, r.macs.after, layout.neurons, layout.fanIn);
      r.ops = { mults: { before: 0, after: after.mults.after }, adds: { before: 0, after: after.adds.after } };
    }
  }
}

const NONE: InputSplitCounts = { mults: 0, adds: 0, distinct: { min: 0, mean: 0, max: 0 } };

function sumOrNull(xs: (number | null)[]): number | null {
  return xs.every((x) => x !== null) ? xs.reduce<number>((a, x) => a + x!, 0) : null;
}

function totalOps(layers: LayerRecord[]): OpCounts | null {
  if (!layers.every((l) => l.ops)) return null;
  return layers.reduce<OpCounts>(
    (a, l) => ({
      mults: { before: a.mults.before + l.ops!.mults.before, after: a.mults.after + l.ops!.mults.after },
      adds: { before: a.adds.before + l.ops!.adds.before, after: a.adds.after + l.ops!.adds.after },
    }),
    { mults: { before: 0, after: 0 }, adds: { before: 0, after: 0 } },
  );
}
