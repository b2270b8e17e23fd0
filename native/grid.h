// The per-group set-up of the hashing kernel that every backend shares — the bandwidth and the KDE grid
// from a group's statistics (lib/kernels/hash.ts: makeGrid) — so the CPU and CUDA kernels follow one
// spec, operation for operation.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "hash.h"

namespace redpp {

// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)): the reference's order.
double LaneSum(const double* lanes);

// Distinct values of x (-0 and +0 are one), sorting a copy in *scratch.
uint32_t CountDistinct(const float* x, size_t n, std::vector<float>* scratch);

struct Grid {
  double kernel[kMaxRadius + 1];  // integer-valued Gaussian weights, zero past radius
  double lo;                      // the group's min
  double delta;                   // bin width
  float scale;                    // the bin map (simd.h: BinMap)
  float offset;
  float inverse;
  int bins;
  int radius;
};

// The grid of a group of n values with the given min, max and lane sums of values and squares.
// Returns false when the group stays as it is (h is not > 0, or all values are equal).
bool MakeGrid(float min, float max, const double* sum, const double* sum_sq, size_t n, double beta, Grid* grid);

}  // namespace redpp
