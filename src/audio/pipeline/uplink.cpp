#include "audio/pipeline/uplink.hpp"

#include "audio/codec.hpp"

#include <algorithm>
#include <stdexcept>
#include <string>

namespace callgate::audio::pipeline {
namespace {

// Whole samples of the format in `duration` (0 for none or less).
std::size_t SamplesIn(const AudioFormat& format, std::chrono::milliseconds duration) {
  if (duration.count() <= 0) return 0;
  return static_cast<std::size_t>(static_cast<std::int64_t>(format.sample_rate) * duration.count() /
                                  1000);
}

std::size_t ChunkSamples(const UplinkOptions& options) {
  if (options.chunk.count() < 1) {
    throw std::invalid_argument("Uplink: chunk must be at least 1 ms");
  }
  const std::size_t samples = SamplesIn(options.format, options.chunk);
  if (samples == 0) throw std::invalid_argument("Uplink: chunk holds no samples");
  return samples;
}

}  // namespace

Uplink::Uplink(UplinkOptions options)
    : options_(options),
      chunk_samples_(ChunkSamples(options_)),
      chunk_bytes_(chunk_samples_ * options_.format.BytesPerSample()),
      early_bytes_(std::min(chunk_bytes_ - 1, SamplesIn(options_.format, options_.early) *
                                                  options_.format.BytesPerSample())),
      max_pending_bytes_(0),
      resampler_(options_.capture_rate, options_.format.sample_rate, options_.resampler_quality) {
  const auto max_chunks = std::max<std::int64_t>(
      1, options_.max_pending.count() / std::max<std::int64_t>(1, options_.chunk.count()));
  max_pending_bytes_ = static_cast<std::size_t>(max_chunks) * chunk_bytes_;
  if (options_.echo) {
    if (options_.playback_rate <= 0) {
      throw std::invalid_argument("Uplink: echo cancellation needs the playback rate");
    }
    EchoCancellerOptions echo = *options_.echo;
    echo.sample_rate = options_.format.sample_rate;
    echo_.emplace(echo);
    reference_resampler_.emplace(options_.playback_rate, options_.format.sample_rate,
                                 options_.resampler_quality);
  }
  // Room for 100 ms blocks without growing; larger writes grow the scratch once.
  const std::size_t block = static_cast<std::size_t>(options_.format.sample_rate) / 10 + 64;
  resampled_.reserve(block);
  if (echo_) {
    cleaned_.reserve(block + echo_->frame_samples());
    reference_.reserve(block);
  }
  // Grows towards max_pending only if the owner falls behind.
  bytes_.reserve(2 * chunk_bytes_ + block * options_.format.BytesPerSample());
}

void Uplink::Write(std::span<const std::int16_t> capture) {
  stats_.captured_samples += capture.size();
  if (!echo_ && resampler_.from_rate() == resampler_.to_rate()) {
    Encode(capture);  // nothing to resample or cancel: no copy through the scratch
    return;
  }
  resampled_.clear();
  resampler_.ProcessAppend(capture, resampled_);
  if (echo_) {
    cleaned_.clear();
    echo_->Capture(resampled_, cleaned_);
    Encode(cleaned_);
  } else {
    Encode(resampled_);
  }
}

void Uplink::WriteReference(std::span<const std::int16_t> played) {
  if (!echo_) return;
  reference_.clear();
  reference_resampler_->ProcessAppend(played, reference_);
  echo_->Playback(reference_);
}

void Uplink::Encode(std::span<const std::int16_t> samples) {
  if (samples.empty()) return;
  final_chunk_ = false;
  if (read_ > 0) {  // keep the unread bytes (less than a chunk, normally) at the front
    bytes_.erase(bytes_.begin(), bytes_.begin() + static_cast<std::ptrdiff_t>(read_));
    read_ = 0;
  }
  const std::size_t old = bytes_.size();
  bytes_.resize(old + samples.size() * options_.format.BytesPerSample());
  EncodeTo(options_.format, samples, std::span(bytes_).subspan(old));
  stats_.encoded_samples += samples.size();
  const std::size_t complete = Pending() / chunk_bytes_;
  const std::size_t max_chunks = max_pending_bytes_ / chunk_bytes_;
  if (complete > max_chunks) {
    read_ += (complete - max_chunks) * chunk_bytes_;
    stats_.dropped_chunks += complete - max_chunks;
  }
}

std::span<const std::uint8_t> Uplink::NextChunk() {
  std::size_t n = 0;
  if (Pending() >= chunk_bytes_) {
    n = chunk_bytes_;
  } else if (early_bytes_ > 0 && Pending() > 0 && Pending() + early_bytes_ >= chunk_bytes_) {
    n = Pending();  // nearly a chunk: it ends on this tick rather than one tick later
  } else if (final_chunk_ && Pending() > 0) {
    n = Pending();
    final_chunk_ = false;
  } else {
    return {};
  }
  return Take(n);
}

std::span<const std::uint8_t> Uplink::TakeRest() {
  return Pending() == 0 ? std::span<const std::uint8_t>() : Take(Pending());
}

std::span<const std::uint8_t> Uplink::Take(std::size_t n) {
  const std::span<const std::uint8_t> chunk(bytes_.data() + read_, n);
  read_ += n;
  ++stats_.chunks;
  return chunk;
}

void Uplink::Finish() {
  const std::vector<std::int16_t> tail = resampler_.Flush();
  if (echo_) {
    cleaned_.clear();
    echo_->Capture(tail, cleaned_);
    echo_->Flush(cleaned_);
    Encode(cleaned_);
  } else {
    Encode(tail);
  }
  final_chunk_ = true;
}

}  // namespace callgate::audio::pipeline
