// Registers the addon's exports and nothing else. N-API modules hold no per-process state here, so the
// addon loads in worker threads (piscina) as well as on the main thread.
#include <napi.h>

#include "cuda/hash_cuda.h"
#include "hash.h"
#include "half_binding.h"
#include "hash_binding.h"
#include "pages_binding.h"
#include "palette_binding.h"
#include "quantize_binding.h"
#include "scale_binding.h"
#include "channels_binding.h"
#include "weight_stats_binding.h"
#include "simd.h"

namespace redpp {
namespace {

Napi::Value SimdSupportedJs(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), SimdSupported(static_cast<SimdLevel>(info[0].ToNumber().Int32Value())));
}

Napi::Value BestSimdLevelJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), BestSimdLevel());
}

Napi::Value CudaStatusJs(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), cuda::Status()); }

Napi::Object HashConstants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
  c.Set("binsPerBandwidth", kBinsPerBandwidth);
  c.Set("kernelCutoff", kKernelCutoff);
  c.Set("maxBins", kMaxBins);
  c.Set("kernelScale", kKernelScale);
  c.Set("lanes", kLanes);
  return c;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("hashWeights", Napi::Function::New(env, HashWeightsAsync, "hashWeights"));
  exports.Set("hashWeightsBlocking", Napi::Function::New(env, HashWeightsBlocking, "hashWeightsBlocking"));
  exports.Set("codeNeurons", Napi::Function::New(env, CodeNeuronsJs, "codeNeurons"));
  exports.Set("packIndices", Napi::Function::New(env, PackIndicesJs, "packIndices"));
  exports.Set("sumOfSquares", Napi::Function::New(env, SumOfSquaresJs, "sumOfSquares"));
  exports.Set("zerosPerGroup", Napi::Function::New(env, ZerosPerGroupJs, "zerosPerGroup"));
  exports.Set("sortRows", Napi::Function::New(env, SortRowsJs, "sortRows"));
  exports.Set("nearestCenters", Napi::Function::New(env, NearestCentersJs, "nearestCenters"));
  exports.Set("uniformRows", Napi::Function::New(env, UniformRowsJs, "uniformRows"));
  exports.Set("halfToFloat", Napi::Function::New(env, HalfToFloatJs, "halfToFloat"));
  exports.Set("floatToHalf", Napi::Function::New(env, FloatToHalfJs, "floatToHalf"));
  exports.Set("scaleRows", Napi::Function::New(env, ScaleRowsJs, "scaleRows"));
  exports.Set("releasePages", Napi::Function::New(env, ReleasePagesJs, "releasePages"));
  exports.Set("adviseHugePages", Napi::Function::New(env, AdviseHugePagesJs, "adviseHugePages"));
  exports.Set("moveBytes", Napi::Function::New(env, MoveBytesJs, "moveBytes"));
  exports.Set("channelPrints", Napi::Function::New(env, ChannelPrintsJs, "channelPrints"));
  exports.Set("kernelSharing", Napi::Function::New(env, KernelSharingJs, "kernelSharing"));
  exports.Set("simdSupported", Napi::Function::New(env, SimdSupportedJs, "simdSupported"));
  exports.Set("bestSimdLevel", Napi::Function::New(env, BestSimdLevelJs, "bestSimdLevel"));
  exports.Set("cudaStatus", Napi::Function::New(env, CudaStatusJs, "cudaStatus"));
  exports.Set("hashConstants", HashConstants(env));
  return exports;
}

}  // namespace
}  // namespace redpp

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) { return redpp::Init(env, exports); }

NODE_API_MODULE(redpp_addon, InitAddon)
