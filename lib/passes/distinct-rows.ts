/**
 * Telling rows apart by their bits. Merging finds identical neurons, the kernel split identical kernels,
 * packing the distinct values of a neuron: each numbers the rows of one set (runs of `width` words of
 * one array) in order of first appearance, equal rows sharing a number. An open-addressing table sized
 * for the largest set, reset from one set to the next, so a model's every weight goes through it with
 * no allocation per set.
 */
export class DistinctRows {
  /** Per slot: the first word of the row that holds it, plus 1 (0: empty). */
  private readonly slots: Int32Array;
  /** Per slot: the number of its row. */
  private readonly numbers: Int32Array;
  private readonly slotBits: number;
  /** First word of each distinct row of the current set, in number order. */
  private readonly starts: Int32Array;
  private used = 0;

  /**
   * `words`: the array the rows are read from; `width`: words per row; `capacity`: the most rows in one
   * set. With `signedZero: false`, a word 0x80000000 (float32 -0) equals 0 (the weights it multiplies
   * are the same).
   */
  constructor(
    private readonly words: Uint32Array | Uint16Array,
    private readonly width: number,
    capacity: number,
    private readonly signedZero = true,
  ) {
    this.slotBits = Math.max(1, Math.ceil(Math.log2(2 * capacity + 2)));
    this.slots = new Int32Array(1 << this.slotBits);
    this.numbers = new Int32Array(1 << this.slotBits);
    this.starts = new Int32Array(Math.max(1, capacity));
  }

  /** Distinct rows of the current set so far. */
  get count(): number {
    return this.used;
  }

  /** Starts a new set. */
  reset(): void {
    this.slots.fill(0);
    this.used = 0;
  }

  /** The number of the row that starts at word `at`: an equal earlier row's, or the next one. */
  add(at: number): number {
    const mask = this.slots.length - 1;
    let slot = this.hash(at) & mask;
    for (;;) {
      const held = this.slots[slot];
      if (held === 0) break;
      if (this.equal(held - 1, at)) return this.numbers[slot];
      slot = (slot + 1) & mask;
    }
    const n = this.used++;
    this.slots[slot] = at + 1;
    this.numbers[slot] = n;
    this.starts[n] = at;
    return n;
  }

  /** Where distinct row `n` of the current set first appeared (its first word). */
  start(n: number): number {
    return this.starts[n];
  }

  private word(i: number): number {
    const w = this.words[i];
    return !this.signedZero && w === 0x80000000 ? 0 : w;
  }

  private hash(at: number): number {
    let h = 0x811c9dc5;
    for (let i = at; i < at + this.width; i++) h = Math.imul(h ^ this.word(i), 0x01000193);
    // The top bits of a multiplicative hash: single values (packing) differ mostly in low bits.
    return Math.imul(h, 0x9e3779b1) >>> (32 - this.slotBits);
  }

  private equal(a: number, b: number): boolean {
    for (let i = 0; i < this.width; i++) if (this.word(a + i) !== this.word(b + i)) return false;
    return true;
  }
}
