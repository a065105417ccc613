// Sample-rate conversion for mono int16 audio, over the speexdsp resampler.
//
// Used to bring agent audio (8..48 kHz) to a device's native rate and capture audio back to the
// session's input rate, and by SpeechSynthesizer/EncodeMp3. A Resampler is a stream: Process()
// keeps the filter state between calls, so feeding a signal in 50 ms chunks gives the same
// output as feeding it at once. The output is time-aligned with the input (the filter's start-up
// delay is skipped); Flush() ends the stream, returns the tail the filter still holds, and
// leaves the Resampler ready for a new stream. Over a whole stream the output has
// round(input_samples * to_rate / from_rate) samples. When the rates are equal Process() copies
// and no filter is built.
//
// Ownership: a Resampler owns its speexdsp state; it is move-only. A moved-from Resampler may
// only be destroyed or assigned to. Thread safety: none inside one Resampler (one stream, one
// user at a time); distinct Resamplers are independent.
// Errors: the constructor throws std::invalid_argument for a rate outside [kMinRate, kMaxRate]
// or a quality outside [0, 10]; Process()/Flush() throw std::runtime_error if speexdsp reports
// an error (not expected with valid arguments).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

struct SpeexResamplerState_;

namespace callgate::audio {

class Resampler {
 public:
  static constexpr int kDefaultQuality = 5;  // speexdsp's VoIP default
  static constexpr int kMinRate = 1000;
  static constexpr int kMaxRate = 384000;

  Resampler(int from_rate, int to_rate, int quality = kDefaultQuality);
  ~Resampler();
  Resampler(Resampler&& other) noexcept;
  Resampler& operator=(Resampler&& other) noexcept;
  Resampler(const Resampler&) = delete;
  Resampler& operator=(const Resampler&) = delete;

  std::vector<std::int16_t> Process(std::span<const std::int16_t> input);
  std::vector<std::int16_t> Flush();

  // Process(), appending to `out` instead of returning a new vector: with enough capacity in
  // `out` this allocates nothing, for per-chunk use in real-time pipelines.
  void ProcessAppend(std::span<const std::int16_t> input, std::vector<std::int16_t>& out);
  // Forgets the stream without returning its tail (e.g. after an interruption): the next
  // Process() starts a new, time-aligned stream.
  void Reset();

  int from_rate() const { return from_rate_; }
  int to_rate() const { return to_rate_; }
  int quality() const { return quality_; }

 private:
  struct Destroy {
    void operator()(SpeexResamplerState_* state) const noexcept;
  };

  // Runs `input` through the filter, appending to `out`; does not count it as stream input.
  void Run(std::span<const std::int16_t> input, std::vector<std::int16_t>& out);
  void Restart();

  int from_rate_;
  int to_rate_;
  int quality_;
  std::unique_ptr<SpeexResamplerState_, Destroy> state_;  // null when the rates are equal
  std::int64_t stream_in_ = 0;   // samples given to Process() since the stream began
  std::int64_t stream_out_ = 0;  // samples returned since the stream began
};

// One-shot: Process(samples) followed by Flush().
std::vector<std::int16_t> Resample(std::span<const std::int16_t> samples, int from_rate,
                                   int to_rate, int quality = Resampler::kDefaultQuality);

}  // namespace callgate::audio
