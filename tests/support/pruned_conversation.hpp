// The reference for upstream::ParseConversationForRender (conversation_parse.hpp), written the
// plain way, from a whole tree: what the one-pass parse must build. Header-only (Boost.JSON), so
// that the unit tests and the fuzz target share it.
#pragma once

#include <boost/json.hpp>

#include <initializer_list>
#include <string_view>

namespace callgate::testing {

inline boost::json::object KeepOnly(const boost::json::object& from,
                                    std::initializer_list<std::string_view> names) {
  boost::json::object kept;
  for (const auto& member : from) {
    for (std::string_view name : names) {
      if (member.key() == name) kept[member.key()] = member.value();
    }
  }
  return kept;
}

inline boost::json::value PrunedConversation(const boost::json::value& document) {
  if (!document.is_object()) return document;
  const boost::json::object& from = document.get_object();
  boost::json::object pruned =
      KeepOnly(from, {"conversation_id", "status", "agent_id", "has_audio", "analysis"});
  if (const auto* transcript = from.if_contains("transcript")) {
    if (transcript->is_array()) {
      boost::json::array turns;
      for (const auto& turn : transcript->get_array()) {
        if (turn.is_object()) {
          turns.push_back(KeepOnly(turn.get_object(), {"role", "message", "time_in_call_secs"}));
        }
      }
      pruned["transcript"] = std::move(turns);
    } else {
      pruned["transcript"] = *transcript;
    }
  }
  if (const auto* metadata = from.if_contains("metadata")) {
    pruned["metadata"] =
        metadata->is_object()
            ? boost::json::value(
                  KeepOnly(metadata->get_object(),
                           {"call_duration_secs", "start_time_unix_secs", "termination_reason"}))
            : *metadata;
  }
  return pruned;
}

}  // namespace callgate::testing
