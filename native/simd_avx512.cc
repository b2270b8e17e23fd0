// AVX-512F variants (16 floats a step). Lane order of the sums matches the scalar kernel: the low and
// high halves of each step are added to the same 8 lanes, low half first.
#include "simd_scalar.h"

// GCC 12 warns inside its own avx512fintrin.h, whose helpers start from _mm512_undefined_*(): a known
// false positive, silenced for this file only.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>

#include <cfloat>

#define REDPP_AVX512 __attribute__((target("avx512f")))

namespace redpp {
namespace {

REDPP_AVX512 inline __m256 HighHalf(__m512 v) {
  return _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
}

REDPP_AVX512 inline __m512i BinOf16(__m512 v, __m512 scale, __m512 offset, __m512 inverse, __m512 last) {
  const __m512 t = _mm512_mul_ps(_mm512_sub_ps(_mm512_mul_ps(v, scale), offset), inverse);
  const __m512 u = _mm512_min_ps(_mm512_add_ps(t, _mm512_set1_ps(0.5f)), last);
  return _mm512_cvttps_epi32(u);
}

REDPP_AVX512 void Stats(const float* x, size_t n, GroupStats* s) {
  scalar::InitStats(s);
  const __m512 flt_max = _mm512_set1_ps(FLT_MAX);
  __m512 vmin = _mm512_set1_ps(s->min), vmax = _mm512_set1_ps(s->max), vmin_abs = _mm512_set1_ps(s->min_abs);
  __m512d sum = _mm512_setzero_pd(), sum_sq = sum;
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 a = _mm512_abs_ps(v);
    if (_mm512_cmp_ps_mask(a, flt_max, _CMP_LE_OQ) != 0xffff) break;
    vmin = _mm512_min_ps(vmin, v);
    vmax = _mm512_max_ps(vmax, v);
    vmin_abs = _mm512_mask_min_ps(vmin_abs, _mm512_cmp_ps_mask(a, _mm512_setzero_ps(), _CMP_NEQ_OQ), vmin_abs, a);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    const __m512d hi = _mm512_cvtps_pd(HighHalf(v));
    sum = _mm512_add_pd(_mm512_add_pd(sum, lo), hi);
    sum_sq = _mm512_add_pd(_mm512_add_pd(sum_sq, _mm512_mul_pd(lo, lo)), _mm512_mul_pd(hi, hi));
  }
  s->min = _mm512_reduce_min_ps(vmin);
  s->max = _mm512_reduce_max_ps(vmax);
  s->min_abs = _mm512_reduce_min_ps(vmin_abs);
  _mm512_storeu_pd(s->sum, sum);
  _mm512_storeu_pd(s->sum_sq, sum_sq);
  scalar::StatsFrom(x, i, n, s);
}

REDPP_AVX512 void Bins(const float* x, size_t n, const BinMap& m, int32_t* bin) {
  const __m512 scale = _mm512_set1_ps(m.scale), offset = _mm512_set1_ps(m.offset);
  const __m512 inverse = _mm512_set1_ps(m.inverse), last = _mm512_set1_ps(static_cast<float>(m.last_bin));
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    _mm512_storeu_si512(bin + i, BinOf16(_mm512_loadu_ps(x + i), scale, offset, inverse, last));
  }
  scalar::BinsFrom(x, i, n, m, bin);
}

REDPP_AVX512 void Map(const float* x, const int32_t* bin, size_t n, const float* bin_value, float* out, double* err) {
  __m512d e = _mm512_loadu_pd(err);
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    alignas(64) float ys[16];
    scalar::Lookup16(bin + i, bin_value, ys);
    const __m512 v = _mm512_loadu_ps(x + i);
    const __m512 y = _mm512_load_ps(ys);
    _mm512_storeu_ps(out + i, y);
    const __m512 d = _mm512_sub_ps(y, v);
    const __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(d));
    const __m512d hi = _mm512_cvtps_pd(HighHalf(d));
    e = _mm512_add_pd(_mm512_add_pd(e, _mm512_mul_pd(lo, lo)), _mm512_mul_pd(hi, hi));
  }
  _mm512_storeu_pd(err, e);
  scalar::MapFrom(x, bin, i, n, bin_value, out, err);
}

// Exact integer arithmetic in doubles (see the AVX2 variant), so FMA is safe.
REDPP_AVX512 void Density(const double* c, size_t bins, const double* kernel, int radius, double* density) {
  size_t b = 0;
  for (; b + 8 <= bins; b += 8) {
    __m512d acc = _mm512_mul_pd(_mm512_set1_pd(kernel[0]), _mm512_loadu_pd(c + b));
    for (int k = 1; k <= radius; k++) {
      const __m512d pair = _mm512_add_pd(_mm512_loadu_pd(c + b - k), _mm512_loadu_pd(c + b + k));
      acc = _mm512_fmadd_pd(_mm512_set1_pd(kernel[k]), pair, acc);
    }
    _mm512_storeu_pd(density + b, acc);
  }
  scalar::DensityFrom(c, b, bins, kernel, radius, density);
}

