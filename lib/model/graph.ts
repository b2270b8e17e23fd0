/**
 * Graph and Node: a walkable, editable view over a GraphProto.
 *
 * The protos stay the single source of truth: every edit made through these classes is applied to the
 * GraphProto at once, so the writer only encodes the tree and whatever no pass touched is written back
 * as it was read (node order, names, doc strings, attributes, custom domains). Producer/consumer
 * indices are rebuilt lazily after structural edits, or kept and updated in place by those that only
 * add a node writing new values, fill an empty input with a new constant, or add or remove an initializer.
 */
import { RedppError } from '../errors';
import { MinHeap } from '../heap';
import { DataType } from './dtype';
import { NameMap } from './name-map';
import {
  AttributeType,
  createMessage,
  onnxTypes,
  toNumber,
  type AttributeProto,
  type GraphProto,
  type NodeProto,
  type ValueInfoProto,
} from './proto';
import { Tensor, makeTensorProto } from './tensor';

export type AttributeValue = number | readonly number[] | string | Tensor;

export interface NewNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  domain?: string;
  /** Numbers are written as INT when integral and `floats` does not name them, else FLOAT. */
  attributes?: Record<string, AttributeValue>;
  /** Attribute names whose numeric values are floats even when integral. */
  floats?: readonly string[];
}

const textDecoder = new TextDecoder();
const NO_GRAPHS: readonly Graph[] = Object.freeze([]);

export class Node {
  readonly proto: NodeProto;
  /** The graph this node is in (until removed). */
  graph: Graph;
  private subgraphCache: readonly Graph[] | undefined;
  /** @internal Its place in its graph's node list when the graph's index was last built or took a node. */
  filePosition = -1;

  constructor(proto: NodeProto, graph: Graph) {
    this.proto = proto;
    this.graph = graph;
  }

  get opType(): string {
    return this.proto.op_type;
  }

  /** '' is the default ONNX domain (also spelled 'ai.onnx'). */
  get domain(): string {
    return this.proto.domain === 'ai.onnx' ? '' : this.proto.domain;
  }

  get name(): string {
    return this.proto.name;
  }

  /** A name for messages: the node's name, or its op type and first output. */
  get label(): string {
    return this.proto.name || `${this.proto.op_type}->${this.proto.output[0] ?? '?'}`;
  }

  get inputs(): readonly string[] {
    return this.proto.input;
  }

  get outputs(): readonly string[] {
    return this.proto.output;
  }

  /** The i-th input name, or '' when absent (optional inputs are empty strings or missing). */
  input(i: number): string {
    return this.proto.input[i] ?? '';
  }

  setInput(i: number, value: string): void {
    const was = this.proto.input[i] ?? '';
    while (this.proto.input.length < i) this.proto.input.push('');
    this.proto.input[i] = value;
    if (was === '') this.graph.inputFilled(this, i, value);
    else this.graph.invalidate([value]);
  }

  setOutput(i: number, value: string): void {
    const old = this.proto.output[i];
    this.proto.output[i] = value;
    if (old && old !== value) this.graph.noteRemoved(old);
    this.graph.invalidate([value]);
  }

  attribute(name: string): AttributeProto | undefined {
    return this.proto.attribute.find((a) => a.name === name);
  }

  attrInt(name: string, fallback: number): number;
  attrInt(name: string): number | undefined;
  attrInt(name: string, fallback?: number): number | undefined {
    const a = this.attribute(name);
    return a ? toNumber(a.i) : fallback;
  }

  attrFloat(name: string, fallback: number): number;
  attrFloat(name: string): number | undefined;
  attrFloat(name: string, fallback?: number): number | undefined {
    const a = this.attribute(name);
    return a ? a.f : fallback;
  }

  attrInts(name: string): number[] | undefined {
    const a = this.attribute(name);
    return a ? a.ints.map(toNumber) : undefined;
  }

  attrFloats(name: string): number[] | undefined {
    const a = this.attribute(name);
    return a ? [...a.floats] : undefined;
  }

  attrString(name: string, fallback: string): string;
  attrString(name: string): string | undefined;
  attrString(name: string, fallback?: string): string | undefined {
    const a = this.attribute(name);
    return a ? textDecoder.decode(a.s) : fallback;
  }

