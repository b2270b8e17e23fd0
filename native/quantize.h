// The codecs' quantizers (lib/kernels/quantize.ts holds the references, which these match bit for
// bit): the sort of the palette fits (the budget sorts whole layers, row by row, at every measurement,
// where TypedArray sort costs about 90 ns a weight and this radix sort about 15), and the uniform
// quantizer (seven clipping ranges tried per row: a division per weight and range).
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// Each of `count` rows of `row_length` floats copied to `sorted` and sorted in the order of
// TypedArray.prototype.sort (numeric, -0 before +0, NaNs last: among themselves in input order, where
// V8 leaves NaNs of different payloads in an order of its own), and the number of distinct values of
// each (x != previous, so -0 and +0 count once, every NaN once).
void SortRows(const float* rows, size_t count, size_t row_length, float* sorted, uint32_t* distinct);

struct UniformRowsOut {
  float* scale;       // per row: w = (q - zero_point) * scale
  float* zero_point;  // per row
  uint16_t* q;        // per weight, in [0, 2^bits)
  float* values;      // per weight: the dequantized weight
};

// Uniform quantization of each of `count` rows of `row_length` weights to `bits` (1 to 16) bits, as
// uniformRowsReference() does it: asymmetric with an integer zero point, the range [min(0, lo),
// max(0, hi)] scaled by the one of `clips` that gives the least squared error (the first on a tie),
// scales rounded up to float16 (half_tables) or float32. The squared errors of up to eight ranges are
// taken in one pass over a row (simd.h: uniform_sse), each summed in the reference's order.
// `simd_level` is a SimdLevel. Returns false when a row holds a NaN or an infinity, the outputs then
// partly written (the caller runs the reference).
bool UniformRows(const float* rows, size_t count, size_t row_length, int bits, bool half_tables, const double* clips,
                 int clip_count, int simd_level, const UniformRowsOut& out);

// out[i] = the center nearest to x[i] among `count` sorted centers (count >= 1), the lower one on a
// tie, as lib/kernels/quantize.ts: nearestCentersReference (a binary search for the first center not
// below x; x past either end takes the end's center).
void NearestCenters(const float* x, size_t n, const double* centers, size_t count, float* out);

}  // namespace redpp
