// The vector passes of the hashing kernel and of the uniform quantizer, one implementation per
// instruction set, chosen at run time. All variants produce bit-identical results: order-dependent
// sums go to lane i % 8 in input order (or, for the quantizer, one lane per grid in index order), sums
// in any other order are exact (interval_sums, under its caller's test), and the float steps are the
// same IEEE operations in every variant (no FMA contraction).
#pragma once

#include <cstddef>
#include <cstdint>

#include "hash.h"  // kMaxRadius

namespace redpp {

enum SimdLevel : int { kSimdAuto = 0, kSimdScalar = 1, kSimdAvx2 = 2, kSimdAvx512 = 3 };

struct GroupStats {
  float min;
  float max;
  float min_abs;  // the smallest nonzero |value|, +Inf when all are zero (exact in any order, like min)
  double sum[8];
  double sum_sq[8];
  int64_t first_non_finite;  // offset in the group, or -1
};

// Maps a value to its grid bin: min(last_bin, trunc(fl(fl(fl(fl(x * scale) - offset) * inverse) + 0.5))).
struct BinMap {
  float scale;
  float offset;
  float inverse;
  int32_t last_bin;
};

// The values of an interval of the grid: their sum and their count.
struct IntervalSum {
  double sum;
  double count;
};

// The grids uniform_sse takes in one pass: the lanes of an AVX-512 vector of doubles.
constexpr int kUniformGrids = 8;

struct SimdKernels {
  SimdLevel level;
  void (*stats)(const float* x, size_t n, GroupStats* stats);
  void (*bins)(const float* x, size_t n, const BinMap& map, int32_t* bin);
  // out[i] = bin_value[bin[i]] (bin as `bins` gives it); err[i % 8] += (out[i] - x[i])^2 with the
  // difference in float.
  void (*map)(const float* x, const int32_t* bin, size_t n, const float* bin_value, float* out, double* err);
  // density[b] = kernel[0] * c[b] + sum_k kernel[k] * (c[b - k] + c[b + k]); c is padded by radius.
  void (*density)(const double* counts, size_t bins, const double* kernel, int radius, double* density);
  // Bit b % 64 of up[b / 64] is set when density[b] > density[b - 1], of down[b / 64] when it is <, for
  // 1 <= b < bins; all other bits are clear. Both arrays hold (bins + 63) / 64 words.
  void (*slopes)(const double* density, size_t bins, uint64_t* up, uint64_t* down);
  // The density in 32-bit integers, twice the lanes of doubles, and the largest count: the same
  // integers as `density` when the kernel's weights, summed over all taps, times the largest count stay
  // below 2^31 (the caller checks; past that, products and sums wrap). c is padded by kMaxRadius zeros
  // and the kernel holds kMaxRadius + 1 weights, zero past radius: a variant may take every tap. Also
  // the density's slope bits, as `slopes` gives them (right where the density is).
  uint32_t (*density_int)(const uint32_t* counts, size_t bins, const int32_t* kernel, int radius, int32_t* density,
                          uint64_t* up, uint64_t* down);
  // out[i] = the sums of bin_sum and of counts over the bins of interval i, [splits[i - 1], splits[i])
  // (from 0 for i = 0), added in any order; returns the largest count. The sums are exact only where
  // the caller has checked that no partial sum can round (hash.cc: IntervalSumsAreExact).
  uint32_t (*interval_sums)(const double* bin_sum, const uint32_t* counts, const int* splits, int intervals,
                            IntervalSum* out);
  // mean[i] = f32(acc[i].sum / acc[i].count), 0 where the count is 0.
  void (*means)(const IntervalSum* acc, int intervals, float* mean);

  // The uniform quantizer's (quantize.h: UniformRows) squared error of x[0, n) on up to kUniformGrids
  // grids at once, grid c being w = (q - zero_point[c]) * scale[c]: sse[c] = the sum, in index order, of
  // (f32((q - zero_point[c]) * scale[c]) - x[i])^2 with q = UniformLevel(x[i], ...) (simd_scalar.h).
  // Every step is the double operation JavaScript does, so each grid's sum is the reference's. scale
  // and zero_point hold kUniformGrids entries, those past `grids` 1 and 0 (their sums are dropped).
  void (*uniform_sse)(const float* x, size_t n, const double* scale, const double* zero_point, int grids,
                      double levels, double* sse);
  // Each value's level on one grid, and the level's value f32((q - zero_point) * scale).
  void (*uniform_apply)(const float* x, size_t n, double scale, double zero_point, double levels, uint16_t* q,
                        float* values);
};

bool SimdSupported(SimdLevel level);
SimdLevel BestSimdLevel();
// `level` must be supported (or kSimdAuto, which takes the best).
const SimdKernels& GetSimdKernels(SimdLevel level);

const SimdKernels& ScalarKernels();
const SimdKernels* Avx2Kernels();    // nullptr when not compiled for x86-64
const SimdKernels* Avx512Kernels();  // nullptr when not compiled for x86-64

}  // namespace redpp
