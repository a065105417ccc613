// Internal to callgate_audio_backends: real-time pacing for the endpoints that stand in for
// hardware (file and null). How many samples a device at `rate` would have produced or played
// between Start() and now, by the injected clock. A clock that goes backwards yields no new
// samples until it catches up. Not thread-safe (the endpoint's owner uses it).
#pragma once

#include "core/clock.hpp"

#include <chrono>
#include <cstdint>

namespace callgate::audio::backends::detail {

class Pacer {
 public:
  Pacer(const core::Clock& clock, int rate) : clock_(clock), rate_(rate) {}

  void Start() { start_ = clock_.Now(); }

  // Samples due since Start(): floor(elapsed * rate), exact for any elapsed time.
  std::int64_t Due() const {
    const auto elapsed =
        std::chrono::duration_cast<std::chrono::nanoseconds>(clock_.Now() - start_).count();
    if (elapsed <= 0) return 0;
    constexpr std::int64_t kNanos = 1'000'000'000;
    return (elapsed / kNanos) * rate_ + (elapsed % kNanos) * rate_ / kNanos;
  }

 private:
  const core::Clock& clock_;
  int rate_;
  core::SystemTime start_{};
};

}  // namespace callgate::audio::backends::detail
