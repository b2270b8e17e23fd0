// AVX2 + FMA variants, compiled with target attributes so that the rest of the addon still runs on any
// x86-64; GetSimdKernels only hands these out when the CPU has AVX2 and FMA.
#include "simd_scalar.h"

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cfloat>

#define REDPP_AVX2 __attribute__((target("avx2,fma")))

namespace redpp {
namespace {

REDPP_AVX2 inline float HorizontalMin(__m256 v) {
  __m128 m = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_min_ps(m, _mm_movehl_ps(m, m));
  m = _mm_min_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

REDPP_AVX2 inline float HorizontalMax(__m256 v) {
  __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  m = _mm_max_ps(m, _mm_movehl_ps(m, m));
  m = _mm_max_ss(m, _mm_shuffle_ps(m, m, 1));
  return _mm_cvtss_f32(m);
}

// The float bin position, clamped to the last bin before truncation (as scalar::BinOf).
REDPP_AVX2 inline __m256i BinOf8(__m256 v, __m256 scale, __m256 offset, __m256 inverse, __m256 last) {
  const __m256 t = _mm256_mul_ps(_mm256_sub_ps(_mm256_mul_ps(v, scale), offset), inverse);
  const __m256 u = _mm256_min_ps(_mm256_add_ps(t, _mm256_set1_ps(0.5f)), last);
  return _mm256_cvttps_epi32(u);
}

REDPP_AVX2 void Stats(const float* x, size_t n, GroupStats* s) {
  scalar::InitStats(s);
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 flt_max = _mm256_set1_ps(FLT_MAX);
  const __m256 inf = _mm256_set1_ps(s->min_abs);
  __m256 vmin = _mm256_set1_ps(s->min), vmax = _mm256_set1_ps(s->max), vmin_abs = inf;
  __m256d s0 = _mm256_setzero_pd(), s1 = s0, q0 = s0, q1 = s0;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    // Ordered compare: false for NaN and for |v| = Inf; the scalar tail then finds which one.
    const __m256 a = _mm256_and_ps(v, abs_mask);
    if (_mm256_movemask_ps(_mm256_cmp_ps(a, flt_max, _CMP_LE_OQ)) != 0xff) break;
    vmin = _mm256_min_ps(vmin, v);
    vmax = _mm256_max_ps(vmax, v);
    vmin_abs = _mm256_min_ps(vmin_abs, _mm256_blendv_ps(a, inf, _mm256_cmp_ps(a, _mm256_setzero_ps(), _CMP_EQ_OQ)));
    const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    s0 = _mm256_add_pd(s0, lo);
    s1 = _mm256_add_pd(s1, hi);
    q0 = _mm256_add_pd(q0, _mm256_mul_pd(lo, lo));
    q1 = _mm256_add_pd(q1, _mm256_mul_pd(hi, hi));
  }
  s->min = HorizontalMin(vmin);
  s->max = HorizontalMax(vmax);
  s->min_abs = HorizontalMin(vmin_abs);
  _mm256_storeu_pd(s->sum, s0);
  _mm256_storeu_pd(s->sum + 4, s1);
  _mm256_storeu_pd(s->sum_sq, q0);
  _mm256_storeu_pd(s->sum_sq + 4, q1);
  scalar::StatsFrom(x, i, n, s);
}

REDPP_AVX2 void Bins(const float* x, size_t n, const BinMap& m, int32_t* bin) {
  const __m256 scale = _mm256_set1_ps(m.scale), offset = _mm256_set1_ps(m.offset);
  const __m256 inverse = _mm256_set1_ps(m.inverse), last = _mm256_set1_ps(static_cast<float>(m.last_bin));
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256i b = BinOf8(_mm256_loadu_ps(x + i), scale, offset, inverse, last);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(bin + i), b);
  }
  scalar::BinsFrom(x, i, n, m, bin);
}

