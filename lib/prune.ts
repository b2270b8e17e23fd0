/**
 * prune(): the RED++ pipeline on one model — fold BatchNorm and weight transforms, hash (in the worker pool), merge
 * identical neurons, optionally pack hashed weights as codebooks + indices — with a report of what changed, and optionally the pruned model's outputs and
 * latency checked against the original in onnxruntime-node.
 */
import * as fs from 'node:fs';

import { RedppError } from './errors';
import { decodeModel, loadModel } from './model/read';
import { encodeModel, saveModel } from './model/write';
import { Model } from './model/model';
import { resolvePruneOptions, type PruneOptions, type ResolvedPruneOptions } from './options';
import { FOLD_PASSES } from './passes';
import { hashPass, type HashedLayer, type HashPassReport } from './passes/hash';
import { mergePass, type MergePassReport } from './passes/merge';
import { splitPass, type SplitLayer, type SplitPassReport } from './passes/split';
import { packPass, type PackedLayer, type PackPassReport } from './passes/pack';
import { splitCountsOf, type SplitCounts } from './passes/splitting';
import { isWeighted, neuronLayout } from './passes/weight-layout';
import { runPasses, type Pass, type PassReport } from './passes/pass';
import { WorkerPool } from './pool';
import { concreteInputShapes, modelStats, type ModelStats } from './stats';
import { validate, type ValidationReport } from './validate';

export interface LayerReport {
  node: string;
  op: string;
  neurons: { before: number; after: number };
  fanIn: number;
  params: { before: number; after: number };
  macs: { before: number | null; after: number | null };
  /** Present when the layer was hashed. */
  hash?: Omit<HashedLayer, 'node' | 'op' | 'neurons' | 'fanIn'>;
  /** Why the layer was not hashed. */
  skipped?: string;
  /** Present when the layer's weights were packed (options.pack): codebook and index sizes. */
  packed?: Omit<PackedLayer, 'node' | 'op' | 'neurons' | 'fanIn'>;
  /**
   * Kernel-level split analysis, present for the convs it applies to (group 1, k×k): distinct kernels
   * per input channel, the cost model's prediction, whether the conv was rewritten and its latency.
   */
  kernelSplit?: Omit<SplitLayer, 'node'>;
  /** RED++ input splitting, counted on the pruned weights (per output position of every neuron). */
  split: SplitCounts;
  /** Multiplications and additions for one run, dense before and with input splitting after. */
  ops: OpCounts | null;
}

export interface OpCounts {
  mults: { before: number; after: number };
  adds: { before: number; after: number };
}

export interface PruneReport {
  input: string | null;
  output: string | null;
  options: Omit<ResolvedPruneOptions, 'onProgress' | 'output'>;
  params: { before: number; after: number };
  /** null when a shape in the model could not be resolved at `inputShapes`. */
  macs: { before: number | null; after: number | null };
  /** Bytes of the .onnx before and after. */
  file: { before: number; after: number };
  /**
   * Arithmetic of the weighted layers for one run: dense before; after, as RED++ input splitting counts
   * it (a multiplication per distinct non-zero value of a neuron). Counted, not measured. Null when a
   * shape is unknown.
   */
  ops: OpCounts | null;
  inputShapes: Record<string, number[]>;
  layers: LayerReport[];
  passes: PassReport[];
  validation?: ValidationReport;
  timingsMs: Record<string, number>;
  hashBackend: string;
}

export interface PruneResult {
  model: Model;
  report: PruneReport;
}

/**
 * Prunes a model given as a path, the bytes of an .onnx file, or a loaded Model (which is left as it
 * is: prune works on a copy). The input file is never written.
 */
