// A core::Clock over std::chrono::steady_clock, for pacing file and null endpoints in real time
// (and the device stall watchdog): unlike SystemClock it never jumps when the wall clock is set.
// Its Now() is only meaningful as a difference between two readings. Thread-safe.
#pragma once

#include "core/clock.hpp"

#include <chrono>

namespace callgate::audio::backends {

class MonotonicClock final : public core::Clock {
 public:
  core::SystemTime Now() const override {
    return core::SystemTime{std::chrono::duration_cast<core::SystemTime::duration>(
        std::chrono::steady_clock::now().time_since_epoch())};
  }
};

}  // namespace callgate::audio::backends
