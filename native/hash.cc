#include "hash.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <thread>
#include <vector>

#include "simd.h"

namespace redpp {
namespace {

double LaneSum(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

// 2^-e where 2^e is the float exponent of max_abs, so that max_abs * scale lies in [0.5, 1).
float ExponentScale(float max_abs) {
  uint32_t bits;
  std::memcpy(&bits, &max_abs, sizeof bits);
  const int biased = static_cast<int>((bits >> 23) & 0xff);
  const int e = biased == 0 ? -125 : biased - 126;
  return static_cast<float>(std::ldexp(1.0, -e));
}

// Scratch of one thread, sized once for the largest grid.
struct Scratch {
  std::vector<double> counts = std::vector<double>(kMaxBins + 2 * kMaxRadius);
  std::vector<double> bin_sum = std::vector<double>(kMaxBins);
  std::vector<double> density = std::vector<double>(kMaxBins);
  std::vector<float> bin_value = std::vector<float>(kMaxBins);
  std::vector<int32_t> bins;  // bin of each value, chunked
  std::vector<float> sorted;  // only for counting distinct values of unchanged groups
};

constexpr size_t kChunk = 4096;

uint32_t CountDistinct(const float* x, size_t n, Scratch& s) {
  if (n == 0) return 0;
  s.sorted.assign(x, x + n);
  std::sort(s.sorted.begin(), s.sorted.end());
  uint32_t d = 1;
  for (size_t i = 1; i < n; i++) d += s.sorted[i] != s.sorted[i - 1];
  return d;
}

struct GroupResult {
  uint32_t distinct;
  double rms;
  int64_t non_finite;  // offset in the group, or -1
};

GroupResult HashGroup(const float* x, size_t n, const HashParams& p, const SimdKernels& k, Scratch& s, float* out) {
  GroupStats st;
  k.stats(x, n, &st);
  if (st.first_non_finite >= 0) return {0, 0.0, st.first_non_finite};

  const double dn = static_cast<double>(n);
  const double mean = LaneSum(st.sum) / dn;
  const double variance = LaneSum(st.sum_sq) / dn - mean * mean;
  const double sd = std::sqrt(std::max(0.0, variance));
  const double shrink = static_cast<float>(std::pow(dn, -0.2));
  const double h = static_cast<float>(p.beta * sd * shrink);
  if (!(h > 0) || st.min == st.max) {
    std::memcpy(out, x, n * sizeof(float));
    return {CountDistinct(x, n, s), 0.0, -1};
  }

  // The grid (lib/kernels/hash.ts: makeGrid).
  const double lo = st.min;
  const double range = static_cast<double>(st.max) - lo;
  double delta = h / kBinsPerBandwidth;
  double bins_d = std::floor(range / delta) + 1;
  if (bins_d > kMaxBins) {
    bins_d = kMaxBins;
    delta = range / (kMaxBins - 1);
  }
  const int bins = static_cast<int>(bins_d);
  const int radius = static_cast<int>(std::floor(kKernelCutoff * h / delta));
  double kernel[kMaxRadius + 1];
  for (int j = 0; j <= radius; j++) {
    const double t = (j * delta) / h;
    // floor(x + 0.5) is JavaScript's Math.round (ties up), which the reference uses.
    kernel[j] = std::floor(kKernelScale * static_cast<float>(std::exp(-0.5 * t * t)) + 0.5);
  }
  const float scale = ExponentScale(std::max(std::fabs(st.min), std::fabs(st.max)));
  const BinMap map{scale, st.min * scale, static_cast<float>(1.0 / (delta * static_cast<double>(scale))),
                   bins - 1};

  double* counts = s.counts.data() + radius;
  std::fill(s.counts.begin(), s.counts.begin() + bins + 2 * radius, 0.0);
  std::fill(s.bin_sum.begin(), s.bin_sum.begin() + bins, 0.0);
  double* bin_sum = s.bin_sum.data();
  s.bins.resize(kChunk);
  for (size_t c0 = 0; c0 < n; c0 += kChunk) {
    const size_t m = std::min(kChunk, n - c0);
    k.bins(x + c0, m, map, s.bins.data());
    for (size_t i = 0; i < m; i++) {
      const int32_t b = s.bins[i];
      counts[b] += 1.0;
      bin_sum[b] += x[c0 + i];
    }
  }
  double* density = s.density.data();
  k.density(counts, static_cast<size_t>(bins), kernel, radius, density);

  // Intervals between local minima of the density (a flat minimum split in its middle).
  float* bin_value = s.bin_value.data();
  uint32_t distinct = 0;
  bool any = false;
  float last_rep = 0.0f;
  int start = 0;
  auto close_interval = [&](int end) {
    double count = 0.0, sum = 0.0;
    int peak = start;
    for (int b = start; b < end; b++) {
      count += counts[b];
      sum += bin_sum[b];
      if (density[b] > density[peak]) peak = b;
    }
    const float rep = p.center == Center::kMean && count > 0 ? static_cast<float>(sum / count)
                                                             : static_cast<float>(lo + peak * delta);
    std::fill(bin_value + start, bin_value + end, rep);
    if (count > 0 && (!any || rep != last_rep)) {
      distinct++;
      last_rep = rep;
      any = true;
    }
    start = end;
  };
  bool descending = false;
  int flat_start = 0;
  for (int b = 1; b < bins; b++) {
    if (density[b] < density[b - 1]) {
      descending = true;
      flat_start = b;
    } else if (density[b] > density[b - 1]) {
      if (descending) close_interval((flat_start + b) >> 1);
      descending = false;
      flat_start = b;
    }
  }
  close_interval(bins);

  double err[kLanes] = {0, 0, 0, 0, 0, 0, 0, 0};
  k.map(x, n, map, bin_value, out, err);
  return {distinct, std::sqrt(LaneSum(err) / dn), -1};
}

}  // namespace

int64_t HashWeights(const float* weights, size_t length, size_t group_size, const HashParams& params,
                    int simd_level, const HashOutputs& out) {
  if (length == 0 || group_size == 0) return -1;
  const size_t groups = length / group_size;
  const SimdKernels& kernels = GetSimdKernels(static_cast<SimdLevel>(simd_level));
  // Hand out groups in chunks of about 64k values: few atomics, and still balanced across threads.
  const size_t per_task = std::max<size_t>(1, (size_t{1} << 16) / group_size);
  std::atomic<size_t> next{0};
  std::atomic<int64_t> first_bad{-1};

  auto work = [&]() {
    Scratch scratch;
    for (;;) {
      const size_t g0 = next.fetch_add(per_task);
      if (g0 >= groups) return;
      const size_t g1 = std::min(groups, g0 + per_task);
      for (size_t g = g0; g < g1; g++) {
        const size_t offset = g * group_size;
        const GroupResult r =
            HashGroup(weights + offset, group_size, params, kernels, scratch, out.values + offset);
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
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (int t = 1; t < threads; t++) pool.emplace_back(work);
  work();
  for (auto& t : pool) t.join();
  return first_bad.load();
}

}  // namespace redpp