export async function prune(input: string | Uint8Array | Model, options: PruneOptions = {}): Promise<PruneResult> {
  const opts = resolvePruneOptions(options);
  const progress = opts.onProgress ?? (() => undefined);
  const timings: Record<string, number> = {};
  const clock = () => {
    const t0 = performance.now();
    return (name: string) => (timings[name] = Math.round((performance.now() - t0) * 10) / 10);
  };

  // The pool's workers start (load the addon) while the main thread reads the model.
  const pool = new WorkerPool(opts.threads);
  let reports: PassReport[];
  let original: Awaited<ReturnType<typeof open>>['original'];
  let model: Model;
  let inputShapes: Record<string, number[]>;
  let before: ModelStats;
  let after: ModelStats;
  let hashReport: HashPassReport;
  let split: Map<string, SplitCounts>;
  try {
    const stop = clock();
    progress({ phase: 'load', done: 0, total: 1 });
    ({ original, model } = await open(input));
    stop('load');
    inputShapes = concreteInputShapes(model.graph, opts.inputShapes);
    before = modelStats(model, inputShapes);
    const passes: Pass[] = [
      ...FOLD_PASSES.map((p) => timed(p, timings, () => progress({ phase: 'fold', done: 0, total: 1 }))),
      timed(
        hashPass(opts, pool, (p) => progress({ phase: 'hash', done: p.done, total: p.total, detail: p.layer })),
        timings,
      ),
      timed(mergePass({ epsilon: opts.epsilon, inputShapes }), timings, () => progress({ phase: 'merge', done: 0, total: 1 })),
      // Layers it rewrites are timed alone before and after (always under 'auto', where splits are rare).
      timed(splitPass({ split: opts.split, inputShapes, measureRuns: opts.split === 'auto' || opts.validate ? 30 : 0 }), timings),
    ];
    reports = await runPasses(model, passes);
    after = modelStats(model, inputShapes);
    hashReport = reports.find((r) => r.pass === 'hash') as HashPassReport;
    // Counted on the plain weights, before packing replaces them by gathers.
    split = splitAfter(model, hashReport, reports.find((r) => r.pass === 'merge') as MergePassReport);
    if (opts.pack) {
      progress({ phase: 'pack', done: 0, total: 1 });
      reports.push(...(await runPasses(model, [timed(packPass({ pool }), timings)])));
    }
  } finally {
    await pool.close();
  }

  let stop = clock();
  progress({ phase: 'save', done: 0, total: 1 });
  let fileAfter: number;
  let changed: Model | Uint8Array = model;
  if (opts.output) {
    fileAfter = (await saveModel(model, opts.output)).bytes;
  } else {
    changed = encodeModel(model);
    fileAfter = changed.byteLength;
  }
  stop('save');

  let validation: ValidationReport | undefined;
  if (opts.validate) {
    stop = clock();
    progress({ phase: 'validate', done: 0, total: 1 });
    validation = await validate(original.source, opts.output ?? changed, { shapes: inputShapes, runs: 10 });
    stop('validate');
  }

  const packReport = reports.find((r) => r.pass === 'pack') as PackPassReport | undefined;
  const layers = layerReports(before, after, hashReport, split, packReport);
  const kernelSplit = reports.find((r) => r.pass === 'split') as SplitPassReport;
  for (const { node, ...rest } of kernelSplit.layers) {
    const l = layers.find((x) => x.node === node);
    if (l) l.kernelSplit = rest;
  }
  const ops = layers.every((l) => l.ops)
    ? layers.reduce<OpCounts>(
        (a, l) => ({
          mults: { before: a.mults.before + l.ops!.mults.before, after: a.mults.after + l.ops!.mults.after },
          adds: { before: a.adds.before + l.ops!.adds.before, after: a.adds.after + l.ops!.adds.after },
        }),
        { mults: { before: 0, after: 0 }, adds: { before: 0, after: 0 } },
      )
    : null;
  const { onProgress: _p, output: _o, ...shownOptions } = opts;
  const report: PruneReport = {
    input: typeof input === 'string' ? input : null,
    output: opts.output ?? null,
    options: shownOptions,
    params: { before: before.params, after: after.params },
    macs: { before: before.macs, after: after.macs },
    file: { before: original.bytes, after: fileAfter },
    ops,
    inputShapes,
    layers,
    passes: reports,
    validation,
    timingsMs: timings,
    hashBackend: hashReport.layers.length ? 'native-cpu' : 'none',
  };
  return { model, report };
}

