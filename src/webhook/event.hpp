// Post-call webhook events: a verified request body parsed into a typed event. Pure.
//
// The envelope is {"type": <string>, "event_timestamp": <unix seconds>, "data": {...}}.
// event_timestamp is optional and may be a number or a numeric string (the docs disagree).
// Known types get typed fields on top of `data`:
//   post_call_transcription  the GET-conversation shape: status, transcript turns, duration,
//                            analysis (TranscriptionOf: computed when asked, since only the
//                            terminal banner wants it). data.conversation_id is required.
//   post_call_audio          data.full_audio (base64 MP3) decoded to bytes; conversation_id is
//                            required and must be usable as a file name; DataOf() gives every
//                            field except full_audio (the bytes are in `audio`).
//   call_initiation_failure  failure_reason and metadata.type (the provider); the fields are
//                            unconfirmed upstream, so all are optional.
// Any other type is kept as a generic event: it is stored and acknowledged, not rejected.
// Beyond the required fields the typed view is best-effort: a field of an unexpected type is
// left empty rather than refusing a delivery the sender signed.
#pragma once

#include <boost/json/object.hpp>
#include <boost/system/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::webhook {

enum class EventType { kPostCallTranscription, kPostCallAudio, kCallInitiationFailure, kOther };

inline constexpr std::string_view kPostCallTranscription = "post_call_transcription";
inline constexpr std::string_view kPostCallAudio = "post_call_audio";
inline constexpr std::string_view kCallInitiationFailure = "call_initiation_failure";

EventType ClassifyEventType(std::string_view type);

struct TranscriptTurn {
  std::string role;     // "agent" | "user" as sent; empty for a free-text transcript
  std::string message;  // empty when null (a turn that only called a tool)
  std::optional<double> time_in_call_secs;
};

struct Transcription {
  std::string status;  // "done", "failed", ...
  std::string user_id;
  std::vector<TranscriptTurn> transcript;
  std::optional<double> call_duration_secs;          // metadata.call_duration_secs
  std::optional<std::int64_t> start_time_unix_secs;  // metadata.start_time_unix_secs
  std::string call_successful;                       // analysis.call_successful
  std::string transcript_summary;                    // analysis.transcript_summary
  std::string recording_url;                         // data.recording_url (the seed's shape)
};

struct Audio {
  std::string mp3;  // decoded bytes
};

struct InitiationFailure {
  std::string failure_reason;  // "busy", "no-answer", ... ("unknown" when absent)
  std::string provider;        // metadata.type: "twilio" | "sip" | ""
};

struct Event {
  std::string type;  // as received
  EventType kind = EventType::kOther;
  std::optional<std::int64_t> event_timestamp;
  std::string conversation_id;  // data.conversation_id; empty when absent
  std::string agent_id;         // data.agent_id; empty when absent
  // The body exactly as received (what the inbox stores). Parsing the envelope builds no tree of
  // the data; DataOf() does, for the readers that need one (the terminal banner, the call ledger
  // for a call of ours).
  std::string raw;
  std::optional<Audio> audio;                // kind == kPostCallAudio
  std::optional<InitiationFailure> failure;  // kind == kCallInitiationFailure
};

// Why a body was refused (a 400). `code` is one of:
//   invalid_json   not JSON, or not a JSON object (offset/line/column say where parsing stopped)
//   missing_field  a required field is absent (`field` names it, e.g. "data.conversation_id")
//   invalid_field  a field has the wrong type or value (`field` names it)
//   invalid_audio  data.full_audio is not valid base64, or decodes to nothing
struct EventError {
  std::string code;
  std::string message;
  std::string field;
  std::optional<std::size_t> offset;  // invalid_json only
  std::size_t line = 0;
  std::size_t column = 0;
};

// Lets result<T, EventError>::value() compile: found by argument-dependent lookup. Throws
// std::invalid_argument(error.message).
[[noreturn]] void throw_exception_from_error(  // NOLINT(readability-identifier-naming)
    const EventError& error, const boost::source_location& location);

using EventResult = boost::system::result<Event, EventError>;

// Parses a (verified) body, which becomes the event's `raw`. Nesting deeper than 64 levels is
// invalid_json. An event of ordinary size is checked in one pass that keeps only the envelope's
// fields (no tree); post_call_audio and bodies over 1 MB are parsed into a tree
// (ParseEventWithTree).
EventResult ParseEvent(std::string body);

// The same result through a whole tree of the body. Exposed so that tests and the fuzz target
// can check that both paths agree on every input.
EventResult ParseEventWithTree(std::string body);

// The event's `data` object, parsed from `raw` (post_call_audio: without full_audio), in the
// default storage; empty when the event has none.
boost::json::object DataOf(const Event& event);

// The typed view of a post_call_transcription's data; nullopt for other kinds.
std::optional<Transcription> TranscriptionOf(const Event& event);

// True for ids usable as a file name: 1-128 characters of [A-Za-z0-9_-].
bool IsSafeConversationId(std::string_view id);

// Strict RFC 4648 base64 (standard alphabet, '=' padding required, no whitespace). nullopt when
// invalid.
std::optional<std::string> DecodeBase64(std::string_view text);

}  // namespace callgate::webhook
