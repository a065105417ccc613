// Test doubles for forwarding: a transport that records requests and is answered by the test,
// and a scheduler whose timers the test fires.
#pragma once

#include "core/scheduler.hpp"
#include "webhook/forwarder.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace callgate::webhook::testing {

class FakeTransport final : public Transport {
 public:
  struct Call {
    std::string url;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;
    std::function<void(int, std::string)> done;
    std::string Header(std::string_view name) const {
      for (const auto& [key, value] : headers) {
        if (key == name) return value;
      }
      return {};
    }
  };
  void Post(std::string url, std::vector<std::pair<std::string, std::string>> headers,
            std::string body, std::function<void(int, std::string)> done) override {
    std::lock_guard lock(mutex_);
    calls_.push_back({std::move(url), std::move(headers), std::move(body), std::move(done)});
  }
  std::size_t count() const {
    std::lock_guard lock(mutex_);
    return calls_.size();
  }
  Call call(std::size_t i) const {
    std::lock_guard lock(mutex_);
    return calls_.at(i);
  }
  void Answer(std::size_t i, int status, std::string error = "") {
    std::function<void(int, std::string)> done;
    {
      std::lock_guard lock(mutex_);
      done = std::move(calls_.at(i).done);
    }
    ASSERT_TRUE(done) << "call " << i << " answered twice";
    done(status, std::move(error));
  }

 private:
  mutable std::mutex mutex_;
  std::vector<Call> calls_;
};

class ManualScheduler final : public core::Scheduler {
 public:
  void After(std::chrono::milliseconds delay, std::function<void()> task) override {
    std::lock_guard lock(mutex_);
    tasks_.emplace_back(delay, std::move(task));
  }
  std::vector<std::chrono::milliseconds> delays() const {
    std::lock_guard lock(mutex_);
    std::vector<std::chrono::milliseconds> out;
    for (const auto& task : tasks_)
      out.push_back(task.first);
    return out;
  }
  void RunAll() {
    std::vector<std::pair<std::chrono::milliseconds, std::function<void()>>> tasks;
    {
      std::lock_guard lock(mutex_);
      tasks.swap(tasks_);
    }
    for (auto& task : tasks)
      task.second();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<std::pair<std::chrono::milliseconds, std::function<void()>>> tasks_;
};

}  // namespace callgate::webhook::testing
