#include "conversations/render.hpp"

#include <boost/json/serialize.hpp>
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

std::string Speaker(std::string_view role) {
  if (role == "agent") return "Agent";
  if (role == "user") return "User";
  std::string speaker(role);
  if (!speaker.empty()) {
    speaker[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(speaker[0])));
  }
  return speaker;
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
    const json::value* role = Member(turn, "role");
    if (role != nullptr && role->is_string() && !role->get_string().empty()) {
      rendered.emplace("role", role->get_string());
    } else {
      rendered.emplace("role", "unknown");
    }
    const json::value* message = Member(turn, "message");
    if (message != nullptr && message->is_string()) {
      rendered.emplace("message", message->get_string());
    } else {
      rendered.emplace("message", "");  // a tool call or result: kept, see render.hpp
    }
    rendered.emplace("time_in_call_secs", NumberOrNull(Member(turn, "time_in_call_secs")));
    turns.push_back(std::move(rendered));
  }
  return turns;
}

std::string TranscriptText(const json::array& transcript) {
  std::string text;
  for (const json::value& item : transcript) {
    const json::object* turn = item.if_object();
    if (turn == nullptr) continue;
    const json::value* message = turn->if_contains("message");
    if (message == nullptr || !message->is_string() || message->get_string().empty()) continue;
    const json::value* role = turn->if_contains("role");
    const std::string_view role_name =
        role != nullptr && role->is_string() ? std::string_view(role->get_string()) : "unknown";
    if (!text.empty()) text += '\n';
    text += Speaker(role_name.empty() ? "unknown" : role_name);
    text += ": ";
    text += std::string_view(message->get_string());
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
  std::string text = json::serialize(RenderSummary(upstream, recording_url, upstream.storage()));
  text.pop_back();  // the summary's closing brace; `upstream` is its last member
  text.reserve(text.size() + upstream_text.size() + 16);
  text += text.size() > 1 ? R"(,"upstream":)" : R"("upstream":)";
  text += upstream_text;
  text += '}';
  return text;
}

}  // namespace callgate::conversations
