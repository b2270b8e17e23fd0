// The sort of the codecs' palette fits (lib/kernels/quantize.ts holds the reference, which this
// matches bit for bit): the budget sorts whole layers, row by row, at every measurement, where
// TypedArray sort costs about 90 ns a weight and this radix sort about 15.
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// Each of `count` rows of `row_length` floats copied to `sorted` and sorted in the order of
// TypedArray.prototype.sort (numeric, -0 before +0, NaNs last: among themselves in input order, where
// V8 leaves NaNs of different payloads in an order of its own), and the number of distinct values of
// each (x != previous, so -0 and +0 count once, every NaN once).
void SortRows(const float* rows, size_t count, size_t row_length, float* sorted, uint32_t* distinct);

}  // namespace redpp
