#include "webhook/event.hpp"

#include <openssl/evp.h>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/monotonic_resource.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/parse_options.hpp>
#include <boost/json/stream_parser.hpp>
#include <boost/json/value.hpp>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace callgate::webhook {
namespace {

// Bodies up to this size are checked in one pass without a tree (see ParseEvent).
constexpr std::size_t kOnePassBodyBytes = 1024 * 1024;

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

constexpr int kBase64Invalid = -1;

int Base64Value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return kBase64Invalid;
}

constexpr int kMaxDepth = 64;

// What a parse finds of the envelope, before it is checked. Each field is absent, a scalar as
// found, or an empty container of the kind found (only its kind matters).
struct Envelope {
  std::optional<boost::json::value> type;
  std::optional<boost::json::value> event_timestamp;
  std::optional<boost::json::value> data;
  std::optional<boost::json::value> conversation_id;  // data.*
  std::optional<boost::json::value> agent_id;
  std::optional<boost::json::value> failure_reason;
  std::optional<boost::json::value> provider;  // data.metadata.type, when metadata is an object
};

std::optional<boost::json::value> ShapeOf(const boost::json::value* value) {
  if (value == nullptr) return std::nullopt;
  if (value->is_object()) return boost::json::value(boost::json::object_kind);
  if (value->is_array()) return boost::json::value(boost::json::array_kind);
  return boost::json::value(*value, boost::json::storage_ptr());
}

EventError InvalidJson(std::string_view body, std::size_t consumed, boost::system::error_code ec) {
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
  error.message = body.empty()
                      ? std::string("the request body is empty; expected a JSON event")
                      : "the request body is not valid JSON: " + ec.message() + " at line " +
                            std::to_string(error.line) + ", column " + std::to_string(error.column);
  return error;
}

EventError NotAnObject(std::string_view kind) {
  EventError error =
      Error("invalid_json", "", "the event must be a JSON object, got " + std::string(kind));
  error.offset = 0;
  error.line = 1;
  error.column = 1;
  return error;
}

// The checks both parses share, in the order their errors are reported. Everything but the
// audio (whose checks need the base64) and `document`.
EventResult Check(const Envelope& envelope) {
  const auto& type = envelope.type;
  if (!type) return Error("missing_field", "type", "the event has no \"type\"");
  if (!type->is_string() || type->get_string().empty()) {
    return Error("invalid_field", "type",
                 "\"type\" must be a non-empty string, got " + std::string(KindOf(*type)));
  }
  std::optional<std::int64_t> event_timestamp;
  if (const auto& timestamp = envelope.event_timestamp; timestamp && !timestamp->is_null()) {
    event_timestamp = UnixSeconds(*timestamp);
    if (!event_timestamp) {
      return Error("invalid_field", "event_timestamp",
                   "\"event_timestamp\" must be unix seconds (a number or a numeric string), got " +
                       std::string(KindOf(*timestamp)));
    }
  }
  if (!envelope.data) return Error("missing_field", "data", "the event has no \"data\"");
  if (!envelope.data->is_object()) {
    return Error("invalid_field", "data",
                 "\"data\" must be an object, got " + std::string(KindOf(*envelope.data)));
  }
  Event event{.type = std::string(type->get_string()), .event_timestamp = event_timestamp};
  event.kind = ClassifyEventType(event.type);
  if (const auto& id = envelope.conversation_id; id && !id->is_null()) {
    if (!id->is_string()) {
      return Error("invalid_field", "data.conversation_id",
                   "\"data.conversation_id\" must be a string, got " + std::string(KindOf(*id)));
    }
    event.conversation_id = std::string(id->get_string());
  }
  if (const auto& agent = envelope.agent_id; agent && agent->is_string()) {
    event.agent_id = std::string(agent->get_string());
  }
  const bool needs_conversation =
      event.kind == EventType::kPostCallTranscription || event.kind == EventType::kPostCallAudio;
  if (needs_conversation && event.conversation_id.empty()) {
    return Error("missing_field", "data.conversation_id",
                 "a " + event.type + " event needs \"data.conversation_id\"");
  }
  if (event.kind == EventType::kCallInitiationFailure) {
    InitiationFailure& f = event.failure.emplace();
    if (const auto& reason = envelope.failure_reason; reason && reason->is_string()) {
      f.failure_reason = std::string(reason->get_string());
    }
    if (f.failure_reason.empty()) f.failure_reason = "unknown";
    if (const auto& provider = envelope.provider; provider && provider->is_string()) {
      f.provider = std::string(provider->get_string());
    }
  }
  return event;
}

// A boost::json::basic_parser handler that checks a whole body is JSON while keeping only the
// envelope's fields: no tree is built, and strings are copied only for the fields it keeps.
// Duplicate keys resolve as in a tree (boost::json keeps the last): a repeated "data" or
// "metadata" starts its fields afresh.
class EnvelopeHandler {
 public:
  static constexpr std::size_t max_object_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_array_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_key_size = static_cast<std::size_t>(-1);
  static constexpr std::size_t max_string_size = static_cast<std::size_t>(-1);

