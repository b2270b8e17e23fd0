// Just enough of CUDA, on CPU threads, to run hash.cu without a GPU (cmake-js compile
// --CDREDPP_CUDA_EMULATE=ON; see hash_emulated.cc). It exists to test the kernels' logic — indexing,
// synchronisation, the bit-exactness arguments — against the CPU kernel on machines without a GPU. It
// is slow and says nothing about speed.
//
// Model: a launch runs its blocks one after another; each block runs on as many OS threads as it has
// CUDA threads, truly concurrently, so a missing __syncthreads() can show up as a wrong result.
// __shared__ variables become function statics, which is right because one block runs at a time, and
// launches are serialised. Float intrinsics (__fmul_rn, ...) are the plain IEEE operations; the
// addon is compiled with -ffp-contract=off, so none is fused.
#pragma once

#include <atomic>
#include <climits>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __shared__ static
#define __launch_bounds__(threads)

namespace redpp_emulate {

struct Index {
  unsigned x = 0;
};

// __syncthreads() of one block. On Linux the waiters sleep on a futex, so that the last arrival wakes
// them without their fighting over a mutex (a block is 256 threads); elsewhere, a condition variable.
class Barrier {
 public:
  explicit Barrier(int threads) : threads_(threads) {}
  void Wait() {
#ifdef __linux__
    const uint32_t generation = generation_.load(std::memory_order_acquire);
    if (waiting_.fetch_add(1, std::memory_order_acq_rel) + 1 == threads_) {
      waiting_.store(0, std::memory_order_relaxed);
      generation_.fetch_add(1, std::memory_order_acq_rel);
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&generation_), FUTEX_WAKE_PRIVATE, INT32_MAX, nullptr, nullptr, 0);
      return;
    }
    while (generation_.load(std::memory_order_acquire) == generation) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&generation_), FUTEX_WAIT_PRIVATE, generation, nullptr, nullptr,
              0);
    }
#else
    std::unique_lock<std::mutex> lock(mutex_);
    const uint32_t generation = generation_.load();
    if (++waiting_ == threads_) {
      waiting_ = 0;
      generation_++;
      cv_.notify_all();
      return;
    }
    cv_.wait(lock, [&] { return generation_.load() != generation; });
#endif
  }

 private:
  const int threads_;
  std::atomic<uint32_t> generation_{0};
#ifdef __linux__
  std::atomic<int> waiting_{0};
#else
  std::mutex mutex_;
  std::condition_variable cv_;
  int waiting_ = 0;
#endif
};

inline thread_local Barrier* current_barrier = nullptr;

// Runs body() as `blocks` blocks of `threads` threads.
template <class Body>
void Launch(unsigned blocks, int threads, Body&& body);

}  // namespace redpp_emulate

inline thread_local redpp_emulate::Index threadIdx;
inline thread_local redpp_emulate::Index blockIdx;
inline thread_local redpp_emulate::Index blockDim;
inline thread_local redpp_emulate::Index gridDim;

inline void __syncthreads() { redpp_emulate::current_barrier->Wait(); }

template <class Body>
void redpp_emulate::Launch(unsigned blocks, int threads, Body&& body) {
  static std::mutex one_launch_at_a_time;  // __shared__ statics belong to one block at a time
  std::lock_guard<std::mutex> lock(one_launch_at_a_time);
  Barrier barrier(threads);
  auto run = [&](int t) {
    current_barrier = &barrier;
    threadIdx.x = static_cast<unsigned>(t);
    blockDim.x = static_cast<unsigned>(threads);
    gridDim.x = blocks;
    for (unsigned b = 0; b < blocks; b++) {
      blockIdx.x = b;
      body();
      barrier.Wait();  // the next block may reuse the shared variables
    }
  };
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; t++) pool.emplace_back(run, t);
  run(0);
  for (auto& t : pool) t.join();
}

// ---- Device functions --------------------------------------------------------------------------------

inline unsigned __float_as_uint(float f) {
  unsigned u;
  std::memcpy(&u, &f, sizeof u);
  return u;
}
inline int __ffs(int x) { return __builtin_ffs(x); }
inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz(static_cast<unsigned>(x)); }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline float __double2float_rn(double d) { return static_cast<float>(d); }

