#include "simd.h"

namespace redpp {

bool SimdSupported(SimdLevel level) {
  switch (level) {
    case kSimdAuto:
    case kSimdScalar:
      return true;
#if defined(__x86_64__) || defined(_M_X64)
    case kSimdAvx2:
      return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case kSimdAvx512:
      return __builtin_cpu_supports("avx512f");
#endif
    default:
      return false;
  }
}

SimdLevel BestSimdLevel() {
  if (SimdSupported(kSimdAvx512)) return kSimdAvx512;
  if (SimdSupported(kSimdAvx2)) return kSimdAvx2;
  return kSimdScalar;
}

const SimdKernels& GetSimdKernels(SimdLevel level) {
  if (level == kSimdAuto) level = BestSimdLevel();
  if (level == kSimdAvx512 && Avx512Kernels() != nullptr) return *Avx512Kernels();
  if (level == kSimdAvx2 && Avx2Kernels() != nullptr) return *Avx2Kernels();
  return ScalarKernels();
}

}  // namespace redpp
