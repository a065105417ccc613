#include "audio/mp3.hpp"

#include "audio/resampler.hpp"
#include "audio/sndfile_io.hpp"

#include <algorithm>
#include <array>
#include <stdexcept>

namespace callgate::audio {
namespace {

constexpr std::array kMpegRates = {8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000};

// libsndfile maps SFC_SET_COMPRESSION_LEVEL c in [0, 1] to the CBR bitrate
// (int)(max - c * (max - min)) for the MPEG version of the rate (mpeg_l3_encode.c). Aiming at
// kbps + 0.5 makes the truncation land on kbps exactly.
double CompressionFor(int sample_rate, int& bitrate_kbps) {
  int min_kbps = 8;
  int max_kbps = 64;  // MPEG-2.5
  if (sample_rate >= 32000) {
    min_kbps = 32;
    max_kbps = 320;  // MPEG-1
  } else if (sample_rate >= 16000) {
    max_kbps = 160;  // MPEG-2
  }
  bitrate_kbps = std::clamp(bitrate_kbps, min_kbps, max_kbps);
  const double level = (max_kbps - (bitrate_kbps + 0.5)) / (max_kbps - min_kbps);
  return std::clamp(level, 0.0, 1.0);
}

}  // namespace

int Mp3SampleRate(int sample_rate) {
  for (int rate : kMpegRates) {
    if (rate >= sample_rate) return rate;
  }
  return kMpegRates.back();
}

std::string EncodeMp3(std::span<const std::int16_t> samples, int sample_rate, int bitrate_kbps) {
  if (sample_rate < Resampler::kMinRate || sample_rate > Resampler::kMaxRate) {
    throw std::invalid_argument("EncodeMp3: sample rate " + std::to_string(sample_rate) +
                                " outside [1000, 384000]");
  }
  if (bitrate_kbps <= 0) {
    throw std::invalid_argument("EncodeMp3: bitrate " + std::to_string(bitrate_kbps) + " kbps");
  }
  const int rate = Mp3SampleRate(sample_rate);
  // With no samples LAME writes nothing at all, which no player accepts; one silent sample
  // gives a single valid frame.
  constexpr std::array<std::int16_t, 1> kOneSilentSample{};
  if (samples.empty()) samples = kOneSilentSample;
  std::vector<std::int16_t> resampled;
  if (rate != sample_rate) {
    resampled = Resample(samples, sample_rate, rate);
    samples = resampled;
  }

  detail::MemoryWriter memory;
  SF_VIRTUAL_IO io = detail::MemoryWriterIo();
  SF_INFO info{};
  info.samplerate = rate;
  info.channels = 1;
  info.format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
  detail::SndfilePtr file(sf_open_virtual(&io, SFM_WRITE, &info, &memory));
  if (!file) throw std::runtime_error(detail::SndfileError("EncodeMp3: open", nullptr));

  // Level first: libsndfile re-applies the level when the mode is set, and reports failure if
  // no level has been set yet.
  double level = CompressionFor(rate, bitrate_kbps);
  if (sf_command(file.get(), SFC_SET_COMPRESSION_LEVEL, &level, sizeof(level)) != SF_TRUE) {
    throw std::runtime_error(detail::SndfileError("EncodeMp3: set bitrate", file.get()));
  }
  int mode = SF_BITRATE_MODE_CONSTANT;
  if (sf_command(file.get(), SFC_SET_BITRATE_MODE, &mode, sizeof(mode)) != SF_TRUE) {
    throw std::runtime_error(detail::SndfileError("EncodeMp3: set bitrate mode", file.get()));
  }
  const auto count = static_cast<sf_count_t>(samples.size());
  if (sf_writef_short(file.get(), samples.data(), count) != count) {
    throw std::runtime_error(detail::SndfileError("EncodeMp3: write", file.get()));
  }
  // Closing flushes LAME and writes the Info header at the start of the stream.
  if (const int err = sf_close(file.release()); err != SF_ERR_NO_ERROR) {
    throw std::runtime_error(std::string("EncodeMp3: close: ") + sf_error_number(err));
  }
  return std::move(memory.data);
}

std::vector<std::int16_t> DecodeMp3(std::string_view bytes, int* sample_rate,
                                    std::size_t max_samples) {
  detail::MemoryReader memory{bytes};
  SF_VIRTUAL_IO io = detail::MemoryReaderIo();
  SF_INFO info{};
  detail::SndfilePtr file(sf_open_virtual(&io, SFM_READ, &info, &memory));
  if (!file) throw std::runtime_error(detail::SndfileError("DecodeMp3: open", nullptr));
  if ((info.format & SF_FORMAT_TYPEMASK) != SF_FORMAT_MPEG) {
    throw std::runtime_error("DecodeMp3: not MPEG audio");
  }
  std::vector<std::int16_t> out =
      detail::ReadAllMono(file.get(), info.channels, max_samples, "DecodeMp3");
  if (sample_rate != nullptr) *sample_rate = info.samplerate;
  return out;
}

}  // namespace callgate::audio
