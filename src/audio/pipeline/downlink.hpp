// The agent's side of a conversation: `audio` events in, speaker samples out.
//
//   Push(bytes, event_id): the base64-decoded audio_base_64 of an `audio` event, in the
//     agent_output_audio_format -> Decode (PCM16 LE / mu-law) -> Resampler (speexdsp) to the
//     playback rate -> JitterBuffer
//   Read(out): the speaker's next samples (silence when there is nothing to play)
//
// Usage: on an `audio` event, Push(decoded_bytes, event_id); on an `interruption` event,
// Interrupt(event_id); on each tick, Read() what the output endpoint wants. To end after the
// agent's last words (end_call), DrainThen(callback), keep ticking until the callback runs,
// then wait for the output endpoint's queue and latency before closing it.
//
// Push() does all the per-sample work (decode, resample) when the event arrives, so the samples
// are in the playback buffer when Push() returns; stale events (event_id <= the last
// interruption's) are dropped before decoding. A PCM event with an odd number of bytes keeps
// its last byte for the next event. Interrupt() also resets the resampler, so nothing of the
// interrupted audio leaks into the next reply. Jitter-buffer semantics, statistics and bounds:
// jitter_buffer.hpp.
//
// Pure DSP, no threads, not thread-safe (one owner, e.g. the session's strand). Steady state
// allocates nothing once the scratch buffers have grown to the largest event. Errors: the
// constructor throws std::invalid_argument for rates outside the Resampler's range or invalid
// jitter options.
#pragma once

#include "audio/format.hpp"
#include "audio/pipeline/defaults.hpp"
#include "audio/pipeline/jitter_buffer.hpp"
#include "audio/resampler.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <vector>

namespace callgate::audio::pipeline {

struct DownlinkOptions {
  AudioFormat format;  // the agent's agent_output_audio_format
  int playback_rate = 16000;
  std::chrono::milliseconds prebuffer = kDefaultPrebuffer;
  std::chrono::milliseconds max_buffer = kDefaultMaxBuffer;
  std::chrono::milliseconds interrupt_fade = kDefaultInterruptFade;
  int resampler_quality = kDefaultResamplerQuality;
};

class Downlink {
 public:
  explicit Downlink(DownlinkOptions options);

  // Returns false when the event was dropped as stale.
  bool Push(std::span<const std::uint8_t> bytes, std::int64_t event_id);
  void Interrupt(std::int64_t event_id);
  void Read(std::span<std::int16_t> out);
  // Also pushes out the few samples the resampler still holds, so the very end is played.
  void DrainThen(std::function<void()> on_drained);

  const JitterBuffer& jitter() const { return jitter_; }
  // Prefetches the buffered samples the next Read() touches.
  void Warm() const { jitter_.Warm(); }
  const JitterBufferStats& stats() const { return jitter_.stats(); }
  const AudioFormat& format() const { return options_.format; }
  int playback_rate() const { return options_.playback_rate; }
  // Wire bytes received in accepted events.
  std::uint64_t received_bytes() const { return received_bytes_; }

 private:
  DownlinkOptions options_;
  Resampler resampler_;
  JitterBuffer jitter_;
  std::vector<std::int16_t> decoded_;    // scratch
  std::vector<std::int16_t> resampled_;  // scratch
  std::optional<std::uint8_t> carry_;    // odd PCM byte waiting for its partner
  std::int64_t last_event_id_ = 0;
  std::uint64_t received_bytes_ = 0;
};

}  // namespace callgate::audio::pipeline
