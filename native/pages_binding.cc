// The N-API face of pages.h, synchronous: the caller gives releasePages a slice at a time (madvise of
// 1 GB takes some 50 ms on a 2-core VM), between turns of the event loop; adviseHugePages only marks
// the range (microseconds).
#include "pages_binding.h"

#include "binding_args.h"
#include "pages.h"

namespace redpp {

Napi::Value ReleasePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsTypedArrayOf(info[0], napi_uint8_array)) return Fail(env, "releasePages: bad arguments");
  auto bytes = info[0].As<Napi::Uint8Array>();
  const size_t length = bytes.ByteLength();
  if (length == 0) return Napi::Number::New(env, 0);
  return Napi::Number::New(env, static_cast<double>(ReleasePages(bytes.Data(), length)));
}

Napi::Value AdviseHugePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsTypedArrayOf(info[0], napi_uint8_array)) return Fail(env, "adviseHugePages: bad arguments");
  auto bytes = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(env, static_cast<double>(AdviseHugePages(bytes.Data(), bytes.ByteLength())));
}

}  // namespace redpp
