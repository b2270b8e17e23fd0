#include "half.h"

#include <cstring>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define REDPP_F16C __attribute__((target("avx,f16c")))
#endif

namespace redpp {
namespace {

float Decode(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  uint32_t frac = h & 0x3ff;
  uint32_t bits;
  if (exp == 31) {
    bits = frac ? 0x7fc00000u : (sign | 0x7f800000u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112) << 23) | (frac << 13);
  } else if (frac == 0) {
    bits = sign;
  } else {
    // Subnormal: normalise the fraction.
    int e = 113;
    while (!(frac & 0x400)) {
      frac <<= 1;
      e--;
    }
    bits = sign | (static_cast<uint32_t>(e) << 23) | ((frac & 0x3ff) << 13);
  }
  float f;
  std::memcpy(&f, &bits, sizeof f);
  return f;
}

// dtype.ts's numberToFloat16Bits, step for step.
uint16_t Encode(float x) {
  uint32_t b;
  std::memcpy(&b, &x, sizeof b);
  const uint32_t sign = (b >> 16) & 0x8000;
  const int exp = static_cast<int>((b >> 23) & 0xff);
  uint32_t mant = b & 0x7fffff;
  if (exp == 0xff) return static_cast<uint16_t>(sign | 0x7c00 | (mant ? 0x200 : 0));
  int e = exp - 127 + 15;
  if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
  if (e <= 0) {
    if (e < -10) return static_cast<uint16_t>(sign);
    mant |= 0x800000;
    const int shift = 14 - e;
    const uint32_t half = 1u << (shift - 1);
    uint32_t m = mant >> shift;
    const uint32_t rest = mant & ((1u << shift) - 1);
    if (rest > half || (rest == half && (m & 1))) m++;
    return static_cast<uint16_t>(sign | m);
  }
  uint32_t m = mant >> 13;
  const uint32_t rest = mant & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (m & 1))) {
    m++;
    if (m == 0x400) {
      m = 0;
      e++;
      if (e >= 31) return static_cast<uint16_t>(sign | 0x7c00);
    }
  }
  return static_cast<uint16_t>(sign | (static_cast<uint32_t>(e) << 10) | m);
}

#if defined(REDPP_F16C)
// The F16C instructions convert 8 at a time, and agree with Decode and Encode (IEEE conversions, round
// to nearest even) on every value but NaN, whose payload they keep: a block with a NaN in it is
// converted by the scalar code instead.
bool HasF16c() {
  static const bool has = __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
  return has;
}

REDPP_F16C size_t HalfToFloatF16c(const uint16_t* src, size_t n, float* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i));
    // A NaN has all exponent bits and a non-zero fraction: |h| > 0x7c00.
    const __m128i magnitude = _mm_and_si128(h, _mm_set1_epi16(0x7fff));
    if (_mm_movemask_epi8(_mm_cmpgt_epi16(magnitude, _mm_set1_epi16(0x7c00)))) {
      for (size_t k = i; k < i + 8; k++) dst[k] = Decode(src[k]);
    } else {
      _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(h));
    }
  }
  return i;
}

REDPP_F16C size_t FloatToHalfF16c(const float* src, size_t n, uint16_t* dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 f = _mm256_loadu_ps(src + i);
    if (_mm256_movemask_ps(_mm256_cmp_ps(f, f, _CMP_UNORD_Q))) {
      for (size_t k = i; k < i + 8; k++) dst[k] = Encode(src[k]);
    } else {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dst + i), _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
  }
  return i;
}
#endif

}  // namespace

void HalfToFloat(const uint16_t* src, size_t n, float* dst) {
  size_t i = 0;
#if defined(REDPP_F16C)
  if (HasF16c()) i = HalfToFloatF16c(src, n, dst);
#endif
  for (; i < n; i++) dst[i] = Decode(src[i]);
}

void FloatToHalf(const float* src, size_t n, uint16_t* dst) {
  size_t i = 0;
#if defined(REDPP_F16C)
  if (HasF16c()) i = FloatToHalfF16c(src, n, dst);
#endif
  for (; i < n; i++) dst[i] = Encode(src[i]);
}

}  // namespace redpp
