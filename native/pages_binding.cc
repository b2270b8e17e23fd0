// The N-API face of pages.h: releasePages runs on a libuv thread, over many arrays a call (each call
// costs its caller a libuv thread's wake-up), adviseHugePages synchronously (it only marks the range:
// microseconds).
#include "pages_binding.h"

#include <memory>
#include <vector>

#include "binding_args.h"
#include "pages.h"

namespace redpp {
namespace {

// Settles through the C API and never throws, as HashWorker (hash_binding.cc) does: the work can end
// after its thread's environment has begun to tear down.
class ReleaseWorker : public Napi::AsyncWorker {
 public:
  explicit ReleaseWorker(Napi::Env env) : Napi::AsyncWorker(env, "redpp:releasePages") {
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_promise(env, &deferred_, &promise_));
  }

  void Add(Napi::Uint8Array bytes) {
    ranges_.push_back({bytes.Data(), bytes.ByteLength()});
    // Kept from collection while another thread drops its pages.
    keep_alive_.push_back(Napi::Persistent(bytes.As<Napi::Object>()));
  }

  Napi::Value Promise() const { return Napi::Value(Env(), promise_); }

 protected:
  void Execute() override {
    for (const Range& r : ranges_) released_ += r.length == 0 ? 0 : ReleasePages(r.data, r.length);
  }

  void OnWorkComplete(Napi::Env env, napi_status status) override {
    napi_handle_scope scope = nullptr;
    if (status != napi_cancelled && napi_open_handle_scope(env, &scope) == napi_ok) {
      napi_value value = nullptr;
      if (napi_create_double(env, static_cast<double>(released_), &value) == napi_ok) napi_resolve_deferred(env, deferred_, value);
      napi_close_handle_scope(env, scope);
    }
    Destroy();
  }

 private:
  struct Range {
    uint8_t* data;
    size_t length;
  };
  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::vector<Range> ranges_;
  std::vector<Napi::ObjectReference> keep_alive_;
  size_t released_ = 0;
};

}  // namespace

Napi::Value ReleasePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsArray()) return Fail(env, "releasePages: bad arguments");
  // Each element read once and checked, before the worker exists: a getter cannot hand it another value
  // after the check, and a throw leaves nothing half made.
  auto views = info[0].As<Napi::Array>();
  std::vector<Napi::Uint8Array> arrays;
  for (uint32_t i = 0; i < views.Length(); i++) {
    Napi::Value v = views.Get(i);
    if (!IsTypedArrayOf(v, napi_uint8_array)) return Fail(env, "releasePages: bad arguments");
    arrays.push_back(v.As<Napi::Uint8Array>());
  }
  // Owned here until queued (the queue then destroys it when done): a throw in between frees it.
  auto worker = std::make_unique<ReleaseWorker>(env);
  for (const auto& a : arrays) worker->Add(a);
  Napi::Value promise = worker->Promise();
  worker->Queue();
  worker.release();
  return promise;
}

Napi::Value AdviseHugePagesJs(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !IsTypedArrayOf(info[0], napi_uint8_array)) return Fail(env, "adviseHugePages: bad arguments");
  auto bytes = info[0].As<Napi::Uint8Array>();
  return Napi::Number::New(env, static_cast<double>(AdviseHugePages(bytes.Data(), bytes.ByteLength())));
}

}  // namespace redpp
