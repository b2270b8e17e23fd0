/**
 * What the baselines share: both decide, per prunable channel group of lib/passes/channels, an *order*
 * in which channels leave (deleted, or merged into a kept channel with a scale), cell by cell; a budget
 * then takes the same fraction of every cell's order (uniform per-layer ratio, as both papers prune
 * layer by layer), the smallest fraction whose removed MACs (pruneToMacs) or params (pruneToParams)
 * reach the target. The edit itself is
 * lib/passes/merge/edit.ts's applyFates, so a channel leaves every producer, per-channel parameter
 * and consumer of its group at once.
 */
import { decodeModel } from '../../lib/load';
import { encodeModel, type Graph, type Model } from '../../lib/model';
import { analyzeChannels, axisView, channelCount, sliceSize, type ChannelAnalysis, type ChannelGroup, type ChannelSite } from '../../lib/passes/channels';
import { exclusiveConstant, removeIfUnused } from '../../lib/passes/constant-tensors';
import { applyFates } from '../../lib/passes/merge/edit';
import { modelStats } from '../../lib/stats';

/** One step of a group's order: `channel` leaves; its consumer slices, times `scale`, are added into `into` (-1: dropped). */
export interface Removal {
  channel: number;
  into: number;
  scale: number;
}

/** A method's order for one group: one list per cell, in the order channels leave (each cell keeps >= 1). */
export interface GroupOrder {
  group: number;
  channels: number;
  cells: Removal[][];
  /** Estimated MACs removed per channel of the group (producers, per-channel layers, consumers). */
  macsPerChannel: number;
  /** Estimated params removed per channel of the group (its slice of every constant it touches). */
  paramsPerChannel: number;
}

export interface BaselineMethod {
  /** Short name used in tables and plots. */
  name: string;
  /** The order of every prunable group of the analysis (read-only on the model). */
  order(analysis: ChannelAnalysis, group: ChannelGroup): Removal[][];
}

export interface BaselinePlan {
  method: string;
  inputShapes: Record<string, number[]>;
  orders: GroupOrder[];
  macsBefore: number;
  paramsBefore: number;
}

export interface BaselineResult {
  model: Model;
  method: string;
  /** How many removals of the schedule were applied. */
  removals: number;
  channelsRemoved: number;
  params: { before: number; after: number };
  macs: { before: number; after: number };
}

/** Positions along a site's axis (in channels) where channel `c` of group `g` sits. */
export function positionsOf(site: ChannelSite, g: number, c: number): number[] {
  const out: number[] = [];
  let at = 0;
  for (const s of site.layout.segments) {
    if (s.group === g && c >= s.start && c < s.start + s.length) out.push(at + c - s.start);
    at += s.length;
  }
  return out;
}

/** The elements of channel `c` in a site's constant, in row-major order (all occurrences). */
export function channelSlice(graph: Graph, site: ChannelSite, g: number, c: number): Float64Array {
  const t = graph.constant(site.node.input(site.input));
  if (!t) return new Float64Array(0);
  const data = t.data as ArrayLike<number>;
  const view = axisView(t.dims, site.axis);
  const inner = site.layout.inner;
  const run = inner * view.stride;
  const pos = positionsOf(site, g, c);
  const out = new Float64Array(pos.length * view.outer * run);
  let k = 0;
  for (const p of pos) {
    for (let o = 0; o < view.outer; o++) {
      const base = (o * view.length + p * inner) * view.stride;
      for (let e = 0; e < run; e++) out[k++] = data[base + e];
    }
  }
  return out;
}

/** Multiplies channel `c`'s elements in a site's constant by `scale`, in place (the constant made exclusive first). */
export function scaleChannel(graph: Graph, site: ChannelSite, g: number, c: number, scale: number): void {
  const t = exclusiveConstant(graph, site.node, site.input);
  if (!t) return;
  const data = t.mutableData() as Float32Array;
  const view = axisView(t.dims, site.axis);
  const inner = site.layout.inner;
  const run = inner * view.stride;
  for (const p of positionsOf(site, g, c)) {
    for (let o = 0; o < view.outer; o++) {
      const base = (o * view.length + p * inner) * view.stride;
      for (let e = 0; e < run; e++) data[base + e] *= scale;
    }
  }
}

/** Whether every constant of the group is float32 (the baselines edit float32 weights only). */
function editable(graph: Graph, g: ChannelGroup): boolean {
  return [...g.producers, ...g.consumers, ...g.params].every((s) => graph.constant(s.node.input(s.input))?.data instanceof Float32Array);
}

