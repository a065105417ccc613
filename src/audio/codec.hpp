// Sample codecs for the wire formats: 16-bit little-endian PCM and G.711 mu-law.
//
// Samples are mono `std::int16_t`; encoded audio is bytes. Byte order is explicit: PCM is
// assembled and split with shifts, never by copying host memory, so the result is the same on
// any host. Mu-law is the classic G.711 coder (bias 0x84, magnitude clipped at 32635, no
// "zero trap"), bit-identical to the ITU/Sun g711.c reference: MulawEncode(0) == 0xFF,
// MulawDecode(0x00) == -32124. Codes 0x7F and 0xFF both decode to 0 (G.711's two zeros); 0
// encodes as 0xFF, so 0x7F is the one code that does not survive decode -> encode.
//
// The sample rate of an AudioFormat is metadata here: these functions never resample.
// Pure functions, thread-safe; nothing throws except std::bad_alloc.
#pragma once

#include "audio/format.hpp"

#include <cstdint>
#include <span>
#include <vector>

namespace callgate::audio {

// Little-endian: bytes {0x34, 0x12} -> 0x1234. An odd trailing byte is ignored (a truncated
// sample carries no value); callers that stream should keep it for the next chunk.
std::vector<std::int16_t> DecodePcm16Le(std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> EncodePcm16Le(std::span<const std::int16_t> samples);

std::uint8_t MulawEncode(std::int16_t sample);
std::int16_t MulawDecode(std::uint8_t code);
std::vector<std::uint8_t> EncodeMulaw(std::span<const std::int16_t> samples);
std::vector<std::int16_t> DecodeMulaw(std::span<const std::uint8_t> codes);

// Allocation-free forms for streaming: `out` must hold exactly samples.size() *
// format.BytesPerSample() bytes (EncodeTo), or bytes.size() / format.BytesPerSample() samples
// (DecodeTo; a trailing odd PCM byte is ignored). Throws std::invalid_argument on a size mismatch.
void EncodeTo(const AudioFormat& format, std::span<const std::int16_t> samples,
              std::span<std::uint8_t> out);
void DecodeTo(const AudioFormat& format, std::span<const std::uint8_t> bytes,
              std::span<std::int16_t> out);

// Dispatch on format.encoding.
std::vector<std::int16_t> Decode(const AudioFormat& format, std::span<const std::uint8_t> bytes);
std::vector<std::uint8_t> Encode(const AudioFormat& format, std::span<const std::int16_t> samples);

// Adds `src` into `dest` starting at sample `offset`, growing `dest` (with silence) as needed.
// Sums saturate at the int16 limits instead of wrapping. For building a call recording out of
// the agent's and the user's speech.
void MixInto(std::vector<std::int16_t>& dest, std::span<const std::int16_t> src,
             std::size_t offset);

}  // namespace callgate::audio
