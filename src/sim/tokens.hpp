// Identifiers and opaque tokens the simulated API hands out, in the formats observed on the
// real API (elevenlabs-api.md §0): conversation ids, Twilio call SIDs, trace ids, signed-URL
// signatures, list cursors. Randomness comes from OpenSSL's CSPRNG because signatures are
// bearer secrets; ids use the same source for simplicity. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::sim {

// `length` characters drawn uniformly from `alphabet` (at most 256 characters long).
std::string RandomString(std::string_view alphabet, std::size_t length);

std::string NewConversationId();  // "conv_" + 28 of [0-9a-z]
std::string NewCallSid();         // "CA" + 32 lower-case hex
std::string NewStreamSid();       // "MZ" + 32 lower-case hex
std::string NewSipCallId();       // "SCL_" + 12 of [0-9A-Za-z] (LiveKit SIP call id style)
std::string NewTraceId();         // 32 lower-case hex, the x-trace-id / detail.request_id
std::string NewSignature();       // 43 base64url characters (256 bits)

std::string Base64UrlEncode(std::string_view bytes);  // no padding
std::optional<std::string> Base64UrlDecode(std::string_view text);

// List cursors: opaque to clients, they carry the creation sequence number of the last
// conversation on the previous page.
std::string EncodeCursor(std::uint64_t seq);
std::optional<std::uint64_t> DecodeCursor(std::string_view cursor);

}  // namespace callgate::sim
