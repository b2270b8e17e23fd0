#include "grid.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace redpp {
namespace {

// 2^-e where 2^e is the float exponent of max_abs, so that max_abs * scale lies in [0.5, 1).
float ExponentScale(float max_abs) {
  uint32_t bits;
  std::memcpy(&bits, &max_abs, sizeof bits);
  const int biased = static_cast<int>((bits >> 23) & 0xff);
  const int e = biased == 0 ? -125 : biased - 126;
  return static_cast<float>(std::ldexp(1.0, -e));
}

// n^-0.2 rounded to float. Every group of a call has the same n: the last one is kept per thread.
double Shrink(size_t n) {
  thread_local size_t last_n = 0;
  thread_local double last = 0.0;
  if (n != last_n) {
    last = static_cast<float>(std::pow(static_cast<double>(n), -0.2));
    last_n = n;
  }
  return last;
}

// The kernel weight of bin offset j at t = j * delta / h bandwidths.
double KernelWeight(double t) { return std::floor(kKernelScale * static_cast<float>(std::exp(-0.5 * t * t)) + 0.5); }

// The kernel of every grid whose bin count is not capped. There delta = h / kBinsPerBandwidth exactly,
// and h is a float, so j * delta is exact and t = (j * delta) / h is exactly j / kBinsPerBandwidth: the
// weights are the same for every such grid, and the radius is kMaxRadius.
struct UncappedKernel {
  double weight[kMaxRadius + 1];
  UncappedKernel() {
    for (int j = 0; j <= kMaxRadius; j++) weight[j] = KernelWeight(static_cast<double>(j) / kBinsPerBandwidth);
  }
};
const UncappedKernel kUncapped;

}  // namespace

double LaneSum(const double* l) { return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])); }

uint32_t CountDistinct(const float* x, size_t n, std::vector<float>* scratch) {
  if (n == 0) return 0;
  scratch->assign(x, x + n);
  std::sort(scratch->begin(), scratch->end());
  uint32_t d = 1;
  for (size_t i = 1; i < n; i++) d += (*scratch)[i] != (*scratch)[i - 1];
  return d;
}

// The sign of a zero min (or max) cannot matter: min * scale is then +-0, and subtracting +-0 from
// x * scale, or adding +-0 to peak * delta, gives the same float; range and the scale use max - min
// and |min|. That is why SIMD min/max, which may pick either zero, still match the reference.
bool MakeGrid(float min, float max, const double* sum, const double* sum_sq, size_t n, double beta, Grid* g) {
  const double dn = static_cast<double>(n);
  const double mean = LaneSum(sum) / dn;
  const double variance = LaneSum(sum_sq) / dn - mean * mean;
  const double sd = std::sqrt(std::max(0.0, variance));
  // h is rounded to float so that a last-bit difference in the sums almost never moves the grid. A
  // bandwidth past the float range (a huge beta) is held at FLT_MAX: one interval, the group's mean
  // (converting it to float would be undefined, and an infinite h a NaN radius).
  const double shrink = Shrink(n);
  const double wide = beta * sd * shrink;
  const double h = wide >= FLT_MAX ? FLT_MAX : static_cast<float>(wide);
  if (!(h > 0) || min == max) return false;

  const double lo = min;
  const double range = static_cast<double>(max) - lo;
  double delta = h / kBinsPerBandwidth;
  double bins = std::floor(range / delta) + 1;
  if (bins <= kMaxBins) {
    // cutoff * h / delta is exactly kKernelCutoff * kBinsPerBandwidth = kMaxRadius (UncappedKernel).
    g->radius = kMaxRadius;
    std::memcpy(g->kernel, kUncapped.weight, sizeof g->kernel);
  } else {
    bins = kMaxBins;
    delta = range / (kMaxBins - 1);
    // cutoff * h / delta is at most cutoff * bins per bandwidth = kMaxRadius.
    g->radius = std::min(static_cast<int>(std::floor(kKernelCutoff * h / delta)), kMaxRadius);
    for (int j = 0; j <= kMaxRadius; j++) g->kernel[j] = j <= g->radius ? KernelWeight((j * delta) / h) : 0.0;
  }
  const float scale = ExponentScale(std::max(std::fabs(min), std::fabs(max)));
  g->lo = lo;
  g->delta = delta;
  g->scale = scale;
  g->offset = min * scale;
  g->inverse = static_cast<float>(1.0 / (delta * static_cast<double>(scale)));
  g->bins = static_cast<int>(bins);
  return true;
}

}  // namespace redpp
