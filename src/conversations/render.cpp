#include "conversations/render.hpp"

#include <boost/json/serialize.hpp>
#include <boost/json/serializer.hpp>
#include <boost/json/value.hpp>

#include <cctype>

namespace callgate::conversations {
namespace {

namespace json = boost::json;

const json::value* Member(const json::object& object, std::string_view name) {
  return object.if_contains(name);
}

json::value StringOrNull(const json::object& object, std::string_view name) {
  const json::value* value = Member(object, name);
  if (value != nullptr && value->is_string()) return *value;
  return nullptr;
}

json::value NumberOrNull(const json::value* value) {
  if (value != nullptr && value->is_number()) return *value;
  return nullptr;
}

// A turn's role as rendered: the upstream string, "unknown" when missing, empty or mistyped.
std::string_view TurnRole(const json::object& turn) {
  const json::value* role = Member(turn, "role");
  if (role != nullptr && role->is_string() && !role->get_string().empty())
    return role->get_string();
  return "unknown";
}

// A turn's message as rendered: "" when null or mistyped (a tool call or its result).
std::string_view TurnMessage(const json::object& turn) {
  const json::value* message = Member(turn, "message");
  if (message != nullptr && message->is_string()) return message->get_string();
  return "";
}

std::string Speaker(std::string_view role) {
  if (role == "agent") return "Agent";
  if (role == "user") return "User";
  std::string speaker(role);
  if (!speaker.empty()) {
    speaker[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(speaker[0])));
  }
  return speaker;
}

// One "Speaker: message" line of transcript_text.
void AppendLine(std::string& text, std::string_view role, std::string_view message) {
  if (!text.empty()) text += '\n';
  text += Speaker(role);
  text += ": ";
  text += message;
}

}  // namespace

json::array RenderTranscript(const json::value* upstream_transcript, json::storage_ptr storage) {
  json::array turns(std::move(storage));
  if (upstream_transcript == nullptr || !upstream_transcript->is_array()) return turns;
  const json::array& items = upstream_transcript->get_array();
  turns.reserve(items.size());
  for (const json::value& item : items) {
    if (!item.is_object()) continue;
    const json::object& turn = item.get_object();
    json::object rendered(turns.storage());
    rendered.reserve(3);
    rendered.emplace("role", TurnRole(turn));
    rendered.emplace("message", TurnMessage(turn));  // a tool call or result: "", see render.hpp
    rendered.emplace("time_in_call_secs", NumberOrNull(Member(turn, "time_in_call_secs")));
    turns.push_back(std::move(rendered));
  }
  return turns;
}

// The same rules read a rendered transcript or the upstream one: a rendered turn's role and
// message are what TurnRole and TurnMessage give for its upstream turn.
std::string TranscriptText(const json::array& transcript) {
  std::string text;
  for (const json::value& item : transcript) {
    if (!item.is_object()) continue;
    const std::string_view message = TurnMessage(item.get_object());
    if (!message.empty()) AppendLine(text, TurnRole(item.get_object()), message);
  }
  return text;
}

namespace {

// Every member but `upstream`, allocated from `storage`.
json::object RenderSummary(const json::object& upstream, std::string_view recording_url,
                           json::storage_ptr storage) {
  json::object answer(std::move(storage));
  answer.reserve(12);
  answer["conversation_id"] = StringOrNull(upstream, "conversation_id");
  answer["status"] = StringOrNull(upstream, "status");
  answer["agent_id"] = StringOrNull(upstream, "agent_id");

  json::array transcript = RenderTranscript(Member(upstream, "transcript"), answer.storage());
  answer["transcript_text"] = TranscriptText(transcript);
  answer["transcript"] = std::move(transcript);

  const json::value* has_audio = Member(upstream, "has_audio");
  const bool no_audio = has_audio != nullptr && has_audio->is_bool() && !has_audio->get_bool();
  if (no_audio) {
    answer["recording_url"] = nullptr;
  } else {
    answer["recording_url"] = recording_url;
  }

  const json::value* metadata_value = Member(upstream, "metadata");
  const json::object* metadata = metadata_value != nullptr ? metadata_value->if_object() : nullptr;
  answer["duration_secs"] =
      metadata != nullptr ? NumberOrNull(metadata->if_contains("call_duration_secs")) : nullptr;
  answer["start_time_unix_secs"] =
      metadata != nullptr ? NumberOrNull(metadata->if_contains("start_time_unix_secs")) : nullptr;
  if (metadata != nullptr) {
    const json::value* reason = metadata->if_contains("termination_reason");
    if (reason != nullptr && reason->is_string() && !reason->get_string().empty()) {
      answer["termination_reason"] = *reason;
    }
  }

  const json::value* analysis = Member(upstream, "analysis");
  answer["analysis"] = analysis != nullptr && analysis->is_object() ? *analysis : json::value();
  return answer;
}

}  // namespace

