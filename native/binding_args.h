// What every binding needs to check its arguments: the typed array of the element type expected, and
// a RangeError for a value that would make the kernel read or write out of bounds.
#pragma once

#include <napi.h>

#include <cmath>
#include <string>

namespace redpp {

inline bool IsTypedArrayOf(const Napi::Value& v, napi_typedarray_type type) {
  return v.IsTypedArray() && v.As<Napi::TypedArray>().TypedArrayType() == type;
}

// Whether a number from JavaScript is a whole number in [lo, hi] (NaN is not): checked before any cast.
inline bool IsWholeIn(double v, double lo, double hi) { return v >= lo && v <= hi && std::floor(v) == v; }

// Throws a RangeError saying `why`; returns undefined, for the binding to return.
inline Napi::Value Fail(Napi::Env env, const std::string& why) {
  Napi::RangeError::New(env, why).ThrowAsJavaScriptException();
  return env.Undefined();
}

}  // namespace redpp
