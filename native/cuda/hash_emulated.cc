// hash.cu compiled as C++ on emulate.h: the CUDA kernels on CPU threads, for testing their logic on
// machines without a GPU (test/cuda.ts). Built only with -DREDPP_CUDA_EMULATE=ON (CMakeLists.txt).
#ifndef REDPP_CUDA_EMULATE
#define REDPP_CUDA_EMULATE
#endif
#include "hash.cu"
