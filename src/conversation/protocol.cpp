#include "conversation/protocol.hpp"

#include "core/base64.hpp"

#include <boost/json.hpp>

#include <array>
#include <charconv>
#include <cstring>
#include <limits>

namespace callgate::conversation {
namespace {

namespace json = boost::json;

// The per-thread pool of frame buffers (RecycleFrame). Frames are built on the lanes' strands
// and recycled where their write completes: the same I/O threads. A lane's tick builds the
// chunks of all its sessions (about 50 per tick at 1,000 sessions over 8 lanes) before the
// first write completion runs, so the pool keeps that many and more: 128 buffers of ~2 KB
// (50 ms chunks), about 280 KB per thread at most.
constexpr std::size_t kPooledFrames = 128;
constexpr std::size_t kMinPooledCapacity = 256;
constexpr std::size_t kMaxPooledCapacity = 64 * 1024;

std::vector<std::string>& FramePool() {
  thread_local std::vector<std::string> pool;
  return pool;
}

std::string TakeFrame() {
  auto& pool = FramePool();
  if (pool.empty()) return {};
  std::string frame = std::move(pool.back());
  pool.pop_back();
  return frame;
}

std::string Serialize(const json::object& object) {
  return json::serialize(object);
}

// An event id: a JSON integer, or a string of decimal digits (the JS SDK's typing).
std::optional<std::int64_t> EventId(const json::value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_int64()) return value->as_int64();
  if (value->is_uint64()) {
    if (value->as_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
      return std::nullopt;
    }
    return static_cast<std::int64_t>(value->as_uint64());
  }
  if (value->is_string()) {
    const auto& text = value->as_string();
    std::int64_t id = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
    if (ec == std::errc() && end == text.data() + text.size() && !text.empty()) return id;
  }
  return std::nullopt;
}

std::optional<std::string> String(const json::object& object, std::string_view key) {
  const json::value* value = object.if_contains(key);
  if (value == nullptr || !value->is_string()) return std::nullopt;
  return std::string(value->as_string());
}

// A string, or "" when absent, null or not a string.
std::string StringOr(const json::object& object, std::string_view key) {
  auto text = String(object, key);
  return text ? std::move(*text) : std::string();
}

bool BoolOr(const json::object& object, std::string_view key, bool fallback) {
  const json::value* value = object.if_contains(key);
  return value != nullptr && value->is_bool() ? value->as_bool() : fallback;
}

// The payload of an event: message[key] when it is an object, else the message itself (some
// published examples put the fields at the top level).
const json::object& Payload(const json::object& message, std::string_view key) {
  const json::value* payload = message.if_contains(key);
  if (payload != nullptr && payload->is_object()) return payload->as_object();
  return message;
}

ParsedEvent Fail(std::string type, std::string error) {
  ParsedEvent parsed;
  parsed.type = std::move(type);
  parsed.error = std::move(error);
  return parsed;
}

ParsedEvent Ok(std::string type, ServerEvent event) {
  ParsedEvent parsed;
  parsed.type = std::move(type);
  parsed.event = std::move(event);
  return parsed;
}

ParsedEvent ParseObject(const json::object& message) {
  const json::value* type_value = message.if_contains("type");
  if (type_value == nullptr || !type_value->is_string()) {
    return Fail("", "message has no string \"type\"");
  }
  std::string type(type_value->as_string());

  if (type == "conversation_initiation_metadata") {
    const auto& payload = Payload(message, "conversation_initiation_metadata_event");
    auto id = String(payload, "conversation_id");
    if (!id || id->empty())
      return Fail(type, "conversation_initiation_metadata: no conversation_id");
    InitiationMetadata metadata;
    metadata.conversation_id = std::move(*id);
    if (auto out = String(payload, "agent_output_audio_format")) {
      metadata.agent_output_audio_format = std::move(*out);
    }
    if (auto in = String(payload, "user_input_audio_format")) {
      metadata.user_input_audio_format = std::move(*in);
    }
    return Ok(std::move(type), std::move(metadata));
  }
  if (type == "audio") {
    const auto& payload = Payload(message, "audio_event");
    const json::value* encoded = payload.if_contains("audio_base_64");
    if (encoded == nullptr || !encoded->is_string()) {
      return Fail(type, "audio: no audio_base_64 string");
    }
    auto bytes = Base64Decode(encoded->as_string());
    if (!bytes) return Fail(type, "audio: audio_base_64 is not valid base64");
    return Ok(std::move(type),
              AudioChunk{std::move(*bytes), EventId(payload.if_contains("event_id"))});
  }
  if (type == "interruption") {
    const auto& payload = Payload(message, "interruption_event");
    return Ok(std::move(type),
              Interruption{EventId(payload.if_contains("event_id")), StringOr(payload, "reason")});
  }
  if (type == "ping") {
    const auto& payload = Payload(message, "ping_event");
    auto id = EventId(payload.if_contains("event_id"));
    if (!id) return Fail(type, "ping: no integer event_id");
    Ping ping{*id, std::nullopt};
    if (const json::value* ms = payload.if_contains("ping_ms")) {
      if (ms->is_int64()) {
        ping.ping_ms = ms->as_int64();
      } else if (ms->is_uint64()) {
        ping.ping_ms = static_cast<std::int64_t>(
            std::min<std::uint64_t>(ms->as_uint64(), std::numeric_limits<std::int64_t>::max()));
      } else if (ms->is_double() && ms->as_double() >= 0 && ms->as_double() < 1e15) {
        ping.ping_ms = static_cast<std::int64_t>(ms->as_double());
      }
    }
    return Ok(std::move(type), ping);
  }
  if (type == "agent_response") {
    const auto& payload = Payload(message, "agent_response_event");
    auto text = String(payload, "agent_response");
    if (!text) return Fail(type, "agent_response: no agent_response string");
    return Ok(std::move(type),
              AgentResponse{std::move(*text), EventId(payload.if_contains("event_id"))});
  }
  if (type == "agent_response_correction") {
    const auto& payload = Payload(message, "agent_response_correction_event");
    auto corrected = String(payload, "corrected_agent_response");
    if (!corrected) {
      return Fail(type, "agent_response_correction: no corrected_agent_response string");
    }
    return Ok(std::move(type), AgentResponseCorrection{StringOr(payload, "original_agent_response"),
                                                       std::move(*corrected),
                                                       EventId(payload.if_contains("event_id"))});
  }
  if (type == "user_transcript") {
    const auto& payload = Payload(message, "user_transcription_event");
    auto text = String(payload, "user_transcript");
    if (!text) return Fail(type, "user_transcript: no user_transcript string");
    return Ok(std::move(type),
              UserTranscript{std::move(*text), EventId(payload.if_contains("event_id"))});
  }
  if (type == "tentative_user_transcript") {
    const auto& payload = Payload(message, "tentative_user_transcription_event");
    return Ok(std::move(type), TentativeUserTranscript{StringOr(payload, "user_transcript"),
                                                       EventId(payload.if_contains("event_id"))});
  }
  if (type == "internal_tentative_agent_response") {
    const auto& payload = Payload(message, "tentative_agent_response_internal_event");
    return Ok(std::move(type),
              TentativeAgentResponse{StringOr(payload, "tentative_agent_response")});
  }
  if (type == "client_tool_call") {
    const auto& payload = Payload(message, "client_tool_call");
    auto id = String(payload, "tool_call_id");
    if (!id || id->empty()) return Fail(type, "client_tool_call: no tool_call_id");
    ClientToolCall call;
    call.tool_call_id = std::move(*id);
    call.tool_name = StringOr(payload, "tool_name");
    if (const json::value* parameters = payload.if_contains("parameters");
        parameters != nullptr && parameters->is_object()) {
      call.parameters = parameters->as_object();
    }
    call.event_id = EventId(payload.if_contains("event_id"));
    return Ok(std::move(type), std::move(call));
  }
  if (type == "agent_tool_response") {
    const auto& payload = Payload(message, "agent_tool_response");
    AgentToolResponse response;
    response.tool_name = StringOr(payload, "tool_name");
    response.tool_call_id = StringOr(payload, "tool_call_id");
    response.tool_type = StringOr(payload, "tool_type");
    response.is_error = BoolOr(payload, "is_error", false);
    response.is_called = BoolOr(payload, "is_called", true);
    response.event_id = EventId(payload.if_contains("event_id"));
    return Ok(std::move(type), std::move(response));
  }
  if (type == "error") {
    const auto& payload = Payload(message, "error_event");
    ServerError error;
    if (const json::value* code = payload.if_contains("code")) {
      if (code->is_int64() && code->as_int64() >= 0 && code->as_int64() <= 65535) {
        error.code = static_cast<int>(code->as_int64());
      } else if (auto parsed = EventId(code); parsed && *parsed >= 0 && *parsed <= 65535) {
        error.code = static_cast<int>(*parsed);
      }
    }
    error.error_type = StringOr(payload, "error_type");
    error.message = StringOr(payload, "message");
    error.reason = StringOr(payload, "reason");
    return Ok(std::move(type), std::move(error));
  }
  OtherEvent other{type};
  return Ok(std::move(type), std::move(other));
}

json::object TypeOnly(std::string_view type) {
  json::object object;
  object["type"] = type;
  return object;
}

}  // namespace