/** The model to prune (a private copy) and how to show the original to the validator. */
async function open(input: string | Uint8Array | Model): Promise<{
  original: { source: string | Uint8Array; bytes: number };
  model: Model;
}> {
  if (typeof input === 'string') {
    const model = await loadModel(input);
    return { original: { source: input, bytes: fs.statSync(input).size }, model };
  }
  if (input instanceof Uint8Array) {
    return { original: { source: input, bytes: input.byteLength }, model: decodeModel(input) };
  }
  if (input instanceof Model) {
    const bytes = encodeModel(input);
    return { original: { source: bytes, bytes: bytes.byteLength }, model: decodeModel(bytes, { baseDir: input.baseDir }) };
  }
  throw new RedppError('INVALID_ARGUMENT', 'prune: input must be a file path, a Buffer/Uint8Array or a Model');
}

function timed(pass: Pass, timings: Record<string, number>, onStart?: () => void): Pass {
  return {
    name: pass.name,
    exact: pass.exact,
    async run(model) {
      onStart?.();
      const t0 = performance.now();
      const r = await pass.run(model);
      timings[pass.name] = Math.round((performance.now() - t0) * 10) / 10;
      return r;
    },
  };
}

/**
 * Input-splitting counts of every weighted layer of the pruned model: from the hash pass where its
 * weights are still as hashing left them, else counted on the weights (layers left alone, and the
 * layers whose rows a merge edited).
 */
function splitAfter(model: Model, hash: HashPassReport, merge: MergePassReport): Map<string, SplitCounts> {
  const edited = new Set(merge.merge.layers.map((l) => l.node));
  const hashed = new Map(hash.layers.map((l) => [l.node, l.split]));
  const out = new Map<string, SplitCounts>();
  for (const node of model.graph.nodes) {
    if (!isWeighted(node)) continue;
    const kept = !edited.has(node.label) ? hashed.get(node.label) : undefined;
    if (kept) {
      out.set(node.label, kept);
      continue;
    }
    const layout = neuronLayout(model.graph, node);
    if (!('skip' in layout)) out.set(node.label, splitCountsOf(layout.toRows(layout.tensor.toFloat32()), layout.fanIn));
  }
  return out;
}

function layerReports(
  before: ModelStats,
  after: ModelStats,
  hash: HashPassReport,
  split: Map<string, SplitCounts>,
  pack: PackPassReport | undefined,
): LayerReport[] {
  const packedBy = new Map((pack?.layers ?? []).map((l) => [l.node, l]));
  const afterBy = new Map(after.layers.map((l) => [l.node, l]));
  const hashedBy = new Map(hash.layers.map((l) => [l.node, l]));
  const skippedBy = new Map(hash.skipped.map((s) => [s.node, s.reason]));
  return before.layers.map((b) => {
    const a = afterBy.get(b.node);
    const h = hashedBy.get(b.node);
    const s = split.get(b.node) ?? splitCountsOf(new Float32Array(0), b.fanIn);
    // Output positions per neuron: MACs = positions * neurons * fanIn.
    const positions = b.macs === null ? null : b.macs / (b.neurons * b.fanIn);
    const layer: LayerReport = {
      node: b.node,
      op: b.op,
      neurons: { before: b.neurons, after: a?.neurons ?? 0 },
      fanIn: b.fanIn,
      params: { before: b.params, after: a?.params ?? 0 },
      macs: { before: b.macs, after: a ? a.macs : 0 },
      split: s,
      ops:
        positions === null
          ? null
          : {
              mults: { before: b.macs!, after: positions * s.mults },
              adds: { before: positions * b.neurons * (b.fanIn - 1), after: positions * s.adds },
            },
    };
    if (h) {
      const { node: _n, op: _op, neurons: _ne, fanIn: _f, ...rest } = h;
      layer.hash = rest;
    } else {
      layer.skipped = skippedBy.get(b.node) ?? 'not hashed';
    }
    const p = packedBy.get(b.node);
    if (p) {
      const { node: _n, op: _op, neurons: _ne, fanIn: _f, ...rest } = p;
      layer.packed = rest;
    }
    return layer;
  });
}
