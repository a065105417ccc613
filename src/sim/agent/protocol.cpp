#include "sim/agent/protocol.hpp"

#include "core/base64.hpp"

#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>

namespace callgate::sim::agent {
namespace {

namespace json = boost::json;

ParsedMessage Invalid(std::string message) {
  ParsedMessage parsed;
  parsed.error = {"invalid_message", std::move(message)};
  return parsed;
}

// An event id as an int, or a numeric string (the JS SDK types pong.event_id as a string).
std::optional<std::int64_t> EventId(const json::value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64() && value->as_uint64() <= static_cast<std::uint64_t>(INT64_MAX)) {
    return static_cast<std::int64_t>(value->as_uint64());
  }
  if (value->is_string()) {
    const auto& s = value->as_string();
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), id);
    if (ec == std::errc() && end == s.data() + s.size()) return id;
  }
  return std::nullopt;
}

bool NonEmpty(const json::value* value) {
  if (value == nullptr || value->is_null()) return false;
  if (value->is_string()) return !value->as_string().empty();
  if (value->is_object()) {
    for (const auto& [key, member] : value->as_object()) {
      if (NonEmpty(&member)) return true;
    }
    return false;
  }
  return true;
}

std::string Event(std::string_view type, std::string_view payload_key, json::object payload) {
  json::object event;
  event["type"] = type;
  event[payload_key] = std::move(payload);
  return json::serialize(event);
}

}  // namespace

ParsedMessage ParseClientMessage(std::string_view text) {
  boost::system::error_code ec;
  json::value value = json::parse(text, ec);
  if (ec) return Invalid("Message is not valid JSON");
  if (!value.is_object()) return Invalid("Message must be a JSON object");
  ClientMessage message;
  message.json = std::move(value.as_object());
  const json::object& object = message.json;
  const json::value* type = object.if_contains("type");
  if (type == nullptr) {
    const json::value* chunk = object.if_contains("user_audio_chunk");
    if (chunk == nullptr) return Invalid("Message has no type");
    if (!chunk->is_string()) return Invalid("user_audio_chunk must be a base64 string");
    auto audio = Base64Decode(chunk->as_string());
    if (!audio) return Invalid("user_audio_chunk is not valid base64");
    message.kind = ClientKind::kUserAudioChunk;
    message.audio = std::move(*audio);
    return {std::move(message), {}};
  }
  if (!type->is_string()) return Invalid("type must be a string");
  const std::string_view name = type->as_string();
  if (name == "conversation_initiation_client_data") {
    message.kind = ClientKind::kInit;
  } else if (name == "pong") {
    auto id = EventId(object.if_contains("event_id"));
    if (!id) return Invalid("pong requires an integer event_id");
    message.kind = ClientKind::kPong;
    message.event_id = *id;
  } else if (name == "client_tool_result") {
    const json::value* id = object.if_contains("tool_call_id");
    const json::value* result = object.if_contains("result");
    const json::value* is_error = object.if_contains("is_error");
    if (id == nullptr || !id->is_string())
      return Invalid("client_tool_result requires tool_call_id");
    if (result == nullptr || is_error == nullptr || !is_error->is_bool()) {
      return Invalid("client_tool_result requires result and is_error");
    }
    message.kind = ClientKind::kClientToolResult;
    message.text = std::string(id->as_string());
  } else if (name == "contextual_update") {
    const json::value* update = object.if_contains("text");
    if (update == nullptr || !update->is_string())
      return Invalid("contextual_update requires text");
    message.kind = ClientKind::kContextualUpdate;
    message.text = std::string(update->as_string());
  } else if (name == "user_message") {
    const json::value* user_text = object.if_contains("text");
    if (user_text != nullptr && !user_text->is_null() && !user_text->is_string()) {
      return Invalid("user_message text must be a string");
    }
    message.kind = ClientKind::kUserMessage;
    if (user_text != nullptr && user_text->is_string()) message.text = user_text->as_string();
  } else if (name == "user_activity") {
    message.kind = ClientKind::kUserActivity;
  } else if (name == "feedback") {
    auto id = EventId(object.if_contains("event_id"));
    if (!id) return Invalid("feedback requires an integer event_id");
    message.kind = ClientKind::kFeedback;
    message.event_id = *id;
  } else if (name == "mcp_tool_approval_result") {
    message.kind = ClientKind::kMcpToolApprovalResult;
  } else if (name == "multimodal_message") {
    message.kind = ClientKind::kMultimodalMessage;
    if (const auto* part = object.if_contains("text"); part != nullptr && part->is_object()) {
      if (const auto* t = part->as_object().if_contains("text"); t != nullptr && t->is_string()) {
        message.text = t->as_string();
      }
    }
  } else {
    return Invalid("Unknown message type '" + std::string(name.substr(0, 64)) + "'");
  }
  return {std::move(message), {}};
}

