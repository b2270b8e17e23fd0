// The N-API face of channels.h: checks every size, since one that does not match is an out-of-bounds
// read or write (lib/passes/merge/prints.ts and lib/passes/kernel-split/sharing.ts are the callers).
#include "channels_binding.h"

#include <new>
#include <string>

#include "binding_args.h"
#include "channels.h"

namespace redpp {

// Word offsets are below 2^53 in a typed array; sizes are checked as doubles before any cast.
constexpr double kMaxLength = 9007199254740991.0;

Napi::Value ChannelPrintsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool ok = info.Length() == 6 && IsTypedArrayOf(info[0], napi_uint32_array) && info[1].IsNumber() && info[2].IsNumber() &&
                  info[3].IsNumber() && info[4].IsNumber() && IsTypedArrayOf(info[5], napi_uint32_array);
  if (!ok) return Fail(env, "channelPrints: bad arguments (call it through lib/passes/merge/prints.ts)");
  const double outer = info[1].As<Napi::Number>().DoubleValue();
  const double length = info[2].As<Napi::Number>().DoubleValue();
  const double stride = info[3].As<Napi::Number>().DoubleValue();
  const double inner = info[4].As<Napi::Number>().DoubleValue();
  if (!IsWholeIn(outer, 0, kMaxLength) || !IsWholeIn(length, 0, kMaxLength) || !IsWholeIn(stride, 0, kMaxLength) || !IsWholeIn(inner, 1, kMaxLength)) {
    return Fail(env, "channelPrints: outer, length, stride and inner must be whole numbers (inner >= 1)");
  }
  const auto words = info[0].As<Napi::Uint32Array>();
  auto prints = info[5].As<Napi::Uint32Array>();
  if (static_cast<double>(words.ElementLength()) != outer * length * stride) return Fail(env, "channelPrints: the words must be outer * length * stride");
  const size_t channels = static_cast<size_t>(length) / static_cast<size_t>(inner);
  if (prints.ElementLength() != channels) return Fail(env, "channelPrints: one print per channel (length / inner)");
  const ChannelView view{static_cast<size_t>(outer), static_cast<size_t>(length), static_cast<size_t>(stride), static_cast<size_t>(inner)};
  ChannelPrints(words.Data(), view, prints.Data());
  return env.Undefined();
}

Napi::Value KernelSharingJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool ok = info.Length() == 7 && IsTypedArrayOf(info[0], napi_uint32_array) && info[1].IsNumber() && info[2].IsNumber() &&
                  info[3].IsNumber() && IsTypedArrayOf(info[4], napi_int32_array) && IsTypedArrayOf(info[5], napi_uint32_array) &&
                  (info[6].IsNull() || IsTypedArrayOf(info[6], napi_uint32_array));
  if (!ok) return Fail(env, "kernelSharing: bad arguments (call it through lib/passes/kernel-split/sharing.ts)");
  const double cout = info[1].As<Napi::Number>().DoubleValue();
  const double cin = info[2].As<Napi::Number>().DoubleValue();
  const double k = info[3].As<Napi::Number>().DoubleValue();
  // Word offsets are 32-bit: a kernel starts below 2^32.
  constexpr double kMaxKernelWords = 4294967295.0;
  // A channel's kernels are numbered in int32, and its table has twice as many slots.
  if (!IsWholeIn(cout, 0, 2147483647.0) || !IsWholeIn(cin, 0, kMaxKernelWords) || !IsWholeIn(k, 1, kMaxKernelWords) || cout * cin * k > kMaxKernelWords) {
    return Fail(env, "kernelSharing: cout (below 2^31), cin and k must be whole numbers (k >= 1), with cout * cin * k below 2^32");
  }
  const auto bits = info[0].As<Napi::Uint32Array>();
  auto index = info[4].As<Napi::Int32Array>();
  auto counts = info[5].As<Napi::Uint32Array>();
  if (static_cast<double>(bits.ElementLength()) != cout * cin * k) return Fail(env, "kernelSharing: the weights must be cout * cin * k words");
  if (static_cast<double>(index.ElementLength()) != cout * cin) return Fail(env, "kernelSharing: the index must have cout * cin entries");
  if (static_cast<double>(counts.ElementLength()) != cin) return Fail(env, "kernelSharing: counts must have cin entries");
  uint32_t* starts = nullptr;
  if (!info[6].IsNull()) {
    auto s = info[6].As<Napi::Uint32Array>();
    if (static_cast<double>(s.ElementLength()) != cout * cin) return Fail(env, "kernelSharing: starts must have cout * cin entries");
    starts = s.Data();
  }
  const KernelSharingShape shape{static_cast<size_t>(cout), static_cast<size_t>(cin), static_cast<size_t>(k)};
  try {
    KernelSharing(bits.Data(), shape, index.Data(), counts.Data(), starts);
  } catch (const std::bad_alloc&) {
    // The table is a few times cout: refused where it cannot be had, instead of ending the process.
    return Fail(env, "kernelSharing: out of memory for a table of cout = " + std::to_string(shape.cout) + " kernels");
  }
  return env.Undefined();
}

}  // namespace redpp
