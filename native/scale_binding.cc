// The N-API face of scale.h: the weights must hold exactly fanIn per factor (else an out-of-bounds write).
#include "scale_binding.h"

#include "binding_args.h"
#include "scale.h"

namespace redpp {

Napi::Value ScaleRowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !IsTypedArrayOf(info[0], napi_float32_array) || !info[1].IsNumber() || !IsTypedArrayOf(info[2], napi_float64_array)) {
    return Fail(env, "scaleRows: bad arguments (a Float32Array, a fan-in and a Float64Array)");
  }
  auto w = info[0].As<Napi::Float32Array>();
  const double fan_in = info[1].As<Napi::Number>().DoubleValue();
  const auto factors = info[2].As<Napi::Float64Array>();
  if (!IsWholeIn(fan_in, 0, 4294967295.0)) return Fail(env, "scaleRows: the fan-in must be a whole number");
  const size_t rows = factors.ElementLength();
  // Compared in double, where the product cannot wrap: below 2^53 it is exact, and a product that rounds
  // is 2^53 or more, longer than any array.
  if (static_cast<double>(rows) * fan_in != static_cast<double>(w.ElementLength())) {
    return Fail(env, "scaleRows: the weights are not fan-in times the factors");
  }
  ScaleRows(w.Data(), rows, static_cast<size_t>(fan_in), factors.Data());
  return env.Undefined();
}

}  // namespace redpp