// The slope bits of one whole 64-bin word, p[0] to p[63] against p[-1] to p[62].
REDPP_AVX512 inline void SlopeWord(const double* p, uint64_t* up, uint64_t* down) {
  uint64_t u = 0, d = 0;
  for (size_t j = 0; j < 64; j += 8) {
    const __m512d cur = _mm512_loadu_pd(p + j), prev = _mm512_loadu_pd(p + j - 1);
    u |= static_cast<uint64_t>(_mm512_cmp_pd_mask(cur, prev, _CMP_GT_OQ)) << j;
    d |= static_cast<uint64_t>(_mm512_cmp_pd_mask(cur, prev, _CMP_LT_OQ)) << j;
  }
  *up = u;
  *down = d;
}

template <typename T>
REDPP_AVX512 void Slopes(const T* density, size_t bins, uint64_t* up, uint64_t* down) {
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

// Wrapping 32-bit products and sums: exact under simd.h's condition, as in the scalar variant. Every
// tap, unrolled (weights past the radius are zero), each window cut by VALIGND from the 32 counts around
// the step, c[b - 8, b + 24), one new load a step: twice as fast as a load per tap in a loop to radius.
// The slope bits from the densities in registers, each step's against the one before it (a pass of its
// own over the stored densities was 3 % of the hashing); the last word, partly the scalar tail's, again
// from the stored densities.
REDPP_AVX512 uint32_t DensityInt(const uint32_t* c, size_t bins, const int32_t* kernel, int radius, int32_t* density,
                                 uint64_t* up, uint64_t* down) {
  static_assert(kMaxRadius == 8, "the windows are cut from c[b - 8, b + 24)");
  __m512i w[kMaxRadius + 1];
  for (int k = 0; k <= kMaxRadius; k++) w[k] = _mm512_set1_epi32(kernel[k]);
  __m512i most = _mm512_setzero_si512();
  __m512i low = _mm512_loadu_si512(c - 8);  // c[b - 8, b + 8)
  __m512i before = _mm512_setzero_si512();  // the last step's densities
  uint64_t u = 0, d = 0;
  size_t b = 0;
  for (; b + 16 <= bins; b += 16) {
    const __m512i high = _mm512_loadu_si512(c + b + 8);  // c[b + 8, b + 24)
    const __m512i center = _mm512_alignr_epi32(high, low, 8);
    most = _mm512_max_epu32(most, center);
    __m512i acc = _mm512_mullo_epi32(w[0], center);
#define REDPP_TAP(k, right)                                                                        \
  acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(w[k], _mm512_add_epi32(_mm512_alignr_epi32(high, low, 8 - (k)), right)))
    REDPP_TAP(1, _mm512_alignr_epi32(high, low, 9));
    REDPP_TAP(2, _mm512_alignr_epi32(high, low, 10));
    REDPP_TAP(3, _mm512_alignr_epi32(high, low, 11));
    REDPP_TAP(4, _mm512_alignr_epi32(high, low, 12));
    REDPP_TAP(5, _mm512_alignr_epi32(high, low, 13));
    REDPP_TAP(6, _mm512_alignr_epi32(high, low, 14));
    REDPP_TAP(7, _mm512_alignr_epi32(high, low, 15));
    REDPP_TAP(8, high);
#undef REDPP_TAP
    _mm512_storeu_si512(density + b, acc);
    const __m512i left = _mm512_alignr_epi32(acc, before, 15);  // density[b - 1, b + 15)
    u |= static_cast<uint64_t>(_mm512_cmpgt_epi32_mask(acc, left)) << (b % 64);
    d |= static_cast<uint64_t>(_mm512_cmplt_epi32_mask(acc, left)) << (b % 64);
    if (b % 64 == 48) {
      up[b / 64] = b < 64 ? u & ~uint64_t{1} : u;  // bin 0 has no left neighbour
      down[b / 64] = b < 64 ? d & ~uint64_t{1} : d;
      u = d = 0;
    }
    low = high;
    before = acc;
  }
  const uint32_t head = static_cast<uint32_t>(_mm512_reduce_max_epu32(most));
  const uint32_t tail = scalar::DensityIntFrom(c, b, bins, kernel, radius, density);
  scalar::SlopesFrom(density, b / 64 * 64, bins, up, down);
  return head > tail ? head : tail;
}

