// The binned-KDE hashing kernel on a CUDA device (RED++ step 1). lib/kernels/hash.ts is the
// specification and native/hash.cc the CPU kernel; this file computes the same thing, bit for bit.
//
// How it stays bit-identical with the CPU kernel, step by step:
//  - Group statistics (StatsKernel, one block per group). min and max are exact in any order (the sign
//    of a zero min/max can differ, and never changes a result: see grid.cc). The two double sums are
//    order-dependent, so they are computed in the CPU's order: eight lanes, value i of the group in
//    lane i % 8, each lane summed in index order by one thread. Only 8 threads of the block do that
//    part; it is a small share of the work.
//  - The grid (bandwidth h, bins, kernel weights, bin map) is computed on the host from those sums by
//    the CPU kernel's own code (native/grid.cc: MakeGrid), so pow/exp/sqrt/floor come from the same C
//    library; the device never evaluates a transcendental function. The identity path (h not > 0 or
//    min == max: weights kept, distinct values counted) also runs on the host.
//  - Bin of a value: the same four IEEE float operations (__fmul_rn/__fsub_rn/__fadd_rn, which nvcc
//    never contracts into FMAs; the build adds -fmad=false besides).
//  - Histogram counts are integers and the kernel weights are integers, so the density is an exact
//    integer in a double: any summation order gives the same density, hence the same split points.
//  - Split points: found in parallel (a split where the density rises and the last change before was
//    a fall, in the middle; see HashKernel), the same set as the reference's sequential scan.
//  - Interval sums: the reference adds an interval's values in input order. Here they are added with
//    atomics in any order, which is exact — hence equal to the reference's sum — whenever no partial
//    sum can round: all values of the interval are multiples of 2^q (q: the lowest set bit of any of
//    them) and count * 2^(E+1) <= 2^(q+53) (E: the highest exponent). Each interval records q and E;
//    one that fails the test (values spanning about 20 binades or more: an interval around zero that
//    holds a tiny weight) is summed again by one thread in input order, exactly as the reference does.
//    Counts are integer atomics; the representative is the IEEE quotient, rounded to float.
//  - Mapping and RMS error: squared errors in the CPU's eight lanes, each summed in index order; the
//    square root is taken on the host.
// So every double sum runs in the CPU's order or is exact, and CPU and GPU agree bit for bit on every
// input (the tests compare them). Were a future change to sum in another order, the rounding of h and
// of each representative to float would still hide almost every last-bit difference of the sums.
//
// Built with REDPP_CUDA_EMULATE, this file is compiled as plain C++ against emulate.h, which runs the
// kernels on CPU threads: a way to check the kernels' logic on a machine without a GPU.
#include "hash_cuda.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <vector>

#include "../grid.h"

#ifdef REDPP_CUDA_EMULATE
#include "emulate.h"
#define REDPP_LAUNCH(kernel, blocks, threads, stream, ...) \
  ::redpp_emulate::Launch(blocks, threads, [&] { kernel(__VA_ARGS__); })
#else
#include <cuda_runtime.h>
#define REDPP_LAUNCH(kernel, blocks, threads, stream, ...) kernel<<<blocks, threads, 0, stream>>>(__VA_ARGS__)
#endif