// --- client messages ------------------------------------------------------------------------

std::string InitiationMessage(const InitiationData& data) {
  json::object message = TypeOnly("conversation_initiation_client_data");
  if (!data.conversation_config_override.empty()) {
    message["conversation_config_override"] = data.conversation_config_override;
  }
  if (!data.custom_llm_extra_body.empty()) {
    message["custom_llm_extra_body"] = data.custom_llm_extra_body;
  }
  if (!data.dynamic_variables.empty()) message["dynamic_variables"] = data.dynamic_variables;
  if (!data.user_id.empty()) message["user_id"] = data.user_id;
  if (!data.source.empty()) {
    message["source_info"] = json::object{{"source", data.source}, {"version", data.version}};
  }
  return Serialize(message);
}

std::string UserAudioChunkMessage(std::span<const std::uint8_t> audio) {
  constexpr std::string_view kHead = R"({"user_audio_chunk":")";
  constexpr std::string_view kTail = R"("})";
  const std::size_t encoded = core::Base64EncodedSize(audio.size());
  std::string out = TakeFrame();
  // A recycled frame of the same size (every chunk but a final one) is resized without a fill.
  out.resize(kHead.size() + encoded + kTail.size());
  char* dest = out.data();
  std::memcpy(dest, kHead.data(), kHead.size());
  core::Base64EncodeInto(audio, dest + kHead.size());
  std::memcpy(dest + kHead.size() + encoded, kTail.data(), kTail.size());
  return out;
}