// Adds bins [b, min(b + 16, b1)) to an interval's lanes (masked-off lanes are not read).
REDPP_AVX512 inline void AddBins(const double* bin_sum, const uint32_t* counts, int b, int b1, __m512d* sum,
                                 __m512i* count) {
  const int left = b1 - b;
  const __mmask16 m = left >= 16 ? 0xffff : static_cast<__mmask16>((1u << left) - 1);
  *sum = _mm512_add_pd(*sum, _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), bin_sum + b));
  *sum = _mm512_add_pd(*sum, _mm512_maskz_loadu_pd(static_cast<__mmask8>(m >> 8), bin_sum + b + 8));
  *count = _mm512_add_epi32(*count, _mm512_maskz_loadu_epi32(m, counts + b));
}

// The lanes of interval [b0, b1), 16 bins a step, the last one masked: intervals are some 13 bins wide
// (a fifth are wider than 16), so a loop per bin spent its time on the loop. The first step is taken
// before the loop: a loop that may run once was slower.
REDPP_AVX512 inline void IntervalLanes(const double* bin_sum, const uint32_t* counts, int b0, int b1, __m512d* sum,
                                       __m512i* count) {
  *sum = _mm512_setzero_pd();
  *count = _mm512_setzero_si512();
  AddBins(bin_sum, counts, b0, b1, sum, count);
  for (int b = b0 + 16; b < b1; b += 16) AddBins(bin_sum, counts, b, b1, sum, count);
}

// Eight vectors' sums in one vector, r[j] = the sum of v[j]'s lanes, by a tree of shuffles and adds:
// 21 instructions where eight reductions of their own took 48.
REDPP_AVX512 inline __m512d Sums8(const __m512d* v) {
  __m512d pairs[4], quads[2];
  for (int j = 0; j < 4; j++) {
    pairs[j] = _mm512_add_pd(_mm512_unpacklo_pd(v[2 * j], v[2 * j + 1]), _mm512_unpackhi_pd(v[2 * j], v[2 * j + 1]));
  }
  for (int j = 0; j < 2; j++) {
    quads[j] = _mm512_add_pd(_mm512_shuffle_f64x2(pairs[2 * j], pairs[2 * j + 1], _MM_SHUFFLE(2, 0, 2, 0)),
                             _mm512_shuffle_f64x2(pairs[2 * j], pairs[2 * j + 1], _MM_SHUFFLE(3, 1, 3, 1)));
  }
  return _mm512_add_pd(_mm512_shuffle_f64x2(quads[0], quads[1], _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f64x2(quads[0], quads[1], _MM_SHUFFLE(3, 1, 3, 1)));
}

// Eight intervals at a time, their lanes added up together by Sums8 (the counts folded to eight lanes
// and taken as doubles, exact); the last few intervals one by one. A third faster than a reduction per
// interval.
REDPP_AVX512 uint32_t IntervalSums(const double* bin_sum, const uint32_t* counts, const int* splits, int intervals,
                                   IntervalSum* out) {
  __m512d most = _mm512_setzero_pd();
  int i = 0, b0 = 0;
  for (; i + 8 <= intervals; i += 8) {
    __m512d sums[8], cnts[8];  // in registers: the loop is unrolled
#pragma GCC unroll 8
    for (int j = 0; j < 8; j++) {
      __m512i count;
      IntervalLanes(bin_sum, counts, b0, splits[i + j], &sums[j], &count);
      cnts[j] = _mm512_cvtepu32_pd(_mm256_add_epi32(_mm512_castsi512_si256(count), _mm512_extracti64x4_epi64(count, 1)));
      b0 = splits[i + j];
    }
    const __m512d s = Sums8(sums), c = Sums8(cnts);
    most = _mm512_max_pd(most, c);
    _mm512_storeu_pd(&out[i].sum, _mm512_permutex2var_pd(s, _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11), c));
    _mm512_storeu_pd(&out[i + 4].sum, _mm512_permutex2var_pd(s, _mm512_setr_epi64(4, 12, 5, 13, 6, 14, 7, 15), c));
  }
  uint32_t largest = static_cast<uint32_t>(_mm512_reduce_max_pd(most));
  for (; i < intervals; b0 = splits[i++]) {
    __m512d sum;
    __m512i count;
    IntervalLanes(bin_sum, counts, b0, splits[i], &sum, &count);
    const uint32_t c = static_cast<uint32_t>(_mm512_reduce_add_epi32(count));
    out[i] = {_mm512_reduce_add_pd(sum), static_cast<double>(c)};
    largest = c > largest ? c : largest;
  }
  return largest;
}

