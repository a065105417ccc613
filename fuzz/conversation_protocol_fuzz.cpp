// Fuzz target: the ConvAI client codec (conversation/protocol.hpp). Beyond "no crash, no
// exception": a server frame either parses to an event or is an error value, never both; the
// event's wire type is what the frame said; base64 decoding round-trips through the encoder;
// and client messages built from arbitrary text and bytes are valid JSON that carries them back.
#include "conversation/protocol.hpp"

#include <boost/json.hpp>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <span>
#include <string_view>

// libFuzzer's entry point (declared here: -Wmissing-declarations).
extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

namespace {

namespace conversation = callgate::conversation;
namespace json = boost::json;

void Check(bool condition) {
  if (!condition) std::abort();
}

json::object ParseObject(const std::string& text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  Check(!ec && value.is_object());
  return value.as_object();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // Server frames.
  const conversation::ParsedEvent parsed = conversation::ParseServerMessage(text, 1 << 20);
  Check(parsed.event.has_value() != !parsed.error.empty());
  if (parsed.event) Check(conversation::EventType(*parsed.event) == parsed.type);

  // Base64: whatever decodes re-encodes to something that decodes to the same bytes.
  if (auto bytes = conversation::Base64Decode(text)) {
    const std::string encoded = conversation::Base64Encode(*bytes);
    Check(encoded.size() % 4 == 0);
    Check(conversation::Base64Decode(encoded) == bytes);
  }

  // Client messages carry arbitrary bytes and text intact. (Text must be valid UTF-8 for JSON;
  // Boost.JSON's serializer escapes what it must, so only valid input is checked for equality.)
  const std::span<const std::uint8_t> bytes(data, size);
  const auto chunk = ParseObject(conversation::UserAudioChunkMessage(bytes));
  const auto decoded = conversation::Base64Decode(chunk.at("user_audio_chunk").as_string());
  Check(decoded && std::equal(decoded->begin(), decoded->end(), bytes.begin(), bytes.end()));
  boost::system::error_code utf8;
  json::parse(json::serialize(json::string(text)), utf8);
  if (!utf8) {
    const auto update = ParseObject(conversation::ContextualUpdateMessage(text, text));
    Check(update.at("text").as_string() == text);
    const auto message = ParseObject(conversation::UserMessageMessage(text));
    Check(message.at("text").as_string() == text);
    const auto result = ParseObject(conversation::ClientToolResultMessage(text, text, true));
    Check(result.at("result").as_string() == text && result.at("is_error").as_bool());
  }
  return 0;
}