void RecycleFrame(std::string&& frame) {
  auto& pool = FramePool();
  if (pool.size() >= kPooledFrames || frame.capacity() < kMinPooledCapacity ||
      frame.capacity() > kMaxPooledCapacity) {
    return;
  }
  pool.push_back(std::move(frame));
}

std::string PongMessage(std::int64_t event_id) {
  json::object message = TypeOnly("pong");
  message["event_id"] = event_id;
  return Serialize(message);
}

std::string ClientToolResultMessage(std::string_view tool_call_id, std::string_view result,
                                    bool is_error) {
  json::object message = TypeOnly("client_tool_result");
  message["tool_call_id"] = tool_call_id;
  message["result"] = result;
  message["is_error"] = is_error;
  return Serialize(message);
}

std::string UserActivityMessage() {
  return Serialize(TypeOnly("user_activity"));
}

std::string ContextualUpdateMessage(std::string_view text, std::string_view context_id) {
  json::object message = TypeOnly("contextual_update");
  message["text"] = text;
  if (!context_id.empty()) message["context_id"] = context_id;
  return Serialize(message);
}

std::string UserMessageMessage(std::string_view text) {
  json::object message = TypeOnly("user_message");
  message["text"] = text;
  return Serialize(message);
}

std::string FeedbackMessage(std::int64_t event_id, bool like) {
  json::object message = TypeOnly("feedback");
  message["score"] = like ? "like" : "dislike";
  message["event_id"] = event_id;
  return Serialize(message);
}

