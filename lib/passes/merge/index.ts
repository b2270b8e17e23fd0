/**
 * mergeOutputs(): RED++ output merging (its second step). In every prunable channel group,
 * neurons whose signature (rows in every producer, slices of every per-channel parameter) is bit
 * identical produce identical channels: one is kept, the others are deleted from the producers, and
 * each consumer adds the deleted channels' input weights into the kept one. Channels that are exactly
 * zero where every consumer reads them are deleted outright. Both are exact. With `epsilon > 0`,
 * neurons within a relative distance epsilon are merged too: lossy, and reported as such.
 */
import { RedppError } from '../../errors';
import type { Model, Node } from '../../model';
import { resolveMergeOptions, type MergeOptions, type ResolvedMergeOptions } from '../../options';
import { analyzeChannels, channelSteps, zeroMasks, type ChannelAnalysis, type ChannelGroup } from '../channels';
import { removeIfUnused } from '../constant-tensors';
import type { LayerPlan } from '../layer-records';
import { newReport, type Pass, type PassReport } from '../pass';
import { inProcess, type TaskRunner } from '../tasks';
import { allSteps, nextTurn, slices, stepsInTurns } from '../../turns';
import { exactDuplicates, mayHaveDuplicates, nearDuplicates, printTasks, signatures } from './cluster';
import { PrintTable, channelPrints } from './prints';
import { applyFates } from './edit';

export type { MergeOptions } from '../../options';

export interface MergeGroupReport {
  id: number;
  /** Channels before and after. */
  before: number;
  after: number;
  /** Channels removed as exact duplicates, as near duplicates (lossy), and as dead (all zero). */
  exact: number;
  approximate: number;
  dead: number;
  /** Largest relative distance between a neuron merged by epsilon and the one that replaced it. */
  maxDistance: number;
  producers: string[];
  consumers: string[];
  /** Why the group was left alone (empty when it was considered). */
  blocked: string[];
}

export interface MergeLayerReport {
  node: string;
  opType: string;
  /** The node itself (not part of the JSON report). */
  readonly layer: Node;
  /** Output neurons (producer rows) before/after, when the node's output channels changed. */
  outputs?: [number, number];
  /** Input channels (or features) before/after, when the node's input channels changed. */
  inputs?: [number, number];
}

export interface MergeReport {
  /** Whether the function changed (epsilon merges); exact merges and dead channels keep it. */
  lossy: boolean;
  epsilon: number;
  groups: MergeGroupReport[];
  layers: MergeLayerReport[];
  totals: {
    groups: number;
    prunableGroups: number;
    channels: number;
    prunableChannels: number;
    removed: number;
    exact: number;
    approximate: number;
    dead: number;
    /** Elements of the edited weights before and after. */
    weightsBefore: number;
    weightsAfter: number;
  };
}

/** Merges duplicate (and, with epsilon, near-duplicate) neurons in place and reports what changed. */
export function mergeOutputs(model: Model, options: MergeOptions = {}): MergeReport {
  return mergeResolved(model, resolveMergeOptions(options));
}

/**
 * The merge on options resolved already, on `analysis` of the model as it is; `prints`: the channel
 * fingerprints computed ahead (mergePass has the pool compute them), else computed here.
 */
function mergeResolved(model: Model, opts: ResolvedMergeOptions, analysis = analyzeChannels(model, { inputShapes: opts.inputShapes }), prints?: PrintTable): MergeReport {
  return allSteps(mergeSteps(model, opts, analysis, prints));
}

/**
 * mergeResolved() a channel group at a time: it yields after each group's decision, where the pass
 * gives the event loop a turn once a slice of work has passed (deciding a group reads its producers'
 * rows and zeros: tens of ms for a layer of a GB), and returns the report.
 */
