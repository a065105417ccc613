#include "upstream/conversation_parse.hpp"

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/value_stack.hpp>

#include <cstdint>
#include <string>
#include <vector>

namespace callgate::upstream {
namespace {

namespace json = boost::json;
using boost::system::error_code;

// What happens to the values inside a container (see the header's list).
enum class Mode : std::uint8_t {
  kRoot,      // the document: the listed members
  kTurns,     // transcript: object items, as kTurn
  kTurn,      // one turn: role, message, time_in_call_secs
  kMetadata,  // call_duration_secs, start_time_unix_secs, termination_reason
  kAll,       // everything below
  kSkip,      // nothing below
};

// What a key of a filtering object says about its value.
enum class Slot : std::uint8_t { kDrop, kWhole, kTranscript, kMetadata };

Slot SlotOf(Mode object, std::string_view key) {
  switch (object) {
    case Mode::kRoot:
      if (key == "transcript") return Slot::kTranscript;
      if (key == "metadata") return Slot::kMetadata;
      if (key == "conversation_id" || key == "status" || key == "agent_id" || key == "has_audio" ||
          key == "analysis") {
        return Slot::kWhole;
      }
      return Slot::kDrop;
    case Mode::kTurn:
      return key == "role" || key == "message" || key == "time_in_call_secs" ? Slot::kWhole
                                                                             : Slot::kDrop;
    case Mode::kMetadata:
      return key == "call_duration_secs" || key == "start_time_unix_secs" ||
                     key == "termination_reason"
                 ? Slot::kWhole
                 : Slot::kDrop;
    default:
      return Slot::kDrop;
  }
}

bool Filters(Mode mode) {
  return mode == Mode::kRoot || mode == Mode::kTurn || mode == Mode::kMetadata;
}

// Builds the kept values on a boost::json::value_stack, as boost::json::parser does for all.
class RenderHandler {
 public:
  static constexpr std::size_t max_object_size = json::object::max_size();
  static constexpr std::size_t max_array_size = json::array::max_size();
  static constexpr std::size_t max_key_size = json::string::max_size();
  static constexpr std::size_t max_string_size = json::string::max_size();

  explicit RenderHandler(json::storage_ptr storage) : stack_({}, temp_, sizeof temp_) {
    stack_.reset(std::move(storage));
  }

  json::value Release() { return stack_.release(); }

  bool on_document_begin(error_code&) { return true; }
  bool on_document_end(error_code&) { return true; }

  bool on_object_begin(error_code&) { return Open(true); }
  bool on_object_end(std::size_t, error_code&) { return Close(true); }
  bool on_array_begin(error_code&) { return Open(false); }
  bool on_array_end(std::size_t, error_code&) { return Close(false); }

  bool on_key_part(std::string_view part, std::size_t, error_code&) {
    const Mode mode = frames_.back().mode;
    if (mode == Mode::kAll) {
      stack_.push_chars(part);
    } else if (Filters(mode)) {
      key_.append(part);
    }
    return true;
  }
  bool on_key(std::string_view last, std::size_t, error_code&) {
    const Mode mode = frames_.back().mode;
    if (mode == Mode::kAll) {
      stack_.push_key(last);
    } else if (Filters(mode)) {
      std::string_view key = last;
      if (!key_.empty()) key = key_.append(last);
      slot_ = SlotOf(mode, key);
      if (slot_ != Slot::kDrop) stack_.push_key(key);
      key_.clear();
    }
    return true;
  }

  bool on_string_part(std::string_view part, std::size_t, error_code&) {
    if (!in_string_) {
      in_string_ = true;
      string_kept_ = Claim();
    }
    if (string_kept_) stack_.push_chars(part);
    return true;
  }
  bool on_string(std::string_view last, std::size_t, error_code&) {
    const bool kept = in_string_ ? string_kept_ : Claim();
    in_string_ = false;
    if (kept) stack_.push_string(last);
    return true;
  }
  bool on_number_part(std::string_view, error_code&) { return true; }
  bool on_int64(std::int64_t i, std::string_view, error_code&) {
    if (Claim()) stack_.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, std::string_view, error_code&) {
    if (Claim()) stack_.push_uint64(u);
    return true;
  }
  bool on_double(double d, std::string_view, error_code&) {
    if (Claim()) stack_.push_double(d);
    return true;
  }
  bool on_bool(bool b, error_code&) {
    if (Claim()) stack_.push_bool(b);
    return true;
  }
  bool on_null(error_code&) {
    if (Claim()) stack_.push_null();
    return true;
  }
  bool on_comment_part(std::string_view, error_code&) { return true; }
  bool on_comment(std::string_view, error_code&) { return true; }

 private:
  struct Frame {
    Mode mode;
    std::size_t kept = 0;  // values (arrays) or members (objects) pushed
  };

  // A scalar value begins: whether it is kept (and counted in its container).
  bool Claim() { return Mode::kSkip != Place(false, false); }

  // A container begins: its frame, with what is kept below it.
  bool Open(bool object) {
    frames_.push_back({Place(true, object)});
    return true;
  }

  // A container ends: built from its kept values, unless it was dropped.
  bool Close(bool object) {
    const Frame frame = frames_.back();
    frames_.pop_back();
    if (frame.mode == Mode::kSkip) return true;
    if (object) {
      stack_.push_object(frame.kept);
    } else {
      stack_.push_array(frame.kept);
    }
    return true;
  }

  // Where the value that begins goes: kSkip when dropped, else the mode for a container's
  // contents (kAll for a kept scalar). Counts a kept value in its container.
  Mode Place(bool container, bool object) {
    if (frames_.empty()) {  // the document itself
      return container && object ? Mode::kRoot : Mode::kAll;
    }
    Frame& parent = frames_.back();
    Mode mode = Mode::kSkip;
    switch (parent.mode) {
      case Mode::kSkip:
        return Mode::kSkip;
      case Mode::kAll:
        mode = Mode::kAll;
        break;
      case Mode::kTurns:
        if (container && object) mode = Mode::kTurn;
        break;
      case Mode::kRoot:
      case Mode::kTurn:
      case Mode::kMetadata:
        switch (slot_) {
          case Slot::kDrop:
            break;
          case Slot::kWhole:
            mode = Mode::kAll;
            break;
          case Slot::kTranscript:
            mode = container && !object ? Mode::kTurns : Mode::kAll;
            break;
          case Slot::kMetadata:
            mode = container && object ? Mode::kMetadata : Mode::kAll;
            break;
        }
        slot_ = Slot::kDrop;
        break;
    }
    if (mode != Mode::kSkip) ++parent.kept;
    return mode;
  }

  unsigned char temp_[4096];
  json::value_stack stack_;
  std::vector<Frame> frames_;
  std::string key_;  // a filtered key that came in parts
  Slot slot_ = Slot::kDrop;
  bool in_string_ = false;
  bool string_kept_ = false;
};

}  // namespace

ConversationParse ParseConversationForRender(std::string_view text, json::storage_ptr storage) {
  json::basic_parser<RenderHandler> parser(json::parse_options{}, std::move(storage));
  error_code error;
  const std::size_t consumed = parser.write_some(false, text.data(), text.size(), error);
  if (!error && consumed < text.size()) error = json::error::extra_data;
  if (error) return {.root = nullptr, .error = error, .consumed = consumed};
  // Constructed, not assigned: an assigned value would be copied to the default storage.
  return {.root = parser.handler().Release(), .error = error, .consumed = consumed};
}

}  // namespace callgate::upstream