REDPP_AVX2 void Map(const float* x, const int32_t* bin, size_t n, const float* bin_value, float* out, double* err) {
  __m256d e0 = _mm256_loadu_pd(err), e1 = _mm256_loadu_pd(err + 4);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    alignas(32) float ys[16];
    scalar::Lookup16(bin + i, bin_value, ys);
    for (int h = 0; h < 16; h += 8) {
      const __m256 v = _mm256_loadu_ps(x + i + h);
      const __m256 y = _mm256_load_ps(ys + h);
      _mm256_storeu_ps(out + i + h, y);
      const __m256 d = _mm256_sub_ps(y, v);
      const __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(d));
      const __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(d, 1));
      e0 = _mm256_add_pd(e0, _mm256_mul_pd(lo, lo));
      e1 = _mm256_add_pd(e1, _mm256_mul_pd(hi, hi));
    }
  }
  _mm256_storeu_pd(err, e0);
  _mm256_storeu_pd(err + 4, e1);
  scalar::MapFrom(x, bin, i, n, bin_value, out, err);
}

// Counts and kernel weights are integers and every partial sum stays below 2^53, so FMA and any
// order of summation give the exact density.
REDPP_AVX2 void Density(const double* c, size_t bins, const double* kernel, int radius, double* density) {
  size_t b = 0;
  for (; b + 4 <= bins; b += 4) {
    __m256d acc = _mm256_mul_pd(_mm256_set1_pd(kernel[0]), _mm256_loadu_pd(c + b));
    for (int k = 1; k <= radius; k++) {
      const __m256d pair = _mm256_add_pd(_mm256_loadu_pd(c + b - k), _mm256_loadu_pd(c + b + k));
      acc = _mm256_fmadd_pd(_mm256_set1_pd(kernel[k]), pair, acc);
    }
    _mm256_storeu_pd(density + b, acc);
  }
  scalar::DensityFrom(c, b, bins, kernel, radius, density);
}

// The slope bits of one whole 64-bin word, p[0] to p[63] against p[-1] to p[62].
REDPP_AVX2 inline void SlopeWord(const double* p, uint64_t* up, uint64_t* down) {
  uint64_t u = 0, d = 0;
  for (size_t j = 0; j < 64; j += 4) {
    const __m256d cur = _mm256_loadu_pd(p + j), prev = _mm256_loadu_pd(p + j - 1);
    u |= static_cast<uint64_t>(_mm256_movemask_pd(_mm256_cmp_pd(cur, prev, _CMP_GT_OQ))) << j;
    d |= static_cast<uint64_t>(_mm256_movemask_pd(_mm256_cmp_pd(cur, prev, _CMP_LT_OQ))) << j;
  }
  *up = u;
  *down = d;
}

REDPP_AVX2 inline void SlopeWord(const int32_t* p, uint64_t* up, uint64_t* down) {
  uint64_t u = 0, d = 0;
  for (size_t j = 0; j < 64; j += 8) {
    const __m256i cur = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j));
    const __m256i prev = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + j - 1));
    u |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(cur, prev)))) << j;
    d |= static_cast<uint64_t>(_mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpgt_epi32(prev, cur)))) << j;
  }
  *up = u;
  *down = d;
}

template <typename T>
REDPP_AVX2 void Slopes(const T* density, size_t bins, uint64_t* up, uint64_t* down) {
  // Whole words from bin 64 on (bin 0 has no left neighbour); word 0 and the tail scalar.
  const size_t full = bins / 64;
  if (full > 1) {
    for (size_t w = 1; w < full; w++) SlopeWord(density + w * 64, &up[w], &down[w]);
    scalar::SlopesFrom(density, 0, 64, up, down);
    scalar::SlopesFrom(density, full * 64, bins, up, down);
  } else {
    scalar::SlopesFrom(density, 0, bins, up, down);
  }
}

REDPP_AVX2 inline __m256i Load8(const uint32_t* p) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)); }

