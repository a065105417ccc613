#include "audio/backends/file_backend.hpp"

#include "audio/backends/null_backend.hpp"  // CheckEndpointRate

#include <sndfile.h>

#include <algorithm>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace callgate::audio::backends {

static_assert(std::is_same_v<SNDFILE, sf_private_tag>, "libsndfile's handle type changed");

namespace detail {
void CloseSndfile::operator()(sf_private_tag* file) const noexcept {
  sf_close(file);
}
}  // namespace detail

namespace {

constexpr std::size_t kReadFrames = 1024;  // frames per sf_readf_short call for multi-channel

BackendError FileError(const std::filesystem::path& path, std::string_view what, SNDFILE* file) {
  return BackendError{BackendError::Code::kFileError,
                      std::string(what) + " " + path.string() + ": " + sf_strerror(file)};
}

}  // namespace

// ---- FileInput -------------------------------------------------------------------------------

Result<std::unique_ptr<FileInput>> FileInput::Open(const std::filesystem::path& path,
                                                   const core::Clock& clock) {
  SF_INFO info{};
  detail::Sndfile file(sf_open(path.c_str(), SFM_READ, &info));
  if (!file) return FileError(path, "cannot open audio input file", nullptr);
  if (info.channels < 1 || info.samplerate < 1000 || info.samplerate > 384000) {
    return BackendError{BackendError::Code::kFileError,
                        "unsupported audio input file " + path.string() + ": " +
                            std::to_string(info.channels) + " channels at " +
                            std::to_string(info.samplerate) + " Hz"};
  }
  // Float files hold [-1, 1]; scale them to the int16 range rather than to their own peak.
  sf_command(file.get(), SFC_SET_SCALE_FLOAT_INT_READ, nullptr, SF_TRUE);
  return std::make_unique<FileInput>(std::move(file), path, info.samplerate, info.channels,
                                     static_cast<std::int64_t>(info.frames), clock);
}

FileInput::FileInput(detail::Sndfile file, std::filesystem::path path, int rate, int channels,
                     std::int64_t frames, const core::Clock& clock)
    : file_(std::move(file)),
      path_(std::move(path)),
      rate_(rate),
      channels_(channels),
      file_frames_(frames),
      pacer_(clock, rate) {
  if (channels_ > 1) interleaved_.resize(kReadFrames * static_cast<std::size_t>(channels_));
}

std::string FileInput::Describe() const {
  return "file:" + path_.string() + " @ " + std::to_string(rate_) + " Hz";
}

std::optional<BackendError> FileInput::Start() {
  if (!started_) {
    pacer_.Start();
    delivered_ = 0;
    started_ = true;
  }
  return std::nullopt;
}

std::size_t FileInput::ReadFile(std::span<std::int16_t> out) {
  if (channels_ == 1) {
    const sf_count_t got =
        sf_readf_short(file_.get(), out.data(), static_cast<sf_count_t>(out.size()));
    return got > 0 ? static_cast<std::size_t>(got) : 0;
  }
  std::size_t done = 0;
  while (done < out.size()) {
    const std::size_t want = std::min(kReadFrames, out.size() - done);
    const sf_count_t got =
        sf_readf_short(file_.get(), interleaved_.data(), static_cast<sf_count_t>(want));
    if (got <= 0) break;
    for (sf_count_t f = 0; f < got; ++f) {
      int sum = 0;
      for (int c = 0; c < channels_; ++c)
        sum += interleaved_[static_cast<std::size_t>(f * channels_ + c)];
      out[done + static_cast<std::size_t>(f)] = static_cast<std::int16_t>(sum / channels_);
    }
    done += static_cast<std::size_t>(got);
    if (static_cast<std::size_t>(got) < want) break;
  }
  return done;
}

std::size_t FileInput::Read(std::span<std::int16_t> out) {
  if (!started_ || error()) return 0;
  const auto due = static_cast<std::uint64_t>(pacer_.Due());
  const std::size_t n =
      due > delivered_ ? std::min<std::uint64_t>(out.size(), due - delivered_) : 0;
  std::size_t got = 0;
  if (!exhausted_ && n > 0) {
    got = ReadFile(out.first(n));
    if (got < n) {
      exhausted_ = true;
      // A short read is the end of the file unless libsndfile reports an error.
      if (sf_error(file_.get()) != SF_ERR_NO_ERROR) {
        std::fill(out.begin() + static_cast<std::ptrdiff_t>(got), out.begin() + n, std::int16_t{0});
        delivered_ += n;
        Fail(FileError(path_, "cannot read audio input file", file_.get()));
        return n;
      }
    }
  }
  std::fill(out.begin() + static_cast<std::ptrdiff_t>(got),
            out.begin() + static_cast<std::ptrdiff_t>(n), std::int16_t{0});
  delivered_ += n;
  return n;
}