  /** Sets (or replaces) an attribute, keeping the attribute's position when it exists. */
  setAttribute(name: string, value: AttributeValue, asFloat = false): void {
    const attr = makeAttribute(name, value, asFloat);
    const i = this.proto.attribute.findIndex((a) => a.name === name);
    if (i >= 0) this.proto.attribute[i] = attr;
    else this.proto.attribute.push(attr);
    this.graph.noteEdit();
  }

  removeAttribute(name: string): void {
    const i = this.proto.attribute.findIndex((a) => a.name === name);
    if (i >= 0) this.proto.attribute.splice(i, 1);
    this.graph.noteEdit();
  }

  /** Graphs held in attributes (If/Loop/Scan bodies), wrapped with this node's graph as their parent. */
  subgraphs(): readonly Graph[] {
    // Most nodes have no attributes: one shared empty list rather than two arrays per node.
    this.subgraphCache ??= this.proto.attribute.length === 0 ? NO_GRAPHS : subgraphProtos(this.proto).map((g) => new Graph(g, this.graph));
    return this.subgraphCache;
  }
}

/** The value of a Constant node as a Tensor, or undefined for forms redpp does not decode (strings, sparse). */
function constantNodeTensor(node: Node): Tensor | undefined {
  const attr = node.proto.attribute[0];
  if (!attr || node.proto.attribute.length !== 1) return undefined;
  if (attr.name === 'value' && attr.t) return new Tensor(attr.t);
  const scalarForms: Record<string, [number, (a: AttributeProto) => number[], number[]]> = {
    value_float: [DataType.FLOAT, (a) => [a.f], []],
    value_floats: [DataType.FLOAT, (a) => [...a.floats], [attr.floats.length]],
    value_int: [DataType.INT64, (a) => [toNumber(a.i)], []],
    value_ints: [DataType.INT64, (a) => a.ints.map(toNumber), [attr.ints.length]],
  };
  const form = scalarForms[attr.name];
  if (!form) return undefined;
  const [dataType, read, dims] = form;
  const values = read(attr);
  const data = dataType === DataType.FLOAT ? Float32Array.from(values) : BigInt64Array.from(values.map(BigInt));
  const tensor = new Tensor(makeTensorProto('', dataType, dims, data), () => {
    // A changed value_float(s)/value_int(s) is written back as the Constant's `value` tensor.
    node.proto.attribute[0] = makeAttribute('value', tensor);
  });
  return tensor;
}

export class Graph {
  readonly proto: GraphProto;
  /** The enclosing graph, for a subgraph. */
  readonly parent: Graph | undefined;
  private nodeList: Node[];
  private initializerMap: Map<string, Tensor>;
  private readonly constantTensors = new Map<Node, Tensor | undefined>();
  private index: GraphIndex | undefined;
  /**
   * Every value and node name the graph has held since uniqueName() first ran, for uniqueName(): each
   * edit adds the names it brings in, none takes a name out (a name an edit frees is not handed out
   * again). Made once: a pack names a dozen nodes and constants a layer, and making the set anew after
   * each layer's edits was ResNet-50's longest main-thread piece (40 ms).
   */
  private names: Set<string> | undefined;
  private order: readonly Node[] | undefined;
  private readonly removed = new Set<string>();
  private structureChanged = false;
  private edits = 0;

  constructor(proto: GraphProto, parent?: Graph) {
    this.proto = proto;
    this.parent = parent;
    this.nodeList = proto.node.map((p) => new Node(p, this));
    this.initializerMap = new Map(proto.initializer.map((t) => [t.name, new Tensor(t)]));
  }

  get name(): string {
    return this.proto.name;
  }

  /** Nodes in file order (ONNX requires topological order; see topologicalOrder() for a checked one). */
  get nodes(): readonly Node[] {
    return this.nodeList;
  }

  get inputs(): readonly ValueInfoProto[] {
    return this.proto.input;
  }

  get outputs(): readonly ValueInfoProto[] {
    return this.proto.output;
  }

  /** Graph inputs a caller must feed: declared inputs that are not initializers. */
  get runtimeInputs(): readonly ValueInfoProto[] {
    return this.proto.input.filter((i) => !this.initializerMap.has(i.name));
  }

  get initializers(): ReadonlyMap<string, Tensor> {
    return this.initializerMap;
  }

  /** Whether nodes or initializers were added, removed or rewired since loading. */
  get changed(): boolean {
    return this.structureChanged;
  }