inline unsigned atomicAdd(unsigned* p, unsigned v) { return __atomic_fetch_add(p, v, __ATOMIC_RELAXED); }

namespace redpp_emulate {
template <class T, class F>
T AtomicUpdate(T* p, F f) {
  T old;
  __atomic_load(p, &old, __ATOMIC_RELAXED);
  T desired;
  do {
    desired = f(old);
  } while (!__atomic_compare_exchange(p, &old, &desired, false, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
  return old;
}
}  // namespace redpp_emulate

inline double atomicAdd(double* p, double v) {
  return redpp_emulate::AtomicUpdate(p, [v](double old) { return old + v; });
}
inline int atomicMin(int* p, int v) {
  return redpp_emulate::AtomicUpdate(p, [v](int old) { return v < old ? v : old; });
}
inline int atomicMax(int* p, int v) {
  return redpp_emulate::AtomicUpdate(p, [v](int old) { return v > old ? v : old; });
}
inline unsigned long long atomicMin(unsigned long long* p, unsigned long long v) {
  return redpp_emulate::AtomicUpdate(p, [v](unsigned long long old) { return v < old ? v : old; });
}

// ---- Runtime API ----------------------------------------------------------------------------------------

enum cudaError_t { cudaSuccess = 0, cudaErrorMemoryAllocation = 2 };
enum cudaMemcpyKind { cudaMemcpyHostToDevice = 1, cudaMemcpyDeviceToHost = 2 };
enum cudaDeviceAttr {
  cudaDevAttrMultiProcessorCount = 16,
  cudaDevAttrComputeCapabilityMajor = 75,
  cudaDevAttrComputeCapabilityMinor = 76
};
using cudaStream_t = struct EmulatedStream*;
constexpr unsigned cudaStreamNonBlocking = 1;
struct cudaFuncAttributes {
  int maxThreadsPerBlock;
};

inline const char* cudaGetErrorString(cudaError_t e) { return e == cudaSuccess ? "no error" : "out of memory"; }
inline const char* cudaGetErrorName(cudaError_t e) {
  return e == cudaSuccess ? "cudaSuccess" : "cudaErrorMemoryAllocation";
}
inline cudaError_t cudaGetLastError() { return cudaSuccess; }
inline cudaError_t cudaRuntimeGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
inline cudaError_t cudaDriverGetVersion(int* v) {
  *v = 13000;
  return cudaSuccess;
}
inline cudaError_t cudaGetDeviceCount(int* n) {
  *n = 1;
  return cudaSuccess;
}
inline cudaError_t cudaGetDevice(int* d) {
  *d = 0;
  return cudaSuccess;
}
inline cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int) {
  *value = attr == cudaDevAttrMultiProcessorCount ? 2 : attr == cudaDevAttrComputeCapabilityMajor ? 9 : 0;
  return cudaSuccess;
}
template <class F>
cudaError_t cudaFuncGetAttributes(cudaFuncAttributes* a, F*) {
  a->maxThreadsPerBlock = 1024;
  return cudaSuccess;
}
inline cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  *free_bytes = *total_bytes = size_t{1} << 30;
  return cudaSuccess;
}
inline cudaError_t cudaMalloc(void** p, size_t bytes) {
  *p = std::aligned_alloc(256, (bytes + 255) / 256 * 256);
  return *p != nullptr ? cudaSuccess : cudaErrorMemoryAllocation;
}
inline cudaError_t cudaFree(void* p) {
  std::free(p);
  return cudaSuccess;
}
inline cudaError_t cudaMemcpyAsync(void* to, const void* from, size_t bytes, cudaMemcpyKind, cudaStream_t) {
  std::memcpy(to, from, bytes);
  return cudaSuccess;
}
inline cudaError_t cudaStreamCreateWithFlags(cudaStream_t* s, unsigned) {
  static int dummy;
  *s = reinterpret_cast<cudaStream_t>(&dummy);
  return cudaSuccess;
}
inline cudaError_t cudaStreamSynchronize(cudaStream_t) { return cudaSuccess; }
inline cudaError_t cudaStreamDestroy(cudaStream_t) { return cudaSuccess; }
