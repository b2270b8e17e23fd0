#pragma once

#include <napi.h>

namespace redpp {

// kernelSharing(bits: Uint32Array, cout, cin, k, index: Int32Array, counts: Uint32Array, starts: Uint32Array | null):
// sharing.h's KernelSharing, synchronous (a pool worker calls it, a layer at a time).
Napi::Value KernelSharingJs(const Napi::CallbackInfo& info);

}  // namespace redpp
