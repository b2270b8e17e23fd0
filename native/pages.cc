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
    const size_t pages = (length - head) / page * page;
    uint8_t* first = data + head;  // pages >= one page, as length >= two
    // A mark at both ends that dropped pages lose: shared or file-backed memory would keep its contents
    // through MADV_DONTNEED, and then the zeros are written.
    first[0] = 1;
    first[pages - 1] = 1;
    if (madvise(first, pages, MADV_DONTNEED) == 0) {
      if (first[0] != 0 || first[pages - 1] != 0) {
        std::memset(data, 0, length);
        return 0;
      }
      std::memset(data, 0, head);
      std::memset(first + pages, 0, length - head - pages);
      return pages;
    }
  }
#endif
  std::memset(data, 0, length);
  return 0;
}

}  // namespace redpp