namespace redpp {
namespace cuda {
namespace {

constexpr int kThreads = 256;    // threads per block, for both kernels
constexpr int kChunk = 1024;     // values staged in shared memory per step of an ordered lane sum
constexpr int kFailMark = INT_MIN;  // in iv_lowest: the interval is summed in input order
constexpr int kMaxResidentBlocks = 8;  // per multiprocessor, at kThreads threads per block

// Statistics of one group, in the CPU kernel's form (simd.h: GroupStats).
struct DevStats {
  double sum[kLanes];
  double sum_sq[kLanes];
  float min;
  float max;
  long long bad;  // offset in the group of the first non-finite value, or -1
};

// Everything the device needs to hash one group, computed on the host (MakeGrid).
struct DevGrid : Grid {
  int group;  // which group of the call
};

template <class T>
__host__ __device__ __forceinline__ T Min(T a, T b) {
  return b < a ? b : a;
}
template <class T>
__host__ __device__ __forceinline__ T Max(T a, T b) {
  return a < b ? b : a;
}

__device__ __forceinline__ bool IsFinite(float v) { return (__float_as_uint(v) & 0x7f800000u) != 0x7f800000u; }

// simd_scalar.h: BinOf, with every float operation spelled out so that none is contracted.
__device__ __forceinline__ int BinOf(float x, const DevGrid& g) {
  const float t = __fmul_rn(__fsub_rn(__fmul_rn(x, g.scale), g.offset), g.inverse);
  const float u = __fadd_rn(t, 0.5f);
  const int last = g.bins - 1;
  return u < static_cast<float>(last) ? static_cast<int>(u) : last;
}

// For a finite nonzero float v = m * 2^e with m a 24-bit (or smaller, subnormal) integer: the exponent
// of its lowest set bit, and of its highest (so that |v| < 2^(top + 1)).
__device__ __forceinline__ void BitExponents(float v, int* lowest, int* top) {
  const unsigned bits = __float_as_uint(v) & 0x7fffffffu;
  const int biased = static_cast<int>(bits >> 23);
  unsigned m = bits & 0x7fffffu;
  int e = -149;
  if (biased != 0) {
    m |= 0x800000u;
    e = biased - 150;
  }
  *lowest = e + __ffs(static_cast<int>(m)) - 1;
  *top = e + 31 - __clz(static_cast<int>(m));
}

__device__ __forceinline__ int CeilLog2(unsigned c) { return c <= 1 ? 0 : 32 - __clz(static_cast<int>(c - 1)); }

// -1, 0 or +1: how the density changes from bin b - 1 to bin b.
__device__ __forceinline__ int Slope(const double* density, int b) {
  const double d1 = density[b];
  const double d0 = density[b - 1];
  return d1 < d0 ? -1 : (d1 > d0 ? 1 : 0);
}

// One block per group: min, max, the first non-finite value, and the eight lane sums of the values and
// their squares in the CPU's order.
__global__ void __launch_bounds__(kThreads) StatsKernel(const float* __restrict__ weights, long long n,
                                                        DevStats* __restrict__ stats) {
  __shared__ float chunk[kChunk];
  __shared__ float red_min[kThreads];
  __shared__ float red_max[kThreads];
  __shared__ unsigned long long bad;
  const int tid = static_cast<int>(threadIdx.x);
  const float* x = weights + static_cast<long long>(blockIdx.x) * n;
  if (tid == 0) bad = static_cast<unsigned long long>(n);
  float lo = INFINITY;
  float hi = -INFINITY;
  double sum = 0.0;
  double sum_sq = 0.0;
  __syncthreads();
  for (long long base = 0; base < n; base += kChunk) {
    const int m = static_cast<int>(Min<long long>(kChunk, n - base));
    for (int k = tid; k < m; k += kThreads) {
      const float v = x[base + k];
      chunk[k] = v;
      if (!IsFinite(v)) {
        atomicMin(&bad, static_cast<unsigned long long>(base + k));
      } else {
        lo = Min(lo, v);
        hi = Max(hi, v);
      }
    }
    __syncthreads();
    // kChunk is a multiple of kLanes, so chunk[k] is in lane k % kLanes.
    if (tid < kLanes) {
      for (int k = tid; k < m; k += kLanes) {
        const double d = chunk[k];
        sum = __dadd_rn(sum, d);
        sum_sq = __dadd_rn(sum_sq, __dmul_rn(d, d));
      }
    }
    __syncthreads();
  }
  red_min[tid] = lo;
  red_max[tid] = hi;
  __syncthreads();
  for (int step = kThreads / 2; step > 0; step >>= 1) {
    if (tid < step) {
      red_min[tid] = Min(red_min[tid], red_min[tid + step]);
      red_max[tid] = Max(red_max[tid], red_max[tid + step]);
    }
    __syncthreads();
  }
  DevStats& out = stats[blockIdx.x];
  if (tid < kLanes) {
    out.sum[tid] = sum;
    out.sum_sq[tid] = sum_sq;
  }
  if (tid == 0) {
    out.min = red_min[0];
    out.max = red_max[0];
    out.bad = bad < static_cast<unsigned long long>(n) ? static_cast<long long>(bad) : -1;
  }
}

// Per-slot scratch of HashKernel: arrays of `stride` entries (stride >= bins + 2 * radius + 2).
struct SlotArrays {
  double* density;
  double* iv_sum;
  unsigned* counts;  // padded by radius on both sides
  int* bin_interval;
  float* bin_value;
  int* splits;  // intervals + 1 entries: 0, the split bins, bins
  unsigned* iv_count;
  int* iv_lowest;  // lowest bit exponent of the interval's nonzero values; kFailMark: summed in order
  int* iv_top;     // highest bit exponent
  float* rep;
};
constexpr size_t kSlotBytesPerEntry = 8 + 8 + 4 + 4 + 4 + 4 + 4 + 4 + 4 + 4;

__device__ __forceinline__ SlotArrays Slot(unsigned char* base, long long stride) {
  SlotArrays s;
  s.density = reinterpret_cast<double*>(base);
  s.iv_sum = s.density + stride;
  s.counts = reinterpret_cast<unsigned*>(s.iv_sum + stride);
  s.bin_interval = reinterpret_cast<int*>(s.counts + stride);
  s.bin_value = reinterpret_cast<float*>(s.bin_interval + stride);
  s.splits = reinterpret_cast<int*>(s.bin_value + stride);
  s.iv_count = reinterpret_cast<unsigned*>(s.splits + stride);
  s.iv_lowest = reinterpret_cast<int*>(s.iv_count + stride);
  s.iv_top = s.iv_lowest + stride;
  s.rep = reinterpret_cast<float*>(s.iv_top + stride);
  return s;
}

// Hashes the groups grids[j] for j = blockIdx.x, blockIdx.x + gridDim.x, ...; each block works in its
// own slot of `scratch` (slot_bytes bytes). Writes the hashed values, the distinct count of each active
// group and its eight squared-error lane sums.
__global__ void __launch_bounds__(kThreads)
    HashKernel(const float* __restrict__ weights, long long n, const DevGrid* __restrict__ grids, int active,
               int center, unsigned char* __restrict__ scratch, unsigned long long slot_bytes, long long stride,
               float* __restrict__ values, unsigned* __restrict__ distinct, double* __restrict__ err_lanes) {
  __shared__ DevGrid g;
  __shared__ double staged[kChunk];  // squared errors; or values and intervals of the ordered sums
  __shared__ int per_thread[kThreads];
  __shared__ int any_fail;
  __shared__ int intervals_shared;

  const int tid = static_cast<int>(threadIdx.x);
  const SlotArrays s = Slot(scratch + static_cast<unsigned long long>(blockIdx.x) * slot_bytes, stride);

  for (int j = static_cast<int>(blockIdx.x); j < active; j += static_cast<int>(gridDim.x)) {
    if (tid == 0) {
      g = grids[j];
      any_fail = 0;
    }
    __syncthreads();
    const int bins = g.bins;
    const int r = g.radius;
    const float* x = weights + static_cast<long long>(g.group) * n;
    float* y = values + static_cast<long long>(g.group) * n;

    // Histogram (exact: integer atomics) and density (exact integers in doubles: any order).
    for (int b = tid; b < bins + 2 * r; b += kThreads) s.counts[b] = 0;
    __syncthreads();
    for (long long i = tid; i < n; i += kThreads) atomicAdd(&s.counts[r + BinOf(x[i], g)], 1u);
    __syncthreads();
    for (int b = tid; b < bins; b += kThreads) {
      const unsigned* cb = s.counts + r + b;
      double d = __dmul_rn(g.kernel[0], static_cast<double>(cb[0]));
      for (int k = 1; k <= r; k++) {
        d = __dadd_rn(d, __dmul_rn(g.kernel[k], __dadd_rn(static_cast<double>(cb[-k]), static_cast<double>(cb[k]))));
      }
      s.density[b] = d;
    }
    __syncthreads();

    // Split points. The reference walks the bins with a state (descending, flat_start); equivalently,
    // the density is split at (p + b) >> 1 for every bin b where it rises and the last change before b
    // was a fall, at bin p. Each thread takes a contiguous run of bins; it needs the last change before
    // its run (a prefix maximum over threads) and where its splits go (a prefix sum of their counts).
    // With radius 0 every bin is an interval.
    if (r == 0) {
      for (int b = tid; b <= bins; b += kThreads) s.splits[b] = b;
      if (tid == 0) intervals_shared = bins;
    } else {
      const int per = (bins + kThreads - 1) / kThreads;
      const int b0 = Max(1, tid * per);
      const int b1 = Min(bins, (tid + 1) * per);
      int last = 0;
      for (int b = b0; b < b1; b++) {
        if (Slope(s.density, b) != 0) last = b;
      }
      per_thread[tid] = last;
      __syncthreads();
      if (tid == 0) {
        int carry = 0;
        for (int t = 0; t < kThreads; t++) {
          const int here = per_thread[t];
          per_thread[t] = carry;
          carry = Max(carry, here);
        }
      }
      __syncthreads();
      const int p0 = per_thread[tid];
      const int s0 = p0 > 0 ? Slope(s.density, p0) : 0;
      int found = 0;
      int s_last = s0;
      for (int b = b0; b < b1; b++) {
        const int slope = Slope(s.density, b);
        if (slope > 0 && s_last < 0) found++;
        if (slope != 0) s_last = slope;
      }
      __syncthreads();  // every thread has read its carry
      per_thread[tid] = found;
      __syncthreads();
      if (tid == 0) {
        int total = 0;
        for (int t = 0; t < kThreads; t++) {
          const int here = per_thread[t];
          per_thread[t] = total;
          total += here;
        }
        intervals_shared = total + 1;
        s.splits[0] = 0;
        s.splits[total + 1] = bins;
      }
      __syncthreads();
      int at = 1 + per_thread[tid];
      int p = p0;
      s_last = s0;
      for (int b = b0; b < b1; b++) {
        const int slope = Slope(s.density, b);
        if (slope > 0 && s_last < 0) s.splits[at++] = (p + b) >> 1;
        if (slope != 0) {
          p = b;
          s_last = slope;
        }
      }
    }
    __syncthreads();
    const int intervals = intervals_shared;

    // Interval of each bin (the last split at or before it), and the interval sums cleared.
    for (int b = tid; b < bins; b += kThreads) {
      int lo = 0;
      int hi = intervals - 1;  // splits[lo] <= b < splits[hi + 1]
      while (lo < hi) {
        const int mid = (lo + hi + 1) >> 1;
        if (s.splits[mid] <= b) {
          lo = mid;
        } else {
          hi = mid - 1;
        }
      }
      s.bin_interval[b] = lo;
    }
    for (int k = tid; k < intervals; k += kThreads) {
      s.iv_count[k] = 0;
      s.iv_sum[k] = 0.0;
      s.iv_lowest[k] = INT_MAX;
      s.iv_top[k] = INT_MIN;
    }
    __syncthreads();

    // Count and sum the values of each interval. The reference sums in input order; atomics sum in any
    // order, which gives the same (exact) sum when no partial sum can round — checked next. Zeros are
    // left out (adding a zero to a sum that starts at +0 changes nothing, in the reference either).
    for (long long i = tid; i < n; i += kThreads) {
      const float v = x[i];
      const int iv = s.bin_interval[BinOf(v, g)];
      atomicAdd(&s.iv_count[iv], 1u);
      if (v != 0.0f) {
        int lowest;
        int top;
        BitExponents(v, &lowest, &top);
        atomicAdd(&s.iv_sum[iv], static_cast<double>(v));
        atomicMin(&s.iv_lowest[iv], lowest);
        atomicMax(&s.iv_top[iv], top);
      }
    }
    __syncthreads();
    // Exact when count * 2^(top + 1) <= 2^(lowest + 53): every partial sum is then a multiple of
    // 2^lowest smaller than 2^(lowest + 53) in magnitude, hence a double.
    for (int k = tid; k < intervals; k += kThreads) {
      const int lowest = s.iv_lowest[k];
      if (lowest != INT_MAX && CeilLog2(s.iv_count[k]) + s.iv_top[k] + 1 - lowest > 53) {
        s.iv_sum[k] = 0.0;
        s.iv_lowest[k] = kFailMark;
        any_fail = 1;
      }
    }
    __syncthreads();
    if (any_fail) {
      // Intervals whose sum could round: summed again by one thread, in input order, as the reference.
      float* chunk_value = reinterpret_cast<float*>(staged);
      int* chunk_interval = reinterpret_cast<int*>(chunk_value + kChunk);
      for (long long base = 0; base < n; base += kChunk) {
        const int m = static_cast<int>(Min<long long>(kChunk, n - base));
        for (int k = tid; k < m; k += kThreads) {
          const float v = x[base + k];
          const int iv = s.bin_interval[BinOf(v, g)];
          chunk_value[k] = v;
          chunk_interval[k] = s.iv_lowest[iv] == kFailMark ? iv : -1;
        }
        __syncthreads();
        if (tid == 0) {
          for (int k = 0; k < m; k++) {
            const int iv = chunk_interval[k];
            if (iv >= 0) s.iv_sum[iv] = __dadd_rn(s.iv_sum[iv], static_cast<double>(chunk_value[k]));
          }
        }
        __syncthreads();
      }
    }

    // Representative of each interval: its mean (0 when it holds no value), or the density's mode.
    for (int k = tid; k < intervals; k += kThreads) {
      float value;
      if (center == static_cast<int>(Center::kMean)) {
        const double count = static_cast<double>(s.iv_count[k]);
        value = count > 0 ? __double2float_rn(__ddiv_rn(s.iv_sum[k], count)) : 0.0f;
      } else {
        const int b0 = s.splits[k];
        const int b1 = s.splits[k + 1];
        int peak = b0;
        for (int b = b0 + 1; b < b1; b++) {
          if (s.density[b] > s.density[peak]) peak = b;
        }
        value = __double2float_rn(__dadd_rn(g.lo, __dmul_rn(static_cast<double>(peak), g.delta)));
      }
      s.rep[k] = value;
    }
    __syncthreads();

    // Distinct values: one per non-empty interval whose value differs from the previous one's.
    if (tid == 0) {
      unsigned d = 0;
      float last_rep = 0.0f;
      for (int k = 0; k < intervals; k++) {
        if (s.iv_count[k] > 0 && (d == 0 || s.rep[k] != last_rep)) {
          d++;
          last_rep = s.rep[k];
        }
      }
      distinct[j] = d;
    }
    for (int b = tid; b < bins; b += kThreads) s.bin_value[b] = s.rep[s.bin_interval[b]];
    __syncthreads();

    // Map every value to its interval's value; squared errors in the reference's lanes and order.
    double err = 0.0;
    for (long long base = 0; base < n; base += kChunk) {
      const int m = static_cast<int>(Min<long long>(kChunk, n - base));
      for (int k = tid; k < m; k += kThreads) {
        const float v = x[base + k];
        const float hashed = s.bin_value[BinOf(v, g)];
        y[base + k] = hashed;
        const double d = static_cast<double>(__fsub_rn(hashed, v));
        staged[k] = __dmul_rn(d, d);
      }
      __syncthreads();
      if (tid < kLanes) {
        for (int k = tid; k < m; k += kLanes) err = __dadd_rn(err, staged[k]);
      }
      __syncthreads();
    }
    if (tid < kLanes) err_lanes[static_cast<long long>(j) * kLanes + tid] = err;
    __syncthreads();  // the slot and g are reused by the next group
  }
}

// ---- Host side -------------------------------------------------------------------------------------

std::string Describe(const char* what, cudaError_t e) {
  return std::string("CUDA failed in ") + what + ": " + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
}

// Checks a CUDA call: on failure, sets *error (once) and returns false.
bool Ok(cudaError_t e, const char* what, std::string* error) {
  if (e == cudaSuccess) return true;
  if (error->empty()) *error = Describe(what, e);
  return false;
}

// One device allocation, freed on every path.
class DeviceMemory {
 public:
  DeviceMemory() = default;
  DeviceMemory(const DeviceMemory&) = delete;
  DeviceMemory& operator=(const DeviceMemory&) = delete;
  ~DeviceMemory() {
    if (ptr_ != nullptr) cudaFree(ptr_);
  }
  cudaError_t Allocate(size_t bytes) { return cudaMalloc(&ptr_, bytes == 0 ? 1 : bytes); }
  template <class T>
  T* As() const {
    return static_cast<T*>(ptr_);
  }

