/**
 * Memory given back to the OS: the bytes of a weight nothing reads any more (the originals a prune's
 * pack replaces; Tensor.releaseData() in lib/model/tensor.ts). native/pages.cc drops the whole pages
 * among them (Linux); the reference only writes the zeros, which the contents after both agree on.
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
 * The bytes set to zero, their whole pages given back where the addon is loaded (one call over 1 GB
 * takes some 50 ms: a caller on the main thread gives it a slice at a time). Returns the bytes given back.
 */
export function releasePages(bytes: Uint8Array): number {
  return native()?.releasePages(bytes) ?? releasePagesReference(bytes);
}
