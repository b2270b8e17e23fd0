// An N-API async worker whose JavaScript face is a promise of a number: a subclass's Execute() (on a
// libuv thread) sets result_, or error_ to reject it. The kernels' async bindings (hash_binding.cc,
// pages_binding.cc) are such workers.
#pragma once

#include <napi.h>

#include <string>
#include <vector>

namespace redpp {

class PromiseWorker : public Napi::AsyncWorker {
 public:
  Napi::Value Promise() const { return Napi::Value(Env(), promise_); }

 protected:
  PromiseWorker(Napi::Env env, const char* name) : Napi::AsyncWorker(env, name) {
    NAPI_THROW_IF_FAILED_VOID(env, napi_create_promise(env, &deferred_, &promise_));
  }

  // Keeps `object` from collection while another thread reads or writes its memory.
  void KeepAlive(Napi::Object object) { keep_alive_.push_back(Napi::Persistent(object)); }

  // Settles the promise through the C API and never throws. The work can finish after its thread's
  // environment has begun to tear down (process.exit, or a pool worker terminated mid-kernel); there
  // every N-API call fails, node-addon-api turns the failure into a C++ exception, and one that leaves
  // this callback is std::terminate. The promise then has no one left to tell, so a failure is dropped.
  void OnWorkComplete(Napi::Env env, napi_status status) override {
    if (status != napi_cancelled) Settle(env);
    Destroy();
  }

  double result_ = 0;
  std::string error_;  // set by Execute, off the main thread: why the work failed

 private:
  void Settle(napi_env env) noexcept {
    napi_handle_scope scope = nullptr;
    if (napi_open_handle_scope(env, &scope) != napi_ok) return;
    napi_value value = nullptr;
    if (error_.empty()) {
      if (napi_create_double(env, result_, &value) == napi_ok) napi_resolve_deferred(env, deferred_, value);
    } else {
      napi_value message = nullptr;
      if (napi_create_string_utf8(env, error_.data(), error_.size(), &message) == napi_ok &&
          napi_create_error(env, nullptr, message, &value) == napi_ok) {
        napi_reject_deferred(env, deferred_, value);
      }
    }
    napi_close_handle_scope(env, scope);
  }

  napi_deferred deferred_ = nullptr;
  napi_value promise_ = nullptr;
  std::vector<Napi::ObjectReference> keep_alive_;
};

}  // namespace redpp