  Envelope envelope;
  std::string_view root_kind;  // KindOf the document

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_object_begin(boost::system::error_code&) {
    const Slot slot = Take(boost::json::value(boost::json::object_kind));
    ++depth_;
    if (slot == Slot::kData) data_depth_ = depth_;
    if (slot == Slot::kMetadata) metadata_depth_ = depth_;
    return true;
  }
  bool on_object_end(std::size_t, boost::system::error_code&) {
    if (depth_ == metadata_depth_) metadata_depth_ = 0;
    if (depth_ == data_depth_) data_depth_ = 0;
    --depth_;
    return true;
  }
  bool on_array_begin(boost::system::error_code&) {
    Take(boost::json::value(boost::json::array_kind));
    ++depth_;
    return true;
  }
  bool on_array_end(std::size_t, boost::system::error_code&) {
    --depth_;
    return true;
  }
  bool on_key_part(std::string_view part, std::size_t, boost::system::error_code&) {
    if (KeysMatter()) key_.append(part);
    return true;
  }
  bool on_key(std::string_view last, std::size_t, boost::system::error_code&) {
    if (!KeysMatter()) return true;
    std::string_view key = last;
    if (!key_.empty()) key = key_.append(last);
    slot_ = SlotOf(key);
    key_.clear();
    return true;
  }
  bool on_string_part(std::string_view part, std::size_t, boost::system::error_code&) {
    if (slot_ != Slot::kNone) string_.append(part);
    return true;
  }
  bool on_string(std::string_view last, std::size_t, boost::system::error_code&) {
    if (!Wanted()) return true;
    if (string_.empty()) {
      Take(boost::json::value(boost::json::string_view(last.data(), last.size())));
    } else {
      string_.append(last);
      Take(boost::json::value(boost::json::string_view(string_.data(), string_.size())));
      string_.clear();
    }
    return true;
  }
  bool on_number_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_int64(std::int64_t i, std::string_view, boost::system::error_code&) {
    if (Wanted()) Take(boost::json::value(i));
    return true;
  }
  bool on_uint64(std::uint64_t u, std::string_view, boost::system::error_code&) {
    if (Wanted()) Take(boost::json::value(u));
    return true;
  }
  bool on_double(double d, std::string_view, boost::system::error_code&) {
    if (Wanted()) Take(boost::json::value(d));
    return true;
  }
  bool on_bool(bool b, boost::system::error_code&) {
    if (Wanted()) Take(boost::json::value(b));
    return true;
  }
  bool on_null(boost::system::error_code&) {
    if (Wanted()) Take(boost::json::value(nullptr));
    return true;
  }
  bool on_comment_part(std::string_view, boost::system::error_code&) { return true; }
  bool on_comment(std::string_view, boost::system::error_code&) { return true; }

 private:
  // The field the next value belongs to.
  enum class Slot : std::uint8_t {
    kNone,
    kType,
    kEventTimestamp,
    kData,
    kConversationId,
    kAgentId,
    kFailureReason,
    kMetadata,
    kProvider,
  };

  // A scalar is kept only for a pending slot, or as the whole document (its kind).
  [[nodiscard]] bool Wanted() const { return slot_ != Slot::kNone || depth_ == 0; }

  // Keys are read in the envelope, in its data, and in data.metadata only.
  [[nodiscard]] bool KeysMatter() const {
    return depth_ == 1 || (data_depth_ != 0 && depth_ == data_depth_) ||
           (metadata_depth_ != 0 && depth_ == metadata_depth_);
  }

  [[nodiscard]] Slot SlotOf(std::string_view key) const {
    if (depth_ == 1) {
      if (key == "type") return Slot::kType;
      if (key == "event_timestamp") return Slot::kEventTimestamp;
      if (key == "data") return Slot::kData;
    } else if (depth_ == data_depth_) {
      if (key == "conversation_id") return Slot::kConversationId;
      if (key == "agent_id") return Slot::kAgentId;
      if (key == "failure_reason") return Slot::kFailureReason;
      if (key == "metadata") return Slot::kMetadata;
    } else if (key == "type") {  // in data.metadata
      return Slot::kProvider;
    }
    return Slot::kNone;
  }

  // Files a value (a container as an empty one of its kind) under the pending slot, and clears
  // the slot; returns the slot it went to.
  Slot Take(boost::json::value value) {
    if (depth_ == 0) root_kind = KindOf(value);
    const Slot slot = slot_;
    slot_ = Slot::kNone;
    switch (slot) {
      case Slot::kNone:
        break;
      case Slot::kType:
        envelope.type = std::move(value);
        break;
      case Slot::kEventTimestamp:
        envelope.event_timestamp = std::move(value);
        break;
      case Slot::kData:  // a repeated "data" replaces the first one's fields
        envelope.data = std::move(value);
        envelope.conversation_id.reset();
        envelope.agent_id.reset();
        envelope.failure_reason.reset();
        envelope.provider.reset();
        break;
      case Slot::kConversationId:
        envelope.conversation_id = std::move(value);
        break;
      case Slot::kAgentId:
        envelope.agent_id = std::move(value);
        break;
      case Slot::kFailureReason:
        envelope.failure_reason = std::move(value);
        break;
      case Slot::kMetadata:  // a repeated "metadata" replaces the first one's type
        envelope.provider.reset();
        break;
      case Slot::kProvider:
        envelope.provider = std::move(value);
        break;
    }
    return slot;
  }

