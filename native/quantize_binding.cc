#include "quantize_binding.h"

#include <cmath>
#include <new>

#include "binding_args.h"
#include "quantize.h"

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
  if (!(n >= 0 && n <= 4294967295.0 && std::floor(n) == n)) {
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

}  // namespace redpp
