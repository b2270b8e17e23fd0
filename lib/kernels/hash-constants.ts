/**
 * Constants of the binned-KDE hashing kernel. native/hash.h holds the same numbers; a test checks that
 * the addon reports these, because native and reference must agree bit for bit.
 */
export const HASH_CONSTANTS = {
  /** Grid bins per bandwidth h: the grid is twice as fine as the kernel (finer costs time, not fidelity). */
  binsPerBandwidth: 2,
  /** The Gaussian kernel is truncated at |t| <= cutoff * h. */
  kernelCutoff: 4,
  /** Upper bound on grid bins per group; past it the grid, not h, sets the resolution. */
  maxBins: 1 << 16,
  /**
   * Kernel weights are rounded to integers on this scale. Histogram counts are integers too, so every
   * density value is an exact integer in a double (sum <= n * 2^20 < 2^53) and any summation order —
   * scalar, AVX2, AVX-512, CUDA, JavaScript — gives the same density and hence the same split points.
   */
  kernelScale: 1 << 20,
  /** Sums over a group are kept in this many interleaved lanes (value i goes to lane i % 8). */
  lanes: 8,
} as const;