 private:
  void* ptr_ = nullptr;
};

// A stream of this call's own (calls may run on several threads at once), destroyed on every path.
class Stream {
 public:
  Stream() = default;
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() {
    if (stream_ != nullptr) {
      cudaStreamSynchronize(stream_);  // nothing may still use the memory freed after this
      cudaStreamDestroy(stream_);
    }
  }
  cudaError_t Create() { return cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking); }
  cudaStream_t get() const { return stream_; }

 private:
  cudaStream_t stream_ = nullptr;
};

std::string ComputeStatus() {
  int runtime = 0;
  cudaRuntimeGetVersion(&runtime);
  int count = 0;
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess) {
    int driver = 0;
    cudaDriverGetVersion(&driver);
    std::string why = std::string("no CUDA device is usable: ") + cudaGetErrorString(e) + " (" + cudaGetErrorName(e) + ")";
    const std::string needs = std::to_string(runtime / 1000) + "." + std::to_string(runtime % 1000 / 10);
    if (driver == 0) {
      why += "; no NVIDIA driver was found (this build needs one for CUDA " + needs + " or newer)";
    } else if (driver < runtime) {
      why += "; the NVIDIA driver supports CUDA " + std::to_string(driver / 1000) + "." +
             std::to_string(driver % 1000 / 10) + " but this build needs CUDA " + needs;
    }
    return why;
  }
  if (count == 0) return "no CUDA device is usable: none was found";
  int device = 0;
  cudaError_t d = cudaGetDevice(&device);
  if (d != cudaSuccess) return "no CUDA device is usable: " + Describe("cudaGetDevice", d);
  // Is there code for this GPU in the build (CMAKE_CUDA_ARCHITECTURES)?
  cudaFuncAttributes attributes;
  cudaError_t f = cudaFuncGetAttributes(&attributes, StatsKernel);
  if (f == cudaSuccess) f = cudaFuncGetAttributes(&attributes, HashKernel);
  if (f != cudaSuccess) {
    int major = 0;
    int minor = 0;
    cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device);
    cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device);
    return "CUDA device " + std::to_string(device) + " (compute capability " + std::to_string(major) + "." +
           std::to_string(minor) + ") cannot run this build's kernels: " + cudaGetErrorString(f) + " (" +
           cudaGetErrorName(f) + "); rebuild with --CDCMAKE_CUDA_ARCHITECTURES=native";
  }
  return "";
}

