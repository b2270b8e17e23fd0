#pragma once

#include <napi.h>

namespace redpp {

// scaleRows(w: Float32Array, fanIn: number, factors: Float64Array): scale.h's ScaleRows,
// synchronously (the caller passes a slice of rows at a time); w holds fanIn weights per factor.
Napi::Value ScaleRowsJs(const Napi::CallbackInfo& info);

}  // namespace redpp
