// The user's side of a conversation: microphone samples in, `user_audio_chunk` payloads out.
//
//   capture (int16, capture_rate) -> Resampler (speexdsp) to the format's rate
//     -> [EchoCanceller, with the speaker's signal as reference] -> Encode (PCM16 LE / mu-law)
//     -> fixed-size chunks of `chunk` (50 ms) of wire bytes, ready to be base64'd.
//
// Usage on each tick of the session:
//   uplink.Write(captured);
//   for (auto chunk = uplink.NextChunk(); !chunk.empty(); chunk = uplink.NextChunk())
//     send {"user_audio_chunk": base64(chunk)};
// Every chunk has exactly chunk_bytes() bytes, except the last one after Finish(), which
// carries the remainder, and, with UplinkOptions::early, a chunk nearly complete (see there). The
// stream is continuous across Write() calls of any size (the resampler keeps its state), and when
// the capture rate equals the format's rate and echo cancellation is off the bytes are exactly the
// encoded input samples.
//
// Echo cancellation, when `echo` is set, runs at the format's rate on the resampled capture;
// WriteReference() takes what the speaker is playing (at `playback_rate`) and resamples it to
// that rate for the canceller. Call it with each block given to the output endpoint, before
// the Write() of the same tick (see echo_canceller.hpp).
//
// Bounds: at most `max_pending` of complete chunks wait to be taken by NextChunk(); beyond it
// the oldest are dropped and counted (the owner is not keeping up; stale audio is worse than
// none). The span NextChunk() returns points into the Uplink and is valid until the next
// non-const call. Pure DSP, no threads, not thread-safe (one owner). Steady state allocates
// nothing once its scratch buffers have grown to the largest Write(). Errors: the constructor
// throws std::invalid_argument for rates outside the Resampler's range, a chunk shorter than
// 1 ms or with no samples at the format's rate, or a missing playback_rate with echo set.
#pragma once

#include "audio/format.hpp"
#include "audio/pipeline/defaults.hpp"
#include "audio/pipeline/echo_canceller.hpp"
#include "audio/resampler.hpp"
#include "core/prefetch.hpp"

#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

namespace callgate::audio::pipeline {

struct UplinkOptions {
  int capture_rate = 16000;
  AudioFormat format;  // the agent's user_input_audio_format
  std::chrono::milliseconds chunk = kDefaultChunk;
  int resampler_quality = kDefaultResamplerQuality;
  // Echo cancellation (its sample_rate is ignored: it runs at the format's rate).
  std::optional<EchoCancellerOptions> echo;
  int playback_rate = 0;  // rate of WriteReference(); required with echo
  std::chrono::milliseconds max_pending = kDefaultMaxPendingUplink;
  // 0: every chunk is chunk long. Otherwise NextChunk() also returns the rest, as a short chunk,
  // when it is at least chunk - early: an owner that ticks in steps dividing the chunk sets half
  // a step, so that a chunk completed a little after a tick (capture callbacks, a late tick)
  // goes out on that tick instead of waiting a whole step for the next one.
  std::chrono::milliseconds early{0};
};

struct UplinkStats {
  std::uint64_t captured_samples = 0;  // at the capture rate
  std::uint64_t encoded_samples = 0;   // at the format's rate
  std::uint64_t chunks = 0;            // returned by NextChunk()
  std::uint64_t dropped_chunks = 0;    // over max_pending
};

class Uplink {
 public:
  explicit Uplink(UplinkOptions options);

  void Write(std::span<const std::int16_t> capture);
  void WriteReference(std::span<const std::int16_t> played);
  // The next complete chunk, or an empty span.
  std::span<const std::uint8_t> NextChunk();
  // Everything encoded and not yet returned, as one (short) chunk; empty when there is none. An
  // owner that ticks in steps dividing the chunk calls it once, on its first tick, so that the
  // chunks after it end on its ticks.
  std::span<const std::uint8_t> TakeRest();
  // Ends the stream: pushes out what the resampler and the canceller hold and makes the
  // remainder (shorter than a chunk) the final chunk. Write() may start a new stream after.
  void Finish();

  std::size_t chunk_bytes() const { return chunk_bytes_; }
  std::size_t chunk_samples() const { return chunk_samples_; }
  const AudioFormat& format() const { return options_.format; }
  const UplinkStats& stats() const { return stats_; }
  const EchoCanceller* echo_canceller() const { return echo_ ? &*echo_ : nullptr; }
  // Prefetches where the next Write() appends its bytes.
  void Warm() const { core::Prefetch(bytes_.data() + bytes_.size()); }

 private:
  void Encode(std::span<const std::int16_t> samples);
  // The next `n` pending bytes (n <= Pending()) as a chunk.
  std::span<const std::uint8_t> Take(std::size_t n);
  std::size_t Pending() const { return bytes_.size() - read_; }

  UplinkOptions options_;
  std::size_t chunk_samples_;
  std::size_t chunk_bytes_;
  std::size_t early_bytes_;  // UplinkOptions::early in bytes (0: off)
  std::size_t max_pending_bytes_;
  Resampler resampler_;
  std::optional<EchoCanceller> echo_;
  std::optional<Resampler> reference_resampler_;
  std::vector<std::int16_t> resampled_;  // scratch
  std::vector<std::int16_t> cleaned_;    // scratch
  std::vector<std::int16_t> reference_;  // scratch
  std::vector<std::uint8_t> bytes_;      // encoded, not yet returned: [read_, size())
  std::size_t read_ = 0;
  bool final_chunk_ = false;  // after Finish(): the remainder may be returned short
  UplinkStats stats_;
};

}  // namespace callgate::audio::pipeline