json::object RenderConversation(const json::object& upstream, std::string_view recording_url) {
  json::object answer = RenderSummary(upstream, recording_url, {});
  answer["upstream"] = upstream;
  return answer;
}

std::string RenderConversationText(const json::object& upstream, std::string_view upstream_text,
                                   std::string_view recording_url) {
  // Written member by member in RenderSummary's order, with no tree of the summary in between;
  // values taken from the upstream go through boost::json's serializer (escaping, numbers).
  std::string out;
  out.reserve(2 * upstream_text.size() + 512);
  json::serializer serializer;
  char chunk[1024];
  const auto drain = [&] {
    while (!serializer.done())
      out += serializer.read(chunk, sizeof chunk);
  };
  const auto value = [&](const json::value& v) {
    serializer.reset(&v);
    drain();
  };
  const auto string = [&](std::string_view text) {
    serializer.reset(json::string_view(text.data(), text.size()));
    drain();
  };
  const auto string_or_null = [&](const json::value* v) {
    if (v != nullptr && v->is_string()) {
      value(*v);
    } else {
      out += "null";
    }
  };
  const auto number_or_null = [&](const json::value* v) {
    if (v != nullptr && v->is_number()) {
      value(*v);
    } else {
      out += "null";
    }
  };

  out += R"({"conversation_id":)";
  string_or_null(Member(upstream, "conversation_id"));
  out += R"(,"status":)";
  string_or_null(Member(upstream, "status"));
  out += R"(,"agent_id":)";
  string_or_null(Member(upstream, "agent_id"));

  const json::value* transcript = Member(upstream, "transcript");
  const json::array* turns =
      transcript != nullptr && transcript->is_array() ? &transcript->get_array() : nullptr;
  out += R"(,"transcript_text":)";
  string(turns != nullptr ? TranscriptText(*turns) : std::string());
  out += R"(,"transcript":[)";
  bool first = true;
  if (turns != nullptr) {
    for (const json::value& item : *turns) {
      if (!item.is_object()) continue;
      const json::object& turn = item.get_object();
      out += first ? R"({"role":)" : R"(,{"role":)";
      first = false;
      string(TurnRole(turn));
      out += R"(,"message":)";
      string(TurnMessage(turn));
      out += R"(,"time_in_call_secs":)";
      number_or_null(Member(turn, "time_in_call_secs"));
      out += '}';
    }
  }
  out += ']';

  const json::value* has_audio = Member(upstream, "has_audio");
  const bool no_audio = has_audio != nullptr && has_audio->is_bool() && !has_audio->get_bool();
  out += R"(,"recording_url":)";
  if (no_audio) {
    out += "null";
  } else {
    string(recording_url);
  }

  const json::value* metadata_value = Member(upstream, "metadata");
  const json::object* metadata = metadata_value != nullptr ? metadata_value->if_object() : nullptr;
  out += R"(,"duration_secs":)";
  number_or_null(metadata != nullptr ? metadata->if_contains("call_duration_secs") : nullptr);
  out += R"(,"start_time_unix_secs":)";
  number_or_null(metadata != nullptr ? metadata->if_contains("start_time_unix_secs") : nullptr);
  if (metadata != nullptr) {
    const json::value* reason = metadata->if_contains("termination_reason");
    if (reason != nullptr && reason->is_string() && !reason->get_string().empty()) {
      out += R"(,"termination_reason":)";
      value(*reason);
    }
  }
  const json::value* analysis = Member(upstream, "analysis");
  out += R"(,"analysis":)";
  if (analysis != nullptr && analysis->is_object()) {
    value(*analysis);
  } else {
    out += "null";
  }
  out += R"(,"upstream":)";
  out += upstream_text;
  out += '}';
  return out;
}

}  // namespace callgate::conversations
