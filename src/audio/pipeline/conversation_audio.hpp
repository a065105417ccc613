// Both directions of one conversation's audio, wired together: an Uplink (microphone ->
// user_audio_chunk payloads), a Downlink (audio events -> speaker) and, when enabled, echo
// cancellation fed with exactly what the speaker is given. This is what the session engine
// holds; it never touches an endpoint or a socket itself.
//
// Built once the formats are known (conversation_initiation_metadata) and the endpoints are
// open (their sample_rate()s):
//   ConversationAudio audio({.input_format = *ParseFormat(meta.user_input_audio_format),
//                            .output_format = *ParseFormat(meta.agent_output_audio_format),
//                            .capture_rate = input->sample_rate(),
//                            .playback_rate = output->sample_rate(),
//                            .echo_cancellation = UseEchoCancellation(mode, in_spec, out_spec)});
// Each tick (the engine's: 10-25 ms, dividing the chunk), in this order:
//   n = output->WritableFrames();  audio.ReadPlayback(buf.first(n));  output->Write(...);
//   m = input->Read(buf);          audio.WriteCapture(buf.first(m));
//   while (!(chunk = audio.NextUserChunk()).empty()) send user_audio_chunk(base64(chunk));
// On events: `audio` -> PushAgentAudio(bytes, event_id); `interruption` -> Interrupt(event_id);
// agent hang-up -> DrainThen(close_when_output_queue_empty).
//
// Pure DSP, no threads; not thread-safe (one owner). Steady state allocates nothing. Errors:
// the constructor throws std::invalid_argument for invalid options (see Uplink, Downlink).
#pragma once

#include "audio/format.hpp"
#include "audio/pipeline/defaults.hpp"
#include "audio/pipeline/downlink.hpp"
#include "audio/pipeline/uplink.hpp"
#include "core/prefetch.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <span>

namespace callgate::audio::pipeline {

struct ConversationAudioOptions {
  AudioFormat input_format;   // user_input_audio_format
  AudioFormat output_format;  // agent_output_audio_format
  int capture_rate = 16000;   // the input endpoint's sample_rate()
  int playback_rate = 16000;  // the output endpoint's sample_rate()
  std::chrono::milliseconds chunk = kDefaultChunk;
  std::chrono::milliseconds chunk_early{0};  // UplinkOptions::early
  std::chrono::milliseconds prebuffer = kDefaultPrebuffer;
  std::chrono::milliseconds max_buffer = kDefaultMaxBuffer;
  bool echo_cancellation = false;
  EchoCancellerOptions echo;  // sample_rate ignored (the input format's rate is used)
  int resampler_quality = kDefaultResamplerQuality;
};

class ConversationAudio {
 public:
  explicit ConversationAudio(const ConversationAudioOptions& options);

  // Microphone side.
  void WriteCapture(std::span<const std::int16_t> captured) { uplink_.Write(captured); }
  std::span<const std::uint8_t> NextUserChunk() { return uplink_.NextChunk(); }
  std::span<const std::uint8_t> TakeUserRest() { return uplink_.TakeRest(); }
  void FinishCapture() { uplink_.Finish(); }

  // Agent side.
  bool PushAgentAudio(std::span<const std::uint8_t> bytes, std::int64_t event_id) {
    return downlink_.Push(bytes, event_id);
  }
  void Interrupt(std::int64_t event_id) { downlink_.Interrupt(event_id); }
  // Fills `out` for the speaker and gives the same samples to the echo canceller.
  void ReadPlayback(std::span<std::int16_t> out);
  void DrainThen(std::function<void()> on_drained) { downlink_.DrainThen(std::move(on_drained)); }

  // Prefetching ahead of a tick (conversation::TickerGroup::Warmer): stage 0 this object,
  // stage 1 (which reads it) the buffers the tick reads and writes.
  void Warm(unsigned stage) const {
    if (stage == 0) {
      core::PrefetchObject(this);
      return;
    }
    uplink_.Warm();
    downlink_.Warm();
  }

  Uplink& uplink() { return uplink_; }
  Downlink& downlink() { return downlink_; }
  const Uplink& uplink() const { return uplink_; }
  const Downlink& downlink() const { return downlink_; }

 private:
  Uplink uplink_;
  Downlink downlink_;
};

}  // namespace callgate::audio::pipeline