/** MACs one channel of the group costs: its share of every producer, weighted per-channel layer, and consumer. */
function macsPerChannel(g: ChannelGroup, layerMacs: Map<string, { macs: number; neurons: number }>): number {
  let total = 0;
  const seen = new Set<string>();
  for (const site of [...g.producers, ...g.params, ...g.consumers]) {
    const key = `${site.node.label}/${site.role === 'consumer' ? 'in' : 'out'}`;
    if (seen.has(key)) continue;
    const l = layerMacs.get(site.node.label);
    if (!l) continue;
    seen.add(key);
    // A param site of a weighted node is a per-channel (depthwise) layer: one neuron per channel.
    total += site.role === 'consumer' ? l.macs / channelCount(site.layout) : l.macs / l.neurons;
  }
  return total;
}

/**
 * Params one channel of the group holds: its slice of every distinct constant of the group (producer
 * rows, per-channel params, consumer columns), once per segment where the channel appears. A constant
 * sliced on two axes by the same group (a conv that reads and writes one residual stream) loses the
 * elements where its row and column cross once, not twice. Removing k such channels crosses k² times,
 * so the estimate runs a little high there; pruneToBudget corrects it by measurement.
 */
function paramsPerChannel(graph: Graph, g: ChannelGroup): number {
  let total = 0;
  const seen = new Map<string, { axis: number; positions: number }[]>();
  for (const site of [...g.producers, ...g.params, ...g.consumers]) {
    const t = graph.constant(site.node.input(site.input));
    if (!t) continue;
    const axes = seen.get(site.value) ?? [];
    if (axes.some((x) => x.axis === site.axis)) continue;
    const positions = site.layout.segments.filter((s) => s.group === g.id).length * site.layout.inner;
    total += positions * sliceSize(axisView(t.dims, site.axis), 1);
    for (const other of axes) total -= (t.size / (t.dims[site.axis] * t.dims[other.axis])) * positions * other.positions;
    axes.push({ axis: site.axis, positions });
    seen.set(site.value, axes);
  }
  return total;
}

/** Runs the method over every prunable group: the order in which channels would leave. */
export function planBaseline(model: Model, method: BaselineMethod, inputShapes: Record<string, number[]>): BaselinePlan {
  const analysis = analyzeChannels(model, { inputShapes });
  const stats = modelStats(model, inputShapes);
  const layerMacs = new Map(stats.layers.map((l) => [l.node, { macs: l.macs ?? 0, neurons: l.neurons }]));
  const orders: GroupOrder[] = [];
  for (const g of analysis.groups) {
    if (g.blocked.length > 0 || !editable(model.graph, g)) continue;
    orders.push({ group: g.id, channels: g.channels, cells: method.order(analysis, g), macsPerChannel: macsPerChannel(g, layerMacs), paramsPerChannel: paramsPerChannel(model.graph, g) });
  }
  return { method: method.name, inputShapes, orders, macsBefore: stats.macs ?? NaN, paramsBefore: stats.params };
}

/**
 * The order in which the plan's removals are taken: removal k of a cell of n channels sits at
 * (k + 1) / n, so every prefix removes about the same fraction of every cell (a uniform per-layer
 * ratio) and budgets can be met to one channel. Ties go by group, then cell.
 */
export function schedule(plan: BaselinePlan): { order: number; cell: number; position: number; macs: number; params: number }[] {
  const out: { order: number; cell: number; position: number; macs: number; params: number }[] = [];
  plan.orders.forEach((o, oi) =>
    o.cells.forEach((cell, ci) => {
      for (let k = 0; k < cell.length; k++) out.push({ order: oi, cell: ci, position: (k + 1) / (cell.length + 1), macs: o.macsPerChannel, params: o.paramsPerChannel });
    }),
  );
  return out.sort((a, b) => a.position - b.position || a.order - b.order || a.cell - b.cell);
}

/** Estimated MACs removed by the first `count` removals of the schedule. */
export function estimateMacsRemoved(plan: BaselinePlan, count: number): number {
  let m = 0;
  for (const s of schedule(plan).slice(0, count)) m += s.macs;
  return m;
}

/** Estimated params removed by the first `count` removals of the schedule. */
export function estimateParamsRemoved(plan: BaselinePlan, count: number): number {
  let p = 0;
  for (const s of schedule(plan).slice(0, count)) p += s.params;
  return p;
}

/** What a budget counts: MACs or params removed. */
export type BudgetMeasure = 'macs' | 'params';

