// A single thread that runs blocking tasks (SQLite, files) in order, off the I/O threads.
//
// The queue is bounded: Post() refuses work when `max_queue` tasks are waiting, so a slow disk
// turns into a clear "busy" answer instead of unbounded memory. Stop() runs what was queued, then
// joins; tasks posted after Stop() are refused. Thread-safe.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

namespace callgate::core {

class Worker {
 public:
  Worker(std::string name, std::size_t max_queue);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  bool Post(std::function<void()> task);
  void Stop();

 private:
  void Loop();

  std::string name_;
  std::size_t max_queue_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> tasks_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace callgate::core
