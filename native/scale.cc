#include "scale.h"

#include <limits>

namespace redpp {

// The narrowing below: with float's infinities every double lies between two adjacent floats, so the
// conversion is implementation-defined ([conv.double]), not undefined, and IEEE 754 defines it: to
// nearest, past the largest float's rounding boundary to an infinity, as JavaScript rounds.
static_assert(std::numeric_limits<float>::is_iec559 && std::numeric_limits<double>::is_iec559, "IEEE 754 floats");

void ScaleRows(float* w, size_t rows, size_t fan_in, const double* factors) {
  for (size_t r = 0; r < rows; r++) {
    const double f = factors[r];
    float* const row = w + r * fan_in;
    for (size_t c = 0; c < fan_in; c++) row[c] = static_cast<float>(static_cast<double>(row[c]) * f);
  }
}

}  // namespace redpp
