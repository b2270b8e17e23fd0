/**
 * analyzeChannels(): the channel-dependency graph. One forward walk in topological order: every
 * Conv/Gemm/MatMul with constant weights starts a group of channels, each op's rule (rules/) says
 * how the channels pass to its outputs, and ops that tie channels together (residual Add, SE gate
 * Mul, depthwise convs) unite groups. Whatever a rule does not understand blocks the groups involved:
 * the analysis never guesses. Passes (hashing, merging, splitting) ask it for the groups.
 */
import { RedppError } from '../../errors';
import { DataType, Model, type Graph, type Node, type Tensor } from '../../model';
import { isArithmeticFloat } from '../../model/dtype';
import { sharedShapes, type Dim, type ShapeInference } from '../../model/shapes';
import { allSteps } from '../../turns';
import { FIXED, channelCount, cutLayout, describeLayout, normalizeSegments, type Layout, type Segment } from './layout';
import { findRule } from './registry';
import './rules';
import type {
  ChannelContext,
  ChannelGroup,
  ChannelSite,
  ProducerSpec,
  RewriteFn,
  ZeroFn,
} from './types';

export interface ChannelAnalysis {
  graph: Graph;
  opset: number;
  groups: ChannelGroup[];
  /** The layout each channel-carrying value has, segments naming final group ids. */
  layouts: Map<string, Layout>;
  /** @internal Shape-constant fixes, with the layouts whose changes trigger them. */
  rewrites: { node: Node; layout: Layout; fn: RewriteFn }[];
  /** @internal How zeros pass, per value, in topological order. */
  zeros: { value: string; fn: ZeroFn }[];
  /** @internal Producer sites per produced value (their rows decide whether a channel starts at zero). */
  produced: Map<string, ChannelSite[]>;
}

export interface AnalyzeOptions {
  /** Shapes of graph inputs, overriding the declared ones (as for inferShapes). */
  inputShapes?: Record<string, readonly Dim[]>;
}

interface GroupState {
  parent: number;
  channels: number;
  blocked: string[];
}

export function analyzeChannels(source: Model | Graph, options: AnalyzeOptions = {}): ChannelAnalysis {
  return allSteps(channelSteps(source, options));
}

/**
 * analyzeChannels() a step at a time: it yields after the shapes and after each node, where an async
 * caller gives the event loop a turn once a slice of work has passed (stepsInTurns()). The graph must
 * not change until it returns.
 */
export function* channelSteps(source: Model | Graph, options: AnalyzeOptions = {}): Generator<void, ChannelAnalysis, void> {
  const graph = source instanceof Model ? source.graph : source;
  const opset = source instanceof Model ? (source.opsetVersion('') ?? 1) : 13;
  const shapes = sharedShapes(graph, options.inputShapes ?? {});
  yield;
  const walk = new Walk(graph, opset, shapes);
  for (const node of graph.topologicalOrder()) {
    walk.visit(node);
    yield;
  }
  for (const out of graph.outputs) {
    const l = walk.layouts.get(out.name);
    if (l) walk.block(l, `reaches graph output '${out.name}'`);
  }
  return walk.finish();
}

class Walk implements ChannelContext {
  readonly layouts = new Map<string, Layout>();
  private readonly states: GroupState[] = [];
  private readonly sites: ChannelSite[] = [];
  private readonly rewrites: { node: Node; layout: Layout; fn: RewriteFn }[] = [];
  private readonly zeros: { value: string; fn: ZeroFn }[] = [];
  private readonly produced = new Map<string, ChannelSite[]>();
  /** Inputs a rule looked at, so the ones it ignored can be blocked. */
  private readonly seen = new Set<string>();

  constructor(
    readonly graph: Graph,
    readonly opset: number,
    private readonly shapes: ShapeInference,
  ) {}

