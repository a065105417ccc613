// Standard base64 (RFC 4648, with padding) of a byte string, as ElevenLabs' post_call_audio
// carries recordings. (Decoding is strict and lives with its callers' error reporting.)
#pragma once

#include <string>
#include <string_view>

namespace callgate::core {

std::string Base64Encode(std::string_view bytes);

}  // namespace callgate::core