function* mergeSteps(model: Model, opts: ResolvedMergeOptions, analysis: ChannelAnalysis, prints?: PrintTable): Generator<void, MergeReport> {
  const masks = opts.dead ? zeroMasks(analysis) : undefined;
  yield;
  const fates = new Map<number, Int32Array>();
  const groups: MergeGroupReport[] = [];
  for (const g of analysis.groups) {
    const r: MergeGroupReport = {
      id: g.id,
      before: g.channels,
      after: g.channels,
      exact: 0,
      approximate: 0,
      dead: 0,
      maxDistance: 0,
      producers: [...new Set(g.producers.map((s) => s.node.label))],
      consumers: [...new Set(g.consumers.map((s) => s.node.label))],
      blocked: g.blocked,
    };
    groups.push(r);
    if (g.blocked.length > 0) continue;
    const fate = decide(analysis, g, opts, masks, r, prints);
    r.after = g.channels - r.exact - r.approximate - r.dead;
    if (r.after < g.channels) fates.set(g.id, fate);
    yield;
  }
  const stats = applyFates(analysis, fates);
  // Shared constants were copied before editing: drop the originals nothing reads any more.
  removeIfUnused(model.graph, stats.replaced);
  if (fates.size > 0) model.graph.pruneValueInfo();
  const layers = new Map<string, MergeLayerReport>();
  for (const e of stats.edits) {
    if (e.site.role === 'param' || e.before === e.after) continue;
    const key = e.site.node.label;
    const l = layers.get(key) ?? withNode({ node: key, opType: e.site.node.opType }, e.site.node);
    const isWeight = e.site.input === 1;
    if (e.site.role === 'producer' && isWeight) l.outputs = [e.before, e.after];
    if (e.site.role === 'consumer') l.inputs = [e.before, e.after];
    layers.set(key, l);
  }
  const sum = (f: (r: MergeGroupReport) => number) => groups.reduce((n, r) => n + f(r), 0);
  const prunable = groups.filter((r) => r.blocked.length === 0);
  return {
    lossy: groups.some((r) => r.approximate > 0),
    epsilon: opts.epsilon,
    groups,
    layers: [...layers.values()],
    totals: {
      groups: groups.length,
      prunableGroups: prunable.length,
      channels: sum((r) => r.before),
      prunableChannels: prunable.reduce((n, r) => n + r.before, 0),
      removed: sum((r) => r.before - r.after),
      exact: sum((r) => r.exact),
      approximate: sum((r) => r.approximate),
      dead: sum((r) => r.dead),
      weightsBefore: stats.elementsBefore,
      weightsAfter: stats.elementsAfter,
    },
  };
}

export interface MergePassReport extends PassReport {
  /** The merge in detail: every channel group, what it removed or why it was blocked. */
  merge: MergeReport;
}

/** A layer report that carries its node without printing it. */
function withNode(l: Omit<MergeLayerReport, 'layer'>, node: Node): MergeLayerReport {
  return Object.defineProperty(l, 'layer', { value: node, enumerable: false }) as MergeLayerReport;
}

/**
 * Weights whose fingerprints are computed on the main thread rather than in the pool: a fingerprint
 * reads the weights once (~0.3 ms a MiB natively), a task in the pool costs a round trip through this
 * thread with two at a time in flight, which made ResNet-50's 106 (53 weights, 53 biases, most of them
 * under this size) some 20 ms of its merge.
 */
const INLINE_PRINT_BYTES = 256 << 10;

/**
 * mergeOutputs() as a pass for runPasses(); exact unless `epsilon > 0`. The channels' fingerprints (a
 * read of every producer weight) are computed on `runner` (prune() passes its worker pool), those of
 * weights under INLINE_PRINT_BYTES on this thread.
 */
export function mergePass(options: MergeOptions = {}, runner: TaskRunner = inProcess): Pass {
  return mergePassResolved(resolveMergeOptions(options), runner);
}

/** mergePass() on options prune() resolved already. */
export function mergePassResolved(resolved: ResolvedMergeOptions, runner: TaskRunner = inProcess): Pass {
  return {
    name: 'merge',
    exact: resolved.epsilon === 0,
    async run(model: Model, plan: LayerPlan): Promise<MergePassReport> {
      // The analysis in slices (ISNet's: 20-30 ms), and handing the pool a task per group a piece of
      // its own: a turn between them, which together made timer gaps of 46-68 ms.
      const analysis = await stepsInTurns(channelSteps(model, { inputShapes: resolved.inputShapes }));
      await nextTurn();
      // With epsilon, every cell is clustered anyway: fingerprints would only add a read.
      const prints = new PrintTable();
      if (resolved.epsilon === 0) {
        const tasks = printTasks(model.graph, analysis.groups);
        const pooled = tasks.map((task) => (task.data.byteLength >= INLINE_PRINT_BYTES ? runner.prints(task) : undefined));
        const done = Promise.all(pooled);
        // Settled below; meanwhile a failure here must not leave it unhandled.
        done.catch(() => undefined);
        const pause = slices();
        for (const [i, task] of tasks.entries()) {
          if (pooled[i]) continue;
          prints.set(task, channelPrints(task));
          await pause();
        }
        (await done).forEach((p, i) => p && prints.set(tasks[i], p));
      }
      const merge = await stepsInTurns(mergeSteps(model, resolved, analysis, prints));
      const report: MergePassReport = { ...newReport('merge'), merge };
      report.changed = merge.totals.removed > 0;
      for (const l of merge.layers) {
        // Rows changed: input splitting is counted again on the merged weights.
        const record = plan.recordOf(l.layer);
        if (record) {
          plan.forgetInputSplitting(record);
          record.merge = {};
          if (l.outputs) record.merge.outputs = { before: l.outputs[0], after: l.outputs[1] };
          if (l.inputs) record.merge.inputs = { before: l.inputs[0], after: l.inputs[1] };
        }
        const parts = [l.outputs && `outputs ${l.outputs[0]} -> ${l.outputs[1]}`, l.inputs && `inputs ${l.inputs[0]} -> ${l.inputs[1]}`];
        report.changes.push({ node: l.node, action: parts.filter(Boolean).join(', ') });
      }
      for (const g of merge.groups) {
        if (g.blocked.length > 0) report.skipped.push({ node: g.producers.join(', ') || `group ${g.id}`, reason: g.blocked.join('; ') });
      }
      const t = merge.totals;
      report.stats = {
        groups: t.groups,
        prunableGroups: t.prunableGroups,
        channels: t.channels,
        prunableChannels: t.prunableChannels,
        removed: t.removed,
        exact: t.exact,
        approximate: t.approximate,
        dead: t.dead,
      };
      return report;
    },
  };
}

