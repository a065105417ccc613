// The `file:PATH` endpoints, over libsndfile.
//
// FileInput plays a WAV/FLAC (any format libsndfile reads) in real time by the injected clock:
// Read() returns the samples due since Start(), mixed down to mono (channels averaged) at the
// file's own rate, and digital silence once the file is exhausted (exhausted() turns true).
// Samples are read incrementally (a few KB per call, from the page cache), so memory does not
// grow with the file.
//
// FileOutput writes mono 16-bit PCM WAV at the rate it was opened with, paced like a speaker
// (WritableFrames() is what a speaker would have played by now), so the file is a real-time
// recording of what the user would have heard, silences included. It stays a valid WAV file at
// every moment: the header is written when the file is created, and the samples are flushed to
// disk with the header's sizes updated (SFC_UPDATE_HEADER_NOW) every `flush_interval` of audio
// and on Stop()/destruction. A process killed outright loses at most the last
// `flush_interval`; the file is still complete up to there and readable.
//
// Blocking: Open*() and Stop() do file-system calls; Read() and a flushing Write() do small
// buffered reads/writes. Threading as in backend.hpp. Errors: Open* returns
// audio_file_error naming the path and libsndfile's reason; a failed write after Start is
// latched as audio_file_error (and the endpoint stops accepting audio).
#pragma once

#include "audio/backends/backend.hpp"
#include "audio/backends/pacing.hpp"
#include "core/clock.hpp"

#include <chrono>
#include <filesystem>
#include <memory>
#include <vector>

struct sf_private_tag;

namespace callgate::audio::backends {

namespace detail {
struct CloseSndfile {
  void operator()(sf_private_tag* file) const noexcept;
};
using Sndfile = std::unique_ptr<sf_private_tag, CloseSndfile>;
}  // namespace detail

class FileInput final : public AudioInput {
 public:
  static Result<std::unique_ptr<FileInput>> Open(const std::filesystem::path& path,
                                                 const core::Clock& clock);

  std::string_view kind() const override { return "file"; }
  std::string Describe() const override;
  int sample_rate() const override { return rate_; }
  std::optional<BackendError> Start() override;
  void Stop() override { started_ = false; }
  std::size_t Read(std::span<std::int16_t> out) override;
  bool exhausted() const override { return exhausted_; }
  EndpointStats stats() const override { return {.frames = delivered_}; }

  // Frames in the file, as its header says.
  std::int64_t file_frames() const { return file_frames_; }

  FileInput(detail::Sndfile file, std::filesystem::path path, int rate, int channels,
            std::int64_t frames, const core::Clock& clock);  // use Open()

 private:
  // Reads up to out.size() mono samples from the file; returns how many (fewer at the end).
  std::size_t ReadFile(std::span<std::int16_t> out);

  detail::Sndfile file_;
  std::filesystem::path path_;
  int rate_;
  int channels_;
  std::int64_t file_frames_;
  detail::Pacer pacer_;
  std::vector<std::int16_t> interleaved_;  // for channels > 1; sized once
  std::uint64_t delivered_ = 0;
  bool exhausted_ = false;
};

class FileOutput final : public AudioOutput {
 public:
  static constexpr std::chrono::milliseconds kDefaultFlushInterval{200};

  // Creates (truncates) `path` as a WAV file at `sample_rate` ([1000, 384000]).
  static Result<std::unique_ptr<FileOutput>> Open(
      const std::filesystem::path& path, int sample_rate, const core::Clock& clock,
      std::chrono::milliseconds flush_interval = kDefaultFlushInterval);
  ~FileOutput() override;

  std::string_view kind() const override { return "file"; }
  std::string Describe() const override;
  int sample_rate() const override { return rate_; }
  std::optional<BackendError> Start() override;
  // Flushes, updates the header and closes the file; idempotent. The endpoint cannot be
  // started again.
  void Stop() override;
  std::size_t WritableFrames() override;
  std::size_t Write(std::span<const std::int16_t> samples) override;
  EndpointStats stats() const override { return {.frames = written_}; }

  // Samples accepted by Write() and on disk (with the header updated) so far.
  std::uint64_t flushed_frames() const { return flushed_; }

  FileOutput(detail::Sndfile file, std::filesystem::path path, int rate, std::size_t flush_samples,
             const core::Clock& clock);  // use Open()

 private:
  bool Flush();  // false (and Fail()) on a write error

  detail::Sndfile file_;
  std::filesystem::path path_;
  int rate_;
  std::size_t flush_samples_;
  detail::Pacer pacer_;
  std::vector<std::int16_t> pending_;  // reserved to flush_samples_ once
  std::uint64_t written_ = 0;
  std::uint64_t flushed_ = 0;
  bool closed_ = false;
};

}  // namespace callgate::audio::backends
