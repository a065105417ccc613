// What a conversation session reports: its status, the end reason, the transcript and the
// counters behind GET /webhook/sessions/{id} and `callgate talk`. Plain values, copied out of a
// running session (Session::Stats()) or handed to its completion callback; StatsToJson renders
// them for an HTTP answer or the store.
//
// End reasons are stable machine-readable codes with a one-line detail for humans
// ("signed_url_failed: upstream 401 invalid_api_key: Invalid API key"):
//   stopped                   Stop() was called (DELETE, Ctrl-C, shutdown); closed with 1000
//   agent_ended               the agent called end_call; its last audio was played out first
//   server_closed             the server closed normally (1000) without end_call, e.g.
//                             max_duration_exceeded; buffered audio was played out first
//   upstream_error            the server closed with an error code (1002, 1008, 1011, ...);
//                             detail "<code> <error_type>: <message>" from its error event
//   connection_lost           the connection dropped without a close frame, or stalled
//   signed_url_failed         GET get-signed-url failed (401 key, 404 agent, timeout, ...)
//   connect_failed            DNS, TCP, TLS verification or the WebSocket upgrade failed
//   protocol_error            no or unusable conversation_initiation_metadata
//   audio_device_unavailable  a device is missing, busy or failed (backends::BackendError)
//   audio_file_error          an input/output file could not be read or written
//   internal_error            a bug; the detail says where
// Pure; thread-safe as values.
#pragma once

#include "core/clock.hpp"

#include <boost/json/object.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::conversation {

enum class Status {
  kStarting,    // opening audio endpoints that do not depend on the formats, signed URL
  kConnecting,  // WebSocket handshake, waiting for conversation_initiation_metadata
  kActive,      // talking
  kEnding,      // playing out the last audio, or closing
  kEnded,
};
std::string_view ToString(Status status);

struct EndReason {
  std::string code;               // see the table above
  std::string detail;             // one line; may be empty
  std::optional<int> close_code;  // the WebSocket close code, when the socket was open

  // "code" or "code: detail".
  std::string ToString() const;
  friend bool operator==(const EndReason&, const EndReason&) = default;
};

struct Turn {
  enum class Role { kAgent, kUser };
  Role role = Role::kAgent;
  std::string text;
  core::SystemTime time;  // when the turn's text arrived
  std::optional<std::int64_t> event_id;
  bool interrupted = false;  // agent turn cut short (text is the corrected one)
};
std::string_view ToString(Turn::Role role);

struct SessionStats {
  std::string session_id;
  std::string agent_id;
  Status status = Status::kStarting;
  std::string conversation_id;            // empty until the metadata arrives
  std::string agent_output_audio_format;  // empty until the metadata arrives
  std::string user_input_audio_format;
  std::string input;  // audio endpoint specs, e.g. "file:/tmp/in.wav", "device"
  std::string output;
  core::SystemTime start_time;
  std::optional<core::SystemTime> end_time;
  std::chrono::milliseconds duration{0};  // to end_time, or to now while running

  double audio_seconds_sent = 0;      // user audio sent, in user_input_audio_format
  double audio_seconds_received = 0;  // agent audio received, in agent_output_audio_format
  double audio_seconds_played = 0;    // agent audio handed to the output endpoint
  // The most the user audio trailed its capture, just before a tick sent its chunks (the chunk
  // being filled plus the wait for the tick; the network comes on top).
  double user_audio_lag_max_ms = 0;
  std::uint64_t user_chunks_sent = 0;
  std::uint64_t user_chunks_dropped = 0;  // the send queue was full
  std::uint64_t audio_events = 0;
  std::uint64_t stale_audio_events = 0;  // dropped: event_id not above the last interruption
  std::uint64_t interruptions = 0;
  std::uint64_t underruns = 0;  // playback ran dry inside one agent utterance
  std::uint64_t pings_answered = 0;
  std::optional<std::int64_t> last_ping_ms;
  std::uint64_t tool_calls = 0;
  std::uint64_t malformed_messages = 0;  // unparseable server frames (ignored)
  std::uint64_t ignored_events = 0;      // well-formed events the session does not act on

  std::vector<Turn> transcript;      // bounded; the oldest turns go first
  std::string tentative_user_text;   // the user's words being spoken, if any
  std::string tentative_agent_text;  // internal_tentative_agent_response, if any
  std::optional<EndReason> end_reason;
};

// {"session_id","agent_id","status","conversation_id","formats":{...},"input","output",
//  "start_time" (ISO 8601 UTC),"end_time","duration_ms","audio":{...},"pings":{"answered",
//  "last_ping_ms"},"tool_calls","transcript":[{"role","text","time","event_id","interrupted"}],
//  "tentative":{...},"end_reason":{"code","detail","close_code","text"}|null,...}
boost::json::object StatsToJson(const SessionStats& stats);

// ISO 8601 UTC with milliseconds: "2026-01-02T03:04:05.678Z".
std::string FormatTime(core::SystemTime time);

}  // namespace callgate::conversation
