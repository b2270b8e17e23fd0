#pragma once

#include <napi.h>

namespace redpp {

// channelPrints(words: Uint32Array, outer, length, stride, inner, prints: Uint32Array): channels.h's
// ChannelPrints, synchronous (a pool worker calls it, a layer at a time).
Napi::Value ChannelPrintsJs(const Napi::CallbackInfo& info);

// kernelSharing(bits: Uint32Array, cout, cin, k, index: Int32Array, counts: Uint32Array, starts: Uint32Array | null):
// channels.h's KernelSharing, synchronous (a pool worker calls it, a layer at a time).
Napi::Value KernelSharingJs(const Napi::CallbackInfo& info);

}  // namespace redpp
