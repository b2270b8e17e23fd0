#include "hash.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include "grid.h"
#include "simd.h"
#include "thread_pool.h"

namespace redpp {
namespace {

// FillRuns writes whole steps of this many entries, so its arrays have this much room past their end.
constexpr int kRunPad = 32;

// A group of up to this many values keeps the bin of each (256 KiB, in L2) from the counts to Map, which
// recomputed them before (with a gather, it took a fifth of the time). A larger group is binned a chunk
// of this many values at a time, once for the counts and once for Map. A multiple of 8: the chunks keep
// Map's error lanes (i % 8).
constexpr size_t kKeptBins = size_t{1} << 16;

// Sets each interval's bins, [splits[i - 1], splits[i]), to value(i), in whole steps of kRunPad: a step
// that runs past an interval's end is overwritten by the next interval (intervals are a few bins wide,
// so a loop per bin spent most of its time on the loop).
template <typename T, typename ValueOf>
void FillRuns(T* out, const int* splits, int intervals, ValueOf value) {
  for (int i = 0, b0 = 0; i < intervals; b0 = splits[i++]) {
    const T v = value(i);
    for (int b = b0; b < splits[i]; b += kRunPad) {
      for (int j = 0; j < kRunPad; j++) out[b + j] = v;
    }
  }
}

// Scratch of one thread. It grows to the largest grid seen, so a call that only meets small grids
// never touches (or page-faults in) the memory a full grid takes; the arrays of the rare paths (a
// density too large for 32-bit integers, interval sums that could round) only when those are taken.
struct Scratch {
  std::vector<uint32_t> counts;
  std::vector<double> bin_sum;  // sum of each bin's values, for the intervals' sums
  std::vector<int32_t> density;
  std::vector<double> wide_counts;  // counts and density in doubles, where 32-bit integers could overflow
  std::vector<double> wide_density;
  std::vector<float> bin_value;
  std::vector<int> splits;
  std::vector<int32_t> bin_interval;  // kRunPad past the last bin: FillRuns writes whole steps
  std::vector<IntervalSum> iv_acc;
  std::vector<float> iv_rep;
  std::vector<uint64_t> up;    // slope bits of the density, FindSplits
  std::vector<uint64_t> down;
  std::vector<int32_t> bins;  // the bin of each value of a chunk (ReserveBins)
  std::vector<float> sorted;  // only for counting distinct values of unchanged groups

  void Reserve(int bins_needed) {
    const size_t n = static_cast<size_t>(bins_needed);
    if (density.size() >= n) return;
    counts.resize(n + 2 * kMaxRadius);
    bin_sum.resize(n);
    density.resize(n);
    bin_value.resize(n + kRunPad);
    splits.resize(n + 1);
  }

  // Room for the bins of a group of n values, or of a chunk of kKeptBins; returns the chunk's size
  // (n itself when the group's bins are kept).
  size_t ReserveBins(size_t n) {
    if (bins.size() < std::min(n, kKeptBins)) bins.resize(std::min(n, kKeptBins));
    return std::min(n, bins.size());
  }

  void ReserveWide(int bins_needed) {
    const size_t n = static_cast<size_t>(bins_needed);
    if (wide_density.size() >= n) return;
    wide_counts.resize(n + 2 * kMaxRadius);
    wide_density.resize(n);
  }

  void ReserveBinInterval(int bins_needed) {
    const size_t n = static_cast<size_t>(bins_needed);
    if (bin_interval.size() >= n + kRunPad) return;
    bin_interval.resize(n + kRunPad);
  }

