// Test doubles and helpers for the calls module: a scheduler that runs tasks when a manual
// clock passes their time, a barrier on the database thread, and a way to wait for a ledger
// callback.
#pragma once

#include "calls/ledger.hpp"
#include "calls/migrations.hpp"
#include "core/clock.hpp"
#include "core/scheduler.hpp"
#include "store/database.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>

namespace callgate::calls::testing {

// Tasks run on the thread that calls Advance(), in order of due time, with the clock set to
// each task's due time; tasks they schedule run too if due before the target.
class ManualScheduler final : public core::Scheduler {
 public:
  explicit ManualScheduler(core::ManualClock& clock) : clock_(clock) {}

  void After(std::chrono::milliseconds delay, std::function<void()> task) override {
    std::lock_guard lock(mutex_);
    tasks_.emplace(Key{clock_.Now() + delay, next_seq_++}, std::move(task));
  }

  void Advance(std::chrono::milliseconds by) {
    const core::SystemTime target = clock_.Now() + by;
    while (true) {
      std::function<void()> task;
      {
        std::lock_guard lock(mutex_);
        if (tasks_.empty() || tasks_.begin()->first.due > target) break;
        const auto it = tasks_.begin();
        if (it->first.due > clock_.Now()) clock_.Set(it->first.due);
        task = std::move(it->second);
        tasks_.erase(it);
      }
      task();
    }
    if (clock_.Now() < target) clock_.Set(target);
  }

  std::size_t pending() const {
    std::lock_guard lock(mutex_);
    return tasks_.size();
  }

 private:
  struct Key {
    core::SystemTime due;
    std::uint64_t seq;
    bool operator<(const Key& other) const {
      return due != other.due ? due < other.due : seq < other.seq;
    }
  };
  core::ManualClock& clock_;
  mutable std::mutex mutex_;
  std::map<Key, std::function<void()>> tasks_;
  std::uint64_t next_seq_ = 0;
};

// Returns once every task queued on the database thread before it has run (tasks are FIFO).
inline void Drain(store::Database& database) {
  std::promise<void> done;
  ASSERT_TRUE(database.Post([&](sqlite3*) { done.set_value(); }));
  done.get_future().wait();
}

// Calls `op(callback)` and waits for the callback's value.
template <class T, class Op>
T Await(Op op) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  op([promise](T value) { promise->set_value(std::move(value)); });
  return future.get();
}

inline std::unique_ptr<store::Database> OpenDatabase(const std::string& path) {
  return store::Database::Open(path, Migrations());
}

}  // namespace callgate::calls::testing
