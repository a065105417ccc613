// MP3 encoding and decoding in memory, over libsndfile (LAME to encode, mpg123 to decode).
//
// The simulator serves each simulated call's recording as `audio/mpeg`: EncodeMp3 turns mono
// int16 samples into a complete, playable MP3 stream (constant bitrate, mono, with a LAME/Info
// header so players know the exact length). MPEG audio exists only at 8000, 11025, 12000, 16000,
// 22050, 24000, 32000, 44100 and 48000 Hz; other rates are first resampled to the next
// supported rate up (48000 above that). The bitrate is clamped into what the MPEG version of
// that rate allows: 8..64 kbps below 16 kHz (MPEG-2.5), 8..160 kbps at 16..24 kHz (MPEG-2),
// 32..320 kbps from 32 kHz (MPEG-1); LAME rounds to the nearest standard bitrate. Empty input
// gives a stream of one silent sample, since a stream without frames is not playable.
//
// DecodeMp3 reads MPEG audio (with or without ID3 tags) back to mono int16 at the stream's
// own rate, averaging stereo. The decoder honours the LAME header's encoder delay and padding,
// so a round trip gives back as many samples as went in (exactly, with Debian 12's LAME 3.100
// and mpg123). It refuses non-MPEG input.
//
// Pure functions of their arguments, thread-safe (each call has its own encoder/decoder).
// Errors: std::invalid_argument for a sample rate outside [1000, 384000] or a non-positive
// bitrate; std::runtime_error carrying libsndfile's message (sf_strerror) when encoding fails,
// when the bytes are not decodable MPEG audio, or when decoding would exceed `max_samples`.
#pragma once

#include "audio/format.hpp"  // kDefaultMaxDecodedSamples

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::audio {

// The MPEG sample rate EncodeMp3 would encode `sample_rate` at.
int Mp3SampleRate(int sample_rate);

std::string EncodeMp3(std::span<const std::int16_t> samples, int sample_rate,
                      int bitrate_kbps = 64);

// `sample_rate` (may be null) receives the stream's rate.
std::vector<std::int16_t> DecodeMp3(std::string_view bytes, int* sample_rate,
                                    std::size_t max_samples = kDefaultMaxDecodedSamples);

}  // namespace callgate::audio
