// Standard base64 (RFC 4648, with padding) of a byte string, as ElevenLabs' post_call_audio
// carries recordings, and the table-driven block codec under the audio messages of the
// conversation WebSocket (user_audio_chunk, audio_base_64), which the session engine and the
// simulator encode and decode 20 times a second per session. Strictness rules (padding,
// lengths) live with the callers' error reporting; these only do the bulk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace callgate::core {

std::string Base64Encode(std::string_view bytes);

// Appends the base64 of `bytes` (padded) to `out`: SSSE3 where the CPU has it, else one table
// lookup per two output characters.
void Base64EncodeTo(std::span<const std::uint8_t> bytes, std::string& out);

// Writes the base64 of `bytes` (padded) to `dest`, which must hold Base64EncodedSize(n) chars.
void Base64EncodeInto(std::span<const std::uint8_t> bytes, char* dest);
constexpr std::size_t Base64EncodedSize(std::size_t bytes) {
  return (bytes + 2) / 3 * 4;
}

// Decodes whole 4-character quanta: `text.size()` must be a multiple of 4 and `text` must hold
// no padding. Writes text.size() / 4 * 3 bytes to `out`; false (with `out` partly written)
// when a character is outside the alphabet.
bool Base64DecodeBlocks(std::string_view text, std::uint8_t* out);

// The value of one base64 character, or -1 outside the alphabet ('=' included).
int Base64Value(char c);

}  // namespace callgate::core