// Wrapping 32-bit products and sums: exact under simd.h's condition, as in the scalar variant. Every
// tap, unrolled (weights past the radius are zero): faster than a loop to the radius.
REDPP_AVX2 uint32_t DensityInt(const uint32_t* c, size_t bins, const int32_t* kernel, int radius, int32_t* density,
                               uint64_t* up, uint64_t* down) {
  __m256i w[kMaxRadius + 1];
  for (int k = 0; k <= kMaxRadius; k++) w[k] = _mm256_set1_epi32(kernel[k]);
  __m256i most = _mm256_setzero_si256();
  size_t b = 0;
  for (; b + 8 <= bins; b += 8) {
    const __m256i center = Load8(c + b);
    most = _mm256_max_epu32(most, center);
    __m256i acc = _mm256_mullo_epi32(w[0], center);
#pragma GCC unroll 8
    for (int k = 1; k <= kMaxRadius; k++) {
      const __m256i pair = _mm256_add_epi32(Load8(c + b - k), Load8(c + b + k));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(w[k], pair));
    }
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(density + b), acc);
  }
  __m128i m = _mm_max_epu32(_mm256_castsi256_si128(most), _mm256_extracti128_si256(most, 1));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0x4e));
  m = _mm_max_epu32(m, _mm_shuffle_epi32(m, 0xb1));
  const uint32_t head = static_cast<uint32_t>(_mm_cvtsi128_si32(m));
  const uint32_t tail = scalar::DensityIntFrom(c, b, bins, kernel, radius, density);
  Slopes(density, bins, up, down);
  return head > tail ? head : tail;
}

// 8 bins a step, the last step of an interval masked (masked-off lanes are not read).
REDPP_AVX2 uint32_t IntervalSums(const double* bin_sum, const uint32_t* counts, const int* splits, int intervals,
                                 IntervalSum* out) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  uint32_t most = 0;
  for (int i = 0, b0 = 0; i < intervals; b0 = splits[i++]) {
    const int b1 = splits[i];
    __m256d sum = _mm256_setzero_pd();
    __m256i count = _mm256_setzero_si256();
    for (int b = b0; b < b1; b += 8) {
      const __m256i m = _mm256_cmpgt_epi32(_mm256_set1_epi32(b1 - b), lane);
      const __m256i lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(m));
      const __m256i hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256(m, 1));
      sum = _mm256_add_pd(sum, _mm256_maskload_pd(bin_sum + b, lo));
      sum = _mm256_add_pd(sum, _mm256_maskload_pd(bin_sum + b + 4, hi));
      count = _mm256_add_epi32(count, _mm256_maskload_epi32(reinterpret_cast<const int*>(counts + b), m));
    }
    __m128d s2 = _mm_add_pd(_mm256_castpd256_pd128(sum), _mm256_extractf128_pd(sum, 1));
    s2 = _mm_add_sd(s2, _mm_unpackhi_pd(s2, s2));
    __m128i c4 = _mm_add_epi32(_mm256_castsi256_si128(count), _mm256_extracti128_si256(count, 1));
    c4 = _mm_add_epi32(c4, _mm_shuffle_epi32(c4, 0x4e));
    c4 = _mm_add_epi32(c4, _mm_shuffle_epi32(c4, 0xb1));
    const uint32_t c = static_cast<uint32_t>(_mm_cvtsi128_si32(c4));
    out[i] = {_mm_cvtsd_f64(s2), static_cast<double>(c)};
    most = c > most ? c : most;
  }
  return most;
}