/** Per channel of one group: itself (kept), the kept channel it merges into, or -1 (deleted). */
function decide(
  analysis: ChannelAnalysis,
  g: ChannelGroup,
  opts: ResolvedMergeOptions,
  masks: Map<string, Uint8Array> | undefined,
  report: MergeGroupReport,
  prints: PrintTable | undefined,
): Int32Array {
  const fate = Int32Array.from({ length: g.channels }, (_, c) => c);
  const dead = masks ? deadChannels(g, masks) : new Uint8Array(g.channels);
  for (let k = 0; k + 1 < g.cells.length; k++) {
    const [lo, hi] = [g.cells[k], g.cells[k + 1]];
    const alive: number[] = [];
    for (let c = lo; c < hi; c++) if (!dead[c]) alive.push(c - lo);
    // A cell keeps one channel even when all are dead: an empty Split output or a conv with no
    // channels is not something every runtime accepts.
    if (alive.length === 0) alive.push(0);
    for (let c = lo; c < hi; c++) {
      if (dead[c] && c - lo !== alive[0]) {
        fate[c] = -1;
        report.dead++;
      }
    }
    if (alive.length < 2) continue;
    if (opts.epsilon === 0 && !mayHaveDuplicates(analysis.graph, g, lo, hi, alive, prints)) continue;
    const sig = signatures(analysis.graph, g, lo, hi);
    const exact = exactDuplicates(sig, alive);
    const reps: number[] = [];
    for (const i of alive) {
      const into = exact.get(i)!;
      if (into === i) reps.push(i);
      else {
        fate[lo + i] = lo + into;
        report.exact++;
      }
    }
    if (opts.epsilon > 0 && reps.length > 1) {
      const near = nearDuplicates(sig, reps, opts.epsilon, opts.candidates);
      report.maxDistance = Math.max(report.maxDistance, near.maxDistance);
      for (const i of reps) {
        const into = near.into.get(i)!;
        if (into === i) continue;
        report.approximate++;
        // Exact duplicates of i follow it into its leader.
        for (let c = lo; c < hi; c++) if (fate[c] === lo + i) fate[c] = lo + into;
      }
    }
  }
  if (fate.some((f) => f >= 0 && fate[f] !== f)) {
    throw new RedppError('INVALID_ARGUMENT', `merge: group ${g.id} has a channel merged into a channel that is not kept`);
  }
  return fate;
}

/** Channels that every consumer reads as exact zeros. */
function deadChannels(g: ChannelGroup, masks: Map<string, Uint8Array>): Uint8Array {
  const dead = new Uint8Array(g.channels).fill(1);
  for (const site of g.consumers) {
    const mask = site.reads ? masks.get(site.reads) : undefined;
    let at = 0;
    for (const s of site.layout.segments) {
      if (s.group === g.id) {
        for (let k = 0; k < s.length; k++) if (!mask || !mask[at + k]) dead[s.start + k] = 0;
      }
      at += s.length;
    }
  }
  // Channels that reach no consumer at all are not called dead: nothing proves they are zero, and
  // deleting them gains nothing.
  const read = new Uint8Array(g.channels);
  for (const site of g.consumers) {
    for (const s of site.layout.segments) if (s.group === g.id) read.fill(1, s.start, s.start + s.length);
  }
  for (let c = 0; c < g.channels; c++) dead[c] &= read[c];
  return dead;
}
