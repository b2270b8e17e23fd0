/**
 * The pages under a model's weights. Memory given back to the OS: the bytes of a weight nothing reads
 * any more (the originals a prune's pack replaces; Tensor.releasableBytes() in lib/model/tensor.ts).
 * native/pages.cc drops the whole pages among them (Linux); the reference only writes the zeros, which
 * the contents after both agree on. And memory taken in huge pages: sharedBytes() and sharedArray()
 * for the model's weights as read and every large tensor made after, largeArray() for a layer's worth
 * of new values, sharedSlice() for a worker's small results, inSharedMemory() for what crosses to a worker.
 */
import { native } from '../binding';

/** Sets the bytes to zero; returns how many bytes went back to the OS (none here). */
export function releasePagesReference(bytes: Uint8Array): number {
  bytes.fill(0);
  return 0;
}

/** Whether releasePages() gives memory back here: the addon's kernel on Linux (elsewhere it writes zeros, a pass over the bytes for nothing). */
export function canReleasePages(): boolean {
  return native() !== null && process.platform === 'linux';
}

/**
 * Each array's bytes set to zero, their whole pages given back where the addon is loaded: off the main
 * thread, on a libuv thread (one madvise over 1 GB takes some 50 ms). Without the addon, the
 * reference's zeros on the caller's thread, and nothing given back (canReleasePages() is false: a prune
 * does not call it then). Resolves to the bytes given back; nothing may read or write the bytes until then.
 */
export function releasePages(views: readonly Uint8Array[]): Promise<number> {
  const addon = native();
  if (addon) return addon.releasePages([...views]);
  return Promise.resolve(views.reduce((sum, v) => sum + releasePagesReference(v), 0));
}

/** `length` bytes of a buffer from offset `from` to offset `to` (the two may overlap). */
export interface ByteMove {
  from: number;
  to: number;
  length: number;
}

/** The moves within `bytes`, in order, each as copyWithin does (the reference of native/pages.h's MoveBytes). */
export function moveBytesReference(bytes: Uint8Array, moves: readonly ByteMove[]): void {
  for (const m of moves) bytes.copyWithin(m.to, m.from, m.from + m.length);
}

/**
 * The moves within `bytes`, in order, natively on a libuv thread; the addon must be loaded (without it
 * read.ts reads each stretch again from the file: JavaScript copies shared memory a byte at a time).
 * Nothing may read or write the bytes until it resolves. A move outside the bytes is a RangeError.
 */
export async function moveBytes(bytes: Uint8Array, moves: readonly ByteMove[]): Promise<void> {
  const addon = native();
  if (!addon) throw new Error('redpp internal error: moveBytes needs the native addon');
  await addon.moveBytes(bytes, Float64Array.from(moves.flatMap((m) => [m.from, m.to, m.length])));
}

/** Bytes a PageRelease gathers before it gives them back in one call. */
const RELEASE_BATCH = 8 << 20;

/**
 * Memory given back to the OS in batches of RELEASE_BATCH bytes or more, the last aside: a call costs
 * its caller a libuv thread's wake-up, some 0.3 ms in a busy prune on the 2-core VM (a float16 U-Net's
 * 112 replaced weights one by one took 30 ms of the main thread). What a batch gathers stays resident
 * until the batch is full.
 */
export class PageRelease {
  private batch: Uint8Array[] = [];
  private bytes = 0;
  private readonly calls: Promise<number>[] = [];

  /** `release`: what gives a batch back (a test counts the calls). */
  constructor(private readonly release: (views: readonly Uint8Array[]) => Promise<number> = releasePages) {}

  /** Gives `bytes` back with the batch; nothing may read or write them from now on. */
  add(bytes: Uint8Array): void {
    this.batch.push(bytes);
    this.bytes += bytes.byteLength;
    if (this.bytes >= RELEASE_BATCH) this.flush();
  }

  /** Gives back what the batch holds; resolves, once every call has, to the bytes given back in all. */
  async done(): Promise<number> {
    this.flush();
    return (await Promise.all(this.calls)).reduce((a, b) => a + b, 0);
  }

  private flush(): void {
    if (this.batch.length > 0) this.calls.push(this.release(this.batch));
    this.batch = [];
    this.bytes = 0;
  }
}

