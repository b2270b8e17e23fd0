#include "pages.h"

#include <cstring>

#if defined(__linux__)
#include <sys/mman.h>
#include <unistd.h>
#endif

namespace redpp {

size_t ReleasePages(uint8_t* data, size_t length) {
#if defined(__linux__)
  const long page_size = sysconf(_SC_PAGESIZE);
  if (page_size > 0 && length >= 2 * static_cast<size_t>(page_size)) {
    const size_t page = static_cast<size_t>(page_size);
    const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
    const size_t head = (page - begin % page) % page;  // bytes before the first whole page
    const size_t whole = (length - head) / page * page;  // bytes in whole pages: one page or more, as length >= two
    uint8_t* first = data + head;
    // A mark at both ends that dropped pages lose: shared or file-backed memory would keep its contents
    // through MADV_DONTNEED, and then the zeros are written.
    first[0] = 1;
    first[whole - 1] = 1;
#if defined(MADV_NOHUGEPAGE)
    // Memory advised for huge pages (AdviseHugePages): khugepaged could fill a partly dropped 2 MiB
    // block back in whole; marked otherwise, the dropped pages stay dropped.
    madvise(first, whole, MADV_NOHUGEPAGE);
#endif
    if (madvise(first, whole, MADV_DONTNEED) == 0) {
      if (first[0] != 0 || first[whole - 1] != 0) {
        std::memset(data, 0, length);
        return 0;
      }
      std::memset(data, 0, head);
      std::memset(first + whole, 0, length - head - whole);
      return whole;
    }
  }
#endif
  std::memset(data, 0, length);
  return 0;
}

size_t AdviseHugePages(uint8_t* data, size_t length) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data);
  const uintptr_t first = (begin + kHugePage - 1) / kHugePage * kHugePage;
  const uintptr_t end = (begin + length) / kHugePage * kHugePage;
  if (end <= first) return 0;
  // Only a hint: a kernel without transparent huge pages answers EINVAL, and the memory stays as it was.
  if (madvise(reinterpret_cast<void*>(first), end - first, MADV_HUGEPAGE) == 0) return end - first;
#else
  (void)data;
  (void)length;
#endif
  return 0;
}

void MoveBytes(uint8_t* data, const ByteMove* moves, size_t count) {
  for (size_t i = 0; i < count; i++) std::memmove(data + moves[i].to, data + moves[i].from, moves[i].length);
}

}  // namespace redpp
