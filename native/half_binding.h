#pragma once

#include <napi.h>

namespace redpp {

// halfToFloat(src: Uint16Array, dst: Float32Array) and floatToHalf(src: Float32Array, dst: Uint16Array):
// half.h's conversions, synchronously; src and dst of one length.
Napi::Value HalfToFloatJs(const Napi::CallbackInfo& info);
Napi::Value FloatToHalfJs(const Napi::CallbackInfo& info);

}  // namespace redpp
