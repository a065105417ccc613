#include "audio/format.hpp"

namespace callgate::audio {

std::string AudioFormat::Name() const {
  const char* prefix = encoding == Encoding::kMulaw ? "ulaw_" : "pcm_";
  return prefix + std::to_string(sample_rate);
}

std::size_t AudioFormat::BytesPerSample() const {
  return encoding == Encoding::kMulaw ? 1 : 2;
}

std::size_t AudioFormat::BytesPerSecond() const {
  return static_cast<std::size_t>(sample_rate) * BytesPerSample();
}

std::optional<AudioFormat> ParseFormat(std::string_view name) {
  for (const AudioFormat& format : AllFormats()) {
    if (format.Name() == name) return format;
  }
  return std::nullopt;
}

const std::vector<AudioFormat>& AllFormats() {
  using E = AudioFormat::Encoding;
  static const std::vector<AudioFormat> kFormats = {
      {E::kPcm16, 8000},  {E::kPcm16, 16000}, {E::kPcm16, 22050}, {E::kPcm16, 24000},
      {E::kPcm16, 44100}, {E::kPcm16, 48000}, {E::kMulaw, 8000},
  };
  return kFormats;
}

}  // namespace callgate::audio
