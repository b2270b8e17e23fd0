// Memory the model no longer needs, given back to the OS at once: a weight that pack has replaced by its
// packed form is otherwise freed only when every thread that saw its shared memory has collected its
// garbage, which a pool worker that allocates almost nothing may not do for the rest of the prune
// (lib/model/tensor.ts: Tensor.releaseData(), the caller, says when that is safe).
#pragma once

#include <cstddef>
#include <cstdint>

namespace redpp {

// Sets the `length` bytes at `data` to zero; on Linux, the whole pages among them by dropping them
// (madvise MADV_DONTNEED: private anonymous memory, as every ArrayBuffer's, reads back as zero pages,
// which take no memory until written). Returns how many bytes were given back (0 where every byte
// was zeroed by a write instead).
size_t ReleasePages(uint8_t* data, size_t length);

}  // namespace redpp
