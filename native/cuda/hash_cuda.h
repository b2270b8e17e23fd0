// The hashing kernel on a CUDA device. Built only with -DREDPP_CUDA=ON (CMakeLists.txt); the default
// build links native/cuda_off.cc instead, which reports why CUDA is not there.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "../hash.h"

namespace redpp {
namespace cuda {

// Empty when a CUDA device can run the kernel; otherwise a sentence saying why not.
std::string Status();

// Same contract as redpp::HashWeights. On a CUDA failure returns -1 and sets *error.
int64_t HashWeights(const float* weights, size_t length, size_t group_size, const HashParams& params,
                    const HashOutputs& out, std::string* error);

}  // namespace cuda
}  // namespace redpp