size_t RoundUp(size_t x, size_t to) { return (x + to - 1) / to * to; }

}  // namespace

std::string Status() {
  // Asked before every hashWeights call: find out once. (The answer cannot change in a process: a
  // failed CUDA initialisation is final, and so is the set of visible devices.)
  static const std::string status = ComputeStatus();
  return status;
}

int64_t HashWeights(const float* weights, size_t length, size_t group_size, const HashParams& params,
                    const HashOutputs& out, std::string* error) {
  error->clear();
  if (length == 0 || group_size == 0) return -1;
  *error = Status();
  if (!error->empty()) return -1;
  const size_t groups = length / group_size;
  if (groups > static_cast<size_t>(INT_MAX)) {
    *error = "hashWeights on CUDA: more than 2^31 - 1 groups";
    return -1;
  }
  const long long n = static_cast<long long>(group_size);
  const double dn = static_cast<double>(n);

  // Declared before the stream, so that they are freed after its destructor has waited for it.
  DeviceMemory d_weights, d_stats, d_grids, d_scratch, d_values, d_distinct, d_err;
  Stream stream;
  if (!Ok(stream.Create(), "cudaStreamCreateWithFlags", error)) return -1;
  if (!Ok(d_weights.Allocate(length * sizeof(float)), "cudaMalloc (weights)", error)) return -1;
  if (!Ok(d_stats.Allocate(groups * sizeof(DevStats)), "cudaMalloc (group statistics)", error)) return -1;
  if (!Ok(cudaMemcpyAsync(d_weights.As<float>(), weights, length * sizeof(float), cudaMemcpyHostToDevice, stream.get()),
          "cudaMemcpyAsync (weights)", error)) {
    return -1;
  }
  REDPP_LAUNCH(StatsKernel, static_cast<unsigned>(groups), kThreads, stream.get(), d_weights.As<float>(), n,
               d_stats.As<DevStats>());
  if (!Ok(cudaGetLastError(), "launching StatsKernel", error)) return -1;
  std::vector<DevStats> stats(groups);
  if (!Ok(cudaMemcpyAsync(stats.data(), d_stats.As<DevStats>(), groups * sizeof(DevStats), cudaMemcpyDeviceToHost,
                          stream.get()),
          "cudaMemcpyAsync (group statistics)", error) ||
      !Ok(cudaStreamSynchronize(stream.get()), "StatsKernel", error)) {
    return -1;
  }

  // The grid of every group, on the host; identity groups and groups with a NaN/Inf set aside.
  int64_t first_bad = -1;
  std::vector<DevGrid> grids;
  std::vector<size_t> identity;
  size_t span = 0;  // the largest bins + 2 * radius
  for (size_t gi = 0; gi < groups; gi++) {
    const DevStats& st = stats[gi];
    if (st.bad >= 0) {
      const int64_t at = static_cast<int64_t>(gi * group_size) + st.bad;
      if (first_bad < 0 || at < first_bad) first_bad = at;
      continue;
    }
    DevGrid grid;
    if (!MakeGrid(st.min, st.max, st.sum, st.sum_sq, group_size, params.beta, &grid)) {
      identity.push_back(gi);
      continue;
    }
    grid.group = static_cast<int>(gi);
    span = std::max(span, static_cast<size_t>(grid.bins) + 2 * static_cast<size_t>(grid.radius));
    grids.push_back(grid);
  }

  const size_t active = grids.size();
  if (active > 0) {
    // Scratch: one slot per block (SlotArrays), for as many blocks as fill the GPU, within a quarter
    // of the free memory and 1 GiB.
    const size_t stride = RoundUp(span + 2, 64);
    const size_t slot_bytes = RoundUp(kSlotBytesPerEntry * stride, 256);
    int device = 0;
    int sms = 1;
    size_t free_bytes = 0;
    size_t total_bytes = 0;
    if (!Ok(cudaGetDevice(&device), "cudaGetDevice", error) ||
        !Ok(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device), "cudaDeviceGetAttribute", error) ||
        !Ok(cudaMemGetInfo(&free_bytes, &total_bytes), "cudaMemGetInfo", error)) {
      return -1;
    }
    const size_t budget = std::max(slot_bytes, std::min(free_bytes / 4, size_t{1} << 30));
    const size_t slots = std::max<size_t>(
        1, std::min({active, static_cast<size_t>(sms) * kMaxResidentBlocks, budget / slot_bytes}));

    if (!Ok(d_grids.Allocate(active * sizeof(DevGrid)), "cudaMalloc (grids)", error) ||
        !Ok(d_scratch.Allocate(slots * slot_bytes), "cudaMalloc (scratch)", error) ||
        !Ok(d_values.Allocate(length * sizeof(float)), "cudaMalloc (values)", error) ||
        !Ok(d_distinct.Allocate(active * sizeof(unsigned)), "cudaMalloc (distinct)", error) ||
        !Ok(d_err.Allocate(active * kLanes * sizeof(double)), "cudaMalloc (errors)", error) ||
        !Ok(cudaMemcpyAsync(d_grids.As<DevGrid>(), grids.data(), active * sizeof(DevGrid), cudaMemcpyHostToDevice,
                            stream.get()),
            "cudaMemcpyAsync (grids)", error)) {
      return -1;
    }
    REDPP_LAUNCH(HashKernel, static_cast<unsigned>(slots), kThreads, stream.get(), d_weights.As<float>(), n,
                 d_grids.As<DevGrid>(), static_cast<int>(active), static_cast<int>(params.center),
                 d_scratch.As<unsigned char>(), static_cast<unsigned long long>(slot_bytes),
                 static_cast<long long>(stride), d_values.As<float>(), d_distinct.As<unsigned>(), d_err.As<double>());
    if (!Ok(cudaGetLastError(), "launching HashKernel", error)) return -1;
  }

  // Meanwhile, the identity groups on the host (hash.cc does the same).
  std::vector<float> sorted;
  for (size_t gi : identity) {
    const float* x = weights + gi * group_size;
    float* to = out.values + gi * group_size;
    if (to != x) std::memcpy(to, x, group_size * sizeof(float));  // to == x when hashing in place
    out.distinct[gi] = CountDistinct(x, group_size, &sorted);
    out.rms[gi] = 0.0;
  }

  if (active > 0) {
    std::vector<unsigned> distinct(active);
    std::vector<double> err(active * kLanes);
    const bool all_active = active == groups;
    // Straight into the output when every group was hashed here; otherwise through a staging copy, so
    // that only the hashed groups are written (identity groups are done, bad ones stay as they were).
    std::vector<float> staging(all_active ? 0 : length);
    float* values_to = all_active ? out.values : staging.data();
    if (!Ok(cudaMemcpyAsync(values_to, d_values.As<float>(), length * sizeof(float), cudaMemcpyDeviceToHost,
                            stream.get()),
            "cudaMemcpyAsync (values)", error) ||
        !Ok(cudaMemcpyAsync(distinct.data(), d_distinct.As<unsigned>(), active * sizeof(unsigned),
                            cudaMemcpyDeviceToHost, stream.get()),
            "cudaMemcpyAsync (distinct)", error) ||
        !Ok(cudaMemcpyAsync(err.data(), d_err.As<double>(), active * kLanes * sizeof(double), cudaMemcpyDeviceToHost,
                            stream.get()),
            "cudaMemcpyAsync (errors)", error) ||
        !Ok(cudaStreamSynchronize(stream.get()), "HashKernel", error)) {
      return -1;
    }
    for (size_t j = 0; j < active; j++) {
      const size_t gi = static_cast<size_t>(grids[j].group);
      if (!all_active) {
        std::memcpy(out.values + gi * group_size, staging.data() + gi * group_size, group_size * sizeof(float));
      }
      out.distinct[gi] = distinct[j];
      out.rms[gi] = std::sqrt(LaneSum(err.data() + j * kLanes) / dn);
    }
  }
  return first_bad;
}

}  // namespace cuda
}  // namespace redpp