  /**
   * Counts the edits made through Graph and Node (structure, attributes, declared types): what is
   * derived from the graph alone, such as its shapes, holds while this stays the same.
   */
  get revision(): number {
    return this.edits;
  }

  producer(value: string): Node | undefined {
    return this.idx().producers.get(value);
  }

  /** @internal The producers of the index as it is, in file order: once handed out, no edit changes the map (ValueTypes keeps one). */
  producerIndex(): ReadonlyMap<string, Node> {
    // Its holder reads the values in its order, file order: a node taken in place went in at the end.
    if (this.index?.producersOutOfOrder) this.index = undefined;
    const index = this.idx();
    index.producersHeld = true;
    return index.producers;
  }

  /** Nodes that read `value`, including nodes whose subgraphs read it. */
  consumers(value: string): readonly Node[] {
    const readers = this.idx().consumers.get(value);
    return readers === undefined ? [] : Array.isArray(readers) ? readers : [readers];
  }

  /**
   * @internal A value that two nodes write (or one node twice), with the first writer and the second,
   * for the model's checks; undefined in a valid graph.
   */
  producedTwice(): { value: string; first: Node; second: Node } | undefined {
    const twice = this.idx().producedTwice;
    if (!twice) return undefined;
    const first = this.nodeList.find((n) => n.outputs.includes(twice.value))!;
    return { value: twice.value, first, second: twice.second };
  }

  isGraphOutput(value: string): boolean {
    return this.idx().outputs.has(value);
  }

  isGraphInput(value: string): boolean {
    return this.proto.input.some((i) => i.name === value);
  }

  /**
   * The constant tensor behind a value: an initializer or the output of a Constant node (any of its
   * numeric forms). An initializer that is also a graph input counts as constant (the exporter's intent
   * in older models), so passes fold it like any weight.
   */
  constant(value: string): Tensor | undefined {
    if (!value) return undefined;
    const init = this.initializerMap.get(value);
    if (init) return init;
    const node = this.producer(value);
    if (node && node.opType === 'Constant' && node.domain === '') {
      if (!this.constantTensors.has(node)) this.constantTensors.set(node, constantNodeTensor(node));
      return this.constantTensors.get(node);
    }
    return this.parent?.constant(value);
  }

  /** Declared type information for a value (graph input, output or value_info), if any. */
  valueInfo(value: string): ValueInfoProto | undefined {
    return (
      this.proto.value_info.find((v) => v.name === value) ??
      this.proto.input.find((v) => v.name === value) ??
      this.proto.output.find((v) => v.name === value)
    );
  }

  /** Inserts a node before/after another (default: at the end) and returns it. */
  addNode(spec: NewNode, where: { before?: Node; after?: Node } = {}): Node {
    const proto = createMessage<NodeProto>(onnxTypes().Node, {
      op_type: spec.opType,
      input: [...spec.inputs],
      output: [...spec.outputs],
      attribute: Object.entries(spec.attributes ?? {}).map(([k, v]) =>
        makeAttribute(k, v, spec.floats?.includes(k) ?? false),
      ),
      ...(spec.name !== undefined ? { name: spec.name } : {}),
      ...(spec.domain ? { domain: spec.domain } : {}),
    });
    let at = this.nodeList.length;
    if (where.before) at = this.position(where.before);
    else if (where.after) at = this.position(where.after) + 1;
    const node = new Node(proto, this);
    this.nodeList.splice(at, 0, node);
    this.proto.node.splice(at, 0, proto);
    const index = this.index;
    this.invalidate([...node.outputs, ...readsOf(node), node.name]);
    // A node that writes only values nothing writes yet (a pass's new chain) joins the index in place:
    // a pack adds a few nodes a layer, and an index made anew after each was 100 ms of ISNet's.
    if (index?.takeNode(node, at, this.nodeList)) this.index = index;
    return node;
  }

  removeNode(node: Node): void {
    this.removeNodes([node]);
  }

