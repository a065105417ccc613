// Time as an interface, so that webhook tolerances, signed-URL expiry, call lifecycles and
// retry backoff are tested exactly, without sleeping.
//
// SystemClock is real wall-clock time. ManualClock only moves when told to. ScaledClock runs
// `scale` times faster than real time from its creation and can also be jumped forward; the
// simulator uses it so a 2-minute call can take 2 seconds in a test. All are thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace callgate::core {

using SystemTime = std::chrono::system_clock::time_point;

class Clock {
 public:
  virtual ~Clock() = default;
  virtual SystemTime Now() const = 0;
  std::int64_t NowUnixSeconds() const {
    return std::chrono::duration_cast<std::chrono::seconds>(Now().time_since_epoch()).count();
  }
};

class SystemClock final : public Clock {
 public:
  SystemTime Now() const override { return std::chrono::system_clock::now(); }
};

class ManualClock final : public Clock {
 public:
  explicit ManualClock(SystemTime start = SystemTime{std::chrono::seconds(1'700'000'000)})
      : nanos_(start.time_since_epoch().count()) {}
  SystemTime Now() const override { return SystemTime{SystemTime::duration{nanos_.load()}}; }
  void Advance(std::chrono::nanoseconds by) {
    nanos_ += std::chrono::duration_cast<SystemTime::duration>(by).count();
  }
  void Set(SystemTime to) { nanos_ = to.time_since_epoch().count(); }

 private:
  std::atomic<SystemTime::rep> nanos_;
};

class ScaledClock final : public Clock {
 public:
  explicit ScaledClock(double scale = 1.0)
      : scale_(scale),
        start_real_(std::chrono::steady_clock::now()),
        start_wall_(std::chrono::system_clock::now()) {}
  SystemTime Now() const override {
    const auto real = std::chrono::steady_clock::now() - start_real_;
    const auto scaled =
        std::chrono::duration_cast<SystemTime::duration>(std::chrono::duration<double, std::nano>(
            static_cast<double>(
                std::chrono::duration_cast<std::chrono::nanoseconds>(real).count()) *
            scale_));
    return start_wall_ + scaled + SystemTime::duration{offset_.load()};
  }
  void Advance(std::chrono::nanoseconds by) {
    offset_ += std::chrono::duration_cast<SystemTime::duration>(by).count();
  }
  double scale() const { return scale_; }

 private:
  double scale_;
  std::chrono::steady_clock::time_point start_real_;
  SystemTime start_wall_;
  std::atomic<SystemTime::rep> offset_{0};
};

}  // namespace callgate::core
