// Per-layer figures the hash pass reports beside the hashing (lib/kernels/weight-stats.ts is the
// reference, which these match bit for bit): read in the pool's workers at memory speed, where the
// TypeScript loops cost as much as the hashing itself.
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// The sum of x[i]^2 in double: lane k takes the elements i = k mod 8, in order, and the lanes are
// added as LaneSum (grid.h) adds them.
double SumOfSquares(const float* x, size_t n);

// Per group of `group_size` consecutive elements: how many are exactly zero (+0 or -0).
void ZerosPerGroup(const float* x, size_t n, size_t group_size, uint32_t* zeros);

}  // namespace redpp
