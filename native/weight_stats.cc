#include "weight_stats.h"

#include "grid.h"
#include "hash.h"

namespace redpp {

double SumOfSquares(const float* x, size_t n) {
  double lanes[kLanes] = {};
  size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int k = 0; k < kLanes; k++) {
      const double v = x[i + k];
      lanes[k] += v * v;
    }
  }
  for (int k = 0; i < n; i++, k++) {
    const double v = x[i];
    lanes[k] += v * v;
  }
  return LaneSum(lanes);
}

void ZerosPerGroup(const float* x, size_t n, size_t group_size, uint32_t* zeros) {
  for (size_t g = 0, at = 0; at < n; g++) {
    uint32_t z = 0;
    for (const size_t end = at + group_size; at < end; at++) z += x[at] == 0.0f;
    zeros[g] = z;
  }
}

}  // namespace redpp
