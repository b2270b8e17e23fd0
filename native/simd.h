// The memory-bound passes of the hashing kernel, one implementation per instruction set, chosen at run
// time. All variants produce bit-identical results: sums go to lane i % 8 in input order, and the
// float steps of the bin index are the same IEEE operations in every variant (no FMA contraction).
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

enum SimdLevel : int { kSimdAuto = 0, kSimdScalar = 1, kSimdAvx2 = 2, kSimdAvx512 = 3 };

struct GroupStats {
  float min;
  float max;
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

struct SimdKernels {
  SimdLevel level;
  void (*stats)(const float* x, size_t n, GroupStats* stats);
  void (*bins)(const float* x, size_t n, const BinMap& map, int32_t* bin);
  // out[i] = bin_value[bin(x[i])]; err[i % 8] += (out[i] - x[i])^2 with the difference in float.
  void (*map)(const float* x, size_t n, const BinMap& map, const float* bin_value, float* out, double* err);
  // density[b] = kernel[0] * c[b] + sum_k kernel[k] * (c[b - k] + c[b + k]); c is padded by radius.
  void (*density)(const double* counts, size_t bins, const double* kernel, int radius, double* density);
  // Bit b % 64 of up[b / 64] is set when density[b] > density[b - 1], of down[b / 64] when it is <, for
  // 1 <= b < bins; all other bits are clear. Both arrays hold (bins + 63) / 64 words.
  void (*slopes)(const double* density, size_t bins, uint64_t* up, uint64_t* down);
};

bool SimdSupported(SimdLevel level);
SimdLevel BestSimdLevel();
// `level` must be supported (or kSimdAuto, which takes the best).
const SimdKernels& GetSimdKernels(SimdLevel level);

const SimdKernels& ScalarKernels();
const SimdKernels* Avx2Kernels();    // nullptr when not compiled for x86-64
const SimdKernels* Avx512Kernels();  // nullptr when not compiled for x86-64

}  // namespace redpp
