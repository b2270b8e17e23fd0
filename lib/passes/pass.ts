/**
 * The contract every graph pass implements (fold, hash, merge, kernel split, pack): one object with a
 * name and a run() that edits the model in place, puts what it did to each layer in that layer's record
 * (layer-records.ts), and says what it did overall.
 */
import { layerTable, type Layer, type NeuronLayout } from '../layers';
import type { Model } from '../model/model';
import { nextTurn } from '../turns';
import { LayerPlan } from './layer-records';

export interface PassChange {
  /** The node the rewrite centred on (its name, or op type and output when unnamed). */
  node: string;
  /** What was done, in a few words: 'folded BatchNormalization into Conv'. */
  action: string;
}

export interface PassSkip {
  node: string;
  /** Why a candidate was left alone. */
  reason: string;
}

export interface PassReport {
  pass: string;
  /** Whether the model was modified. */
  changed: boolean;
  changes: PassChange[];
  skipped: PassSkip[];
  /** Pass-specific counters (e.g. nodes removed). */
  stats: Record<string, number>;
}

export interface Pass {
  readonly name: string;
  /** True when the pass keeps what the model computes (up to float rounding). */
  readonly exact: boolean;
  /** Fills `plan`, the records of the model's layers, with what it did to each (runPasses makes one). */
  run(model: Model, plan: LayerPlan): PassReport | Promise<PassReport>;
}

/** Type guard for objects handed in as passes (e.g. from a plugin list). */
export function isPass(value: unknown): value is Pass {
  const p = value as Pass;
  return typeof p === 'object' && p !== null && typeof p.name === 'string' && typeof p.run === 'function';
}

/**
 * Runs passes in order, tidying value_info after each; returns their reports. Per-layer results go to
 * `plan` (by default a plan of its own, made from the model as it is now).
 */
export async function runPasses(model: Model, passes: readonly Pass[], plan: LayerPlan = new LayerPlan(model)): Promise<PassReport[]> {
  const reports: PassReport[] = [];
  for (const pass of passes) {
    // Each pass begins in a turn of its own: a pass whose work before its first await is short would
    // otherwise run on in one piece with the one before (ISNet's two folds and the hash pass's first
    // posts, after the layer table: 20-30 ms).
    await nextTurn();
    const report = await pass.run(model, plan);
    model.graph.pruneValueInfo();
    reports.push(report);
  }
  return reports;
}

/** An empty report to fill. */
export function newReport(pass: string): PassReport {
  return { pass, changed: false, changes: [], skipped: [], stats: {} };
}

/** Says in the report, and in the layer's record where it has one, why a pass left `layer` alone. */
export function skipLayer(report: PassReport, plan: LayerPlan, layer: Layer, reason: string): void {
  report.skipped.push({ node: layer.name, reason });
  const record = plan.recordOf(layer.node);
  if (record) record.skipped = reason;
}

/**
 * The layers of the graph that have a neuron layout, each with the skip() that records why the pass
 * leaves it alone; a layer without a layout is recorded as skipped here (the hash and budget passes).
 */
export function* layoutsOf(model: Model, report: PassReport, plan: LayerPlan): Generator<{ layer: Layer; layout: NeuronLayout; skip: (reason: string) => void }> {
  for (const layer of layerTable(model.graph)) {
    const skip = (reason: string) => skipLayer(report, plan, layer, reason);
    const layout = layer.layout();
    if ('skip' in layout) skip(layout.skip);
    else yield { layer, layout, skip };
  }
}

/** Whether a layer name is one of the `skip` option's names, or matches one of its patterns. */
export function matchesSkip(patterns: readonly (string | RegExp)[], name: string): boolean {
  return patterns.some((p) => (typeof p === 'string' ? p === name : p.test(name)));
}