/**
 * Allocations from this size get transparent huge pages over their 2 MiB-aligned interior (a 4 MiB one
 * one or two of them): one page fault maps 2 MiB instead of 4 KiB.
 * On the 2-core VM of the README's Performance section a fault costs ~10 us: reading a 98 MB model into
 * 4 KiB pages faulted for 0.3 s, and the first pass over its weights after for another 0.13 s.
 */
const HUGE_FROM = 4 << 20;

/** Huge pages for a fresh allocation, before its first touch (pages faulted in already stay small). */
function adviseHuge(bytes: Uint8Array): void {
  if (bytes.byteLength >= HUGE_FROM) native()?.adviseHugePages(bytes);
}

/** Zeroed shared memory (every pool worker reads and writes it in place), in huge pages where it is large. */
export function sharedBytes(length: number): Buffer {
  const bytes = Buffer.from(new SharedArrayBuffer(length));
  adviseHuge(bytes);
  return bytes;
}

/** A zeroed array of `length` elements in sharedBytes(). */
export function sharedArray<T>(Ctor: { new (buffer: SharedArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number }, length: number): T {
  return new Ctor(sharedBytes(length * Ctor.BYTES_PER_ELEMENT).buffer as SharedArrayBuffer, 0, length);
}

/** A zeroed array of `length` elements, in huge pages where it is large: for a layer's worth of new values. */
export function largeArray<T>(Ctor: { new (buffer: ArrayBuffer): T; BYTES_PER_ELEMENT: number }, length: number): T {
  const buffer = new ArrayBuffer(length * Ctor.BYTES_PER_ELEMENT);
  adviseHuge(new Uint8Array(buffer));
  return new Ctor(buffer);
}

/**
 * The chunks sharedSlice() cuts from: three huge pages or four in their aligned interior. A chunk's
 * memory stays while any slice of it is held (a model kept after its prune holds the chunks its
 * indices came from), so they are small.
 */
const SLICE_CHUNK = 8 << 20;

let sliceChunk: SharedArrayBuffer | undefined;
let sliceUsed = 0;

/**
 * A zeroed array of `length` elements that outlives its allocating thread's use of it (a worker's
 * result, handed on shared): from HUGE_FROM bytes sharedArray(), below it a slice of a
 * shared chunk in huge pages, cut in order and never reused. A small array alone is fresh memory in
 * 4 KiB pages, a fault each: ResNet-50's palette indices, 25 MB in 53 arrays, faulted 6,200 times.
 */
export function sharedSlice<T>(Ctor: { new (buffer: SharedArrayBuffer, byteOffset: number, length: number): T; BYTES_PER_ELEMENT: number }, length: number): T {
  const bytes = length * Ctor.BYTES_PER_ELEMENT;
  if (bytes >= HUGE_FROM) return sharedArray(Ctor, length);
  let at = Math.ceil(sliceUsed / 8) * 8;
  if (!sliceChunk || at + bytes > sliceChunk.byteLength) {
    sliceChunk = sharedBytes(SLICE_CHUNK).buffer as SharedArrayBuffer;
    at = 0;
  }
  sliceUsed = at + bytes;
  return new Ctor(sliceChunk, at, length);
}

/**
 * `array` in shared memory: itself where it is there already, else a copy in a sharedSlice() (a Buffer
 * as a Buffer). For what crosses to a worker by structured clone (a Worker's workerData, postMessage):
 * an array in shared memory crosses as a reference, any other is serialized on the sending thread, some
 * 10 ms a MB on the 2-core VM (a budget's 3 MB of probe images stalled the main thread 28 ms as its
 * worker started).
 */
export function inSharedMemory<T extends ArrayBufferView>(array: T): T {
  if (array.buffer instanceof SharedArrayBuffer) return array;
  const copy = sharedSlice(Uint8Array, array.byteLength);
  copy.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength));
  if (Buffer.isBuffer(array)) return Buffer.from(copy.buffer, copy.byteOffset, copy.byteLength) as unknown as T;
  const Ctor = array.constructor as new (buffer: ArrayBufferLike, byteOffset: number, length: number) => T;
  return new Ctor(copy.buffer, copy.byteOffset, array.byteLength / ((array as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? 1));
}
