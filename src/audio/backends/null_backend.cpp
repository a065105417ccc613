#include "audio/backends/null_backend.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace callgate::audio::backends {

int CheckEndpointRate(int rate) {
  if (rate < 1000 || rate > 384000) {
    throw std::invalid_argument("audio endpoint sample rate " + std::to_string(rate) +
                                " outside [1000, 384000]");
  }
  return rate;
}

NullInput::NullInput(int sample_rate, const core::Clock& clock)
    : rate_(CheckEndpointRate(sample_rate)), pacer_(clock, sample_rate) {}

std::string NullInput::Describe() const {
  return "null @ " + std::to_string(rate_) + " Hz";
}

std::optional<BackendError> NullInput::Start() {
  if (!started_) {
    pacer_.Start();
    delivered_ = 0;
    started_ = true;
  }
  return std::nullopt;
}

std::size_t NullInput::Read(std::span<std::int16_t> out) {
  if (!started_) return 0;
  const auto due = static_cast<std::uint64_t>(pacer_.Due());
  const std::size_t n =
      due > delivered_ ? std::min<std::uint64_t>(out.size(), due - delivered_) : 0;
  std::fill_n(out.begin(), n, std::int16_t{0});
  delivered_ += n;
  return n;
}

NullOutput::NullOutput(int sample_rate, const core::Clock& clock)
    : rate_(CheckEndpointRate(sample_rate)), pacer_(clock, sample_rate) {}

std::string NullOutput::Describe() const {
  return "null @ " + std::to_string(rate_) + " Hz";
}

std::optional<BackendError> NullOutput::Start() {
  if (!started_) {
    pacer_.Start();
    written_ = 0;
    started_ = true;
  }
  return std::nullopt;
}

std::size_t NullOutput::WritableFrames() {
  if (!started_) return 0;
  const auto due = static_cast<std::uint64_t>(pacer_.Due());
  return due > written_ ? static_cast<std::size_t>(due - written_) : 0;
}

std::size_t NullOutput::Write(std::span<const std::int16_t> samples) {
  if (!started_) return 0;
  written_ += samples.size();
  return samples.size();
}

}  // namespace callgate::audio::backends
