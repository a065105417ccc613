// The ConvAI WebSocket protocol as the simulator's agent speaks it (API notes §6): parsing and
// validating client messages, rendering server events, and the small pure helpers of the
// scripted agent (base64, the override check, the agent's lines, truncation after an
// interruption). No I/O, no clock: everything here is pure and thread-safe, and unit-tested.
//
// Errors: parsing never throws; a message the real service would refuse comes back as a
// ProtocolError naming the error_type the service closes with (1008 invalid_message, ...).
#pragma once

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::sim::agent {

// Client -> server message kinds (§6.2). kUserAudioChunk is the one message without "type".
enum class ClientKind {
  kUserAudioChunk,
  kInit,  // conversation_initiation_client_data
  kPong,
  kClientToolResult,
  kContextualUpdate,
  kUserMessage,
  kUserActivity,
  kFeedback,
  kMcpToolApprovalResult,
  kMultimodalMessage,
};

struct ProtocolError {
  std::string error_type;  // e.g. "invalid_message", "override_error"
  std::string message;
};

struct ClientMessage {
  ClientKind kind = ClientKind::kUserActivity;
  boost::json::object json;         // the whole message
  std::vector<std::uint8_t> audio;  // kUserAudioChunk: the decoded bytes
  std::string text;                 // user_message / contextual_update text, client_tool_result id
  std::int64_t event_id = -1;       // kPong / kFeedback (an int, or a numeric string as JS sends)
};

struct ParsedMessage {
  std::optional<ClientMessage> message;  // set on success
  ProtocolError error;                   // otherwise
};

// Parses one text frame. Refused (invalid_message): not JSON, not an object, an unknown or
// non-string "type", an object with neither "type" nor "user_audio_chunk", a user_audio_chunk
// that is not valid base64, or a required field missing or of the wrong type (§6.2's starred
// fields: pong.event_id, client_tool_result.tool_call_id/result/is_error, contextual_update.text,
// feedback.event_id).
ParsedMessage ParseClientMessage(std::string_view text);

// The override check of an agent whose "allow overrides" security setting is off: any
// non-empty value under conversation_config_override.agent.{first_message,language,prompt} or
// .tts.* is refused with override_error. Also checks the shapes the session relies on
// (dynamic_variables and conversation_config_override must be objects when present:
// invalid_message).
std::optional<ProtocolError> CheckInitiation(const boost::json::object& init, bool allow_overrides);

// RFC 4648 base64 with padding, the encoding of audio_base_64 and user_audio_chunk.
std::string Base64Encode(const std::uint8_t* data, std::size_t size);
// nullopt on any character outside the alphabet, bad padding or a length not a multiple of 4.
std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text);
// The same into `out` (its capacity is reused); false where Base64Decode gives nullopt.
bool Base64DecodeInto(std::string_view text, std::vector<std::uint8_t>& out);

// The fast path of the message sent 20 times a second: when `text` is exactly
// {"user_audio_chunk":"<valid base64>"} (what callgate and the SDKs send), decodes the audio into
// `audio` and returns true; ParseClientMessage would give kUserAudioChunk with the same bytes.
// False for anything else (other spacing, members, invalid base64): parse it with
// ParseClientMessage, which also reports the errors.
bool ParseUserAudioChunkInto(std::string_view text, std::vector<std::uint8_t>& audio);

// Server events (§6.3), serialised.
std::string MetadataEvent(std::string_view conversation_id, std::string_view output_format,
                          std::string_view input_format);
std::string AudioEvent(std::string_view audio_base_64, std::int64_t event_id);
std::string AgentResponseEvent(std::string_view text, std::int64_t event_id);
std::string AgentResponseCorrectionEvent(std::string_view original, std::string_view corrected,
                                         std::int64_t event_id);
std::string UserTranscriptEvent(std::string_view text, std::int64_t event_id);
std::string TentativeUserTranscriptEvent(std::string_view text, std::int64_t event_id);
// `reason_style`: the unconfirmed {reason: "..."} form of the websocket.mdx TS example (§9.3)
// instead of {event_id}.
std::string InterruptionEvent(std::int64_t event_id, bool reason_style);
std::string PingEvent(std::int64_t event_id, std::optional<std::int64_t> ping_ms);
std::string ClientToolCallEvent(std::string_view tool_name, std::string_view tool_call_id,
                                const boost::json::object& parameters, std::int64_t event_id);
std::string AgentToolResponseEvent(std::string_view tool_name, std::string_view tool_call_id,
                                   std::string_view tool_type, bool is_error, bool is_called,
                                   std::int64_t event_id);
std::string ErrorEvent(int code, std::string_view message, std::string_view error_type);

// The scripted agent's reply `index` (1-based) of `turns`: the last one is the goodbye.
// `purpose` (the dynamic variable "purpose", may be empty) is acknowledged in the first reply.
std::string ScriptLine(int index, int turns, std::string_view purpose);

// The part of `text` "spoken" when `fraction` (0..1) of its audio was sent: whole words whose
// characters fall within that fraction of the text. Empty when nothing was spoken yet.
std::string TruncateSpoken(std::string_view text, double fraction);

// The simulated transcript of a user turn: `style` with every "{secs}" replaced by the
// duration with one decimal ("1.4").
std::string SimulatedUserText(std::string_view style, double seconds);

}  // namespace callgate::sim::agent
