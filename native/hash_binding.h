#pragma once

#include <napi.h>

namespace redpp {

// hashWeights(weights, groupSize, beta, center, threads, simd, device, values, distinct, rms)
//   -> Promise<number>: the index of the first NaN/Inf weight, or -1. lib/binding.ts types it.
Napi::Value HashWeightsAsync(const Napi::CallbackInfo& info);

}  // namespace redpp
