#pragma once

#include <napi.h>

namespace redpp {

// sumOfSquares(x: Float32Array) -> number: weight_stats.h's SumOfSquares.
Napi::Value SumOfSquaresJs(const Napi::CallbackInfo& info);

// zerosPerGroup(x: Float32Array, groupSize, zeros: Uint32Array) -> undefined: weight_stats.h's ZerosPerGroup.
Napi::Value ZerosPerGroupJs(const Napi::CallbackInfo& info);

}  // namespace redpp
