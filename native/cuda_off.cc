// Linked into builds without CUDA (node-gyp, or cmake-js without -DREDPP_CUDA=ON).
#include "cuda/hash_cuda.h"

namespace redpp {
namespace cuda {

std::string Status() { return "this build of redpp has no CUDA kernels (build them with `npm run build:cuda`)"; }

int64_t HashWeights(const float*, size_t, size_t, const HashParams&, const HashOutputs&, std::string* error) {
  *error = Status();
  return -1;
}

}  // namespace cuda
}  // namespace redpp
