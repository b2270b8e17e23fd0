#include "quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "half.h"
#include "simd_scalar.h"

namespace redpp {
namespace {

// A float's bits turned into an unsigned key that orders as TypedArray sort orders non-NaN floats
// (-0 below +0): negatives reversed, positives above them.
inline uint32_t SortKey(float x) {
  uint32_t u;
  std::memcpy(&u, &x, sizeof u);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

inline float FromSortKey(uint32_t k) {
  const uint32_t u = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float x;
  std::memcpy(&x, &u, sizeof x);
  return x;
}

// Rows this long or longer are radix sorted; shorter ones go through std::sort on their keys.
constexpr size_t kRadixFrom = 256;
constexpr int kDigitBits = 11;
constexpr uint32_t kDigits = 1u << kDigitBits;

// Sorts the keys of one row in place (LSD radix, three passes of 11 bits; `scratch` as long as `keys`).
void RadixSort(uint32_t* keys, size_t n, uint32_t* scratch) {
  std::vector<size_t> counts(3 * kDigits, 0);
  for (size_t i = 0; i < n; i++) {
    const uint32_t k = keys[i];
    counts[k & (kDigits - 1)]++;
    counts[kDigits + ((k >> kDigitBits) & (kDigits - 1))]++;
    counts[2 * kDigits + (k >> (2 * kDigitBits))]++;
  }
  uint32_t* from = keys;
  uint32_t* to = scratch;
  for (int pass = 0; pass < 3; pass++) {
    size_t* c = counts.data() + pass * kDigits;
    const int shift = pass * kDigitBits;
    // A pass whose digit is the same for every key moves nothing.
    if (c[(from[0] >> shift) & (kDigits - 1)] == n) continue;
    size_t sum = 0;
    for (uint32_t d = 0; d < kDigits; d++) {
      const size_t v = c[d];
      c[d] = sum;
      sum += v;
    }
    for (size_t i = 0; i < n; i++) to[c[(from[i] >> shift) & (kDigits - 1)]++] = from[i];
    std::swap(from, to);
  }
  if (from != keys) std::memcpy(keys, from, n * sizeof(uint32_t));
}

// TypedArray.prototype.sort's comparison: NaN last (NaNs equal), else numeric with -0 before +0.
bool TypedArrayLess(float a, float b) {
  if (std::isnan(a)) return false;
  if (std::isnan(b)) return true;
  if (a < b) return true;
  if (a > b) return false;
  return std::signbit(a) && !std::signbit(b);
}

}  // namespace

void SortRows(const float* rows, size_t count, size_t row_length, float* sorted, uint32_t* distinct) {
  if (count == 0) return;  // no rows, whatever their length: nothing to allocate
  std::vector<uint32_t> keys(row_length);
  std::vector<uint32_t> scratch(row_length);
  for (size_t r = 0; r < count; r++) {
    const float* row = rows + r * row_length;
    float* out = sorted + r * row_length;
    bool nan = false;
    for (size_t i = 0; i < row_length; i++) {
      nan |= std::isnan(row[i]);
      keys[i] = SortKey(row[i]);
    }
    if (nan) {
      // NaNs keep their payloads and their order among themselves: a stable sort of the values.
      std::memcpy(out, row, row_length * sizeof(float));
      std::stable_sort(out, out + row_length, TypedArrayLess);
    } else {
      if (row_length >= kRadixFrom) RadixSort(keys.data(), row_length, scratch.data());
      else std::sort(keys.begin(), keys.end());
      for (size_t i = 0; i < row_length; i++) out[i] = FromSortKey(keys[i]);
    }
    uint32_t d = 0;
    for (size_t i = 0; i < row_length; i++) d += (i == 0 || out[i] != out[i - 1]) ? 1 : 0;
    distinct[r] = d;
  }
}

namespace {

// x rounded to float, then to float16 (as numberToFloat16Bits), and a float16 back.
uint16_t HalfBits(double x) {
  const float f = static_cast<float>(x);
  uint16_t h;
  FloatToHalf(&f, 1, &h);
  return h;
}
double FromHalf(uint16_t h) {
  float r;
  HalfToFloat(&h, 1, &r);
  return r;
}

// The table precision's value nearest x, as lib/kernels/quantize.ts: roundTo.
double RoundToTable(double x, bool half) { return half ? FromHalf(HalfBits(x)) : static_cast<float>(x); }

// The table precision's smallest value >= x (x > 0), as lib/kernels/quantize.ts: ceilTo (the next value
// up from the nearest, where that is below x).
double CeilToTable(double x, bool half) {
  const double r = RoundToTable(x, half);
  if (r >= x) return r;
  if (half) return FromHalf(HalfBits(x) + 1);
  return std::nextafter(static_cast<float>(r), std::numeric_limits<float>::infinity());
}

// The center nearest to v, from `base`: the search's last step (the first center not below v is
// base or the one after it). The lower of two at the same distance.
inline float NearestFrom(double v, const double* base, const double* centers, size_t count) {
  const size_t at = static_cast<size_t>(base - centers) + (*base < v);
  if (at == 0) return static_cast<float>(centers[0]);
  if (at == count) return static_cast<float>(centers[count - 1]);
  return static_cast<float>(v - centers[at - 1] <= centers[at] - v ? centers[at - 1] : centers[at]);
}

// Weights searched in lockstep: each search is a chain of dependent loads, and eight chains side by
// side keep the core busy where one waits on its loads (2-4x on a palette of 256).
constexpr size_t kSearchLanes = 8;

}  // namespace

void NearestCenters(const float* x, size_t n, const double* centers, size_t count, float* out) {
  // The first center not below v, without a branch per step (the steps go either way on weights):
  // the same point as the reference's search, `centers < v` being true on a prefix (a NaN center
  // sorts last and compares false).
  size_t i = 0;
  for (; i + kSearchLanes <= n; i += kSearchLanes) {
    double v[kSearchLanes];
    const double* base[kSearchLanes];
    for (size_t k = 0; k < kSearchLanes; k++) {
      v[k] = x[i + k];
      base[k] = centers;
    }
    for (size_t len = count; len > 1;) {
      const size_t half = len / 2;
      for (size_t k = 0; k < kSearchLanes; k++) base[k] = base[k][half - 1] < v[k] ? base[k] + half : base[k];
      len -= half;
    }
    for (size_t k = 0; k < kSearchLanes; k++) out[i + k] = NearestFrom(v[k], base[k], centers, count);
  }
  for (; i < n; i++) {
    const double v = x[i];
    const double* base = centers;
    for (size_t len = count; len > 1;) {
      const size_t half = len / 2;
      base = base[half - 1] < v ? base + half : base;
      len -= half;
    }
    out[i] = NearestFrom(v, base, centers, count);
  }
}

bool UniformRows(const float* rows, size_t count, size_t row_length, int bits, bool half_tables, const double* clips,
                 int clip_count, int simd_level, const UniformRowsOut& out) {
  const SimdKernels& k = GetSimdKernels(static_cast<SimdLevel>(simd_level));
  const double levels = std::ldexp(1.0, bits) - 1;
  for (size_t r = 0; r < count; r++) {
    const float* row = rows + r * row_length;
    float lo = std::numeric_limits<float>::infinity();
    float hi = -lo;
    for (size_t i = 0; i < row_length; i++) {
      if (!std::isfinite(row[i])) return false;
      lo = std::min(lo, row[i]);
      hi = std::max(hi, row[i]);
    }
    double best_sse = std::numeric_limits<double>::infinity(), best_scale = 1.0, best_zp = 0.0;
    if (lo == hi) {
      // A constant row: one level, exactly (q = 1 with scale = the value, or all zero).
      best_scale = lo == 0 ? 1.0 : RoundToTable(lo, half_tables);
    } else {
      for (int c0 = 0; c0 < clip_count; c0 += kUniformGrids) {
        // Grids past the last clip stay 1 and 0: uniform_sse reads all kUniformGrids of them.
        double scale[kUniformGrids], zp[kUniformGrids], sse[kUniformGrids];
        std::fill(scale, scale + kUniformGrids, 1.0);
        std::fill(zp, zp + kUniformGrids, 0.0);
        int grids = 0;
        for (int c = c0; c < std::min(clip_count, c0 + kUniformGrids); c++) {
          // The grid holds 0 exactly (an integer zero point), as ONNX's uniform quantization does.
          const double a = std::min(0.0, static_cast<double>(lo)) * clips[c];
          const double b = std::max(0.0, static_cast<double>(hi)) * clips[c];
          const double s = CeilToTable((b - a) / levels, half_tables);
          if (!(s > 0)) continue;
          scale[grids] = s;
          zp[grids++] = std::min(levels, std::max(0.0, scalar::RoundHalfUp(-a / s)));
        }
        if (grids == 0) continue;
        k.uniform_sse(row, row_length, scale, zp, grids, levels, sse);
        for (int g = 0; g < grids; g++) {
          if (sse[g] < best_sse) {
            best_sse = sse[g];
            best_scale = scale[g];
            best_zp = zp[g];
          }
        }
      }
    }
    out.scale[r] = static_cast<float>(best_scale);
    out.zero_point[r] = static_cast<float>(best_zp);
    uint16_t* q = out.q + r * row_length;
    float* values = out.values + r * row_length;
    if (lo == hi) {
      const uint16_t level = lo == 0 ? 0 : 1;
      std::fill(q, q + row_length, level);
      std::fill(values, values + row_length, scalar::UniformValue(level, best_scale, 0.0));
    } else {
      k.uniform_apply(row, row_length, best_scale, best_zp, levels, q, values);
    }
  }
  return true;
}

}  // namespace redpp