  /**
   * Removes nodes in one pass over the list: one at a time, each is a search, a splice and an index
   * made anew before the next edit reads the graph (a pass that removes a node per layer did that
   * once per layer).
   */
  removeNodes(nodes: Iterable<Node>): void {
    const gone = new Set(nodes);
    if (gone.size === 0) return;
    const list = this.nodeList;
    let found = 0;
    for (const n of list) if (gone.has(n)) found++;
    // A node of another graph: position() names it.
    if (found !== gone.size) for (const n of gone) this.position(n);
    // In place, the node list and the proto's side by side: a caller may hold graph.nodes.
    const protos = this.proto.node;
    let at = 0;
    for (let i = 0; i < list.length; i++) {
      if (gone.has(list[i])) continue;
      list[at] = list[i];
      protos[at++] = protos[i];
    }
    list.length = at;
    protos.length = at;
    for (const n of gone) {
      this.constantTensors.delete(n);
      for (const o of n.outputs) if (o) this.removed.add(o);
    }
    this.invalidate();
  }

  addInitializer(tensor: Tensor): void {
    if (!tensor.name) throw new RedppError('INVALID_ARGUMENT', 'an initializer needs a name');
    if (this.initializerMap.has(tensor.name)) {
      throw new RedppError('INVALID_ARGUMENT', `an initializer named '${tensor.name}' already exists`);
    }
    this.initializerMap.set(tensor.name, tensor);
    this.proto.initializer.push(tensor.proto);
    // Only nodes make the index and the order: both keep (a pack adds a dozen constants a layer, each
    // looked up after, and making the index anew for each was 30 ms of ResNet-50's main thread).
    this.edited([tensor.name]);
  }

  removeInitializer(name: string): void {
    const t = this.initializerMap.get(name);
    if (!t) return;
    this.initializerMap.delete(name);
    this.proto.initializer.splice(this.proto.initializer.indexOf(t.proto), 1);
    const inputAt = this.proto.input.findIndex((i) => i.name === name);
    if (inputAt >= 0) this.proto.input.splice(inputAt, 1);
    this.removed.add(name);
    // Only nodes make the index and the order: both keep.
    this.edited([]);
  }

  /** Points every reader of `from` (nodes, subgraph references aside) at `to`. */
  replaceUses(from: string, to: string): void {
    for (const n of [...this.consumers(from)]) {
      n.proto.input.forEach((v, i) => {
        if (v === from) n.proto.input[i] = to;
      });
    }
    this.invalidate([to]);
  }

  /** A value or node name not used anywhere in this graph, derived from `base`. */
  uniqueName(base: string): string {
    const taken = (this.names ??= namesOf(this));
    if (!taken.has(base)) {
      taken.add(base);
      return base;
    }
    for (let i = 1; ; i++) {
      const name = `${base}_${i}`;
      if (!taken.has(name)) {
        taken.add(name);
        return name;
      }
    }
  }

  /**
   * Removes initializers and Constant nodes that nothing reads any more (left behind by folding);
   * returns how many were removed.
   */
  removeUnusedConstants(): number {
    let count = 0;
    for (const node of [...this.nodeList]) {
      if (node.opType === 'Constant' && node.domain === '' && node.outputs.every((o) => this.unused(o))) {
        this.removeNode(node);
        count++;
      }
    }
    for (const name of [...this.initializerMap.keys()]) {
      if (this.unused(name)) {
        this.removeInitializer(name);
        count++;
      }
    }
    return count;
  }

  /** Drops value_info entries of values that edits removed from the graph. */
  pruneValueInfo(): void {
    if (this.removed.size === 0) return;
    const idx = this.idx();
    const gone = (name: string) =>
      this.removed.has(name) && !idx.producers.has(name) && !idx.consumers.has(name) && !this.initializerMap.has(name);
    const vi = this.proto.value_info;
    let kept = 0;
    for (const v of vi) if (!gone(v.name)) vi[kept++] = v;
    if (kept < vi.length) this.noteEdit();
    vi.length = kept;
    this.removed.clear();
  }

  /**
   * Nodes ordered so every producer precedes its consumers; file order wherever that is already valid.
   * Kept until the graph changes: every shape inference and channel analysis walks it.
   */
  topologicalOrder(): readonly Node[] {
    // ONNX requires file order to be topological, and it nearly always is: one walk keeps it where it is.
    if (!this.order) this.firstUndefinedInput(() => true);
    this.order ??= this.sortedOrder();
    return this.order;
  }

