#include "audio/vad.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

namespace callgate::audio {
namespace {

constexpr double kFloorDbfs = -120.0;

double EnergyToDbfs(double sum_squares, std::int64_t count) {
  if (count <= 0 || sum_squares <= 0.0) return kFloorDbfs;
  const double rms = std::sqrt(sum_squares / static_cast<double>(count));
  return std::max(kFloorDbfs, 20.0 * std::log10(rms / 32768.0));
}

int FramesFor(int ms, int frame_ms) {
  return std::max(1, (ms + frame_ms - 1) / frame_ms);
}

}  // namespace

double RmsDbfs(std::span<const std::int16_t> samples) {
  double sum = 0.0;
  for (std::int16_t s : samples)
    sum += static_cast<double>(s) * s;
  return EnergyToDbfs(sum, static_cast<std::int64_t>(samples.size()));
}

EnergyVad::EnergyVad(int sample_rate, VadOptions options) : options_(options) {
  if (sample_rate < 1000 || sample_rate > 384000) {
    throw std::invalid_argument("EnergyVad: sample rate " + std::to_string(sample_rate) +
                                " outside [1000, 384000]");
  }
  if (options.frame_ms <= 0 || options.start_ms <= 0 || options.end_ms <= 0) {
    throw std::invalid_argument("EnergyVad: frame_ms, start_ms and end_ms must be positive");
  }
  frame_samples_ = std::max(1, sample_rate * options.frame_ms / 1000);
  start_frames_ = FramesFor(options.start_ms, options.frame_ms);
  end_frames_ = FramesFor(options.end_ms, options.frame_ms);
}

std::vector<VadEvent> EnergyVad::Feed(std::span<const std::int16_t> samples) {
  std::vector<VadEvent> events;
  // A frame's part at a time, summed in integers (the compiler vectorises this; a double
  // accumulator chains one addition per sample). Exact: a frame's sum of squares stays far
  // below 2^53, so the double total is the same as summing sample by sample.
  std::size_t i = 0;
  while (i < samples.size()) {
    const std::size_t n =
        std::min(samples.size() - i, static_cast<std::size_t>(frame_samples_ - frame_fill_));
    std::int64_t energy = 0;
    for (std::size_t k = i; k < i + n; ++k) {
      const std::int32_t s = samples[k];
      energy += s * s;
    }
    frame_energy_ += static_cast<double>(energy);
    samples_fed_ += static_cast<std::int64_t>(n);
    frame_fill_ += static_cast<int>(n);
    i += n;
    if (frame_fill_ == frame_samples_) EndFrame(events);
  }
  return events;
}

void EnergyVad::EndFrame(std::vector<VadEvent>& events) {
  last_frame_dbfs_ = EnergyToDbfs(frame_energy_, frame_fill_);
  const bool loud = last_frame_dbfs_ >= options_.threshold_dbfs;
  if (loud == speaking_) {
    run_frames_ = 0;  // the run that could have changed the state is broken
  } else {
    if (run_frames_++ == 0) run_start_ = frame_start_;
    if (run_frames_ >= (speaking_ ? end_frames_ : start_frames_)) {
      speaking_ = !speaking_;
      events.push_back({speaking_ ? VadEvent::Type::kSpeechStart : VadEvent::Type::kSpeechEnd,
                        run_start_, samples_fed_});
      run_frames_ = 0;
    }
  }
  frame_start_ = samples_fed_;
  frame_fill_ = 0;
  frame_energy_ = 0.0;
}

void EnergyVad::Reset() {
  speaking_ = false;
  last_frame_dbfs_ = kFloorDbfs;
  samples_fed_ = 0;
  frame_start_ = 0;
  frame_fill_ = 0;
  frame_energy_ = 0.0;
  run_frames_ = 0;
  run_start_ = 0;
}

}  // namespace callgate::audio
