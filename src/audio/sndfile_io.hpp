// Internal to callgate_audio (included only by its .cpp files): the libsndfile plumbing shared
// by mp3.cpp and wav.cpp. Memory-backed virtual I/O, an owning SNDFILE handle, and reading a
// whole file as mono int16. Thread safety: each object is used by one thread; libsndfile keeps
// the error of a failed open in a process-global, so under concurrency an open error's text may
// describe another thread's failure (the failure itself is always reported).
#pragma once

#include <sndfile.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::audio::detail {

struct CloseSndfile {
  void operator()(SNDFILE* file) const noexcept { sf_close(file); }
};
using SndfilePtr = std::unique_ptr<SNDFILE, CloseSndfile>;

// A growable in-memory file for writing (and reading back, should libsndfile want to).
struct MemoryWriter {
  std::string data;
  sf_count_t position = 0;
};
SF_VIRTUAL_IO MemoryWriterIo();

// A read-only view of caller-owned bytes, which must outlive the SNDFILE.
struct MemoryReader {
  std::string_view data;
  sf_count_t position = 0;
};
SF_VIRTUAL_IO MemoryReaderIo();

// "<what>: <libsndfile's message>"; `file` may be null for a failed open.
std::string SndfileError(std::string_view what, SNDFILE* file);

// Reads every remaining frame, averaging channels into one; floats are rounded to int16 with
// clipping. Throws std::runtime_error after `max_samples` output samples.
std::vector<std::int16_t> ReadAllMono(SNDFILE* file, int channels, std::size_t max_samples,
                                      std::string_view what);

}  // namespace callgate::audio::detail