// Four intervals a step: their divisions side by side (a division's latency was most of a step by one).
REDPP_AVX2 void Means(const IntervalSum* acc, int intervals, float* mean) {
  int i = 0;
  for (; i + 4 <= intervals; i += 4) {
    const __m256d a = _mm256_loadu_pd(&acc[i].sum), b = _mm256_loadu_pd(&acc[i + 2].sum);  // s c s c
    const __m256d sum = _mm256_permute4x64_pd(_mm256_unpacklo_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
    const __m256d count = _mm256_permute4x64_pd(_mm256_unpackhi_pd(a, b), _MM_SHUFFLE(3, 1, 2, 0));
    const __m256d nonempty = _mm256_cmp_pd(count, _mm256_setzero_pd(), _CMP_GT_OQ);
    _mm_storeu_ps(mean + i, _mm256_cvtpd_ps(_mm256_and_pd(_mm256_div_pd(sum, count), nonempty)));
  }
  scalar::MeansFrom(acc, i, intervals, mean);
}

// UniformLevel on four grids (or one value on four lanes): floor, and 1 more where the rest is >= 0.5;
// MAXPD and MINPD return their second operand on a tie of zeros, as std::max(0.0, v) and
// std::min(levels, v) do.
REDPP_AVX2 inline __m256d UniformLevel4(__m256d x, __m256d scale, __m256d zero_point, __m256d levels) {
  const __m256d t = _mm256_div_pd(x, scale);
  const __m256d r = _mm256_round_pd(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __m256d up = _mm256_cmp_pd(_mm256_sub_pd(t, r), _mm256_set1_pd(0.5), _CMP_GE_OQ);
  const __m256d rounded = _mm256_add_pd(r, _mm256_and_pd(up, _mm256_set1_pd(1.0)));
  return _mm256_min_pd(_mm256_max_pd(_mm256_add_pd(rounded, zero_point), _mm256_setzero_pd()), levels);
}

// f32((level - zero_point) * scale), as a double.
REDPP_AVX2 inline __m256d UniformValue4(__m256d level, __m256d scale, __m256d zero_point) {
  return _mm256_cvtps_pd(_mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(level, zero_point), scale)));
}

// One lane a grid, eight grids in two vectors: each lane's sum runs in index order, as the reference's.
REDPP_AVX2 void UniformSse(const float* x, size_t n, const double* scale, const double* zero_point, int grids,
                           double levels, double* sse) {
  static_assert(kUniformGrids == 8, "one grid a lane, in two vectors");
  const __m256d s0 = _mm256_loadu_pd(scale), s1 = _mm256_loadu_pd(scale + 4);
  const __m256d z0 = _mm256_loadu_pd(zero_point), z1 = _mm256_loadu_pd(zero_point + 4), l = _mm256_set1_pd(levels);
  __m256d acc0 = _mm256_setzero_pd(), acc1 = acc0;
  for (size_t i = 0; i < n; i++) {
    const __m256d v = _mm256_set1_pd(static_cast<double>(x[i]));
    const __m256d d0 = _mm256_sub_pd(UniformValue4(UniformLevel4(v, s0, z0, l), s0, z0), v);
    acc0 = _mm256_add_pd(acc0, _mm256_mul_pd(d0, d0));
    if (grids > 4) {
      const __m256d d1 = _mm256_sub_pd(UniformValue4(UniformLevel4(v, s1, z1, l), s1, z1), v);
      acc1 = _mm256_add_pd(acc1, _mm256_mul_pd(d1, d1));
    }
  }
  double out[8];
  _mm256_storeu_pd(out, acc0);
  _mm256_storeu_pd(out + 4, acc1);
  for (int c = 0; c < grids; c++) sse[c] = out[c];
}

// Four values a step on one grid.
REDPP_AVX2 void UniformApply(const float* x, size_t n, double scale, double zero_point, double levels, uint16_t* q,
                             float* values) {
  const __m256d s = _mm256_set1_pd(scale), z = _mm256_set1_pd(zero_point), l = _mm256_set1_pd(levels);
  size_t i = 0;
  for (; i + 4 <= n; i += 4) {
    const __m256d level = UniformLevel4(_mm256_cvtps_pd(_mm_loadu_ps(x + i)), s, z, l);
    // Levels are whole numbers in [0, 65535]: exact as int32, then narrowed (packus: unsigned 16 bits).
    const __m128i l32 = _mm256_cvttpd_epi32(level);
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + i), _mm_packus_epi32(l32, l32));
    _mm_storeu_ps(values + i, _mm256_cvtpd_ps(_mm256_mul_pd(_mm256_sub_pd(level, z), s)));
  }
  scalar::UniformApplyFrom(x, i, n, scale, zero_point, levels, q, values);
}

const SimdKernels kAvx2{kSimdAvx2, Stats, Bins, Map, Density, Slopes<double>, DensityInt, IntervalSums, Means, UniformSse, UniformApply};

}  // namespace

const SimdKernels* Avx2Kernels() { return &kAvx2; }

}  // namespace redpp

#else

namespace redpp {
const SimdKernels* Avx2Kernels() { return nullptr; }
}  // namespace redpp

#endif
