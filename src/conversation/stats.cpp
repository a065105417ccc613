#include "conversation/stats.hpp"

#include <boost/json.hpp>

#include <cstdio>
#include <ctime>

namespace callgate::conversation {

namespace json = boost::json;

std::string_view ToString(Status status) {
  switch (status) {
    case Status::kStarting:
      return "starting";
    case Status::kConnecting:
      return "connecting";
    case Status::kActive:
      return "active";
    case Status::kEnding:
      return "ending";
    case Status::kEnded:
      return "ended";
  }
  return "unknown";
}

std::string_view ToString(Turn::Role role) {
  return role == Turn::Role::kAgent ? "agent" : "user";
}

std::string EndReason::ToString() const {
  return detail.empty() ? code : code + ": " + detail;
}

std::string FormatTime(core::SystemTime time) {
  const auto since_epoch = time.time_since_epoch();
  const auto millis = std::chrono::duration_cast<std::chrono::milliseconds>(since_epoch).count();
  std::int64_t seconds = millis / 1000;
  std::int64_t rest = millis % 1000;
  if (rest < 0) {
    rest += 1000;
    --seconds;
  }
  const auto t = static_cast<std::time_t>(seconds);
  std::tm utc{};
  gmtime_r(&t, &utc);
  char text[96];
  std::snprintf(text, sizeof text, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", utc.tm_year + 1900,
                utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec,
                static_cast<int>(rest));
  return text;
}

namespace {

json::value OrNull(const std::string& text) {
  return text.empty() ? json::value(nullptr) : json::value(text);
}

double Round3(double value) {
  return static_cast<double>(static_cast<std::int64_t>(value * 1000.0 + 0.5)) / 1000.0;
}

}  // namespace

json::object StatsToJson(const SessionStats& stats) {
  json::object out;
  out["session_id"] = stats.session_id;
  out["agent_id"] = stats.agent_id;
  out["status"] = ToString(stats.status);
  out["conversation_id"] = OrNull(stats.conversation_id);
  out["formats"] =
      json::object{{"agent_output_audio_format", OrNull(stats.agent_output_audio_format)},
                   {"user_input_audio_format", OrNull(stats.user_input_audio_format)}};
  out["input"] = stats.input;
  out["output"] = stats.output;
  out["start_time"] = FormatTime(stats.start_time);
  out["end_time"] =
      stats.end_time ? json::value(FormatTime(*stats.end_time)) : json::value(nullptr);
  out["duration_ms"] = stats.duration.count();
  out["audio"] = json::object{{"seconds_sent", Round3(stats.audio_seconds_sent)},
                              {"seconds_received", Round3(stats.audio_seconds_received)},
                              {"seconds_played", Round3(stats.audio_seconds_played)},
                              {"user_lag_max_ms", Round3(stats.user_audio_lag_max_ms)},
                              {"user_chunks_sent", stats.user_chunks_sent},
                              {"user_chunks_dropped", stats.user_chunks_dropped},
                              {"agent_audio_events", stats.audio_events},
                              {"stale_audio_events", stats.stale_audio_events},
                              {"interruptions", stats.interruptions},
                              {"underruns", stats.underruns}};
  out["pings"] = json::object{{"answered", stats.pings_answered},
                              {"last_ping_ms", stats.last_ping_ms ? json::value(*stats.last_ping_ms)
                                                                  : json::value(nullptr)}};
  out["tool_calls"] = stats.tool_calls;
  out["malformed_messages"] = stats.malformed_messages;
  out["ignored_events"] = stats.ignored_events;
  json::array transcript;
  transcript.reserve(stats.transcript.size());
  for (const auto& turn : stats.transcript) {
    json::object entry{
        {"role", ToString(turn.role)},
        {"text", turn.text},
        {"time", FormatTime(turn.time)},
        {"event_id", turn.event_id ? json::value(*turn.event_id) : json::value(nullptr)}};
    if (turn.interrupted) entry["interrupted"] = true;
    transcript.push_back(std::move(entry));
  }
  out["transcript"] = std::move(transcript);
  out["tentative"] = json::object{{"user", OrNull(stats.tentative_user_text)},
                                  {"agent", OrNull(stats.tentative_agent_text)}};
  if (stats.end_reason) {
    const auto& reason = *stats.end_reason;
    out["end_reason"] = json::object{
        {"code", reason.code},
        {"detail", reason.detail},
        {"close_code", reason.close_code ? json::value(*reason.close_code) : json::value(nullptr)},
        {"text", reason.ToString()}};
  } else {
    out["end_reason"] = nullptr;
  }
  return out;
}

}  // namespace callgate::conversation