std::optional<ProtocolError> CheckInitiation(const json::object& init, bool allow_overrides) {
  if (const auto* vars = init.if_contains("dynamic_variables");
      vars != nullptr && !vars->is_null() && !vars->is_object()) {
    return ProtocolError{"invalid_message", "dynamic_variables must be an object"};
  }
  const auto* override_value = init.if_contains("conversation_config_override");
  if (override_value == nullptr || override_value->is_null()) return std::nullopt;
  if (!override_value->is_object()) {
    return ProtocolError{"invalid_message", "conversation_config_override must be an object"};
  }
  if (allow_overrides) return std::nullopt;
  const json::object& overrides = override_value->as_object();
  if (const auto* agent = overrides.if_contains("agent"); agent != nullptr && agent->is_object()) {
    for (const char* field : {"first_message", "language", "prompt"}) {
      if (NonEmpty(agent->as_object().if_contains(field))) {
        return ProtocolError{"override_error",
                             std::string("Override for field '") + field +
                                 "' is not allowed by the agent's security settings"};
      }
    }
  }
  if (NonEmpty(overrides.if_contains("tts"))) {
    return ProtocolError{
        "override_error",
        "Override for field 'tts' is not allowed by the agent's security settings"};
  }
  return std::nullopt;
}

std::string Base64Encode(const std::uint8_t* data, std::size_t size) {
  std::string out;
  core::Base64EncodeTo(std::span<const std::uint8_t>(data, size), out);
  return out;
}

std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text) {
  std::vector<std::uint8_t> out;
  if (!Base64DecodeInto(text, out)) return std::nullopt;
  return out;
}

bool Base64DecodeInto(std::string_view text, std::vector<std::uint8_t>& out) {
  if (text.size() % 4 != 0) return false;
  if (text.empty()) {
    out.clear();
    return true;
  }
  // Padding only at the end of the last quantum: "xx==" or "xxx=".
  const std::size_t pad = text.back() != '=' ? 0 : text[text.size() - 2] == '=' ? 2 : 1;
  const std::size_t whole = pad == 0 ? text.size() : text.size() - 4;
  out.resize(whole / 4 * 3 + (pad == 0 ? 0 : 3 - pad));
  if (!core::Base64DecodeBlocks(text.substr(0, whole), out.data())) return false;
  if (pad > 0) {
    std::uint32_t n = 0;
    for (std::size_t j = 0; j < 4 - pad; ++j) {
      const int v = core::Base64Value(text[whole + j]);  // '=' is outside the alphabet
      if (v < 0) return false;
      n |= static_cast<std::uint32_t>(v) << (18 - 6 * j);
    }
    out[whole / 4 * 3] = static_cast<std::uint8_t>(n >> 16);
    if (pad == 1) out[whole / 4 * 3 + 1] = static_cast<std::uint8_t>(n >> 8);
  }
  return true;
}

bool ParseUserAudioChunkInto(std::string_view text, std::vector<std::uint8_t>& audio) {
  constexpr std::string_view kHead = R"({"user_audio_chunk":")";
  constexpr std::string_view kTail = R"("})";
  if (text.size() < kHead.size() + kTail.size() || !text.starts_with(kHead) ||
      !text.ends_with(kTail)) {
    return false;
  }
  // Between the quotes only base64 characters, so no escape, quote or control character: the
  // frame is exactly a JSON object with that one string member.
  return Base64DecodeInto(text.substr(kHead.size(), text.size() - kHead.size() - kTail.size()),
                          audio);
}

std::string MetadataEvent(std::string_view conversation_id, std::string_view output_format,
                          std::string_view input_format) {
  return Event("conversation_initiation_metadata", "conversation_initiation_metadata_event",
               {{"conversation_id", conversation_id},
                {"agent_output_audio_format", output_format},
                {"user_input_audio_format", input_format}});
}

