#pragma once

#include <napi.h>

namespace redpp {

// sortRows(rows: Float32Array, rowLength, sorted: Float32Array, distinct: Uint32Array): quantize.h's
// SortRows, synchronously (the pool's workers call it). Every size is checked against the arrays: a
// row length that does not divide them would be an out-of-bounds read or write.
Napi::Value SortRowsJs(const Napi::CallbackInfo& info);

}  // namespace redpp
