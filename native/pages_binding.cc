// The N-API face of pages.h: releasePages runs on a libuv thread, over many arrays a call (each call
// costs its caller a libuv thread's wake-up), adviseHugePages synchronously (it only marks the range:
// microseconds).
#include "pages_binding.h"

#include <memory>
#include <vector>

#include "binding_args.h"
#include "pages.h"
#include "promise_worker.h"

namespace redpp {
namespace {

class ReleaseWorker : public PromiseWorker {
 public:
  explicit ReleaseWorker(Napi::Env env) : PromiseWorker(env, "redpp:releasePages") {}

  void Add(Napi::Uint8Array bytes) {
    ranges_.push_back({bytes.Data(), bytes.ByteLength()});
    KeepAlive(bytes);  // while another thread drops its pages
  }

 protected:
  void Execute() override {
    size_t released = 0;
    for (const Range& r : ranges_) released += r.length == 0 ? 0 : ReleasePages(r.data, r.length);
    result_ = static_cast<double>(released);
  }

 private:
  struct Range {
    uint8_t* data;
    size_t length;
  };
  std::vector<Range> ranges_;
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
