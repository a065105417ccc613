#include "audio/pipeline/downlink.hpp"

#include "audio/codec.hpp"

namespace callgate::audio::pipeline {

Downlink::Downlink(DownlinkOptions options)
    : options_(options),
      resampler_(options_.format.sample_rate, options_.playback_rate, options_.resampler_quality),
      jitter_(JitterBufferOptions{.sample_rate = options_.playback_rate,
                                  .prebuffer = options_.prebuffer,
                                  .max_buffer = options_.max_buffer,
                                  .fade = options_.interrupt_fade}) {
  // Room for a 250 ms event without growing.
  decoded_.reserve(static_cast<std::size_t>(options_.format.sample_rate) / 4 + 1);
  resampled_.reserve(static_cast<std::size_t>(options_.playback_rate) / 4 + 64);
}

bool Downlink::Push(std::span<const std::uint8_t> bytes, std::int64_t event_id) {
  if (!jitter_.Accepts(event_id)) {
    const std::uint64_t samples = bytes.size() / options_.format.BytesPerSample();
    jitter_.CountStale(
        static_cast<std::size_t>(samples * static_cast<std::uint64_t>(options_.playback_rate) /
                                 static_cast<std::uint64_t>(options_.format.sample_rate)));
    return false;
  }
  received_bytes_ += bytes.size();
  last_event_id_ = event_id;

  if (options_.format.encoding == AudioFormat::Encoding::kMulaw) {
    decoded_.resize(bytes.size());
    DecodeTo(options_.format, bytes, decoded_);
  } else {
    const std::size_t total = bytes.size() + (carry_ ? 1 : 0);
    decoded_.resize(total / 2);
    std::size_t first = 0;
    if (carry_ && !bytes.empty()) {
      const auto bits = static_cast<std::uint16_t>(*carry_ | (bytes[0] << 8));
      decoded_[0] = static_cast<std::int16_t>(bits);
      carry_.reset();
      bytes = bytes.subspan(1);
      first = 1;
    }
    const std::size_t whole = bytes.size() / 2;
    DecodeTo(options_.format, bytes.first(whole * 2), std::span(decoded_).subspan(first, whole));
    if (bytes.size() % 2 != 0) carry_ = bytes.back();
  }

  resampled_.clear();
  resampler_.ProcessAppend(decoded_, resampled_);
  return jitter_.Push(resampled_, event_id);
}

void Downlink::Interrupt(std::int64_t event_id) {
  resampler_.Reset();
  carry_.reset();
  jitter_.Interrupt(event_id);
}

void Downlink::Read(std::span<std::int16_t> out) {
  jitter_.Read(out);
}

void Downlink::DrainThen(std::function<void()> on_drained) {
  const std::vector<std::int16_t> tail = resampler_.Flush();
  if (!tail.empty() && jitter_.Accepts(last_event_id_)) jitter_.Push(tail, last_event_id_);
  jitter_.DrainThen(std::move(on_drained));
}

}  // namespace callgate::audio::pipeline
