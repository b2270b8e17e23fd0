// Memory the model no longer needs, given back to the OS as soon as pack has replaced it: a weight's
// shared memory is otherwise freed only when every thread that saw it has collected its garbage, which
// a pool worker that allocates almost nothing may not do for the rest of the prune (lib/model/tensor.ts:
// Tensor.releasableBytes() says when that is safe; lib/kernels/pages.ts: PageRelease batches the calls).
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// Sets the `length` bytes at `data` to zero; on Linux, the whole pages among them by dropping them
// (madvise MADV_DONTNEED: private anonymous memory, as every ArrayBuffer's, reads back as zero pages,
// which take no memory until written). Returns how many bytes were given back (0 where every byte
// was zeroed by a write instead).
size_t ReleasePages(uint8_t* data, size_t length);

// The size of a transparent huge page on x86-64 and on arm64 with 4 KiB pages.
constexpr size_t kHugePage = size_t{2} << 20;

// Asks the kernel to back the whole 2 MiB-aligned stretches of the `length` bytes at `data` with
// transparent huge pages as they are first touched (Linux, madvise MADV_HUGEPAGE; where THP is set to
// "madvise", as on Debian and Ubuntu, nothing else gets them). The contents do not change. One fault
// then maps 2 MiB instead of 4 KiB (lib/kernels/pages.ts says what that buys). Call it before the
// memory is first touched: pages faulted in already stay 4 KiB (until khugepaged, in its own time,
// may collapse them). Returns the bytes advised (0 where the
// range holds no whole huge page, off Linux, or where the kernel refuses).
size_t AdviseHugePages(uint8_t* data, size_t length);

// `length` bytes of a buffer from offset `from` to offset `to`; the two may overlap.
struct ByteMove {
  size_t from;
  size_t to;
  size_t length;
};

// Carries out the moves over the buffer at `data`, in order, each as memmove does (the caller has
// checked that every stretch lies inside the buffer). Reading a model aligns its tensors so (read.ts).
void MoveBytes(uint8_t* data, const ByteMove* moves, size_t count);

}  // namespace redpp
