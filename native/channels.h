// Reads of a layer's weights by channel, comparing bits with -0 as 0 (the weights it multiplies are the
// same): the merge's channel fingerprints (lib/passes/merge/prints.ts is the reference) and the kernels a
// conv's filters share (lib/passes/kernel-split/sharing.ts is the reference), matching them exactly.
// The pool's workers call both, a layer at a time: every weight of a model passes through each.
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// A weight seen along one axis: `outer` (the dims before it) blocks of `length` positions of `stride`
// words each; a channel is `inner` consecutive positions.
struct ChannelView {
  size_t outer;
  size_t length;
  size_t stride;
  size_t inner;
};

// Per channel (length / inner of them, a rest of positions left out), the 32-bit FNV-1a hash of its
// words in order, block by block: prints[c].
void ChannelPrints(const uint32_t* words, const ChannelView& view, uint32_t* prints);

// The kernels a conv's filters share: per input channel c, the distinct non-zero k-tap kernels W[o, c]
// over the output filters o, numbered in order of first appearance along o.
struct KernelSharingShape {
  size_t cout;
  size_t cin;
  size_t k;  // taps of one kernel (kh * kw)
};

// `bits`: the weights [cout, cin, k] as float32 bits, cout below 2^31 (a channel's numbers are int32). Writes index[o * cin + c] (the number of W[o, c]
// among channel c's kernels, -1 where it is all zero), counts[c] (channel c's distinct kernels) and,
// where `starts` is not null, starts[c * cout + j] (the first word of channel c's kernel j).
void KernelSharing(const uint32_t* bits, const KernelSharingShape& shape, int32_t* index, uint32_t* counts, uint32_t* starts);

}  // namespace redpp
