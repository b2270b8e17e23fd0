#pragma once

#include <napi.h>

namespace redpp {

// sortRows(rows: Float32Array, rowLength, sorted: Float32Array, distinct: Uint32Array): quantize.h's
// SortRows, synchronously (the pool's workers call it). Every size is checked against the arrays: a
// row length that does not divide them would be an out-of-bounds read or write.
Napi::Value SortRowsJs(const Napi::CallbackInfo& info);

// nearestCenters(x: Float32Array, centers: Float64Array, out: Float32Array): quantize.h's NearestCenters.
Napi::Value NearestCentersJs(const Napi::CallbackInfo& info);

// uniformRows(rows: Float32Array, rowLength, bits, halfTables: boolean, clips: Float64Array, simd,
// scale: Float32Array, zeroPoint: Float32Array, q: Uint16Array, values: Float32Array): quantize.h's
// UniformRows, synchronously; false when a row holds a non-finite value.
Napi::Value UniformRowsJs(const Napi::CallbackInfo& info);

}  // namespace redpp
