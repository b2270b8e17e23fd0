// A process-wide pool of CPU threads that outlive a call. Starting threads per call cost more than the
// hashing of a mid-sized layer: their stacks and first allocations fault in fresh memory each time.
#pragma once

#include <functional>

namespace redpp {

// Runs `work` on `threads` threads, the caller being one of them, and returns when every copy has
// returned. One job runs at a time; a second caller waits for the first to finish.
void RunOnThreads(int threads, const std::function<void()>& work);

}  // namespace redpp
