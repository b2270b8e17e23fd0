// Binned-KDE scalar hashing (RED++ step 1). lib/kernels/hash.ts is the reference; this kernel
// must match it bit for bit, so every float step below mirrors a Math.fround there.
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// Same numbers as lib/kernels/hash-constants.ts.
constexpr int kBinsPerBandwidth = 2;
constexpr int kKernelCutoff = 4;
constexpr int kMaxBins = 1 << 16;
constexpr double kKernelScale = 1 << 20;
constexpr int kLanes = 8;
constexpr int kMaxRadius = kKernelCutoff * kBinsPerBandwidth;

enum class Center : int { kMean = 0, kMode = 1 };

struct HashParams {
  double beta = 0.05;
  Center center = Center::kMean;
  int threads = 1;
};

struct HashOutputs {
  float* values;       // one per weight
  uint32_t* distinct;  // one per group
  double* rms;         // one per group
};

// Groups are counted bin by bin in 32 bits, so a group holds at most this many weights.
constexpr size_t kMaxGroupSize = 0xffffffffu;

// Hashes each group of `group_size` (<= kMaxGroupSize) consecutive weights. `simd_level` is a SimdLevel
// (simd.h). Returns the index of the first NaN/Inf weight (the output is then incomplete), or -1.
int64_t HashWeights(const float* weights, size_t length, size_t group_size, const HashParams& params,
                    int simd_level, const HashOutputs& out);

}  // namespace redpp
