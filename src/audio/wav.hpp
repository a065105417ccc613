// Audio files on disk, over libsndfile: for the file audio backend and test fixtures.
//
// WriteWav writes mono 16-bit PCM WAV. ReadAudioFile reads any format libsndfile knows (WAV,
// FLAC, Ogg/Vorbis, AIFF, MP3, ...) as mono int16 at the file's own rate: channels are averaged,
// non-16-bit formats are scaled to 16 bits and rounded. Reading back what WriteWav wrote is exact.
//
// Blocking file I/O: call from a worker thread, not an I/O thread. Thread-safe (no shared
// state). Errors: std::invalid_argument for a sample rate outside [1, 1000000] on write;
// std::runtime_error with the path and libsndfile's message when a file cannot be opened,
// written, read, or is longer than `max_samples`.
#pragma once

#include "audio/format.hpp"  // kDefaultMaxDecodedSamples

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <vector>

namespace callgate::audio {

void WriteWav(const std::filesystem::path& path, std::span<const std::int16_t> samples,
              int sample_rate);

// `sample_rate` (may be null) receives the file's rate.
std::vector<std::int16_t> ReadAudioFile(const std::filesystem::path& path, int* sample_rate,
                                        std::size_t max_samples = kDefaultMaxDecodedSamples);

}  // namespace callgate::audio
