// The N-API face of half.h: the two arrays must be of one length (else an out-of-bounds write).
#include "half_binding.h"

#include "binding_args.h"
#include "half.h"

namespace redpp {

Napi::Value HalfToFloatJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !IsTypedArrayOf(info[0], napi_uint16_array) || !IsTypedArrayOf(info[1], napi_float32_array)) {
    return Fail(env, "halfToFloat: bad arguments (a Uint16Array and a Float32Array)");
  }
  const auto src = info[0].As<Napi::Uint16Array>();
  auto dst = info[1].As<Napi::Float32Array>();
  if (src.ElementLength() != dst.ElementLength()) return Fail(env, "halfToFloat: the arrays differ in length");
  HalfToFloat(src.Data(), src.ElementLength(), dst.Data());
  return env.Undefined();
}

Napi::Value FloatToHalfJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 2 || !IsTypedArrayOf(info[0], napi_float32_array) || !IsTypedArrayOf(info[1], napi_uint16_array)) {
    return Fail(env, "floatToHalf: bad arguments (a Float32Array and a Uint16Array)");
  }
  const auto src = info[0].As<Napi::Float32Array>();
  auto dst = info[1].As<Napi::Uint16Array>();
  if (src.ElementLength() != dst.ElementLength()) return Fail(env, "floatToHalf: the arrays differ in length");
  FloatToHalf(src.Data(), src.ElementLength(), dst.Data());
  return env.Undefined();
}

}  // namespace redpp
