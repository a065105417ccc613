// The `null` endpoints: NullInput produces digital silence and NullOutput discards what it is
// given, both paced in real time by the injected clock, so a headless session behaves like one
// with a microphone and speakers (the uplink sends silence at the real rate; the downlink's
// jitter buffer is drained at the real rate, so "played out" means what it would with a
// speaker). No allocation, no I/O; threading and errors as in backend.hpp (they never fail).
#pragma once

#include "audio/backends/backend.hpp"
#include "audio/backends/pacing.hpp"
#include "core/clock.hpp"

namespace callgate::audio::backends {

class NullInput final : public AudioInput {
 public:
  // Throws std::invalid_argument for a rate outside [1000, 384000].
  NullInput(int sample_rate, const core::Clock& clock);

  std::string_view kind() const override { return "null"; }
  std::string Describe() const override;
  int sample_rate() const override { return rate_; }
  std::optional<BackendError> Start() override;
  void Stop() override { started_ = false; }
  std::size_t Read(std::span<std::int16_t> out) override;
  EndpointStats stats() const override { return {.frames = delivered_}; }

 private:
  int rate_;
  detail::Pacer pacer_;
  std::uint64_t delivered_ = 0;
};

class NullOutput final : public AudioOutput {
 public:
  // Throws std::invalid_argument for a rate outside [1000, 384000].
  NullOutput(int sample_rate, const core::Clock& clock);

  std::string_view kind() const override { return "null"; }
  std::string Describe() const override;
  int sample_rate() const override { return rate_; }
  std::optional<BackendError> Start() override;
  void Stop() override { started_ = false; }
  std::size_t WritableFrames() override;
  std::size_t Write(std::span<const std::int16_t> samples) override;
  EndpointStats stats() const override { return {.frames = written_}; }

 private:
  int rate_;
  detail::Pacer pacer_;
  std::uint64_t written_ = 0;
};

// Shared by the endpoints that take a rate: [1000, 384000] or std::invalid_argument.
int CheckEndpointRate(int rate);

}  // namespace callgate::audio::backends
