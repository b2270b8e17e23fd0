// The N-API face of weight_stats.h, synchronous (the pool's workers call it): checks every argument,
// since a group size that does not divide the elements is an out-of-bounds write.
#include "weight_stats_binding.h"

#include "binding_args.h"
#include "weight_stats.h"

namespace redpp {

Napi::Value SumOfSquaresJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsTypedArrayOf(info[0], napi_float32_array)) return Fail(env, "sumOfSquares: bad arguments");
  const auto x = info[0].As<Napi::Float32Array>();
  return Napi::Number::New(env, SumOfSquares(x.Data(), x.ElementLength()));
}

Napi::Value ZerosPerGroupJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !IsTypedArrayOf(info[0], napi_float32_array) || !info[1].IsNumber() || !IsTypedArrayOf(info[2], napi_uint32_array)) {
    return Fail(env, "zerosPerGroup: bad arguments");
  }
  const auto x = info[0].As<Napi::Float32Array>();
  const double group = info[1].As<Napi::Number>().DoubleValue();
  auto zeros = info[2].As<Napi::Uint32Array>();
  const size_t n = x.ElementLength();
  if (!IsWholeIn(group, 1, 9007199254740992.0) || n % static_cast<size_t>(group) != 0) {
    return Fail(env, "zerosPerGroup: groupSize must divide the number of elements");
  }
  if (zeros.ElementLength() != n / static_cast<size_t>(group)) return Fail(env, "zerosPerGroup: one count per group");
  ZerosPerGroup(x.Data(), n, static_cast<size_t>(group), zeros.Data());
  return env.Undefined();
}

}  // namespace redpp
