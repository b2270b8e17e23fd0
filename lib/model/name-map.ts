/**
 * A map from names to items for a graph's indexes, made for graphs of a million values. Told how many
 * names to expect, it is made that size once: a Map of a million names grows twenty times over, and on
 * the 2-core machine building one took 0.9-1.1 s where this takes 0.35 s, with half the memory. Open
 * addressing over a table of entry numbers; names are hashed here, with a seed of each map's own so
 * that no file can choose names that all collide. Insertion order, as a Map's; nothing is deleted.
 */
export class NameMap<V> implements ReadonlyMap<string, V> {
  /** Per slot, the entry number + 1 of the name hashed there (0: free); at most half are used. */
  private slots: Int32Array;
  private names: string[];
  private items: V[];
  private hashes: Int32Array;
  private count = 0;
  private readonly seed = (Math.random() * 2 ** 32) | 0;

  constructor(expected = 8) {
    const room = Math.max(8, expected);
    this.names = new Array<string>(room);
    this.items = new Array<V>(room);
    this.hashes = new Int32Array(room);
    this.slots = new Int32Array(tableSize(room));
  }

  get size(): number {
    return this.count;
  }

  get(name: string): V | undefined {
    const e = this.find(name, this.hash(name));
    return e >= 0 ? this.items[e] : undefined;
  }

  has(name: string): boolean {
    return this.find(name, this.hash(name)) >= 0;
  }

  /** Maps `name` to `item` (a name met before keeps its place); whether the name is new. */
  put(name: string, item: V): boolean {
    const h = this.hash(name);
    const e = this.find(name, h);
    if (e >= 0) {
      this.items[e] = item;
      return false;
    }
    if (this.count === this.names.length) {
      this.grow();
      this.slots[-1 - this.find(name, h)] = this.add(name, item, h);
    } else {
      this.slots[-1 - e] = this.add(name, item, h);
    }
    return true;
  }

  *entries(): MapIterator<[string, V]> {
    for (let e = 0; e < this.count; e++) yield [this.names[e], this.items[e]];
  }

  *keys(): MapIterator<string> {
    for (let e = 0; e < this.count; e++) yield this.names[e];
  }

  *values(): MapIterator<V> {
    for (let e = 0; e < this.count; e++) yield this.items[e];
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  forEach(fn: (item: V, name: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (let e = 0; e < this.count; e++) fn.call(thisArg, this.items[e], this.names[e], this);
  }

  /** The entry number of `name`, or -1 - the free slot where it would go. */
  private find(name: string, h: number): number {
    const slots = this.slots;
    const mask = slots.length - 1;
    for (let i = h & mask; ; i = (i + 1) & mask) {
      const s = slots[i];
      if (s === 0) return -1 - i;
      if (this.hashes[s - 1] === h && this.names[s - 1] === name) return s - 1;
    }
  }

  /** Appends an entry; its number + 1, for its slot. */
  private add(name: string, item: V, h: number): number {
    const e = this.count++;
    this.names[e] = name;
    this.items[e] = item;
    this.hashes[e] = h;
    return e + 1;
  }

  private grow(): void {
    const room = this.names.length * 2;
    const hashes = new Int32Array(room);
    hashes.set(this.hashes);
    this.hashes = hashes;
    const names = new Array<string>(room);
    const items = new Array<V>(room);
    for (let e = 0; e < this.count; e++) {
      names[e] = this.names[e];
      items[e] = this.items[e];
    }
    this.names = names;
    this.items = items;
    this.slots = new Int32Array(tableSize(room));
    const mask = this.slots.length - 1;
    for (let e = 0; e < this.count; e++) {
      let i = this.hashes[e] & mask;
      while (this.slots[i] !== 0) i = (i + 1) & mask;
      this.slots[i] = e + 1;
    }
  }

  /** A multiply-and-shift hash of the name's UTF-16 code units, from this map's seed. */
  private hash(name: string): number {
    // Not a name (a hole in a node's input list, an output that is not there): a key of its own, as in a Map.
    if (typeof name !== 'string') return this.seed;
    let h = this.seed;
    for (let i = 0; i < name.length; i++) {
      h = Math.imul(h ^ name.charCodeAt(i), 0x5bd1e995);
      h ^= h >>> 13;
    }
    return h;
  }
}

/** The slot table for `room` entries: a power of two, at least twice as many. */
function tableSize(room: number): number {
  let size = 16;
  while (size < room * 2) size *= 2;
  return size;
}
