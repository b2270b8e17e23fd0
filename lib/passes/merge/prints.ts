/**
 * Channel fingerprints: per channel of a producer's weights, a 32-bit FNV-1a hash of its bits (-0 as
 * +0). Two channels with different fingerprints cannot be exact duplicates, so the merge looks closer
 * only at cells where two collide; on trained or hashed weights no two do, and the scan over every
 * weight is all the merge costs. Pure work on one typed array: the pool's workers run it (tasks.ts).
 */
import { native } from '../../binding';
import type { AxisView } from '../channels';

export interface PrintTask extends AxisView {
  /** The layer's name, for errors. */
  layer: string;
  /** The weights, whose channels run along the view's axis, `inner` positions each. */
  data: Float32Array;
  inner: number;
}

/**
 * One fingerprint per channel (the axis length / inner): natively where the addon is loaded
 * (native/channels.cc, eight channels' hashes side by side: the same prints, VGG-16's 138 M weights in
 * tens of milliseconds where a hash at a time took half a second).
 */
export function channelPrints(task: PrintTask): Uint32Array {
  const addon = native();
  if (!addon) return channelPrintsReference(task);
  const { data, outer, length, stride, inner } = task;
  const prints = new Uint32Array(Math.floor(length / inner));
  addon.channelPrints(new Uint32Array(data.buffer, data.byteOffset, data.length), outer, length, stride, inner, prints);
  return prints;
}

/** The reference of channelPrints(), a channel at a time. */
export function channelPrintsReference({ data, outer, length, stride, inner }: PrintTask): Uint32Array {
  const words = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const channels = Math.floor(length / inner);
  const run = inner * stride;
  const prints = new Uint32Array(channels);
  for (let c = 0; c < channels; c++) prints[c] = channelPrint(words, outer, length, stride, run, c * inner);
  return prints;
}

/** The fingerprint of the channel at axis position `position`. */
export function channelPrint(words: Uint32Array, outer: number, length: number, stride: number, run: number, position: number): number {
  let h = 0x811c9dc5;
  for (let o = 0; o < outer; o++) {
    const base = (o * length + position) * stride;
    for (let k = base; k < base + run; k++) {
      const w = words[k];
      h ^= w === 0x80000000 ? 0 : w;
      h = Math.imul(h, 0x01000193);
    }
  }
  return h >>> 0;
}

/** Fingerprints computed ahead (the merge pass's, in the pool or between turns), by the weights they were computed on and the view they were read with. */
export class PrintTable {
  private readonly table = new Map<Float32Array, { view: string; prints: Uint32Array }>();

  set(task: PrintTask, prints: Uint32Array): void {
    this.table.set(task.data, { view: viewKey(task), prints });
  }

  /** The fingerprints of `data` read with this view, if they were computed. */
  get(data: Float32Array, view: AxisView, inner: number): Uint32Array | undefined {
    const e = this.table.get(data);
    return e && e.view === viewKey({ ...view, inner }) ? e.prints : undefined;
  }
}

const viewKey = (v: AxisView & { inner: number }) => `${v.outer}/${v.length}/${v.stride}/${v.inner}`;