  /**
   * @internal The first input, in file order, that no node of this graph produces and `declared`
   * does not know, or undefined. Only the index's open reads can be either; when none of them has a
   * producer, file order is topological and is kept as the order: the read's check runs this, and
   * topologicalOrder() need not look every read up again.
   */
  firstUndefinedInput(declared: (value: string) => boolean): { node: Node; value: string } | undefined {
    const { producers, openReads } = this.idx();
    const nodes = this.nodeList;
    let inFileOrder = true;
    for (let k = 0; k < openReads.values.length; k++) {
      const node = nodes[openReads.positions[k]];
      const value = openReads.values[k];
      // Written by the node itself or a later one: file order is not topological.
      if (producers.has(value)) inFileOrder = false;
      // readsOf() adds a subgraph's outer references: the subgraph's own check reports those.
      else if (!declared(value) && node.inputs.includes(value)) return { node, value };
    }
    if (inFileOrder) this.order ??= [...nodes];
    return undefined;
  }

  /** Kahn's algorithm, for a graph whose file order is not topological. */
  private sortedOrder(): Node[] {
    const { producers } = this.idx();
    const nodes = this.nodeList;
    const pending = new Int32Array(nodes.length);
    const readers: number[][] = nodes.map(() => []);
    nodes.forEach((n, i) => {
      const deps = new Set<number>();
      for (const v of readsOf(n)) {
        const p = producers.get(v);
        if (p && p !== n) deps.add(p.filePosition);
      }
      pending[i] = deps.size;
      for (const d of deps) readers[d].push(i);
    });
    // Kahn's algorithm, always taking the ready node that comes first in the file.
    const ready = new MinHeap<number>((a, b) => a - b);
    nodes.forEach((_, i) => pending[i] === 0 && ready.push(i));
    const order: Node[] = [];
    for (let i = ready.pop(); i !== undefined; i = ready.pop()) {
      order.push(nodes[i]);
      for (const r of readers[i]) if (--pending[r] === 0) ready.push(r);
    }
    if (order.length !== nodes.length) {
      throw new RedppError('INVALID_MODEL', `graph '${this.name}' has a cycle`);
    }
    return order;
  }

  /** @internal Called by Node when its inputs or outputs change, with the names the edit brought in. */
  invalidate(added: readonly string[] = []): void {
    this.index = undefined;
    this.order = undefined;
    this.edited(added);
  }

  /** An edit of the structure that the index and the order survive, with the names it brought in. */
  private edited(added: readonly string[]): void {
    const names = this.names;
    if (names) for (const name of added) if (name) names.add(name);
    this.structureChanged = true;
    this.noteEdit();
    // What a subgraph reads from outside is among its node's reads in the enclosing graph's index.
    this.parent?.invalidate();
  }

  /**
   * @internal Called by Node when its empty input `i` now reads `value`. Where that value has no
   * producer (a new constant: a fold's bias) and the read is the node's last, the index takes the read
   * in place and the order keeps; otherwise the index is made anew. A fold adds a bias to each layer,
   * and each new index cost ResNet-50's 53 folds 0.4 ms.
   */
  inputFilled(node: Node, i: number, value: string): void {
    const index = this.index;
    // readsOf() gives the inputs themselves only where they are distinct, non-empty and no subgraph reads.
    const inPlace =
      index !== undefined &&
      this.nodeList[node.filePosition] === node &&
      !index.producers.has(value) &&
      i === node.inputs.length - 1 &&
      readsOf(node) === node.inputs;
    if (!inPlace) {
      this.invalidate([value]);
      return;
    }
    index.addReader(value, node);
    const { positions, values } = index.openReads;
    let at = positions.length;
    while (at > 0 && positions[at - 1] > node.filePosition) at--;
    positions.splice(at, 0, node.filePosition);
    values.splice(at, 0, value);
    this.edited([value]);
  }

  /** @internal Called on every edit (invalidate() for those that change the structure). */
  noteEdit(): void {
    this.edits++;
  }

  /** @internal */
  noteRemoved(value: string): void {
    this.removed.add(value);
  }

  private unused(value: string): boolean {
    return this.consumers(value).length === 0 && !this.isGraphOutput(value);
  }

  private position(node: Node): number {
    const at = this.nodeList.indexOf(node);
    if (at < 0) throw new RedppError('INVALID_ARGUMENT', `node '${node.label}' is not in graph '${this.name}'`);
    return at;
  }

  private idx(): GraphIndex {
    this.index ??= buildIndex(this);
    return this.index;
  }
}