  void ReserveIntervals(int intervals) {
    const size_t n = static_cast<size_t>(intervals);
    if (iv_acc.size() >= n) return;
    iv_acc.resize(n);
    iv_rep.resize(n);
  }
};

// The density, in 32-bit integers where they hold it exactly (twice the lanes of doubles), else in
// doubles. Both hold the same integers, so the slopes and the modes are the same.
struct Density {
  const int32_t* narrow;  // nullptr when the density is in doubles
  const double* wide;
};

// The density and its slope bits (s.up, s.down).

Density SlopesOfDensity(const uint32_t* counts, int bins, const double* kernel, int radius, const SimdKernels& k,
                        Scratch& s) {
  const size_t words = (static_cast<size_t>(bins) + 63) / 64;
  s.up.resize(words);
  s.down.resize(words);
  // Every density value and partial sum is at most the sum of the kernel's taps times the largest count.
  double taps = kernel[0];
  int32_t narrow_kernel[kMaxRadius + 1];
  for (int j = 0; j <= kMaxRadius; j++) narrow_kernel[j] = static_cast<int32_t>(kernel[j]);
  for (int j = 1; j <= radius; j++) taps += 2 * kernel[j];
  const uint32_t top_count = k.density_int(counts, static_cast<size_t>(bins), narrow_kernel, radius, s.density.data(),
                                           s.up.data(), s.down.data());
  if (taps * top_count <= INT32_MAX) return {s.density.data(), nullptr};
  s.ReserveWide(bins);
  double* wide_counts = s.wide_counts.data() + radius;
  for (int b = -radius; b < bins + radius; b++) wide_counts[b] = counts[b];
  k.density(wide_counts, static_cast<size_t>(bins), kernel, radius, s.wide_density.data());
  k.slopes(s.wide_density.data(), static_cast<size_t>(bins), s.up.data(), s.down.data());
  return {nullptr, s.wide_density.data()};
}

// Whether the sum of every interval's values is exact in double whatever the order of its terms, so
// that adding its bins' sums gives the reference's sum in input order. Every nonzero value is a
// multiple of 2^lowest (the unit in the last place of the smallest nonzero |value|) below 2^top (2^top
// above the largest |value|), so every partial sum of an interval of `count` values is a multiple of
// 2^lowest below count * 2^top, which a double holds exactly when count * 2^top <= 2^(lowest + 53).
// `most` is the largest interval's count. Random layers pass with some ten bits to spare; trained ones
// often hold a weight more than about 2^20 times smaller than their largest (a group in 13 of
// PP-OCRv4's detector, a group in 17 of its recogniser), and those groups are summed again in input
// order, as before this test. Bounding each interval by its bins' edges would spare a quarter to
// three quarters of those, at more code: the interval around zero keeps the tiny weight. The CUDA
// kernel makes the test per interval, from each interval's own bits (native/cuda/hash.cu).
bool IntervalSumsAreExact(const GroupStats& st, uint32_t most) {
  int e_low, e_high;
  std::frexp(static_cast<double>(st.min_abs), &e_low);  // min_abs in [2^(e_low - 1), 2^e_low)
  std::frexp(std::max(-static_cast<double>(st.min), static_cast<double>(st.max)), &e_high);
  const int lowest = std::max(e_low - 1 - 23, -149);
  return most <= std::ldexp(1.0, lowest + 53 - e_high);
}

// The local minima of the density, as split positions. Equivalent to this scan over the bins:
//   descending = false, flat_start = 0
//   for b in 1..bins-1: down: descending = true, flat_start = b
//                       up:   if descending, split at (flat_start + b) / 2; descending = false, flat_start = b
// but run over 64-bin words of slope bits, without a step per bin: at this bandwidth the density turns
// every few bins and has flat stretches (empty bins, plateaus of the integer density), and a scan of
// the sloped bins one by one, each step depending on the last, was a tenth of the hashing. A minimum is
// an up bin that the bin after a down bin reaches through flat bins only (flat_start is then the down
// bin, the highest sloped bin below it); those are found for the whole word at once by an addition.
int FindSplits(int bins, const Scratch& s, int* splits) {
  const size_t words = (static_cast<size_t>(bins) + 63) / 64;
  int count = 0;
  uint64_t descending = 0;  // 1 when the last sloped bin so far went down
  int flat_start = 0;       // the last sloped bin so far
  for (size_t w = 0; w < words; w++) {
    const uint64_t up = s.up[w], down = s.down[w];
    const uint64_t sloped = up | down;
    if (sloped == 0) continue;
    const int base = static_cast<int>(w * 64);
    // A 1 added at each bin just past a down bin (bin 0 just past the last word's) to the flat bins'
    // bits carries up through the flat bins and stops at the first sloped bin, setting it: that bin is
    // the one reached. The carries do not meet, each stopping at a sloped bin below the next start
    // (a six-step Kogge-Stone fill did this before, with the same result).
    const uint64_t reached = ~sloped + ((down << 1) | descending);
    for (uint64_t minima = reached & up; minima; minima &= minima - 1) {
      const int j = __builtin_ctzll(minima);
      const uint64_t below = sloped & ((uint64_t{1} << j) - 1);
      const int previous = below != 0 ? base + 63 - __builtin_clzll(below) : flat_start;
      splits[count++] = (previous + base + j) >> 1;
    }
    const int last = 63 - __builtin_clzll(sloped);
    descending = (down >> last) & 1;
    flat_start = base + last;
  }
  return count;
}

// Each interval's value with the density's mode as centre: the left-most peak bin's position.
template <typename D>
void ModeValues(const D* density, const int* splits, int intervals, double lo, double delta, float* rep) {
  for (int i = 0, b0 = 0; i < intervals; b0 = splits[i++]) {
    int peak = b0;
    for (int b = b0 + 1; b < splits[i]; b++) peak = density[b] > density[peak] ? b : peak;
    rep[i] = static_cast<float>(lo + peak * delta);
  }
}

// Asks for the values of the group after this one while this group's bins are worked on, which read no
// values, so that the next Stats, the first pass over them, finds them in cache instead of waiting on
// memory: 5 % of the time. No more than kKeptBins values, which the cache holds.
void PrefetchGroup(const float* next, size_t n) {
  if (next == nullptr) return;
  for (size_t i = 0; i < std::min(n, kKeptBins); i += 64 / sizeof(float)) __builtin_prefetch(next + i);
}

struct GroupResult {
  uint32_t distinct;
  double rms;
  int64_t non_finite;  // offset in the group, or -1
};

// `next` is the group after this one (same size), or nullptr.
GroupResult HashGroup(const float* x, size_t n, const float* next, const HashParams& p, const SimdKernels& k,
                      Scratch& s, float* out) {
  GroupStats st;
  k.stats(x, n, &st);
  if (st.first_non_finite >= 0) return {0, 0.0, st.first_non_finite};

  Grid g;
  if (!MakeGrid(st.min, st.max, st.sum, st.sum_sq, n, p.beta, &g)) {
    if (out != x) std::memcpy(out, x, n * sizeof(float));  // out == x when hashing in place
    return {CountDistinct(x, n, &s.sorted), 0.0, -1};
  }
  const double dn = static_cast<double>(n);
  const int bins = g.bins;
  const int radius = g.radius;
  const double* kernel = g.kernel;
  const double lo = g.lo;
  const double delta = g.delta;
  const BinMap map{g.scale, g.offset, g.inverse, bins - 1};

  s.Reserve(bins);
  // Each bin's count, and the sum of its values: an interval's sum is then the sum of its bins' sums
  // (IntervalSumsAreExact says when that is the reference's sum in input order), where a second pass
  // over the values took a fifth of the time.
  uint32_t* counts = s.counts.data() + kMaxRadius;  // padded by kMaxRadius whatever the radius (simd.h)
  std::fill(s.counts.begin(), s.counts.begin() + bins + 2 * kMaxRadius, 0u);
  double* bin_sum = s.bin_sum.data();
  std::fill(bin_sum, bin_sum + bins, 0.0);
  const size_t chunk = s.ReserveBins(n);
  const bool kept = chunk == n;  // else each chunk is binned again where its bins are needed
  int32_t* bin = s.bins.data();
  for (size_t c0 = 0; c0 < n; c0 += chunk) {
    const size_t m = std::min(chunk, n - c0);
    k.bins(x + c0, m, map, bin);
    const float* xc = x + c0;
    for (size_t i = 0; i < m; i++) {
      const int32_t b = bin[i];  // read once: the stores could alias it, for all the compiler knows
      counts[b]++;
      bin_sum[b] += xc[i];
    }
  }
  PrefetchGroup(next, n);
  const Density density = SlopesOfDensity(counts, bins, kernel, radius, k, s);

  // Split at every local minimum of the density (a flat minimum in its middle); with a kernel narrower
  // than a bin, every bin is an interval (lib/kernels/hash.ts says why).
  int* splits = s.splits.data();
  int split_count = 0;
  if (radius == 0) {
    for (int b = 1; b < bins; b++) splits[split_count++] = b;
  } else {
    split_count = FindSplits(bins, s, splits);
  }
  splits[split_count] = bins;
  const int intervals = split_count + 1;
  s.ReserveIntervals(intervals);

  IntervalSum* acc = s.iv_acc.data();
  const uint32_t most = k.interval_sums(bin_sum, counts, splits, intervals, acc);
  float* rep = s.iv_rep.data();
  if (p.center == Center::kMean) {
    if (!IntervalSumsAreExact(st, most)) {
      // Sum again in input order, as the reference does.
      s.ReserveBinInterval(bins);
      int32_t* bin_interval = s.bin_interval.data();
      FillRuns(bin_interval, splits, intervals, [](int i) { return static_cast<int32_t>(i); });
      for (int i = 0; i < intervals; i++) acc[i].sum = 0.0;
      for (size_t c0 = 0; c0 < n; c0 += chunk) {
        const size_t m = std::min(chunk, n - c0);
        if (!kept) k.bins(x + c0, m, map, bin);
        for (size_t i = 0; i < m; i++) acc[bin_interval[bin[i]]].sum += x[c0 + i];
      }
    }
    k.means(acc, intervals, rep);
  } else if (density.narrow != nullptr) {
    ModeValues(density.narrow, splits, intervals, lo, delta, rep);
  } else {
    ModeValues(density.wide, splits, intervals, lo, delta, rep);
  }
  uint32_t distinct = 0;
  float last_rep = 0.0f;
  for (int i = 0; i < intervals; i++) {
    if (acc[i].count > 0 && (distinct == 0 || rep[i] != last_rep)) {
      distinct++;
      last_rep = rep[i];
    }
  }
  float* bin_value = s.bin_value.data();
  FillRuns(bin_value, splits, intervals, [rep](int i) { return rep[i]; });

  double err[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t c0 = 0; c0 < n; c0 += chunk) {
    const size_t m = std::min(chunk, n - c0);
    if (!kept) k.bins(x + c0, m, map, bin);
    k.map(x + c0, bin, m, bin_value, out + c0, err);
  }
  return {distinct, std::sqrt(LaneSum(err) / dn), -1};
}

}  // namespace

int64_t HashWeights(const float* weights, size_t length, size_t group_size, const HashParams& params,
                    int simd_level, const HashOutputs& out) {
  if (length == 0 || group_size == 0) return -1;
  const size_t groups = length / group_size;
  const SimdKernels& kernels = GetSimdKernels(static_cast<SimdLevel>(simd_level));
  // Hand out groups in chunks of about 16k values: few atomics, and a layer of 32k values or more is
  // shared by two threads (with 64k, ResNet-50's layers below 128k values ran on one thread alone).
  const size_t per_task = std::max<size_t>(1, (size_t{1} << 14) / group_size);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> first_bad{-1};

  auto work = [&]() {
    // Kept per thread across calls (pool threads and libuv's live on): no fresh memory per call.
    thread_local Scratch scratch;
    for (;;) {
      const size_t g0 = next.fetch_add(per_task);
      if (g0 >= groups) return;
      const size_t g1 = std::min(groups, g0 + per_task);
      for (size_t g = g0; g < g1; g++) {
        const size_t offset = g * group_size;
        const float* next = g + 1 < groups ? weights + offset + group_size : nullptr;
        const GroupResult r =
            HashGroup(weights + offset, group_size, next, params, kernels, scratch, out.values + offset);
        if (r.non_finite >= 0) {
          // Keep the smallest index, whichever thread finds it first.
          const int64_t at = static_cast<int64_t>(offset) + r.non_finite;
          int64_t seen = first_bad.load();
          while ((seen < 0 || at < seen) && !first_bad.compare_exchange_weak(seen, at)) {
          }
          continue;
        }
        out.distinct[g] = r.distinct;
        out.rms[g] = r.rms;
      }
    }
  };

  const size_t tasks = (groups + per_task - 1) / per_task;
  const int threads = static_cast<int>(std::max<size_t>(1, std::min<size_t>(params.threads, tasks)));
  RunOnThreads(threads, work);
  return first_bad.load();
}

}  // namespace redpp
