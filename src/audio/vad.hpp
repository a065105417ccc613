// An energy-based voice activity detector: is someone speaking in this stream of samples?
//
// The stream is cut into frames of `frame_ms`; a frame is loud when its RMS level, in dBFS, is
// at or above `threshold_dbfs` (0 dBFS = RMS of a full-scale square wave, 32768; a full-scale
// sine is about -3 dBFS). Hangover makes the decision stable: speech starts after `start_ms` of
// consecutive loud frames and ends after `end_ms` of consecutive quiet frames, so a click does
// not start speech and a pause between words does not end it.
//
// Each event carries two stream positions, counted in samples from the first sample fed:
// `sample_offset`, where the transition happened (the first loud frame of the run that started
// speech; the first quiet frame of the run that ended it), and `decided_at`, the position at
// which the detector became sure (sample_offset plus the hangover). Events alternate, starting
// with kSpeechStart. A stream that ends while speaking produces no kSpeechEnd: check speaking().
//
// Pure and deterministic: no clock, no allocation beyond the returned vector and one partial
// frame. Not thread-safe (one stream, one user). Errors: the constructor throws
// std::invalid_argument for a sample rate outside [1000, 384000] or non-positive durations.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace callgate::audio {

struct VadOptions {
  double threshold_dbfs = -45.0;
  int frame_ms = 10;
  int start_ms = 60;
  int end_ms = 500;
};

struct VadEvent {
  enum class Type { kSpeechStart, kSpeechEnd };
  Type type;
  std::int64_t sample_offset;
  std::int64_t decided_at;

  friend bool operator==(const VadEvent&, const VadEvent&) = default;
};

class EnergyVad {
 public:
  explicit EnergyVad(int sample_rate, VadOptions options = {});

  // Feeds the next samples of the stream; returns the transitions decided within them. Samples
  // that do not fill a frame are kept for the next call.
  std::vector<VadEvent> Feed(std::span<const std::int16_t> samples);

  bool speaking() const { return speaking_; }
  // Level of the last complete frame; -120 for digital silence and before the first frame.
  double last_frame_dbfs() const { return last_frame_dbfs_; }
  std::int64_t samples_fed() const { return samples_fed_; }
  int frame_samples() const { return frame_samples_; }

  // Forget the stream: positions restart at 0, not speaking.
  void Reset();

 private:
  void EndFrame(std::vector<VadEvent>& events);

  VadOptions options_;
  int frame_samples_;
  int start_frames_;
  int end_frames_;

  bool speaking_ = false;
  double last_frame_dbfs_ = -120.0;
  std::int64_t samples_fed_ = 0;
  std::int64_t frame_start_ = 0;  // stream position of the frame being filled
  int frame_fill_ = 0;
  double frame_energy_ = 0.0;  // sum of squares in the frame being filled
  int run_frames_ = 0;         // consecutive frames contradicting the current state
  std::int64_t run_start_ = 0;
};

// RMS level of `samples` in dBFS (0 dBFS = 32768 RMS); -120 for silence or no samples.
double RmsDbfs(std::span<const std::int16_t> samples);

}  // namespace callgate::audio
