#include "audio/pipeline/echo_canceller.hpp"

#include <speex/speex_echo.h>
#include <speex/speex_preprocess.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace callgate::audio::pipeline {
namespace {

static_assert(std::is_same_v<spx_int16_t, std::int16_t>, "speexdsp sample type must be int16");

std::size_t Samples(int rate, std::chrono::milliseconds ms) {
  return static_cast<std::size_t>(static_cast<std::int64_t>(rate) * ms.count() / 1000);
}

}  // namespace

void EchoCanceller::DestroyEcho::operator()(SpeexEchoState_* state) const noexcept {
  speex_echo_state_destroy(state);
}
void EchoCanceller::DestroyPreprocess::operator()(SpeexPreprocessState_* state) const noexcept {
  speex_preprocess_state_destroy(state);
}

EchoCanceller::EchoCanceller(EchoCancellerOptions options)
    : options_(options), frame_(0), max_reference_(0) {
  if (options_.sample_rate < 8000 || options_.sample_rate > 48000) {
    throw std::invalid_argument("EchoCanceller: sample rate " +
                                std::to_string(options_.sample_rate) + " outside [8000, 48000]");
  }
  if (options_.frame.count() < 1 || options_.tail.count() < 1 ||
      options_.max_reference.count() < 1) {
    throw std::invalid_argument("EchoCanceller: frame, tail and max_reference must be positive");
  }
  frame_ = Samples(options_.sample_rate, options_.frame);
  const std::size_t tail = std::max(frame_, Samples(options_.sample_rate, options_.tail));
  max_reference_ = std::max(frame_, Samples(options_.sample_rate, options_.max_reference));

  echo_.reset(speex_echo_state_init(static_cast<int>(frame_), static_cast<int>(tail)));
  if (!echo_) throw std::runtime_error("EchoCanceller: speex_echo_state_init failed");
  int rate = options_.sample_rate;
  speex_echo_ctl(echo_.get(), SPEEX_ECHO_SET_SAMPLING_RATE, &rate);
  if (options_.residual_suppression) {
    preprocess_.reset(speex_preprocess_state_init(static_cast<int>(frame_), rate));
    if (!preprocess_) throw std::runtime_error("EchoCanceller: speex_preprocess_state_init failed");
    int off = 0;  // (VAD is off by default; setting it at all prints a warning)
    speex_preprocess_ctl(preprocess_.get(), SPEEX_PREPROCESS_SET_DENOISE, &off);
    speex_preprocess_ctl(preprocess_.get(), SPEEX_PREPROCESS_SET_AGC, &off);
    speex_preprocess_ctl(preprocess_.get(), SPEEX_PREPROCESS_SET_DEREVERB, &off);
    int suppress = options_.suppress_db;
    int suppress_active = options_.suppress_active_db;
    speex_preprocess_ctl(preprocess_.get(), SPEEX_PREPROCESS_SET_ECHO_SUPPRESS, &suppress);
    speex_preprocess_ctl(preprocess_.get(), SPEEX_PREPROCESS_SET_ECHO_SUPPRESS_ACTIVE,
                         &suppress_active);
    speex_preprocess_ctl(preprocess_.get(), SPEEX_PREPROCESS_SET_ECHO_STATE, echo_.get());
  }
  reference_ = SampleFifo(max_reference_ + frame_);
  near_.assign(frame_, 0);
  far_.assign(frame_, 0);
  clean_.assign(frame_, 0);
}

EchoCanceller::~EchoCanceller() = default;
EchoCanceller::EchoCanceller(EchoCanceller&&) noexcept = default;
EchoCanceller& EchoCanceller::operator=(EchoCanceller&&) noexcept = default;

void EchoCanceller::Playback(std::span<const std::int16_t> far_end) {
  if (far_end.size() > max_reference_) {
    stats_.reference_dropped_samples += far_end.size() - max_reference_;
    far_end = far_end.last(max_reference_);
  }
  if (reference_.size() + far_end.size() > max_reference_) {
    stats_.reference_dropped_samples +=
        reference_.Discard(reference_.size() + far_end.size() - max_reference_);
  }
  reference_.Push(far_end);
}

void EchoCanceller::ProcessFrame(std::vector<std::int16_t>& out) {
  const std::size_t got = reference_.Pop(far_);
  if (got < frame_) {
    std::fill(far_.begin() + static_cast<std::ptrdiff_t>(got), far_.end(), std::int16_t{0});
    ++stats_.reference_missing_frames;
  }
  speex_echo_cancellation(echo_.get(), near_.data(), far_.data(), clean_.data());
  if (preprocess_) speex_preprocess_run(preprocess_.get(), clean_.data());
  ++stats_.frames;
  out.insert(out.end(), clean_.begin(), clean_.end());
}

void EchoCanceller::Capture(std::span<const std::int16_t> near_end,
                            std::vector<std::int16_t>& out) {
  while (!near_end.empty()) {
    const std::size_t n = std::min(near_end.size(), frame_ - near_fill_);
    std::copy_n(near_end.begin(), n, near_.begin() + static_cast<std::ptrdiff_t>(near_fill_));
    near_fill_ += n;
    near_end = near_end.subspan(n);
    if (near_fill_ == frame_) {
      ProcessFrame(out);
      near_fill_ = 0;
    }
  }
}

void EchoCanceller::Flush(std::vector<std::int16_t>& out) {
  if (near_fill_ == 0) return;
  const std::size_t real = near_fill_;
  std::fill(near_.begin() + static_cast<std::ptrdiff_t>(near_fill_), near_.end(), std::int16_t{0});
  const std::size_t before = out.size();
  ProcessFrame(out);
  out.resize(before + real);
  near_fill_ = 0;
}

void EchoCanceller::Reset() {
  speex_echo_state_reset(echo_.get());
  reference_.Clear();
  near_fill_ = 0;
}

}  // namespace callgate::audio::pipeline
