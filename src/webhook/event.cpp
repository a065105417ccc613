#include "webhook/event.hpp"

#include <openssl/evp.h>

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace callgate::webhook {
namespace {

// Bodies up to this size are parsed into a per-event arena (see ParseEvent).
constexpr std::size_t kArenaBodyBytes = 1024 * 1024;

EventError Error(std::string code, std::string field, std::string message) {
  EventError error;
  error.code = std::move(code);
  error.field = std::move(field);
  error.message = std::move(message);
  return error;
}

std::string_view KindOf(const boost::json::value& value) {
  switch (value.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "a boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "a number";
    case boost::json::kind::string:
      return "a string";
    case boost::json::kind::array:
      return "an array";
    case boost::json::kind::object:
      return "an object";
  }
  return "a value";
}

// Best-effort accessors: the typed view never refuses a signed delivery over an optional field.
std::string StringOr(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

std::optional<double> NumberOf(const boost::json::value* value) {
  if (value == nullptr || !value->is_number()) return std::nullopt;
  const double number = value->to_number<double>();
  if (!std::isfinite(number)) return std::nullopt;
  return number;
}

const boost::json::object* ObjectOf(const boost::json::object& object, std::string_view key) {
  const auto* value = object.if_contains(key);
  return value != nullptr && value->is_object() ? &value->get_object() : nullptr;
}

// A unix-seconds value: an integer, an integral double, or a string of digits.
std::optional<std::int64_t> UnixSeconds(const boost::json::value& value) {
  if (value.is_int64()) return value.get_int64();
  if (value.is_uint64()) {
    if (value.get_uint64() > static_cast<std::uint64_t>(INT64_MAX)) return std::nullopt;
    return static_cast<std::int64_t>(value.get_uint64());
  }
  if (value.is_double()) {
    const double d = value.get_double();
    // Fractional seconds are tolerated (truncated); the range check keeps the cast defined.
    if (!std::isfinite(d) || d < -9.0e15 || d > 9.0e15) return std::nullopt;
    return static_cast<std::int64_t>(d);
  }
  if (value.is_string()) {
    const std::string_view text = value.get_string();
    if (text.empty() || text.size() > 18) return std::nullopt;
    std::int64_t seconds = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), seconds);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return seconds;
  }
  return std::nullopt;
}

Transcription ParseTranscription(const boost::json::object& data) {
  Transcription t;
  t.status = StringOr(data, "status");
  t.user_id = StringOr(data, "user_id");
  t.recording_url = StringOr(data, "recording_url");
  if (const auto* transcript = data.if_contains("transcript")) {
    if (transcript->is_array()) {
      for (const auto& item : transcript->get_array()) {
        if (!item.is_object()) continue;
        const auto& turn = item.get_object();
        t.transcript.push_back(
            {.role = StringOr(turn, "role"),
             .message = StringOr(turn, "message"),
             .time_in_call_secs = NumberOf(turn.if_contains("time_in_call_secs"))});
      }
    } else if (transcript->is_string()) {  // the seed's example: the transcript as one text
      t.transcript.push_back({.role = "", .message = std::string(transcript->get_string())});
    }
  }
  if (const auto* metadata = ObjectOf(data, "metadata")) {
    t.call_duration_secs = NumberOf(metadata->if_contains("call_duration_secs"));
    if (const auto* start = metadata->if_contains("start_time_unix_secs")) {
      t.start_time_unix_secs = UnixSeconds(*start);
    }
  }
  if (const auto* analysis = ObjectOf(data, "analysis")) {
    t.call_successful = StringOr(*analysis, "call_successful");
    t.transcript_summary = StringOr(*analysis, "transcript_summary");
  }
  return t;
}

InitiationFailure ParseFailure(const boost::json::object& data) {
  InitiationFailure f;
  f.failure_reason = StringOr(data, "failure_reason");
  if (f.failure_reason.empty()) f.failure_reason = "unknown";
  if (const auto* metadata = ObjectOf(data, "metadata")) f.provider = StringOr(*metadata, "type");
  return f;
}

constexpr int kBase64Invalid = -1;

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return kBase64Invalid;
}

}  // namespace

