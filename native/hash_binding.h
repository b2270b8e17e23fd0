#pragma once

#include <napi.h>

namespace redpp {

// hashWeights(weights, groupSize, beta, center, threads, simd, device, values, distinct, rms)
//   -> Promise<number>: the index of the first NaN/Inf weight, or -1. lib/binding.ts types it.
Napi::Value HashWeightsAsync(const Napi::CallbackInfo& info);

// hashWeightsBlocking(the same arguments) -> number: the kernel on the calling thread, for a pool worker,
// whose thread is there to run it (on a libuv thread, each call cost it two wake-ups across threads).
Napi::Value HashWeightsBlocking(const Napi::CallbackInfo& info);

}  // namespace redpp