std::string AudioEvent(std::string_view audio_base_64, std::int64_t event_id) {
  return Event("audio", "audio_event", {{"audio_base_64", audio_base_64}, {"event_id", event_id}});
}

std::string AgentResponseEvent(std::string_view text, std::int64_t event_id) {
  return Event("agent_response", "agent_response_event",
               {{"agent_response", text}, {"event_id", event_id}});
}

std::string AgentResponseCorrectionEvent(std::string_view original, std::string_view corrected,
                                         std::int64_t event_id) {
  return Event("agent_response_correction", "agent_response_correction_event",
               {{"original_agent_response", original},
                {"corrected_agent_response", corrected},
                {"event_id", event_id}});
}

std::string UserTranscriptEvent(std::string_view text, std::int64_t event_id) {
  return Event("user_transcript", "user_transcription_event",
               {{"user_transcript", text}, {"event_id", event_id}});
}

std::string TentativeUserTranscriptEvent(std::string_view text, std::int64_t event_id) {
  return Event("tentative_user_transcript", "tentative_user_transcription_event",
               {{"user_transcript", text}, {"event_id", event_id}});
}

std::string InterruptionEvent(std::int64_t event_id, bool reason_style) {
  if (reason_style) return Event("interruption", "interruption_event", {{"reason", "user"}});
  return Event("interruption", "interruption_event", {{"event_id", event_id}});
}

std::string PingEvent(std::int64_t event_id, std::optional<std::int64_t> ping_ms) {
  json::object payload{{"event_id", event_id}};
  if (ping_ms) {
    payload["ping_ms"] = *ping_ms;
  } else {
    payload["ping_ms"] = nullptr;
  }
  return Event("ping", "ping_event", std::move(payload));
}

std::string ClientToolCallEvent(std::string_view tool_name, std::string_view tool_call_id,
                                const json::object& parameters, std::int64_t event_id) {
  return Event("client_tool_call", "client_tool_call",
               {{"tool_name", tool_name},
                {"tool_call_id", tool_call_id},
                {"parameters", parameters},
                {"event_id", event_id}});
}

std::string AgentToolResponseEvent(std::string_view tool_name, std::string_view tool_call_id,
                                   std::string_view tool_type, bool is_error, bool is_called,
                                   std::int64_t event_id) {
  return Event("agent_tool_response", "agent_tool_response",
               {{"tool_name", tool_name},
                {"tool_call_id", tool_call_id},
                {"tool_type", tool_type},
                {"is_error", is_error},
                {"is_called", is_called},
                {"event_id", event_id}});
}

std::string ErrorEvent(int code, std::string_view message, std::string_view error_type) {
  return Event("error", "error_event",
               {{"code", code}, {"message", message}, {"error_type", error_type}});
}

std::string ScriptLine(int index, int turns, std::string_view purpose) {
  if (index >= turns) return "Thank you for your time. Goodbye!";
  if (index == 1) {
    if (!purpose.empty()) {
      return "Thanks, I understand. I'm noting that down about " + std::string(purpose) + ".";
    }
    return "Thanks, I understand. Let me note that down for you.";
  }
  return "Got it. Is there anything else you would like to add?";
}

std::string TruncateSpoken(std::string_view text, double fraction) {
  if (!(fraction > 0.0)) return {};
  if (fraction >= 1.0) return std::string(text);
  const auto limit =
      static_cast<std::size_t>(std::floor(fraction * static_cast<double>(text.size())));
  // The longest prefix of whole words ending at or before `limit`.
  std::size_t end = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const bool word_end = text[i] != ' ' && (i + 1 == text.size() || text[i + 1] == ' ');
    if (word_end) {
      if (i + 1 > limit) break;
      end = i + 1;
    }
  }
  return std::string(text.substr(0, end));
}

std::string SimulatedUserText(std::string_view style, double seconds) {
  char secs[32];
  std::snprintf(secs, sizeof secs, "%.1f", seconds);
  std::string out;
  constexpr std::string_view kPlaceholder = "{secs}";
  std::size_t pos = 0;
  while (true) {
    const auto found = style.find(kPlaceholder, pos);
    out.append(
        style.substr(pos, found == std::string_view::npos ? std::string_view::npos : found - pos));
    if (found == std::string_view::npos) break;
    out += secs;
    pos = found + kPlaceholder.size();
  }
  return out;
}

}  // namespace callgate::sim::agent