void throw_exception_from_error(const EventError& error, const boost::source_location&) {
  throw std::invalid_argument(error.message);
}

EventType ClassifyEventType(std::string_view type) {
  if (type == kPostCallTranscription) return EventType::kPostCallTranscription;
  if (type == kPostCallAudio) return EventType::kPostCallAudio;
  if (type == kCallInitiationFailure) return EventType::kCallInitiationFailure;
  return EventType::kOther;
}

bool IsSafeConversationId(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

std::optional<std::string> DecodeBase64(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == '=') ++padding;
  if (text.size() >= 2 && text[text.size() - 2] == '=') ++padding;
  // Validate first: EVP_DecodeBlock skips leading/trailing whitespace and does not report
  // padding, and a strict check costs little next to the decode.
  for (std::size_t i = 0; i < text.size() - padding; ++i) {
    if (Base64Value(text[i]) == kBase64Invalid) return std::nullopt;
  }
  std::string out;
  out.resize(text.size() / 4 * 3);
  // In blocks, so the int lengths OpenSSL takes never overflow.
  constexpr std::size_t kBlock = 4 * 1024 * 1024;
  std::size_t written = 0;
  for (std::size_t offset = 0; offset < text.size(); offset += kBlock) {
    const std::size_t length = std::min(kBlock, text.size() - offset);
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data() + written),
                                  reinterpret_cast<const unsigned char*>(text.data() + offset),
                                  static_cast<int>(length));
    if (n < 0) return std::nullopt;
    written += static_cast<std::size_t>(n);
  }
  out.resize(written - padding);  // EVP_DecodeBlock counts the padding as zero bytes
  return out;
}

std::optional<Transcription> TranscriptionOf(const Event& event) {
  if (event.kind != EventType::kPostCallTranscription) return std::nullopt;
  return ParseTranscription(event.data);
}