// ---- FileOutput ------------------------------------------------------------------------------

Result<std::unique_ptr<FileOutput>> FileOutput::Open(const std::filesystem::path& path,
                                                     int sample_rate, const core::Clock& clock,
                                                     std::chrono::milliseconds flush_interval) {
  CheckEndpointRate(sample_rate);
  if (flush_interval.count() < 1) {
    throw std::invalid_argument("FileOutput: flush interval must be positive");
  }
  SF_INFO info{};
  info.samplerate = sample_rate;
  info.channels = 1;
  info.format = SF_FORMAT_WAV | SF_FORMAT_PCM_16;
  detail::Sndfile file(sf_open(path.c_str(), SFM_WRITE, &info));
  if (!file) return FileError(path, "cannot create audio output file", nullptr);
  // The header is on disk from the start, so the file is a valid (empty) WAV at once.
  sf_command(file.get(), SFC_UPDATE_HEADER_NOW, nullptr, 0);
  const auto flush_samples = static_cast<std::size_t>(std::max<std::int64_t>(
      1, static_cast<std::int64_t>(sample_rate) * flush_interval.count() / 1000));
  return std::make_unique<FileOutput>(std::move(file), path, sample_rate, flush_samples, clock);
}

FileOutput::FileOutput(detail::Sndfile file, std::filesystem::path path, int rate,
                       std::size_t flush_samples, const core::Clock& clock)
    : file_(std::move(file)),
      path_(std::move(path)),
      rate_(rate),
      flush_samples_(flush_samples),
      pacer_(clock, rate) {
  pending_.reserve(flush_samples_);
}

FileOutput::~FileOutput() {
  Stop();
}

std::string FileOutput::Describe() const {
  return "file:" + path_.string() + " @ " + std::to_string(rate_) + " Hz";
}

std::optional<BackendError> FileOutput::Start() {
  if (closed_) {
    return BackendError{BackendError::Code::kFileError,
                        "audio output file " + path_.string() + " was already closed"};
  }
  if (!started_) {
    pacer_.Start();
    started_ = true;
  }
  return std::nullopt;
}

bool FileOutput::Flush() {
  if (pending_.empty()) return true;
  const auto count = static_cast<sf_count_t>(pending_.size());
  const sf_count_t wrote = sf_writef_short(file_.get(), pending_.data(), count);
  pending_.clear();
  if (wrote != count) {
    Fail(FileError(path_, "cannot write audio output file", file_.get()));
    return false;
  }
  flushed_ += static_cast<std::uint64_t>(count);
  sf_command(file_.get(), SFC_UPDATE_HEADER_NOW, nullptr, 0);
  return true;
}

void FileOutput::Stop() {
  if (closed_) return;
  started_ = false;
  closed_ = true;
  if (!error()) Flush();
  const int err = sf_close(file_.release());
  if (err != SF_ERR_NO_ERROR && !error()) {
    Fail(BackendError{
        BackendError::Code::kFileError,
        "cannot close audio output file " + path_.string() + ": " + sf_error_number(err)});
  }
}

std::size_t FileOutput::WritableFrames() {
  if (!started_ || error()) return 0;
  const auto due = static_cast<std::uint64_t>(pacer_.Due());
  return due > written_ ? static_cast<std::size_t>(due - written_) : 0;
}

std::size_t FileOutput::Write(std::span<const std::int16_t> samples) {
  if (!started_ || error()) return 0;
  std::size_t done = 0;
  while (done < samples.size()) {
    const std::size_t n = std::min(samples.size() - done, flush_samples_ - pending_.size());
    pending_.insert(pending_.end(), samples.begin() + static_cast<std::ptrdiff_t>(done),
                    samples.begin() + static_cast<std::ptrdiff_t>(done + n));
    done += n;
    if (pending_.size() == flush_samples_ && !Flush()) break;
  }
  written_ += done;  // after a failed flush: what was accepted before the error
  return done;
}

}  // namespace callgate::audio::backends
