// Acoustic echo cancellation for a microphone that hears the loudspeaker: removes the agent's
// own voice from the capture so the agent does not hear (and answer, or get interrupted by)
// itself. speexdsp's MDF adaptive filter (speex_echo_*) followed, optionally, by speexdsp's
// residual echo suppressor (speex_preprocess with an echo state; its noise suppression, AGC and
// VAD stay off so the user's voice is not otherwise altered).
//
// Both signals are mono int16 at `sample_rate`. Playback() is given what is being sent to the
// speaker (the far end, the reference); Capture() what the microphone picked up (the near end).
// The two meet in frames of `frame` (10 ms): each captured frame is paired with the oldest
// queued reference frame (silence when the queue is empty; counted). The echo of a reference
// sample must therefore reach Capture() after that sample reached Playback(), and within
// `tail`: call Playback() with each block as it is handed to the output endpoint, and Capture()
// with the capture as it is read, in the same tick. The queued reference is bounded by
// `max_reference`; older reference is dropped (counted).
//
// Capture() appends the cleaned samples to `out` whole frames at a time (up to a frame of
// latency); Flush() processes the partial frame padded with silence and appends only its real
// samples. Owns its speexdsp states; move-only; not thread-safe (one owner). Steady state
// allocates nothing. Errors: the constructor throws std::invalid_argument for a rate outside
// [8000, 48000] or non-positive durations, std::runtime_error if speexdsp cannot allocate.
#pragma once

#include "audio/pipeline/sample_fifo.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

struct SpeexEchoState_;
struct SpeexPreprocessState_;

namespace callgate::audio::pipeline {

struct EchoCancellerOptions {
  int sample_rate = 16000;
  std::chrono::milliseconds frame{10};
  std::chrono::milliseconds tail{200};  // longest echo path (delay + reverberation) cancelled
  bool residual_suppression = true;     // speex_preprocess echo suppression after the filter
  int suppress_db = -40;                // residual echo attenuation, far end only
  int suppress_active_db = -15;         // ... while the near end talks too
  std::chrono::milliseconds max_reference{500};
};

struct EchoCancellerStats {
  std::uint64_t frames = 0;                    // captured frames processed
  std::uint64_t reference_missing_frames = 0;  // processed with less than a frame of reference
  std::uint64_t reference_dropped_samples = 0;
};

class EchoCanceller {
 public:
  explicit EchoCanceller(EchoCancellerOptions options);
  ~EchoCanceller();
  EchoCanceller(EchoCanceller&&) noexcept;
  EchoCanceller& operator=(EchoCanceller&&) noexcept;
  EchoCanceller(const EchoCanceller&) = delete;
  EchoCanceller& operator=(const EchoCanceller&) = delete;

  void Playback(std::span<const std::int16_t> far_end);
  void Capture(std::span<const std::int16_t> near_end, std::vector<std::int16_t>& out);
  void Flush(std::vector<std::int16_t>& out);
  // Forgets the adaptation and the queued signals.
  void Reset();

  std::size_t frame_samples() const { return frame_; }
  const EchoCancellerStats& stats() const { return stats_; }
  const EchoCancellerOptions& options() const { return options_; }

 private:
  struct DestroyEcho {
    void operator()(SpeexEchoState_* state) const noexcept;
  };
  struct DestroyPreprocess {
    void operator()(SpeexPreprocessState_* state) const noexcept;
  };

  void ProcessFrame(std::vector<std::int16_t>& out);

  EchoCancellerOptions options_;
  std::size_t frame_;
  std::size_t max_reference_;
  std::unique_ptr<SpeexEchoState_, DestroyEcho> echo_;
  std::unique_ptr<SpeexPreprocessState_, DestroyPreprocess> preprocess_;
  SampleFifo reference_;
  std::vector<std::int16_t> near_;  // the frame being filled; near_fill_ samples so far
  std::size_t near_fill_ = 0;
  std::vector<std::int16_t> far_;  // one frame of reference
  std::vector<std::int16_t> clean_;
  EchoCancellerStats stats_;
};

}  // namespace callgate::audio::pipeline
