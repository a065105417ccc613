#include "audio/wav.hpp"

#include "audio/sndfile_io.hpp"

#include <stdexcept>
#include <string>

namespace callgate::audio {

void WriteWav(const std::filesystem::path& path, std::span<const std::int16_t> samples,
              int sample_rate) {
  if (sample_rate < 1 || sample_rate > 1'000'000) {
    throw std::invalid_argument("WriteWav: sample rate " + std::to_string(sample_rate));
  }
  const std::string what = "WriteWav " + path.string();
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  detail::SndfilePtr file(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!file) throw std::runtime_error(detail::SndfileError(what, nullptr));
  const auto count = static_cast<sf_count_t>(samples.size());
  if (count > 0 && sf_writef_short(file.get(), samples.data(), count) != count) {
    throw std::runtime_error(detail::SndfileError(what, file.get()));
  }
  if (const int err = sf_close(file.release()); err != SF_ERR_NO_ERROR) {
    throw std::runtime_error(what + ": " + sf_error_number(err));
  }
}

std::vector<std::int16_t> ReadAudioFile(const std::filesystem::path& path, int* sample_rate,
                                        std::size_t max_samples) {
  const std::string what = "ReadAudioFile " + path.string();
  SF_INFO info{};
  detail::SndfilePtr file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) throw std::runtime_error(detail::SndfileError(what, nullptr));
  std::vector<std::int16_t> out = detail::ReadAllMono(file.get(), info.channels, max_samples, what);
  if (sample_rate != nullptr) *sample_rate = info.samplerate;
  return out;
}

}  // namespace callgate::audio