interface GraphIndex {
  /**
   * Per value, the node that writes it (the last one, where several do), in file order but where
   * `producersOutOfOrder`. Changed only by takeNode(), until held.
   */
  producers: NameMap<Node>;
  /** Whether `producers` was handed out (producerIndex()): then no edit changes it, and the next index is made anew. */
  producersHeld: boolean;
  /** Whether takeNode() put a node's values among the producers other than at the end of the file. */
  producersOutOfOrder: boolean;
  /**
   * The reads (readsOf) of values that no earlier node in file order writes, in file order, as the
   * reading node's position and the value: graph inputs, initializers, outer values, values written
   * later or by the reader itself, and values nothing writes.
   */
  openReads: { positions: number[]; values: string[] };
  /** The first value found written a second time (by the node `second`), which a valid graph never has. */
  producedTwice: { value: string; second: Node } | undefined;
  /** Per value, the nodes that read it (readsOf): one node as itself, more as a list (most values have one reader, and a million one-element lists cost the collector seconds). */
  readonly consumers: NameMap<Node | Node[]>;
  /** Adds `node` (at its filePosition) to the readers of `value` in file order, where readers are gathered already. */
  addReader(value: string, node: Node): void;
  /**
   * Takes `node`, just put at `at` in `nodes`, where it writes only values that no node writes and
   * reads none of them; false (the index unchanged) where it does not.
   */
  takeNode(node: Node, at: number, nodes: readonly Node[]): boolean;
  outputs: Set<string>;
}

function buildIndex(graph: Graph): GraphIndex {
  const nodes = graph.nodes;
  const producers = new NameMap<Node>(nodes.length);
  let producedTwice: GraphIndex['producedTwice'];
  const openReads: GraphIndex['openReads'] = { positions: [], values: [] };
  for (let i = 0; i < nodes.length; i++) {
    const node = nodes[i];
    node.filePosition = i;
    // Looked up as the map is built, most values just after their writer was added: on a million
    // nodes a second walk's lookups, each one far from the last in the map's memory, cost 0.7 s.
    for (const v of readsOf(node)) {
      if (!producers.has(v)) {
        openReads.positions.push(i);
        openReads.values.push(v);
      }
    }
    for (const o of node.outputs) {
      if (o && !producers.put(o, node)) producedTwice ??= { value: o, second: node };
    }
  }
  const outputs = new Set(graph.proto.output.map((o) => o.name));
  // Consumers are gathered when first asked for, not on every index: reading a model and ordering it
  // need only the producers (a map over a million values costs a fraction of a second).
  let consumers: NameMap<Node | Node[]> | undefined;
  return {
    producers,
    producersHeld: false,
    producersOutOfOrder: false,
    openReads,
    producedTwice,
    outputs,
    get consumers() {
      if (!consumers) {
        // Room for every read (a node reads two or three values): the map is made whole, never grown.
        let reads = 0;
        for (const node of graph.nodes) reads += node.inputs.length;
        consumers = new NameMap(reads);
        for (const node of graph.nodes) {
          for (const v of readsOf(node)) {
            const seen = consumers.get(v);
            if (seen === undefined) consumers.put(v, node);
            else if (Array.isArray(seen)) seen.push(node);
            else consumers.put(v, [seen, node]);
          }
        }
      }
      return consumers;
    },
    addReader(v: string, node: Node) {
      if (!consumers) return;
      const seen = consumers.get(v);
      if (seen === undefined) {
        consumers.put(v, node);
        return;
      }
      // In a new list: consumers() hands out the one it has.
      const list = Array.isArray(seen) ? seen : [seen];
      let k = list.length;
      while (k > 0 && list[k - 1].filePosition > node.filePosition) k--;
      consumers.put(v, [...list.slice(0, k), node, ...list.slice(k)]);
    },
    takeNode(node: Node, at: number, nodes: readonly Node[]) {
      // Where a value has two writers, `producers` holds the last, and whether a read is open depends on the first.
      if (producedTwice || this.producersHeld) return false;
      const reads = readsOf(node);
      const writes = node.outputs.filter((o) => o !== '');
      if (writes.some((o) => producers.has(o) || reads.includes(o)) || new Set(writes).size !== writes.length) return false;
      for (let i = at; i < nodes.length; i++) nodes[i].filePosition = i;
      const { positions, values } = openReads;
      // The reads of the values it writes are no longer open after it; those before it stay open.
      const written = new Set(writes);
      let kept = 0;
      let insertAt = -1;
      for (let k = 0; k < positions.length; k++) {
        const p = positions[k] >= at ? positions[k] + 1 : positions[k];
        if (p > at && written.has(values[k])) continue;
        if (insertAt < 0 && p > at) insertAt = kept;
        positions[kept] = p;
        values[kept++] = values[k];
      }
      positions.length = kept;
      values.length = kept;
      // Its own open reads: of values no node before it writes.
      const open = reads.filter((v) => {
        const writer = producers.get(v);
        return writer === undefined || writer.filePosition > at;
      });
      if (insertAt < 0) insertAt = kept;
      positions.splice(insertAt, 0, ...open.map(() => at));
      values.splice(insertAt, 0, ...open);
      for (const o of writes) producers.put(o, node);
      if (writes.length > 0 && at < nodes.length - 1) this.producersOutOfOrder = true;
      for (const v of reads) this.addReader(v, node);
      return true;
    },
  };
}

