// The seven audio formats ElevenLabs Conversational AI speaks on the wire (API notes §6.4).
//
// A format is an encoding plus a sample rate; the audio itself is raw, headerless, mono.
// `pcm_<rate>` is signed 16-bit little-endian PCM, `ulaw_8000` is G.711 mu-law, one byte per
// sample. Names are matched exactly and case-sensitively, as the API spells them: "PCM_16000"
// and "pcm_11025" are not formats. Plain values; everything here is pure and thread-safe.
// Errors: ParseFormat returns std::nullopt for any other name; nothing throws.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::audio {

struct AudioFormat {
  enum class Encoding { kPcm16, kMulaw };

  Encoding encoding = Encoding::kPcm16;
  int sample_rate = 16000;

  // "pcm_16000", "ulaw_8000": the API's name for this format.
  std::string Name() const;
  // 2 for PCM16, 1 for mu-law (the audio is mono, so this is also bytes per frame).
  std::size_t BytesPerSample() const;
  // sample_rate * BytesPerSample(): the wire rate, for chunking and pacing a stream.
  std::size_t BytesPerSecond() const;

  friend bool operator==(const AudioFormat&, const AudioFormat&) = default;
};

// Decoders of whole files (DecodeMp3, ReadAudioFile) stop with an error past this many samples
// unless told otherwise: 30 minutes at 48 kHz, about 165 MiB of int16.
inline constexpr std::size_t kDefaultMaxDecodedSamples = 48000u * 60u * 30u;

// Exactly one of the names in AllFormats(); anything else (other rates, other case, "mp3_...")
// is std::nullopt.
std::optional<AudioFormat> ParseFormat(std::string_view name);

// The seven formats, PCM by ascending rate, then ulaw_8000.
const std::vector<AudioFormat>& AllFormats();

}  // namespace callgate::audio