  visit(node: Node): void {
    if (node.opType === 'Constant' && node.domain === '') return;
    this.seen.clear();
    const rule = findRule(node.domain, node.opType);
    if (!rule) {
      const op = node.domain ? `${node.domain}::${node.opType}` : node.opType;
      for (const v of node.inputs) {
        const l = this.layouts.get(v);
        if (l) this.block(l, `flows into ${op} '${node.label}', which has no channel rule`);
      }
      return;
    }
    try {
      rule(node, this);
    } catch (e) {
      // A malformed node (bad attribute, odd constant) blocks its channels rather than failing the pass.
      const why = e instanceof Error ? e.message : String(e);
      for (const v of [...node.inputs, ...node.outputs]) {
        const l = this.layouts.get(v);
        if (l) this.block(l, `rule for ${node.opType} '${node.label}' failed: ${why}`);
      }
      for (const v of node.outputs) this.layouts.delete(v);
      return;
    }
    const inputs = node.inputs;
    for (let i = 0; i < inputs.length; i++) {
      const l = this.layouts.get(inputs[i]);
      if (l && !this.seen.has(inputs[i])) {
        this.block(l, `input ${i} of ${node.opType} '${node.label}' carries channels its rule does not handle`);
      }
    }
  }

  // --- ChannelContext ---

  layout(value: string): Layout | undefined {
    if (!value) return undefined;
    this.seen.add(value);
    return this.layouts.get(value);
  }

  shape(value: string): readonly Dim[] | undefined {
    return value ? this.shapes.types.get(value)?.shape : undefined;
  }

  constant(value: string): Tensor | undefined {
    return this.graph.constant(value);
  }

  ints(value: string): number[] | undefined {
    if (!value) return undefined;
    const t = this.graph.constant(value);
    if (t) {
      if (t.dataType !== DataType.INT64 && t.dataType !== DataType.INT32) return undefined;
      return Array.from(t.data as ArrayLike<number | bigint>, Number);
    }
    const v = this.shapes.values.get(value);
    return v && v.every((d) => typeof d === 'number') ? (v as number[]) : undefined;
  }

  setLayout(node: Node, value: string, layout: Layout): void {
    if (!value) return;
    if (!node.outputs.includes(value)) {
      throw new RedppError('INVALID_ARGUMENT', `a channel rule set a layout on '${value}', which is not an output of '${node.label}'`);
    }
    this.layouts.set(value, { ...layout, segments: normalizeSegments(layout.segments) });
  }

  produce(node: Node, spec: ProducerSpec): Layout {
    const id = this.states.length;
    this.states.push({ parent: id, channels: spec.channels, blocked: [] });
    const layout: Layout = { axis: spec.axis, rank: spec.rank, inner: 1, segments: [{ group: id, start: 0, length: spec.channels }] };
    const out = node.outputs[spec.output ?? 0];
    this.setLayout(node, out, layout);
    const sites: ChannelSite[] = [];
    for (const w of [spec.weight, spec.bias]) {
      if (!w) continue;
      const site = this.site('producer', node, w.input, w.axis, layout);
      if (site) sites.push(site);
    }
    this.produced.set(out, spec.offset ? [] : sites);
    return layout;
  }

  consume(node: Node, data: string, weight: { input: number; axis: number }): void {
    const layout = this.layout(data);
    if (!layout) return;
    const site = this.site('consumer', node, weight.input, weight.axis, layout);
    if (site) site.reads = data;
  }

  param(node: Node, input: number, axis: number, layout: Layout): void {
    this.site('param', node, input, axis, layout);
  }

  couple(node: Node, layouts: readonly Layout[]): boolean {
    const [first, ...rest] = layouts;
    let ok = true;
    for (const other of rest) ok = this.tie(first, other) && ok;
    if (!ok) for (const l of layouts) this.block(l, `${node.opType} '${node.label}' combines channels that cannot be kept aligned`);
    return ok;
  }