// --- server messages ------------------------------------------------------------------------

ParsedEvent ParseServerMessage(std::string_view text, std::size_t max_bytes) {
  if (text.size() > max_bytes) {
    return Fail("", "message of " + std::to_string(text.size()) + " bytes exceeds the limit of " +
                        std::to_string(max_bytes));
  }
  // Most messages are small; a stack buffer takes the DOM without touching the heap.
  unsigned char buffer[4096];
  json::monotonic_resource resource(buffer, sizeof buffer);
  json::parse_options options;
  options.max_depth = 64;
  boost::system::error_code ec;
  json::value value = json::parse(text, ec, &resource, options);
  if (ec) return Fail("", "not JSON: " + ec.message());
  if (!value.is_object()) return Fail("", "not a JSON object");
  return ParseObject(value.as_object());
}

std::string_view EventType(const ServerEvent& event) {
  struct Visitor {
    std::string_view operator()(const InitiationMetadata&) const {
      return "conversation_initiation_metadata";
    }
    std::string_view operator()(const AudioChunk&) const { return "audio"; }
    std::string_view operator()(const Interruption&) const { return "interruption"; }
    std::string_view operator()(const Ping&) const { return "ping"; }
    std::string_view operator()(const AgentResponse&) const { return "agent_response"; }
    std::string_view operator()(const AgentResponseCorrection&) const {
      return "agent_response_correction";
    }
    std::string_view operator()(const UserTranscript&) const { return "user_transcript"; }
    std::string_view operator()(const TentativeUserTranscript&) const {
      return "tentative_user_transcript";
    }
    std::string_view operator()(const TentativeAgentResponse&) const {
      return "internal_tentative_agent_response";
    }
    std::string_view operator()(const ClientToolCall&) const { return "client_tool_call"; }
    std::string_view operator()(const AgentToolResponse&) const { return "agent_tool_response"; }
    std::string_view operator()(const ServerError&) const { return "error"; }
    std::string_view operator()(const OtherEvent& other) const { return other.type; }
  };
  return std::visit(Visitor{}, event);
}

// --- base64 ---------------------------------------------------------------------------------

void Base64EncodeTo(std::span<const std::uint8_t> bytes, std::string& out) {
  core::Base64EncodeTo(bytes, out);
}

std::string Base64Encode(std::span<const std::uint8_t> bytes) {
  std::string out;
  Base64EncodeTo(bytes, out);
  return out;
}

std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text) {
  // Strip the padding (at most two '='), then the length decides the tail.
  std::size_t length = text.size();
  std::size_t padding = 0;
  while (length > 0 && text[length - 1] == '=' && padding < 2) {
    --length;
    ++padding;
  }
  if (padding > 0 && text.size() % 4 != 0) return std::nullopt;
  if (length % 4 == 1) return std::nullopt;
  if (padding > 0 && (length % 4) + padding != 4) return std::nullopt;
  const std::size_t whole = length / 4 * 4;
  const std::size_t rest = length - whole;
  std::vector<std::uint8_t> out(whole / 4 * 3 + (rest == 0 ? 0 : rest - 1));
  if (!core::Base64DecodeBlocks(text.substr(0, whole), out.data())) return std::nullopt;
  if (rest >= 2) {
    const int a = core::Base64Value(text[whole]);
    const int b = core::Base64Value(text[whole + 1]);
    const int c = rest == 3 ? core::Base64Value(text[whole + 2]) : 0;
    if ((a | b | c) < 0) return std::nullopt;
    const auto n = static_cast<std::uint32_t>((a << 18) | (b << 12) | (c << 6));
    out[whole / 4 * 3] = static_cast<std::uint8_t>(n >> 16);
    if (rest == 3) out[whole / 4 * 3 + 1] = static_cast<std::uint8_t>(n >> 8);
  }
  return out;
}

}  // namespace callgate::conversation
