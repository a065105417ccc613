// core::Scheduler over the runtime's io_context (one steady_timer per task).
#pragma once

#include "core/scheduler.hpp"

namespace callgate::net {

class Runtime;

class AsioScheduler final : public core::Scheduler {
 public:
  explicit AsioScheduler(Runtime& runtime) : runtime_(runtime) {}
  void After(std::chrono::milliseconds delay, std::function<void()> task) override;

 private:
  Runtime& runtime_;
};

}  // namespace callgate::net