  block(target: Layout | string, reason: string): void {
    const layout = typeof target === 'string' ? this.layouts.get(target) : target;
    if (!layout) return;
    for (const s of layout.segments) {
      if (s.group === FIXED) continue;
      const st = this.states[this.find(s.group)];
      if (!st.blocked.includes(reason)) st.blocked.push(reason);
    }
  }

  rewrite(node: Node, layout: Layout, fn: RewriteFn): void {
    this.rewrites.push({ node, layout, fn });
  }

  zero(value: string, fn: ZeroFn): void {
    if (value) this.zeros.push({ value, fn });
  }

  // --- internals ---

  private site(role: ChannelSite['role'], node: Node, input: number, axis: number, layout: Layout): ChannelSite | undefined {
    const value = node.input(input);
    const what = `${role} ${node.opType} '${node.label}'`;
    const t = value ? this.graph.constant(value) : undefined;
    if (!t) {
      this.block(layout, `${what}: input ${input} is not a constant`);
      return undefined;
    }
    if (!isArithmeticFloat(t.dataType)) {
      this.block(layout, `${what}: '${value}' is not float32/float64`);
      return undefined;
    }
    const dims = t.dims;
    const expect = channelCount(layout) * layout.inner;
    if (axis < 0 || axis >= dims.length || dims[axis] !== expect) {
      this.block(layout, `${what}: '${value}' [${dims}] has no axis ${axis} of ${expect} (${describeLayout(layout)})`);
      return undefined;
    }
    const site: ChannelSite = { role, node, input, value, axis, layout };
    this.sites.push(site);
    return site;
  }

  private find(g: number): number {
    let r = g;
    while (this.states[r].parent !== r) r = this.states[r].parent;
    while (this.states[g].parent !== r) {
      const next = this.states[g].parent;
      this.states[g].parent = r;
      g = next;
    }
    return r;
  }

