// The kernels a conv's filters share (lib/passes/kernel-split/sharing.ts is the reference, which this
// must match exactly): per input channel c, the distinct non-zero k-tap kernels W[o, c] over the output
// filters o, numbered in order of first appearance along o, told apart by their bits with -0 as 0.
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

struct KernelSharingShape {
  size_t cout;
  size_t cin;
  size_t k;  // taps of one kernel (kh * kw)
};

// `bits`: the weights [cout, cin, k] as float32 bits. Writes index[o * cin + c] (the number of W[o, c]
// among channel c's kernels, -1 where it is all zero), counts[c] (channel c's distinct kernels) and,
// where `starts` is not null, starts[c * cout + j] (the first word of channel c's kernel j).
void KernelSharing(const uint32_t* bits, const KernelSharingShape& shape, int32_t* index, uint32_t* counts, uint32_t* starts);

}  // namespace redpp
