#include "thread_pool.h"

#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace redpp {
namespace {

class Pool {
 public:
  void Run(int helpers, const std::function<void()>& work) {
    std::lock_guard<std::mutex> one_job(run_mutex_);
    {
      std::lock_guard<std::mutex> lock(m_);
      while (static_cast<int>(threads_.size()) < helpers) threads_.emplace_back([this] { Loop(); });
      job_ = &work;
      wanted_ = helpers;
      started_ = 0;
      running_ = 0;
      generation_++;
    }
    wake_.notify_all();
    work();
    std::unique_lock<std::mutex> lock(m_);
    done_.wait(lock, [&] { return started_ == wanted_ && running_ == 0; });
    job_ = nullptr;
    wanted_ = 0;
  }

 private:
  void Loop() {
    unsigned long long seen = 0;
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
      wake_.wait(lock, [&] { return generation_ != seen && started_ < wanted_; });
      seen = generation_;
      started_++;
      running_++;
      const std::function<void()>* job = job_;
      lock.unlock();
      (*job)();
      lock.lock();
      if (--running_ == 0 && started_ == wanted_) done_.notify_all();
    }
  }

  std::mutex run_mutex_;
  std::mutex m_;
  std::condition_variable wake_;
  std::condition_variable done_;
  std::vector<std::thread> threads_;
  const std::function<void()>* job_ = nullptr;
  unsigned long long generation_ = 0;
  int wanted_ = 0;
  int started_ = 0;
  int running_ = 0;
};

// Never destroyed: at exit its threads may be parked in wait(), and joining them from a static
// destructor would race the runtime's own teardown.
Pool& Instance() {
  static Pool* pool = new Pool();
  return *pool;
}

}  // namespace

void RunOnThreads(int threads, const std::function<void()>& work) {
  if (threads <= 1) {
    work();
    return;
  }
  Instance().Run(threads - 1, work);
}

}  // namespace redpp