  int depth_ = 0;           // containers open around the next token
  int data_depth_ = 0;      // depth_ inside the envelope's "data" object; 0 when outside it
  int metadata_depth_ = 0;  // depth_ inside data.metadata; 0 when outside it
  Slot slot_ = Slot::kNone;
  std::string key_;     // a key's earlier parts
  std::string string_;  // a kept string's earlier parts
};

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
  return ParseTranscription(DataOf(event));
}

EventResult ParseEventWithTree(std::string body) {
  boost::json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::json::stream_parser parser({}, options);
  // A body of ordinary size is parsed into one arena, freed in one go: its tree is hundreds of
  // small blocks otherwise. A large body (an audio event's base64) gets the general allocator
  // rather than an arena twice its size.
  std::optional<boost::json::monotonic_resource> arena;
  if (body.size() <= kOnePassBodyBytes) {
    arena.emplace(2 * body.size() + 1024);
    parser.reset(boost::json::storage_ptr(&*arena));
  }
  boost::system::error_code ec;
  const std::size_t consumed = parser.write_some(body.data(), body.size(), ec);
  if (!ec && consumed < body.size()) ec = boost::json::error::extra_data;
  if (!ec) parser.finish(ec);
  if (ec) return InvalidJson(body, consumed, ec);
  boost::json::value root = parser.release();
  if (!root.is_object()) return NotAnObject(KindOf(root));
  boost::json::object& fields = root.get_object();

  Envelope envelope;
  envelope.type = ShapeOf(fields.if_contains("type"));
  envelope.event_timestamp = ShapeOf(fields.if_contains("event_timestamp"));
  auto* data = fields.if_contains("data");
  envelope.data = ShapeOf(data);
  if (data != nullptr && data->is_object()) {
    const boost::json::object& d = data->get_object();
    envelope.conversation_id = ShapeOf(d.if_contains("conversation_id"));
    envelope.agent_id = ShapeOf(d.if_contains("agent_id"));
    envelope.failure_reason = ShapeOf(d.if_contains("failure_reason"));
    if (const auto* metadata = ObjectOf(d, "metadata")) {
      envelope.provider = ShapeOf(metadata->if_contains("type"));
    }
  }
  EventResult checked = Check(envelope);
  if (!checked || checked->kind != EventType::kPostCallAudio) {
    if (checked) checked->raw = std::move(body);
    return checked;
  }

  Event& event = *checked;
  const boost::json::object& d = data->get_object();
  if (!IsSafeConversationId(event.conversation_id)) {
    return Error("invalid_field", "data.conversation_id",
                 "\"data.conversation_id\" must be 1-128 characters of [A-Za-z0-9_-] for an "
                 "audio event");
  }
  const auto* full_audio = d.if_contains("full_audio");
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
  event.audio = Audio{.mp3 = std::move(*mp3)};
  event.raw = std::move(body);
  return checked;
}

EventResult ParseEvent(std::string body) {
  if (body.size() > kOnePassBodyBytes) return ParseEventWithTree(std::move(body));
  boost::json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::json::basic_parser<EnvelopeHandler> parser(options);
  boost::system::error_code ec;
  const std::size_t consumed = parser.write_some(false, body.data(), body.size(), ec);
  if (!ec && consumed < body.size()) ec = boost::json::error::extra_data;
  if (ec) return InvalidJson(body, consumed, ec);
  const EnvelopeHandler& found = parser.handler();
  if (found.root_kind != "an object") return NotAnObject(found.root_kind);
  EventResult checked = Check(found.envelope);
  // An audio event's base64 is decoded from the tree (and is rarely under the size bound).
  if (checked && checked->kind == EventType::kPostCallAudio) {
    return ParseEventWithTree(std::move(body));
  }
  if (checked) checked->raw = std::move(body);
  return checked;
}

boost::json::object DataOf(const Event& event) {
  boost::system::error_code ec;
  boost::json::parse_options options;
  options.max_depth = kMaxDepth;
  boost::json::value root = boost::json::parse(event.raw, ec, {}, options);
  if (ec || !root.is_object()) return {};
  auto* data = root.get_object().if_contains("data");
  if (data == nullptr || !data->is_object()) return {};
  boost::json::object& fields = data->get_object();
  if (event.kind == EventType::kPostCallAudio) fields.erase("full_audio");  // in `audio`
  return std::move(fields);
}

}  // namespace callgate::webhook
