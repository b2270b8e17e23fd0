#include "simd_scalar.h"

namespace redpp {
namespace {

void Stats(const float* x, size_t n, GroupStats* s) {
  scalar::InitStats(s);
  scalar::StatsFrom(x, 0, n, s);
}

void Bins(const float* x, size_t n, const BinMap& m, int32_t* bin) { scalar::BinsFrom(x, 0, n, m, bin); }

void Map(const float* x, const int32_t* bin, size_t n, const float* bin_value, float* out, double* err) {
  scalar::MapFrom(x, bin, 0, n, bin_value, out, err);
}

// `counts` points at the first real bin; the caller pads `radius` zeros on each side.
void Density(const double* counts, size_t bins, const double* kernel, int radius, double* density) {
  scalar::DensityFrom(counts, 0, bins, kernel, radius, density);
}

template <typename T>
void Slopes(const T* density, size_t bins, uint64_t* up, uint64_t* down) {
  scalar::SlopesFrom(density, 0, bins, up, down);
}

uint32_t DensityInt(const uint32_t* counts, size_t bins, const int32_t* kernel, int radius, int32_t* density,
                    uint64_t* up, uint64_t* down) {
  const uint32_t most = scalar::DensityIntFrom(counts, 0, bins, kernel, radius, density);
  scalar::SlopesFrom(density, 0, bins, up, down);
  return most;
}

uint32_t IntervalSums(const double* bin_sum, const uint32_t* counts, const int* splits, int intervals, IntervalSum* out) {
  uint32_t most = 0;
  for (int i = 0; i < intervals; i++) {
    // Eight bins a step, those past the interval's end selected out: one loop exit to mispredict per
    // interval instead of two, and eight sums side by side (the order is free) instead of one chain.
    double sum[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t count = 0;
    const int b1 = splits[i];
    for (int b = i == 0 ? 0 : splits[i - 1]; b < b1; b += 8) {
      for (int j = 0; j < 8; j++) {
        const bool in = b + j < b1;
        sum[j] += in ? bin_sum[b + j] : 0.0;
        count += in ? counts[b + j] : 0u;
      }
    }
    out[i] = {((sum[0] + sum[1]) + (sum[2] + sum[3])) + ((sum[4] + sum[5]) + (sum[6] + sum[7])), static_cast<double>(count)};
    most = count > most ? count : most;
  }
  return most;
}

void Means(const IntervalSum* acc, int intervals, float* mean) { scalar::MeansFrom(acc, 0, intervals, mean); }

void UniformSse(const float* x, size_t n, const double* scale, const double* zero_point, int grids, double levels,
                double* sse) {
  // Local copies: the sums stay in registers (sse may alias scale or zero_point for all the compiler knows).
  double s[kUniformGrids], z[kUniformGrids], acc[kUniformGrids] = {};
  for (int c = 0; c < grids; c++) {
    s[c] = scale[c];
    z[c] = zero_point[c];
  }
  for (size_t i = 0; i < n; i++) {
    for (int c = 0; c < grids; c++) acc[c] += scalar::UniformError(x[i], scalar::UniformLevel(x[i], s[c], z[c], levels), s[c], z[c]);
  }
  for (int c = 0; c < grids; c++) sse[c] = acc[c];
}

void UniformApply(const float* x, size_t n, double scale, double zero_point, double levels, uint16_t* q, float* values) {
  scalar::UniformApplyFrom(x, 0, n, scale, zero_point, levels, q, values);
}

const SimdKernels kScalar{kSimdScalar, Stats, Bins, Map, Density, Slopes<double>, DensityInt, IntervalSums, Means, UniformSse, UniformApply};

}  // namespace

const SimdKernels& ScalarKernels() { return kScalar; }

}  // namespace redpp
