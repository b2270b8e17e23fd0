/**
 * The types shape inference found, by value name, as a read-only Map that holds no map of its own
 * over the node outputs: graph inputs, initializers and outer values are held by name, a node's
 * outputs by the node's place in the file, found through the graph's index of producers (a second
 * map over every value of a million-node graph cost 0.45 s and 60 MB).
 */
import type { Node } from './graph';

export type Dim = number | string;

export interface ValueType {
  /** TensorProto.DataType of the elements (0 when unknown). */
  elemType: number;
  /** Undefined when even the rank is unknown. */
  shape: Dim[] | undefined;
}

/** How many of the last outputs typed get() looks at before the producers' index. */
const RECENT = 8;

/** A node with more than one output: its output names when inferred, and their types (undefined for ''). */
interface OutputList {
  names: readonly string[];
  types: (ValueType | undefined)[];
}

/**
 * What one inference found. Like a Map made at the time, it does not follow later edits: the producers'
 * index is one the graph replaces rather than changes, and the node list and a node's output names are
 * kept as they were; only a node's place is read from the node, and checked.
 */
export class ValueTypes implements ReadonlyMap<string, ValueType> {
  /** Per node with one output, by its place in `byFile`: that output's type. */
  private readonly single: (ValueType | undefined)[];
  /** Nodes with other than one output (few: Split, TopK, ...). */
  private readonly lists = new Map<Node, OutputList>();
  /** Places of the nodes when the graph was edited (and re-indexed) since: made on first need. */
  private moved: Map<Node, number> | undefined;
  private count: number | undefined;
  /** Every node output's type by name, where a value has two writers (see the constructor). */
  private readonly latest: Map<string, ValueType> | undefined;
  /**
   * The last outputs typed, looked at first: most nodes read what a node just before them wrote, and
   * by the time of inference the producers' map of a large graph is far from the cache (a lookup there
   * was most of inference's time on a million nodes).
   */
  private readonly recentNames: string[] = new Array<string>(RECENT).fill('');
  private readonly recentTypes: (ValueType | undefined)[] = new Array<ValueType | undefined>(RECENT).fill(undefined);
  private recentNext = 0;

  /**
   * @param seeded types by name of values no node of the graph writes (inputs, initializers, outer values)
   * @param producers the graph's index of producers when inferred, which the graph replaces, never changes
   * @param byFile the graph's nodes by place in the file when inferred (each node's filePosition)
   * @param writtenTwice whether a value has two writers (a graph edited into that state; a read refuses
   *   it): then the index names one writer where inference meets both, and types are kept by name, a
   *   later one replacing an earlier, as a Map would keep them
   */
  constructor(
    private readonly seeded: ReadonlyMap<string, ValueType>,
    private readonly producers: ReadonlyMap<string, Node>,
    private readonly byFile: readonly Node[],
    writtenTwice = false,
  ) {
    this.single = new Array<ValueType | undefined>(byFile.length);
    this.latest = writtenTwice ? new Map() : undefined;
  }

  /** @internal Records the type of a node's i-th output, as inference finds it. */
  record(node: Node, i: number, type: ValueType): void {
    const outputs = node.outputs;
    const name = outputs[i];
    if (this.latest) {
      // Kept by name alone: get() and the entries read nothing else then.
      if (name) this.latest.set(name, type);
      return;
    }
    if (name) {
      this.recentNames[this.recentNext] = name;
      this.recentTypes[this.recentNext] = type;
      this.recentNext = (this.recentNext + 1) % RECENT;
    }
    if (outputs.length === 1) {
      this.single[this.place(node)] = type;
      return;
    }
    let list = this.lists.get(node);
    if (!list) this.lists.set(node, (list = { names: [...outputs], types: [] }));
    list.types[i] = type;
  }

  get(name: string): ValueType | undefined {
    if (this.latest) return this.latest.get(name) ?? this.seeded.get(name);
    // Newest first: of a value typed twice (an invalid graph), the later type, as a map's set() would keep.
    for (let k = 1; k <= RECENT && name; k++) {
      const at = (this.recentNext + RECENT - k) % RECENT;
      if (this.recentNames[at] === name) return this.recentTypes[at];
    }
    const node = this.producers.get(name);
    if (node === undefined) return this.seeded.get(name);
    const t = this.single[this.place(node)];
    if (t !== undefined) return t;
    const list = this.lists.get(node);
    // Not inferred (yet): what the graph declares for the name, if anything (as a map seeded first would).
    return list?.types[list.names.lastIndexOf(name)] ?? this.seeded.get(name);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  get size(): number {
    if (this.count === undefined) {
      let n = 0;
      for (const _ of this.entries()) n++;
      this.count = n;
    }
    return this.count;
  }

  /** Inputs, initializers and outer values first, then node outputs in file order. */
  *entries(): MapIterator<[string, ValueType]> {
    for (const [name, t] of this.seeded) if (!this.producers.has(name)) yield [name, t];
    if (this.latest) {
      yield* this.latest;
      return;
    }
    for (const name of this.producers.keys()) {
      const t = this.get(name);
      if (t !== undefined) yield [name, t];
    }
  }

  *keys(): MapIterator<string> {
    for (const [name] of this.entries()) yield name;
  }

  *values(): MapIterator<ValueType> {
    for (const [, t] of this.entries()) yield t;
  }

  [Symbol.iterator](): MapIterator<[string, ValueType]> {
    return this.entries();
  }

  forEach(fn: (value: ValueType, key: string, map: ReadonlyMap<string, ValueType>) => void, thisArg?: unknown): void {
    for (const [name, t] of this.entries()) fn.call(thisArg, t, name, this);
  }

  /** A node's place in `byFile`: its filePosition, unless the graph was re-indexed since. */
  private place(node: Node): number {
    const at = node.filePosition;
    if (this.byFile[at] === node) return at;
    this.moved ??= new Map(this.byFile.map((n, i) => [n, i]));
    return this.moved.get(node) ?? -1;
  }
}