  private union(a: number, b: number): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra === rb) return;
    const [keep, gone] = ra < rb ? [ra, rb] : [rb, ra];
    this.states[gone].parent = keep;
    for (const r of this.states[gone].blocked) if (!this.states[keep].blocked.includes(r)) this.states[keep].blocked.push(r);
  }

  /**
   * Ties two layouts position by position. Possible when each aligned piece is the same run of one
   * group, or two whole groups of the same size (which then become one group).
   */
  private tie(a: Layout, b: Layout): boolean {
    if (a.inner !== b.inner || channelCount(a) !== channelCount(b)) return false;
    const cuts = new Set<number>([0]);
    for (const l of [a, b]) {
      let at = 0;
      for (const s of l.segments) cuts.add((at += s.length));
    }
    const points = [...cuts].sort((x, y) => x - y);
    const pairs: [Segment, Segment][] = [];
    for (let i = 0; i + 1 < points.length; i++) {
      const [p] = cutLayout(a, points[i], points[i + 1]);
      const [q] = cutLayout(b, points[i], points[i + 1]);
      pairs.push([p, q]);
    }
    for (const [p, q] of pairs) {
      if (p.group === FIXED || q.group === FIXED) return false;
      if (this.find(p.group) === this.find(q.group)) {
        if (p.start !== q.start) return false;
        continue;
      }
      const whole = (s: Segment) => s.start === 0 && s.length === this.states[s.group].channels;
      if (!whole(p) || !whole(q)) return false;
    }
    for (const [p, q] of pairs) this.union(p.group, q.group);
    return true;
  }

  finish(): ChannelAnalysis {
    const resolve = (l: Layout): Layout => ({
      ...l,
      segments: l.segments.map((s) => (s.group === FIXED ? { ...s } : { ...s, group: this.find(s.group) })),
    });
    const ids = new Map<number, number>();
    const groups: ChannelGroup[] = [];
    const groupOf = (root: number): ChannelGroup => {
      let id = ids.get(root);
      if (id === undefined) {
        id = groups.length;
        ids.set(root, id);
        const st = this.states[root];
        groups.push({
          id,
          channels: st.channels,
          producers: [],
          consumers: [],
          params: [],
          nodes: [],
          values: [],
          cells: [],
          blocked: [...st.blocked],
        });
      }
      return groups[id];
    };
    // Group ids in order of first appearance, so reports follow the graph.
    const renumber = (l: Layout): Layout => ({
      ...l,
      segments: l.segments.map((s) => (s.group === FIXED ? s : { ...s, group: groupOf(s.group).id })),
    });
    const cuts = new Map<number, Set<number>>();
    const addCuts = (l: Layout) => {
      for (const s of l.segments) {
        if (s.group === FIXED) continue;
        let set = cuts.get(s.group);
        if (!set) cuts.set(s.group, (set = new Set([0, groups[s.group].channels])));
        set.add(s.start).add(s.start + s.length);
      }
    };

    const layouts = new Map<string, Layout>();
    const nodeGroups = new Map<Node, Set<number>>();
    const order = this.graph.topologicalOrder();
    const visitValue = (node: Node, v: string) => {
      const raw = this.layouts.get(v);
      if (!raw) return;
      let l = layouts.get(v);
      if (!l) {
        l = renumber(resolve(raw));
        layouts.set(v, l);
        addCuts(l);
        for (const s of l.segments) if (s.group !== FIXED) groups[s.group].values.push(v);
      }
      for (const s of l.segments) {
        if (s.group === FIXED) continue;
        let set = nodeGroups.get(node);
        if (!set) nodeGroups.set(node, (set = new Set()));
        set.add(s.group);
      }
    };
    // Plain loops: a list of each node's values, or a rank for every node, were a million objects on a
    // graph of a million nodes that carries no channels at all.
    for (const node of order) {
      for (const v of node.inputs) visitValue(node, v);
      for (const v of node.outputs) visitValue(node, v);
    }
    for (const site of this.sites) {
      site.layout = renumber(resolve(site.layout));
      addCuts(site.layout);
      const list = site.role === 'producer' ? 'producers' : site.role === 'consumer' ? 'consumers' : 'params';
      for (const g of new Set(site.layout.segments.filter((s) => s.group !== FIXED).map((s) => s.group))) {
        groups[g][list].push(site);
        let set = nodeGroups.get(site.node);
        if (!set) nodeGroups.set(site.node, (set = new Set()));
        set.add(g);
      }
    }
    for (const [node, set] of nodeGroups) for (const g of set) groups[g].nodes.push(node);
    const rank = new Map<Node, number>();
    if (nodeGroups.size > 0) order.forEach((n, i) => nodeGroups.has(n) && rank.set(n, i));
    for (const g of groups) {
      g.nodes.sort((x, y) => rank.get(x)! - rank.get(y)!);
      g.values = [...new Set(g.values)];
      g.cells = [...(cuts.get(g.id) ?? new Set([0, g.channels]))].sort((x, y) => x - y);
      if (g.producers.length === 0 && g.blocked.length === 0) g.blocked.push('no producer with constant weights');
    }
    for (const r of this.rewrites) r.layout = renumber(resolve(r.layout));
    return {
      graph: this.graph,
      opset: this.opset,
      groups,
      layouts,
      rewrites: this.rewrites,
      zeros: this.zeros,
      produced: this.produced,
    };
  }
}

/** Fraction-friendly summary: channels in all groups, and in the groups that can be pruned. */
export function channelSummary(analysis: ChannelAnalysis): { groups: number; prunableGroups: number; channels: number; prunableChannels: number } {
  let channels = 0;
  let prunable = 0;
  let prunableGroups = 0;
  for (const g of analysis.groups) {
    channels += g.channels;
    if (g.blocked.length === 0) {
      prunable += g.channels;
      prunableGroups++;
    }
  }
  return { groups: analysis.groups.length, prunableGroups, channels, prunableChannels: prunable };
}
