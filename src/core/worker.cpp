#include "core/worker.hpp"

#include <pthread.h>
#include <spdlog/spdlog.h>

#include <exception>

namespace callgate::core {

Worker::Worker(std::string name, std::size_t max_queue)
    : name_(std::move(name)), max_queue_(max_queue), thread_([this] { Loop(); }) {}

Worker::~Worker() {
  Stop();
}

bool Worker::Post(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || tasks_.size() >= max_queue_) return false;
    tasks_.push_back(std::move(task));
  }
  wake_.notify_one();
  return true;
}

void Worker::Stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Worker::Loop() {
  // Named for top -H, perf and gdb (Linux keeps 15 characters).
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  while (true) {
    std::function<void()> task;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return stopping_ || !tasks_.empty(); });
      if (tasks_.empty()) return;  // stopping and drained
      task = std::move(tasks_.front());
      tasks_.pop_front();
    }
    try {
      task();
    } catch (const std::exception& e) {
      spdlog::error("worker {}: task failed: {}", name_, e.what());
    }
  }
}

}  // namespace callgate::core
