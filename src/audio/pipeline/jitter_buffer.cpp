#include "audio/pipeline/jitter_buffer.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace callgate::audio::pipeline {
namespace {

std::size_t Samples(int rate, std::chrono::milliseconds ms) {
  return static_cast<std::size_t>(static_cast<std::int64_t>(rate) * ms.count() / 1000);
}

}  // namespace

JitterBuffer::JitterBuffer(JitterBufferOptions options)
    : options_(options),
      prebuffer_samples_(0),
      max_samples_(0),
      fade_samples_(0),
      // Room for a few hundred ms before the first growth; grows to the largest backlog seen.
      fifo_(static_cast<std::size_t>(std::max(options.sample_rate, 1000) / 4)) {
  if (options_.sample_rate < 1000 || options_.sample_rate > 384000) {
    throw std::invalid_argument("JitterBuffer: sample rate " +
                                std::to_string(options_.sample_rate) + " outside [1000, 384000]");
  }
  if (options_.prebuffer.count() < 0 || options_.fade.count() < 0 ||
      options_.max_buffer < options_.prebuffer || options_.max_buffer.count() < 1) {
    throw std::invalid_argument(
        "JitterBuffer: need 0 <= prebuffer <= max_buffer, 0 < max_buffer, 0 <= fade");
  }
  prebuffer_samples_ = Samples(options_.sample_rate, options_.prebuffer);
  max_samples_ = std::max<std::size_t>(1, Samples(options_.sample_rate, options_.max_buffer));
  fade_samples_ = Samples(options_.sample_rate, options_.fade);
  fade_scratch_.resize(fade_samples_);
}

bool JitterBuffer::Push(std::span<const std::int16_t> samples, std::int64_t event_id) {
  if (!Accepts(event_id)) {
    CountStale(samples.size());
    return false;
  }
  if (dry_event_id_) {
    if (*dry_event_id_ == event_id) ++stats_.underruns;
    dry_event_id_.reset();
  }
  last_event_id_ = event_id;
  stats_.pushed_samples += samples.size();
  if (samples.empty()) return true;

  std::size_t dropped = 0;
  if (samples.size() > max_samples_) {
    dropped += samples.size() - max_samples_;
    samples = samples.last(max_samples_);
  }
  if (fifo_.size() + samples.size() > max_samples_) {
    dropped += fifo_.Discard(fifo_.size() + samples.size() - max_samples_);
  }
  if (dropped > 0) {
    stats_.overflow_samples += dropped;
    ++stats_.overflow_events;
  }
  fifo_.Push(samples);
  return true;
}

void JitterBuffer::CountStale(std::size_t samples) {
  ++stats_.stale_events;
  stats_.stale_samples += samples;
}

void JitterBuffer::Read(std::span<std::int16_t> out) {
  std::size_t pos = 0;
  if (!playing_ && !fifo_.empty()) {
    // The playout delay runs from the first queued sample, in the speaker's samples; it may end
    // inside this block, so start exactly there.
    const std::size_t wait = draining() || waited_samples_ >= prebuffer_samples_
                                 ? 0
                                 : prebuffer_samples_ - waited_samples_;
    if (wait < out.size()) {
      std::fill_n(out.begin(), wait, std::int16_t{0});
      stats_.silence_samples += wait;
      pos = wait;
      playing_ = true;
      waited_samples_ = 0;
    }
  }
  std::size_t got = 0;
  if (playing_) {
    got = fifo_.Pop(out.subspan(pos));
    stats_.played_samples += got;
    if (pos + got < out.size()) {
      playing_ = false;
      ++stats_.run_dry;
      dry_event_id_ = last_event_id_;
    }
  }
  const std::size_t silence = out.size() - pos - got;
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(pos + got), out.end(), std::int16_t{0});
  stats_.silence_samples += silence;
  if (!playing_) waited_samples_ = fifo_.empty() ? 0 : waited_samples_ + silence;
  CheckDrained();
}

void JitterBuffer::Interrupt(std::int64_t event_id) {
  last_interrupt_id_ = last_interrupt_id_ ? std::max(*last_interrupt_id_, event_id) : event_id;
  ++stats_.interruptions;
  const std::size_t keep = playing_ ? std::min(fade_samples_, fifo_.size()) : 0;
  const std::span<std::int16_t> tail(fade_scratch_.data(), keep);
  fifo_.Pop(tail);
  // A linear ramp from (almost) the current level to (almost) zero: no step, no click.
  for (std::size_t k = 0; k < keep; ++k) {
    tail[k] = static_cast<std::int16_t>(static_cast<std::int64_t>(tail[k]) *
                                        static_cast<std::int64_t>(keep - k) /
                                        static_cast<std::int64_t>(keep + 1));
  }
  stats_.flushed_samples += fifo_.size();
  fifo_.Clear();
  fifo_.Push(tail);
  waited_samples_ = 0;
  last_event_id_.reset();
  dry_event_id_.reset();
  CheckDrained();
}

void JitterBuffer::DrainThen(std::function<void()> on_drained) {
  on_drained_ = std::move(on_drained);
  CheckDrained();
}

void JitterBuffer::CheckDrained() {
  if (!on_drained_ || !fifo_.empty()) return;
  std::function<void()> callback = std::move(on_drained_);
  on_drained_ = nullptr;
  callback();
}

std::chrono::microseconds JitterBuffer::buffered() const {
  return std::chrono::microseconds(static_cast<std::int64_t>(fifo_.size()) * 1'000'000 /
                                   options_.sample_rate);
}

}  // namespace callgate::audio::pipeline
