/**
 * Which kernels a conv's filters share: per input channel c, the distinct non-zero k×k kernels W[o, c]
 * over the output filters o (m_c of them), and which one each filter uses. Kernels are compared by
 * their bits, -0 as 0 (after hashing, a shared kernel is the same floats); all-zero kernels drop out.
 */
import { native } from '../../binding';
import { DistinctRows } from '../distinct-rows';

/** Per input channel, the distinct non-zero k×k kernels over the output filters. */
export interface KernelSharing {
  cout: number;
  cin: number;
  /** Elements of one kernel (kh * kw). */
  k: number;
  /** m_c: distinct non-zero kernels of channel c. */
  counts: Uint32Array;
  /** For (o, c) at o * cin + c: which of channel c's kernels W[o, c] is, or -1 when it is all zero. */
  index: Int32Array;
  /** Channel c's distinct kernels, m_c * k floats each (empty when not asked for). */
  kernels: Float32Array[];
}

/**
 * Finds the distinct kernels of weights [C_out, C_in, kh, kw] (row-major), per input channel. Every
 * conv of a large model goes through here, and most share nothing: natively where the addon is loaded
 * (native/channels.cc, the same outputs: ResNet-50's 17 convs 27 ms against 76 ms, most of the pass).
 * `withKernels: false` leaves `kernels` empty: the analysis needs only the counts, the rewrite the
 * kernels too.
 */
export function kernelSharing(w: Float32Array, cout: number, cin: number, k: number, withKernels = true): KernelSharing {
  const addon = native();
  if (!addon) return kernelSharingReference(w, cout, cin, k, withKernels);
  const index = new Int32Array(cout * cin);
  const counts = new Uint32Array(cin);
  const starts = withKernels ? new Uint32Array(cout * cin) : null;
  addon.kernelSharing(new Uint32Array(w.buffer, w.byteOffset, w.length), cout, cin, k, index, counts, starts);
  const kernels: Float32Array[] = [];
  for (let c = 0; starts && c < cin; c++) kernels.push(kernelsOf(w, k, counts[c], (j) => starts[c * cout + j]));
  return { cout, cin, k, counts, index, kernels };
}

/** The reference of kernelSharing() (the native kernel must match it). */
export function kernelSharingReference(w: Float32Array, cout: number, cin: number, k: number, withKernels = true): KernelSharing {
  const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
  const index = new Int32Array(cout * cin).fill(-1);
  const counts = new Uint32Array(cin);
  const kernels: Float32Array[] = [];
  const distinct = new DistinctRows(bits, k, cout, false);
  for (let c = 0; c < cin; c++) {
    distinct.reset();
    for (let o = 0; o < cout; o++) {
      const at = (o * cin + c) * k;
      let nonzero = false;
      for (let i = 0; i < k && !nonzero; i++) nonzero = (bits[at + i] & 0x7fffffff) !== 0;
      if (nonzero) index[o * cin + c] = distinct.add(at);
    }
    counts[c] = distinct.count;
    if (withKernels) kernels.push(kernelsOf(w, k, distinct.count, (j) => distinct.start(j)));
  }
  return { cout, cin, k, counts, index, kernels };
}

/** A channel's `m` distinct kernels end to end, kernel j from word start(j). */
function kernelsOf(w: Float32Array, k: number, m: number, start: (j: number) => number): Float32Array {
  const ks = new Float32Array(m * k);
  for (let j = 0; j < m; j++) ks.set(w.subarray(start(j), start(j) + k), j * k);
  return ks;
}
