#include "quantize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

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

}  // namespace redpp