// Eight intervals a step: their divisions side by side (a division's latency was most of a step by one).
REDPP_AVX512 void Means(const IntervalSum* acc, int intervals, float* mean) {
  int i = 0;
  for (; i + 8 <= intervals; i += 8) {
    const __m512d a = _mm512_loadu_pd(&acc[i].sum), b = _mm512_loadu_pd(&acc[i + 4].sum);  // s c s c ...
    const __m512d sum = _mm512_permutex2var_pd(a, _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14), b);
    const __m512d count = _mm512_permutex2var_pd(a, _mm512_setr_epi64(1, 3, 5, 7, 9, 11, 13, 15), b);
    const __mmask8 nonempty = _mm512_cmp_pd_mask(count, _mm512_setzero_pd(), _CMP_GT_OQ);
    _mm256_storeu_ps(mean + i, _mm512_cvtpd_ps(_mm512_maskz_div_pd(nonempty, sum, count)));
  }
  scalar::MeansFrom(acc, i, intervals, mean);
}

// UniformLevel on eight grids (or one value on eight lanes): floor, and 1 more where the rest is >= 0.5;
// MAXPD and MINPD return their second operand on a tie of zeros, as std::max(0.0, v) and
// std::min(levels, v) do.
REDPP_AVX512 inline __m512d UniformLevel8(__m512d x, __m512d scale, __m512d zero_point, __m512d levels) {
  const __m512d t = _mm512_div_pd(x, scale);
  const __m512d r = _mm512_roundscale_pd(t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
  const __mmask8 up = _mm512_cmp_pd_mask(_mm512_sub_pd(t, r), _mm512_set1_pd(0.5), _CMP_GE_OQ);
  const __m512d rounded = _mm512_mask_add_pd(r, up, r, _mm512_set1_pd(1.0));
  return _mm512_min_pd(_mm512_max_pd(_mm512_add_pd(rounded, zero_point), _mm512_setzero_pd()), levels);
}

// f32((level - zero_point) * scale), as a double.
REDPP_AVX512 inline __m512d UniformValue8(__m512d level, __m512d scale, __m512d zero_point) {
  return _mm512_cvtps_pd(_mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(level, zero_point), scale)));
}

// One lane a grid: each lane's sum runs in index order, as the reference's.
REDPP_AVX512 void UniformSse(const float* x, size_t n, const double* scale, const double* zero_point, int grids,
                             double levels, double* sse) {
  static_assert(kUniformGrids == 8, "one grid a lane");
  const __m512d s = _mm512_loadu_pd(scale), z = _mm512_loadu_pd(zero_point), l = _mm512_set1_pd(levels);
  __m512d acc = _mm512_setzero_pd();
  for (size_t i = 0; i < n; i++) {
    const __m512d v = _mm512_set1_pd(static_cast<double>(x[i]));
    const __m512d d = _mm512_sub_pd(UniformValue8(UniformLevel8(v, s, z, l), s, z), v);
    acc = _mm512_add_pd(acc, _mm512_mul_pd(d, d));
  }
  double out[8];
  _mm512_storeu_pd(out, acc);
  for (int c = 0; c < grids; c++) sse[c] = out[c];
}

// Eight values a step on one grid.
REDPP_AVX512 void UniformApply(const float* x, size_t n, double scale, double zero_point, double levels, uint16_t* q,
                               float* values) {
  const __m512d s = _mm512_set1_pd(scale), z = _mm512_set1_pd(zero_point), l = _mm512_set1_pd(levels);
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m512d level = UniformLevel8(_mm512_cvtps_pd(_mm256_loadu_ps(x + i)), s, z, l);
    // Levels are whole numbers in [0, 65535]: exact as int32, then narrowed (packus: unsigned 16 bits).
    const __m256i l32 = _mm512_cvttpd_epi32(level);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i),
                     _mm_packus_epi32(_mm256_castsi256_si128(l32), _mm256_extracti128_si256(l32, 1)));
    _mm256_storeu_ps(values + i, _mm512_cvtpd_ps(_mm512_mul_pd(_mm512_sub_pd(level, z), s)));
  }
  scalar::UniformApplyFrom(x, i, n, scale, zero_point, levels, q, values);
}

const SimdKernels kAvx512{kSimdAvx512, Stats, Bins, Map, Density, Slopes<double>, DensityInt, IntervalSums, Means, UniformSse, UniformApply};

}  // namespace

const SimdKernels* Avx512Kernels() { return &kAvx512; }

}  // namespace redpp

#else

namespace redpp {
const SimdKernels* Avx512Kernels() { return nullptr; }
}  // namespace redpp

#endif
