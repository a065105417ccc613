#include "audio/pipeline/conversation_audio.hpp"

#include <optional>

namespace callgate::audio::pipeline {
namespace {

UplinkOptions MakeUplinkOptions(const ConversationAudioOptions& o) {
  return UplinkOptions{
      .capture_rate = o.capture_rate,
      .format = o.input_format,
      .chunk = o.chunk,
      .resampler_quality = o.resampler_quality,
      .echo = o.echo_cancellation ? std::optional<EchoCancellerOptions>(o.echo) : std::nullopt,
      .playback_rate = o.playback_rate,
      .early = o.chunk_early,
  };
}

DownlinkOptions MakeDownlinkOptions(const ConversationAudioOptions& o) {
  return DownlinkOptions{
      .format = o.output_format,
      .playback_rate = o.playback_rate,
      .prebuffer = o.prebuffer,
      .max_buffer = o.max_buffer,
      .resampler_quality = o.resampler_quality,
  };
}

}  // namespace

ConversationAudio::ConversationAudio(const ConversationAudioOptions& options)
    : uplink_(MakeUplinkOptions(options)), downlink_(MakeDownlinkOptions(options)) {}

void ConversationAudio::ReadPlayback(std::span<std::int16_t> out) {
  downlink_.Read(out);
  uplink_.WriteReference(out);
}

}  // namespace callgate::audio::pipeline