/** The fewest removals whose estimated `measure` removed reaches `amount`. */
function countFor(steps: { macs: number; params: number }[], measure: BudgetMeasure, amount: number): number {
  let m = 0;
  for (let k = 0; k < steps.length; k++) {
    if (m >= amount) return k;
    m += steps[k][measure];
  }
  return steps.length;
}

/**
 * Applies the first `count` removals of the plan's schedule to a copy of `model` (the model the plan
 * was made on): scales the consumer slices of merged channels, then applyFates. Returns the pruned
 * copy and its measured stats.
 */
export function applyBaseline(model: Model, plan: BaselinePlan, count: number): BaselineResult {
  const copy = decodeModel(encodeModel(model));
  const analysis = analyzeChannels(copy, { inputShapes: plan.inputShapes });
  const byId = new Map(analysis.groups.map((g) => [g.id, g]));
  const fates = new Map<number, Int32Array>();
  let channelsRemoved = 0;
  const taken = plan.orders.map((o) => o.cells.map(() => 0));
  for (const s of schedule(plan).slice(0, count)) taken[s.order][s.cell]++;
  plan.orders.forEach((o, oi) => {
    const g = byId.get(o.group);
    if (!g || g.channels !== o.channels) throw new Error(`baseline ${plan.method}: group ${o.group} differs in the copy`);
    const fate = Int32Array.from({ length: g.channels }, (_, c) => c);
    const scale = new Float64Array(g.channels).fill(1);
    let any = false;
    for (const [ci, cell] of o.cells.entries()) {
      const n = taken[oi][ci];
      for (let k = 0; k < n; k++) {
        const r = cell[k];
        fate[r.channel] = r.into;
        scale[r.channel] = r.scale;
        any = true;
        channelsRemoved++;
      }
    }
    if (!any) return;
    // Follow merge chains to a kept channel, multiplying the scales on the way.
    for (let c = 0; c < g.channels; c++) {
      let into = fate[c];
      let s = scale[c];
      while (into >= 0 && fate[into] !== into) {
        s *= scale[into];
        into = fate[into];
      }
      fate[c] = into;
      scale[c] = fate[c] === c ? 1 : s;
    }
    for (let c = 0; c < g.channels; c++) {
      if (fate[c] >= 0 && fate[c] !== c && scale[c] !== 1) {
        for (const site of g.consumers) scaleChannel(copy.graph, site, g.id, c, scale[c]);
      }
    }
    fates.set(g.id, fate);
  });
  const stats = applyFates(analysis, fates);
  removeIfUnused(copy.graph, stats.replaced);
  if (fates.size > 0) copy.graph.pruneValueInfo();
  const after = modelStats(copy, plan.inputShapes);
  return {
    model: copy,
    method: plan.method,
    removals: count,
    channelsRemoved,
    params: { before: plan.paramsBefore, after: after.params },
    macs: { before: plan.macsBefore, after: after.macs ?? NaN },
  };
}

/**
 * Prunes a copy with the plan's method so that `fraction` of the MACs (or params) go: the removal
 * count comes from the per-channel estimate, then is corrected (up to `iterations` times) by the
 * amount measured on the result with lib/stats.ts modelStats (the same loop for both measures). Stops
 * once a measured reduction is within 0.1 % of the total of the target, or the correction no longer
 * moves the count. On real models one removal is far below 0.1 %; on a tiny one the loop can stop up
 * to one removal's worth from the target.
 */
export function pruneToBudget(model: Model, plan: BaselinePlan, measure: BudgetMeasure, fraction: number, iterations = 4): BaselineResult {
  const steps = schedule(plan);
  const total = measure === 'macs' ? plan.macsBefore : plan.paramsBefore;
  const target = fraction * total;
  const removedBy = (r: BaselineResult) => (measure === 'macs' ? r.macs.before - r.macs.after : r.params.before - r.params.after);
  let goal = target;
  let result = applyBaseline(model, plan, countFor(steps, measure, goal));
  for (let i = 0; i < iterations; i++) {
    const removed = removedBy(result);
    const count = countFor(steps, measure, goal + (target - removed));
    if (Math.abs(removed - target) <= 0.001 * total || count === result.removals) break;
    goal += target - removed;
    result = applyBaseline(model, plan, count);
  }
  return result;
}

/** pruneToBudget by MACs removed. */
export function pruneToMacs(model: Model, plan: BaselinePlan, fraction: number, iterations = 4): BaselineResult {
  return pruneToBudget(model, plan, 'macs', fraction, iterations);
}

/** pruneToBudget by params removed. */
export function pruneToParams(model: Model, plan: BaselinePlan, fraction: number, iterations = 4): BaselineResult {
  return pruneToBudget(model, plan, 'params', fraction, iterations);
}
