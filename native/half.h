// float16 <-> float32, element by element, as lib/model/dtype.ts converts (its float16BitsToNumber and
// numberToFloat16Bits are the reference, matched bit for bit): float16 weights are converted where
// they are hashed and coded, in the pool's workers, at memory speed.
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// Exact (every float16 is a float32); a NaN becomes the quiet NaN 0x7fc00000, as a JavaScript
// Float32Array stores NaN.
void HalfToFloat(const uint16_t* src, size_t n, float* dst);

// Round to nearest even; overflow to infinity; a NaN keeps its sign and becomes quiet (0x7e00).
void FloatToHalf(const float* src, size_t n, uint16_t* dst);

}  // namespace redpp