EventResult ParseEvent(std::string_view body) {
  boost::json::parse_options options;
  options.max_depth = 64;
  boost::json::stream_parser parser({}, options);
  // An event of ordinary size is parsed into one arena, freed in one go with the event: its
  // tree is hundreds of small blocks otherwise, and they are freed on the database thread.
  // A large body (an audio event's base64) gets the general allocator, so that the parts
  // erased after parsing do not stay allocated for the event's lifetime.
  std::unique_ptr<boost::json::monotonic_resource> arena;
  if (body.size() <= kArenaBodyBytes) {
    arena = std::make_unique<boost::json::monotonic_resource>(2 * body.size() + 1024);
    parser.reset(boost::json::storage_ptr(arena.get()));
  }
  boost::system::error_code ec;
  const std::size_t consumed = parser.write_some(body.data(), body.size(), ec);
  if (!ec) parser.finish(ec);
  if (ec) {
    EventError error;
    error.code = "invalid_json";
    const std::size_t offset = std::min(consumed, body.size());
    error.offset = offset;
    error.line = 1;
    error.column = 1;
    for (std::size_t i = 0; i < offset; ++i) {
      if (body[i] == '\n') {
        ++error.line;
        error.column = 1;
      } else {
        ++error.column;
      }
    }
    error.message = body.empty() ? std::string("the request body is empty; expected a JSON event")
                                 : "the request body is not valid JSON: " + ec.message() +
                                       " at line " + std::to_string(error.line) + ", column " +
                                       std::to_string(error.column);
    return error;
  }
  boost::json::value root = parser.release();
  if (!root.is_object()) {
    EventError error = Error("invalid_json", "",
                             "the event must be a JSON object, got " + std::string(KindOf(root)));
    error.offset = 0;
    error.line = 1;
    error.column = 1;
    return error;
  }
  boost::json::object& envelope = root.get_object();

  const auto* type = envelope.if_contains("type");
  if (type == nullptr) return Error("missing_field", "type", "the event has no \"type\"");
  if (!type->is_string() || type->get_string().empty()) {
    return Error("invalid_field", "type",
                 "\"type\" must be a non-empty string, got " + std::string(KindOf(*type)));
  }

  std::optional<std::int64_t> event_timestamp;
  if (const auto* timestamp = envelope.if_contains("event_timestamp");
      timestamp != nullptr && !timestamp->is_null()) {
    event_timestamp = UnixSeconds(*timestamp);
    if (!event_timestamp) {
      return Error("invalid_field", "event_timestamp",
                   "\"event_timestamp\" must be unix seconds (a number or a numeric string), got " +
                       std::string(KindOf(*timestamp)));
    }
  }

  auto* data = envelope.if_contains("data");
  if (data == nullptr) return Error("missing_field", "data", "the event has no \"data\"");
  if (!data->is_object()) {
    return Error("invalid_field", "data",
                 "\"data\" must be an object, got " + std::string(KindOf(*data)));
  }
  // Move-constructed, so that `data` keeps the parser's storage (an assignment would copy).
  Event event{.type = std::string(type->get_string()),
              .event_timestamp = event_timestamp,
              .data = std::move(data->get_object())};
  event.kind = ClassifyEventType(event.type);
  if (const auto* id = event.data.if_contains("conversation_id"); id != nullptr && !id->is_null()) {
    if (!id->is_string()) {
      return Error("invalid_field", "data.conversation_id",
                   "\"data.conversation_id\" must be a string, got " + std::string(KindOf(*id)));
    }
    event.conversation_id = std::string(id->get_string());
  }
  event.agent_id = StringOr(event.data, "agent_id");

  const bool needs_conversation =
      event.kind == EventType::kPostCallTranscription || event.kind == EventType::kPostCallAudio;
  if (needs_conversation && event.conversation_id.empty()) {
    return Error("missing_field", "data.conversation_id",
                 "a " + event.type + " event needs \"data.conversation_id\"");
  }

  switch (event.kind) {
    case EventType::kPostCallTranscription:
      break;  // typed on demand: TranscriptionOf
    case EventType::kPostCallAudio: {
      if (!IsSafeConversationId(event.conversation_id)) {
        return Error("invalid_field", "data.conversation_id",
                     "\"data.conversation_id\" must be 1-128 characters of [A-Za-z0-9_-] for an "
                     "audio event");
      }
      const auto* full_audio = event.data.if_contains("full_audio");
      if (full_audio == nullptr) {
        return Error("missing_field", "data.full_audio",
                     "a post_call_audio event needs \"data.full_audio\"");
      }
      if (!full_audio->is_string()) {
        return Error(
            "invalid_field", "data.full_audio",
            "\"data.full_audio\" must be a base64 string, got " + std::string(KindOf(*full_audio)));
      }
      std::optional<std::string> mp3 = DecodeBase64(full_audio->get_string());
      if (!mp3) {
        return Error("invalid_audio", "data.full_audio",
                     "\"data.full_audio\" is not valid base64 (RFC 4648, standard alphabet, "
                     "padded, no whitespace)");
      }
      if (mp3->empty()) {
        return Error("invalid_audio", "data.full_audio", "\"data.full_audio\" is empty");
      }
      event.data.erase("full_audio");  // the bytes live in `audio`; no second copy
      event.audio = Audio{.mp3 = std::move(*mp3)};
      break;
    }
    case EventType::kCallInitiationFailure:
      event.failure = ParseFailure(event.data);
      break;
    case EventType::kOther:
      break;
  }
  // Only now: until here the arena must outlive `root`, a local declared after it.
  event.arena = std::move(arena);
  return event;
}

}  // namespace callgate::webhook
