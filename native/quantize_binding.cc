#include "quantize_binding.h"

#include <algorithm>
#include <cstdint>
#include <new>

#include "binding_args.h"
#include "quantize.h"
#include "simd.h"

namespace redpp {
namespace {

// The rows' shape: `count` rows of `row_length`, or a message saying why the arguments do not make one.
struct Rows {
  const float* data = nullptr;
  size_t count = 0;
  size_t row_length = 0;
  const char* error = nullptr;
};

Rows RowsOf(const Napi::Value& rows, const Napi::Value& row_length) {
  Rows r;
  if (!IsTypedArrayOf(rows, napi_float32_array) || !row_length.IsNumber()) {
    r.error = "bad arguments";
    return r;
  }
  const auto a = rows.As<Napi::Float32Array>();
  const double n = row_length.As<Napi::Number>().DoubleValue();
  if (!IsWholeIn(n, 0, 4294967295.0)) {
    r.error = "rowLength must be a whole number";
    return r;
  }
  r.row_length = static_cast<size_t>(n);
  if (r.row_length == 0) return r;
  if (a.ElementLength() % r.row_length != 0) {
    r.error = "rowLength must divide the weights";
    return r;
  }
  r.data = a.Data();
  r.count = a.ElementLength() / r.row_length;
  return r;
}

}  // namespace

Napi::Value SortRowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 4 || !IsTypedArrayOf(info[2], napi_float32_array) || !IsTypedArrayOf(info[3], napi_uint32_array)) {
    return Fail(env, "sortRows: bad arguments");
  }
  const Rows rows = RowsOf(info[0], info[1]);
  if (rows.error) return Fail(env, std::string("sortRows: ") + rows.error);
  if (rows.row_length == 0) return env.Undefined();  // no rows, as the reference has it
  auto sorted = info[2].As<Napi::Float32Array>();
  auto distinct = info[3].As<Napi::Uint32Array>();
  if (sorted.ElementLength() != rows.count * rows.row_length || distinct.ElementLength() != rows.count) {
    return Fail(env, "sortRows: sorted must hold the rows, distinct one count per row");
  }
  try {
    SortRows(rows.data, rows.count, rows.row_length, sorted.Data(), distinct.Data());
  } catch (const std::bad_alloc&) {
    // Its scratch (two arrays of a row): an error for the caller, not std::terminate.
    Napi::Error::New(env, "sortRows: out of memory for a row's scratch").ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

Napi::Value NearestCentersJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 3 || !IsTypedArrayOf(info[0], napi_float32_array) || !IsTypedArrayOf(info[1], napi_float64_array) ||
      !IsTypedArrayOf(info[2], napi_float32_array)) {
    return Fail(env, "nearestCenters: bad arguments");
  }
  const auto x = info[0].As<Napi::Float32Array>();
  const auto centers = info[1].As<Napi::Float64Array>();
  auto out = info[2].As<Napi::Float32Array>();
  if (out.ElementLength() != x.ElementLength()) return Fail(env, "nearestCenters: out must hold one value per weight");
  if (centers.ElementLength() == 0 && x.ElementLength() > 0) return Fail(env, "nearestCenters: no centers");
  NearestCenters(x.Data(), x.ElementLength(), centers.Data(), centers.ElementLength(), out.Data());
  return env.Undefined();
}

Napi::Value UniformRowsJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 10 || !info[2].IsNumber() || !info[3].IsBoolean() || !IsTypedArrayOf(info[4], napi_float64_array) ||
      !info[5].IsNumber() || !IsTypedArrayOf(info[6], napi_float32_array) || !IsTypedArrayOf(info[7], napi_float32_array) ||
      !IsTypedArrayOf(info[8], napi_uint16_array) || !IsTypedArrayOf(info[9], napi_float32_array)) {
    return Fail(env, "uniformRows: bad arguments");
  }
  const Rows rows = RowsOf(info[0], info[1]);
  if (rows.error) return Fail(env, std::string("uniformRows: ") + rows.error);
  const double bits = info[2].As<Napi::Number>().DoubleValue();
  if (!IsWholeIn(bits, 1, 16)) return Fail(env, "uniformRows: bits must be a whole number in [1, 16]");
  const double simd = info[5].As<Napi::Number>().DoubleValue();
  if (!IsWholeIn(simd, kSimdAuto, kSimdAvx512) || !SimdSupported(static_cast<SimdLevel>(simd))) {
    return Fail(env, "uniformRows: an instruction set this CPU does not have");
  }
  auto clips = info[4].As<Napi::Float64Array>();
  if (rows.row_length == 0) return Napi::Boolean::New(env, true);  // no rows, as the reference has it
  const size_t weights = rows.count * rows.row_length;
  UniformRowsOut out{info[6].As<Napi::Float32Array>().Data(), info[7].As<Napi::Float32Array>().Data(),
                     info[8].As<Napi::Uint16Array>().Data(), info[9].As<Napi::Float32Array>().Data()};
  if (info[6].As<Napi::Float32Array>().ElementLength() != rows.count ||
      info[7].As<Napi::Float32Array>().ElementLength() != rows.count ||
      info[8].As<Napi::Uint16Array>().ElementLength() != weights || info[9].As<Napi::Float32Array>().ElementLength() != weights) {
    return Fail(env, "uniformRows: scale and zeroPoint must hold one entry per row, q and values one per weight");
  }
  const bool done = UniformRows(rows.data, rows.count, rows.row_length, static_cast<int>(bits), info[3].As<Napi::Boolean>().Value(),
                                clips.Data(), static_cast<int>(std::min<size_t>(clips.ElementLength(), INT32_MAX)), static_cast<int>(simd), out);
  return Napi::Boolean::New(env, done);
}

}  // namespace redpp
