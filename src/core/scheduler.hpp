// Deferred work without Asio in the caller: run `task` after `delay` on an I/O thread.
// The implementation over the runtime's io_context is net::AsioScheduler; tests may use their
// own. A task must not block (post blocking work to a core::Worker).
#pragma once

#include <chrono>
#include <functional>

namespace callgate::core {

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  virtual void After(std::chrono::milliseconds delay, std::function<void()> task) = 0;
};

}  // namespace callgate::core
