// The N-API face of the hashing kernel: checks argument types (lib/ has validated the values), keeps
// the typed arrays alive and runs the kernel on a libuv worker thread, or, for a pool worker, on the
// calling thread (HashWeightsBlocking).
#include "hash_binding.h"

#include <cmath>
#include <string>

#include "binding_args.h"
#include "cuda/hash_cuda.h"
#include "hash.h"
#include "promise_worker.h"
#include "simd.h"

namespace redpp {
namespace {

enum Device : int { kDeviceCpu = 0, kDeviceCuda = 1 };

// One call's arguments, checked (CheckArguments), and the kernel they run.
struct HashCall {
  explicit HashCall(const Napi::CallbackInfo& info) {
    const auto weights = info[0].As<Napi::Float32Array>();
    auto values = info[7].As<Napi::Float32Array>();
    auto distinct = info[8].As<Napi::Uint32Array>();
    auto rms = info[9].As<Napi::Float64Array>();
    weights_ = weights.Data();
    length_ = weights.ElementLength();
    group_size_ = static_cast<size_t>(info[1].As<Napi::Number>().Int64Value());
    params_.beta = info[2].As<Napi::Number>().DoubleValue();
    params_.center = static_cast<Center>(info[3].As<Napi::Number>().Int32Value());
    params_.threads = info[4].As<Napi::Number>().Int32Value();
    simd_ = info[5].As<Napi::Number>().Int32Value();
    device_ = info[6].As<Napi::Number>().Int32Value();
    out_ = HashOutputs{values.Data(), distinct.Data(), rms.Data()};
  }

  // The index of the first NaN/Inf weight, or -1; `error` says why the CUDA kernel failed.
  int64_t Run(std::string* error) const {
    if (device_ == kDeviceCuda) return cuda::HashWeights(weights_, length_, group_size_, params_, out_, error);
    return HashWeights(weights_, length_, group_size_, params_, simd_, out_);
  }

 private:
  const float* weights_ = nullptr;
  size_t length_ = 0;
  size_t group_size_ = 0;
  HashParams params_;
  int simd_ = kSimdAuto;
  int device_ = kDeviceCpu;
  HashOutputs out_{};
};

class HashWorker : public PromiseWorker {
 public:
  HashWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "redpp:hashWeights"), call_(info) {
    // The worker reads and writes these buffers off the main thread.
    for (size_t i : {0, 7, 8, 9}) KeepAlive(info[i].As<Napi::Object>());
  }

 protected:
  void Execute() override { result_ = static_cast<double>(call_.Run(&error_)); }

 private:
  HashCall call_;
};

// Why the argument values cannot be hashed, or nullptr: sizes that match, and every number in range.
const char* BadValues(const Napi::CallbackInfo& info) {
  const size_t length = info[0].As<Napi::Float32Array>().ElementLength();
  const double group = info[1].As<Napi::Number>().DoubleValue();
  const double beta = info[2].As<Napi::Number>().DoubleValue();
  const double center = info[3].As<Napi::Number>().DoubleValue();
  const double threads = info[4].As<Napi::Number>().DoubleValue();
  const double simd = info[5].As<Napi::Number>().DoubleValue();
  const double device = info[6].As<Napi::Number>().DoubleValue();
  if (!IsWholeIn(group, 1, length == 0 ? 9007199254740992.0 : static_cast<double>(length)) || length % static_cast<size_t>(group) != 0) {
    return "groupSize must divide the number of weights";
  }
  if (length > 0 && group > static_cast<double>(kMaxGroupSize)) return "groupSize must be at most 4294967295 on the native kernel";
  const size_t groups = length / static_cast<size_t>(group);
  if (info[7].As<Napi::Float32Array>().ElementLength() != length) return "the output must have one value per weight";
  if (info[8].As<Napi::Uint32Array>().ElementLength() != groups || info[9].As<Napi::Float64Array>().ElementLength() != groups) {
    return "the per-group outputs must have one entry per group";
  }
  if (!(std::isfinite(beta) && beta >= 0)) return "beta must be a finite number >= 0";
  if (!IsWholeIn(center, 0, 1)) return "center must be 0 (mean) or 1 (mode)";
  if (!IsWholeIn(threads, 1, 1024)) return "threads must be an integer in [1, 1024]";
  if (!IsWholeIn(simd, kSimdAuto, kSimdAvx512) || !SimdSupported(static_cast<SimdLevel>(simd))) {
    return "an instruction set this CPU does not have";
  }
  if (!IsWholeIn(device, kDeviceCpu, kDeviceCuda)) return "unknown device";
  return nullptr;
}

// Whether the arguments can be hashed; throws the JavaScript error and returns false where not.
bool CheckArguments(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const bool ok = info.Length() == 10 && IsTypedArrayOf(info[0], napi_float32_array) && info[1].IsNumber() &&
                  info[2].IsNumber() && info[3].IsNumber() && info[4].IsNumber() && info[5].IsNumber() &&
                  info[6].IsNumber() && IsTypedArrayOf(info[7], napi_float32_array) &&
                  IsTypedArrayOf(info[8], napi_uint32_array) && IsTypedArrayOf(info[9], napi_float64_array);
  if (!ok) {
    Napi::TypeError::New(env, "hashWeights: bad arguments (call it through lib/hash.ts)").ThrowAsJavaScriptException();
    return false;
  }
  // The values too: lib/ checks them for the user's sake, this for the kernel's (a bad size or a NaN
  // count here would be out-of-bounds writes on another thread).
  if (const char* why = BadValues(info)) {
    Napi::RangeError::New(env, std::string("hashWeights: ") + why).ThrowAsJavaScriptException();
    return false;
  }
  return true;
}

}  // namespace

Napi::Value HashWeightsAsync(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArguments(info)) return env.Undefined();
  auto* worker = new HashWorker(env, info);
  Napi::Value promise = worker->Promise();
  worker->Queue();
  return promise;
}

Napi::Value HashWeightsBlocking(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!CheckArguments(info)) return env.Undefined();
  std::string error;
  const int64_t result = HashCall(info).Run(&error);
  if (!error.empty()) {
    Napi::Error::New(env, error).ThrowAsJavaScriptException();
    return env.Undefined();
  }
  return Napi::Number::New(env, static_cast<double>(result));
}

}  // namespace redpp
