// The ConvAI WebSocket protocol as a client speaks it (API notes §6): building every client
// message and parsing every server message into a typed event.
//
// Client messages are rendered as compact JSON text frames ready to send. Server messages are
// parsed into `ServerEvent`, a variant with one struct per event the session acts on; every
// other well-formed message (vad_score, agent_chat_response_part, mcp_*, unknown future types)
// becomes `OtherEvent` so that new server features never break a conversation.
//
// Tolerance, on purpose (the service's contract has several published versions, §9):
//   - event ids are accepted as JSON integers or numeric strings;
//   - a payload is read from its documented key ("audio_event", "ping_event", ...) and, when
//     that key is absent, from the message's top level;
//   - `interruption` may carry {"reason": "..."} instead of {"event_id": n} (§9.3): the event
//     then has no event_id and the session interrupts the latest agent audio;
//   - base64 audio may omit its padding;
//   - conversation_initiation_metadata without audio formats means pcm_16000 (as the JS SDK).
// What cannot be acted on is an error value, never an exception: not JSON, not an object, no
// string "type", an `audio` without valid base64, a `ping` or `client_tool_call` without the
// ids that must be echoed, or a message longer than the limit.
//
// Pure: no I/O, no clock, no globals; thread-safe. Errors: ParseServerMessage returns them as
// values (ParsedEvent::error); the builders cannot fail.
#pragma once

#include <boost/json/object.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace callgate::conversation {

// --- client -> server (§6.2) ----------------------------------------------------------------

// What goes into conversation_initiation_client_data. Empty objects and strings are omitted
// from the message.
struct InitiationData {
  boost::json::object dynamic_variables;             // {"user_name": "John", ...}
  boost::json::object conversation_config_override;  // {"agent": {...}, "tts": {...}, ...}
  boost::json::object custom_llm_extra_body;         // {"temperature": 0.7}
  std::string user_id;
  // source_info {source, version}; an empty source omits source_info.
  std::string source = "callgate";
  std::string version = "0.1.0";
};

// {"type":"conversation_initiation_client_data", ...}: the first message of every session.
std::string InitiationMessage(const InitiationData& data);
// {"user_audio_chunk":"<base64>"}: raw audio in user_input_audio_format.
std::string UserAudioChunkMessage(std::span<const std::uint8_t> audio);
// {"type":"pong","event_id":n}
std::string PongMessage(std::int64_t event_id);
// {"type":"client_tool_result","tool_call_id":...,"result":...,"is_error":...}
std::string ClientToolResultMessage(std::string_view tool_call_id, std::string_view result,
                                    bool is_error);
// {"type":"user_activity"}
std::string UserActivityMessage();
// {"type":"contextual_update","text":...[,"context_id":...]}
std::string ContextualUpdateMessage(std::string_view text, std::string_view context_id = {});
// {"type":"user_message","text":...}
std::string UserMessageMessage(std::string_view text);
// {"type":"feedback","score":"like"|"dislike","event_id":n}
std::string FeedbackMessage(std::int64_t event_id, bool like);

// --- server -> client (§6.3) ----------------------------------------------------------------

struct InitiationMetadata {
  std::string conversation_id;
  std::string agent_output_audio_format = "pcm_16000";
  std::string user_input_audio_format = "pcm_16000";
};

struct AudioChunk {
  std::vector<std::uint8_t> audio;       // decoded audio_base_64, in agent_output_audio_format
  std::optional<std::int64_t> event_id;  // absent only in malformed-but-usable messages
};

struct Interruption {
  std::optional<std::int64_t> event_id;  // absent in the {"reason": ...} form
  std::string reason;
};

struct Ping {
  std::int64_t event_id = 0;
  std::optional<std::int64_t> ping_ms;  // null on the first ping
};

struct AgentResponse {
  std::string text;
  std::optional<std::int64_t> event_id;
};

struct AgentResponseCorrection {
  std::string original;
  std::string corrected;
  std::optional<std::int64_t> event_id;
};

struct UserTranscript {
  std::string text;
  std::optional<std::int64_t> event_id;
};

// tentative_user_transcript: the user's words so far, superseded by the next one or by the
// final user_transcript.
struct TentativeUserTranscript {
  std::string text;
  std::optional<std::int64_t> event_id;
};

// internal_tentative_agent_response: what the agent is about to say.
struct TentativeAgentResponse {
  std::string text;
};

struct ClientToolCall {
  std::string tool_name;
  std::string tool_call_id;
  boost::json::object parameters;
  std::optional<std::int64_t> event_id;
};

// agent_tool_response: a tool the agent ran itself; tool_name "end_call" means it hung up.
struct AgentToolResponse {
  std::string tool_name;
  std::string tool_call_id;
  std::string tool_type;
  bool is_error = false;
  bool is_called = true;
  std::optional<std::int64_t> event_id;
};

// error: sent when the server is about to close because of an error.
struct ServerError {
  int code = 0;  // the close code that follows (1000, 1002, 1008, 1011)
  std::string error_type;
  std::string message;
  std::string reason;
};

// Any other well-formed message: known types the session ignores and unknown ones.
struct OtherEvent {
  std::string type;
};

using ServerEvent = std::variant<InitiationMetadata, AudioChunk, Interruption, Ping, AgentResponse,
                                 AgentResponseCorrection, UserTranscript, TentativeUserTranscript,
                                 TentativeAgentResponse, ClientToolCall, AgentToolResponse,
                                 ServerError, OtherEvent>;

struct ParsedEvent {
  std::optional<ServerEvent> event;  // set on success
  std::string type;                  // the message's "type" when it could be read
  std::string error;                 // otherwise: one line, never the payload itself
};

// Parses one text frame from the server. Frames longer than `max_bytes` are refused unread.
ParsedEvent ParseServerMessage(std::string_view text, std::size_t max_bytes = 4 * 1024 * 1024);

// The "type" string of a ServerEvent ("audio", "ping", ...; OtherEvent's own type).
std::string_view EventType(const ServerEvent& event);

// --- frame buffers --------------------------------------------------------------------------

// Gives a written frame's buffer back for the next user_audio_chunk built on this thread
// (UserAudioChunkMessage takes from the pool): the transport calls it once a frame is on the
// wire, so the 50 ms chunks reuse a few buffers instead of allocating and zero-filling one each.
// Keeps at most 128 buffers of moderate capacity per thread; anything else is just freed.
void RecycleFrame(std::string&& frame);

// --- base64 (RFC 4648, the encoding of audio_base_64 and user_audio_chunk) ------------------

std::string Base64Encode(std::span<const std::uint8_t> bytes);
// Appends the encoding of `bytes` to `out`.
void Base64EncodeTo(std::span<const std::uint8_t> bytes, std::string& out);
// nullopt for characters outside the alphabet, misplaced padding or an impossible length.
// Padding is optional.
std::optional<std::vector<std::uint8_t>> Base64Decode(std::string_view text);

}  // namespace callgate::conversation