/** Every name a graph uses: its inputs, initializers and outputs, and its nodes' names, outputs and reads. */
function namesOf(graph: Graph): Set<string> {
  const names = new Set<string>();
  for (const v of graph.proto.input) names.add(v.name);
  for (const t of graph.proto.initializer) names.add(t.name);
  for (const v of graph.proto.output) names.add(v.name);
  for (const node of graph.nodes) {
    if (node.name) names.add(node.name);
    for (const o of node.outputs) if (o) names.add(o);
    for (const v of readsOf(node)) names.add(v);
  }
  return names;
}

/**
 * The values a node reads, each once, its subgraphs' outer references included. Most nodes read
 * distinct, non-empty inputs and hold no subgraph: their input list itself, with nothing allocated
 * (a graph of a million nodes builds this index several times).
 */
function readsOf(node: Node): readonly string[] {
  const inputs = node.inputs;
  const plain = node.proto.attribute.every((a) => !a.g && a.graphs.length === 0);
  if (plain && inputs.every((v, i) => v !== '' && inputs.indexOf(v) === i)) return inputs;
  const r = inputs.filter((v) => v !== '');
  for (const g of subgraphProtos(node.proto)) for (const v of outerReferences(g)) r.push(v);
  return [...new Set(r)];
}

/** Graphs held in a node's attributes. */
export function subgraphProtos(node: NodeProto): GraphProto[] {
  const out: GraphProto[] = [];
  for (const a of node.attribute) {
    if (a.g) out.push(a.g);
    for (const g of a.graphs) out.push(g);
  }
  return out;
}

/** Values a subgraph reads from enclosing scopes (read but not defined inside it). */
export function outerReferences(g: GraphProto): Set<string> {
  const defined = new Set<string>([...g.input.map((v) => v.name), ...g.initializer.map((t) => t.name)]);
  for (const s of g.sparse_initializer) if (s.values) defined.add(s.values.name);
  for (const n of g.node) for (const o of n.output) defined.add(o);
  const refs = new Set<string>();
  const read = (v: string) => {
    if (v && !defined.has(v)) refs.add(v);
  };
  for (const n of g.node) {
    for (const v of n.input) read(v);
    for (const sub of subgraphProtos(n)) for (const v of outerReferences(sub)) read(v);
  }
  for (const o of g.output) read(o.name);
  return refs;
}

/** An AttributeProto for a value; numbers are INT(S) when integral unless asFloat. */
export function makeAttribute(name: string, value: AttributeValue, asFloat = false): AttributeProto {
  const A = onnxTypes().Attribute;
  if (value instanceof Tensor) return createMessage<AttributeProto>(A, { name, type: AttributeType.TENSOR, t: value.proto });
  if (typeof value === 'string') {
    return createMessage<AttributeProto>(A, { name, type: AttributeType.STRING, s: Buffer.from(value, 'utf8') });
  }
  if (typeof value === 'number') {
    return !asFloat && Number.isInteger(value)
      ? createMessage<AttributeProto>(A, { name, type: AttributeType.INT, i: value })
      : createMessage<AttributeProto>(A, { name, type: AttributeType.FLOAT, f: value });
  }
  return !asFloat && value.every(Number.isInteger)
    ? createMessage<AttributeProto>(A, { name, type: AttributeType.INTS, ints: [...value] })
    : createMessage<AttributeProto>(A, { name, type: AttributeType.FLOATS, floats: [...value] });
}
