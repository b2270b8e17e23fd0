// Scalar forms of the passes in simd.h. The SIMD variants call these for their tails, so a tail is
// handled exactly like the body of the scalar variant.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "simd.h"

namespace redpp {
namespace scalar {

inline int32_t BinOf(float x, const BinMap& m) {
  const float t = ((x * m.scale) - m.offset) * m.inverse;
  const float u = t + 0.5f;
  return u < static_cast<float>(m.last_bin) ? static_cast<int32_t>(u) : m.last_bin;
}

// Continues `s` over x[begin, n). Stops at the first non-finite value.
inline void StatsFrom(const float* x, size_t begin, size_t n, GroupStats* s) {
  for (size_t i = begin; i < n; i++) {
    const float v = x[i];
    if (!std::isfinite(v)) {
      s->first_non_finite = static_cast<int64_t>(i);
      return;
    }
    if (v < s->min) s->min = v;
    if (v > s->max) s->max = v;
    const float a = std::fabs(v);
    if (a != 0.0f && a < s->min_abs) s->min_abs = a;
    const double d = v;
    s->sum[i & 7] += d;
    s->sum_sq[i & 7] += d * d;
  }
}

inline void BinsFrom(const float* x, size_t begin, size_t n, const BinMap& m, int32_t* bin) {
  for (size_t i = begin; i < n; i++) bin[i] = BinOf(x[i], m);
}

inline void MapFrom(const float* x, const int32_t* bin, size_t begin, size_t n, const float* bin_value, float* out,
                    double* err) {
  for (size_t i = begin; i < n; i++) {
    const float v = x[i];  // read before writing: out may be x
    const float y = bin_value[bin[i]];
    out[i] = y;
    const double d = static_cast<float>(y - v);
    err[i & 7] += d * d;
  }
}

// y[j] = bin_value[bin[j]] for j < 16, for the SIMD variants of Map: scalar loads, the bins read two at
// a time, were a third faster than a 16-lane gather (Zen 4), and they spare the AVX2 variant its gathers.
inline void Lookup16(const int32_t* bin, const float* bin_value, float* y) {
  for (int j = 0; j < 16; j += 2) {
    uint64_t two;
    std::memcpy(&two, bin + j, sizeof two);
    y[j] = bin_value[static_cast<uint32_t>(two)];
    y[j + 1] = bin_value[two >> 32];
  }
}

inline void DensityFrom(const double* c, size_t begin, size_t bins, const double* kernel, int radius,
                        double* density) {
  for (size_t b = begin; b < bins; b++) {
    const double* cb = c + b;
    double d = kernel[0] * cb[0];
    for (int k = 1; k <= radius; k++) d += kernel[k] * (cb[-k] + cb[k]);
    density[b] = d;
  }
}

// Returns the largest count of bins [begin, bins). Unsigned arithmetic: the caller ensures the result
// fits in an int32 (simd.h), and wrapping, unlike a signed overflow, is defined behaviour if it does not.
inline uint32_t DensityIntFrom(const uint32_t* c, size_t begin, size_t bins, const int32_t* kernel, int radius,
                               int32_t* density) {
  uint32_t most = 0;
  for (size_t b = begin; b < bins; b++) {
    const uint32_t* cb = c + b;
    uint32_t d = static_cast<uint32_t>(kernel[0]) * cb[0];
    for (int k = 1; k <= radius; k++) d += static_cast<uint32_t>(kernel[k]) * (cb[-k] + cb[k]);
    density[b] = static_cast<int32_t>(d);
    most = cb[0] > most ? cb[0] : most;
  }
  return most;
}

// The means of intervals [begin, intervals).
inline void MeansFrom(const IntervalSum* acc, int begin, int intervals, float* mean) {
  for (int i = begin; i < intervals; i++) mean[i] = acc[i].count > 0 ? static_cast<float>(acc[i].sum / acc[i].count) : 0.0f;
}

// Fills the slope bits of bins [begin, bins); begin must be a multiple of 64.
template <typename T>
inline void SlopesFrom(const T* density, size_t begin, size_t bins, uint64_t* up, uint64_t* down) {
  for (size_t w = begin / 64; w < (bins + 63) / 64; w++) {
    uint64_t u = 0, d = 0;
    for (size_t j = 0; j < 64; j++) {
      const size_t b = w * 64 + j;
      if (b == 0 || b >= bins) continue;
      u |= static_cast<uint64_t>(density[b] > density[b - 1]) << j;
      d |= static_cast<uint64_t>(density[b] < density[b - 1]) << j;
    }
    up[w] = u;
    down[w] = d;
  }
}

// std::floor but for the sign of a zero, without the call to libm that SSE2 (this variant's x86
// baseline) makes of it: below 2^52 in magnitude through a truncation to int64, above it x is whole.
inline double Floor(double x) {
  if (!(std::fabs(x) < 4503599627370496.0)) return x;
  const double t = static_cast<double>(static_cast<int64_t>(x));
  return t - static_cast<double>(t > x);  // no branch: on weights it would go either way
}

// JavaScript's Math.round but for the sign of a zero (which no caller keeps: max(0, v) makes it +0):
// the nearest integer, halves up. Floor(x) is exact, and so is x - Floor(x) but for x in (-0.5, 0),
// where it rounds to a value >= 0.5 as the exact one is (0.5 is a double); floor(x + 0.5) would round
// 0.49999999999999994 up.
inline double RoundHalfUp(double x) {
  const double r = Floor(x);
  return r + static_cast<double>(x - r >= 0.5);
}

// The uniform quantizer's level of x: min(levels, max(0, round(x / scale) + zero_point)), in doubles.
// (std::max(0.0, v) and std::min(levels, v) keep the reference's +0; no NaN arises for finite x and
// scale > 0.)
inline double UniformLevel(float x, double scale, double zero_point, double levels) {
  return std::min(levels, std::max(0.0, RoundHalfUp(static_cast<double>(x) / scale) + zero_point));
}

// Doubles past the float range become infinities, as Math.fround has them: IEEE conversion, which
// ISO C++ leaves undefined and every IEEE target does.
static_assert(std::numeric_limits<float>::is_iec559, "float is IEEE 754");

// A level's value on one grid: f32((level - zero_point) * scale).
inline float UniformValue(double level, double scale, double zero_point) {
  return static_cast<float>((level - zero_point) * scale);
}

// The squared error of x's level on one grid.
inline double UniformError(float x, double level, double scale, double zero_point) {
  const double d = static_cast<double>(UniformValue(level, scale, zero_point)) - static_cast<double>(x);
  return d * d;
}

inline void UniformApplyFrom(const float* x, size_t begin, size_t n, double scale, double zero_point, double levels,
                             uint16_t* q, float* values) {
  for (size_t i = begin; i < n; i++) {
    const double level = UniformLevel(x[i], scale, zero_point, levels);
    q[i] = static_cast<uint16_t>(level);
    values[i] = UniformValue(level, scale, zero_point);
  }
}

inline void InitStats(GroupStats* s) {
  s->min = std::numeric_limits<float>::infinity();
  s->max = -std::numeric_limits<float>::infinity();
  s->min_abs = std::numeric_limits<float>::infinity();
  for (int l = 0; l < 8; l++) s->sum[l] = s->sum_sq[l] = 0.0;
  s->first_non_finite = -1;
}

}  // namespace scalar
}  // namespace redpp
