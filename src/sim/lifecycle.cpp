#include "sim/lifecycle.hpp"

#include <boost/json/serialize.hpp>

#include <algorithm>
#include <charconv>
#include <chrono>
#include <ctime>

namespace callgate::sim {
namespace {

using std::chrono::seconds;

std::int64_t UnixSeconds(core::SystemTime t) {
  return std::chrono::duration_cast<seconds>(t.time_since_epoch()).count();
}

std::string_view TrimSpaces(std::string_view text) {
  while (!text.empty() && text.front() == ' ')
    text.remove_prefix(1);
  while (!text.empty() && text.back() == ' ')
    text.remove_suffix(1);
  return text;
}

// Strings verbatim; numbers as Python prints them (150.5, 150.0, 3), since the real service
// substitutes with Python; booleans and null as JSON (true, null).
std::string ValueText(const boost::json::value& value) {
  if (value.is_string()) return std::string(value.as_string());
  if (value.is_double()) {
    char buf[64];
    const auto [end, ec] = std::to_chars(buf, buf + sizeof buf, value.as_double());
    std::string text(buf, ec == std::errc{} ? end : buf);
    if (text.find_first_of(".eEn") == std::string::npos) text += ".0";
    return text;
  }
  return boost::json::serialize(value);
}

// Whole seconds elapsed from `from` to `to` (floor; 0 when `to` is earlier).
std::int64_t WholeSeconds(core::SystemTime from, core::SystemTime to) {
  if (to <= from) return 0;
  return std::chrono::duration_cast<seconds>(to - from).count();
}

std::string JoinQuoted(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& name : names) {
    if (!out.empty()) out += ", ";
    out += "'" + name + "'";
  }
  return out;
}

void FailCall(ConversationSnapshot& snapshot, std::string reason, std::string summary) {
  snapshot.status = ConversationStatus::kFailed;
  snapshot.termination_reason = std::move(reason);
  snapshot.call_successful = "failure";
  snapshot.transcript_summary = std::move(summary);
  snapshot.call_summary_title = "Failed call";
}

}  // namespace

std::string FormatUtc(core::SystemTime time) {
  const std::time_t secs = std::chrono::system_clock::to_time_t(time);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string_view ProviderName(Provider provider) {
  return provider == Provider::kTwilio ? "twilio" : "sip_trunk";
}

std::string_view StatusName(ConversationStatus status) {
  switch (status) {
    case ConversationStatus::kInitiated:
      return "initiated";
    case ConversationStatus::kInProgress:
      return "in-progress";
    case ConversationStatus::kProcessing:
      return "processing";
    case ConversationStatus::kDone:
      return "done";
    case ConversationStatus::kFailed:
      return "failed";
  }
  return "failed";
}

Substitution SubstituteVariables(std::string_view text, const boost::json::object& variables) {
  Substitution result;
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t open = text.find("{{", pos);
    const std::size_t close = open == std::string_view::npos ? open : text.find("}}", open + 2);
    if (close == std::string_view::npos) {
      result.text.append(text.substr(pos));
      break;
    }
    result.text.append(text.substr(pos, open - pos));
    const std::string name(TrimSpaces(text.substr(open + 2, close - open - 2)));
    if (const auto it = variables.find(name); it != variables.end()) {
      result.text += ValueText(it->value());
    } else if (name.starts_with("system__")) {
      // A system variable this simulator does not provide: rendered empty, not an error.
    } else {
      result.text.append(text.substr(open, close + 2 - open));
      if (std::find(result.missing.begin(), result.missing.end(), name) == result.missing.end()) {
        result.missing.push_back(name);
      }
    }
    pos = close + 2;
  }
  return result;
}

std::vector<TranscriptTurn> Script(const ConversationRecord& record, int talk_secs) {
  const std::int64_t talk = std::max(talk_secs, 0);
  const auto at = [talk](int step) { return talk * step / 5; };
  const std::string opening = record.first_message.empty() ? "Hello!" : record.first_message;
  return {
      {"agent", opening, at(0)},
      {"user", "Hi. Yes, go ahead.", at(1)},
      {"agent", "Thank you. That is everything I needed to let you know. Any questions?", at(2)},
      {"user", "No, that's all. Thanks.", at(3)},
      {"agent", "Great. Have a nice day. Goodbye!", at(4)},
  };
}

void PrepareConversation(ConversationRecord& record, const AgentConfig& agent,
                         boost::json::object client_data, boost::json::object system_variables) {
  record.agent_id = agent.agent_id;
  record.agent_name = agent.name;
  record.language = agent.language;
  std::string first_message = agent.first_message;
  if (agent.allow_overrides) {
    const auto* config = client_data.if_contains("conversation_config_override");
    const auto* agent_override =
        config && config->is_object() ? config->as_object().if_contains("agent") : nullptr;
    if (agent_override && agent_override->is_object()) {
      const auto& fields = agent_override->as_object();
      if (const auto* text = fields.if_contains("first_message"); text && text->is_string()) {
        first_message = std::string(text->as_string());
      }
      if (const auto* language = fields.if_contains("language");
          language && language->is_string()) {
        record.language = std::string(language->as_string());
      }
    }
  }
  record.dynamic_variables.clear();
  if (const auto* variables = client_data.if_contains("dynamic_variables");
      variables && variables->is_object()) {
    record.dynamic_variables = variables->as_object();
  }
  for (auto& [name, value] : system_variables)
    record.dynamic_variables[name] = std::move(value);
  Substitution substitution = SubstituteVariables(first_message, record.dynamic_variables);
  record.first_message = std::move(substitution.text);
  record.missing_variables = std::move(substitution.missing);
  record.client_data = std::move(client_data);
}

namespace {

ConversationSnapshot EvaluateWebSocket(const ConversationRecord& record, core::SystemTime now,
                                       const Durations& durations) {
  ConversationSnapshot snapshot;
  snapshot.accepted_time_unix_secs = UnixSeconds(record.created);
  snapshot.transcript = record.live_transcript;
  if (!record.ended) {
    snapshot.status = ConversationStatus::kInProgress;
    snapshot.call_duration_secs = WholeSeconds(record.created, now);
    return snapshot;
  }
  snapshot.call_duration_secs = WholeSeconds(record.created, *record.ended);
  snapshot.termination_reason = record.end_reason;
  if (now < *record.ended + seconds(durations.processing_secs)) {
    snapshot.status = ConversationStatus::kProcessing;
    return snapshot;
  }
  snapshot.status = ConversationStatus::kDone;
  snapshot.has_audio = true;
  snapshot.call_successful = "success";
  snapshot.call_summary_title = "Conversation with " + record.agent_name;
  snapshot.transcript_summary = "A " + std::to_string(snapshot.call_duration_secs) +
                                "-second conversation of " +
                                std::to_string(snapshot.transcript.size()) + " turns.";
  return snapshot;
}

}  // namespace

ConversationSnapshot Evaluate(const ConversationRecord& record, core::SystemTime now,
                              const Durations& durations) {
  if (record.channel == Channel::kWebSocket) return EvaluateWebSocket(record, now, durations);
  ConversationSnapshot snapshot;
  const auto elapsed = now - record.created;
  const auto reached = [&](std::int64_t secs) { return elapsed >= seconds(secs); };

  CalleeBehaviour behaviour = record.behaviour;
  if (behaviour == CalleeBehaviour::kAnswer && durations.ring_secs >= record.ringing_timeout_secs) {
    behaviour = CalleeBehaviour::kNoAnswer;  // the callee would pick up after the timeout
  }
  switch (behaviour) {
    case CalleeBehaviour::kBusy:
      if (reached(durations.busy_secs)) {
        FailCall(snapshot, "busy", "The call could not be connected: the line was busy.");
      }
      return snapshot;
    case CalleeBehaviour::kNoAnswer:
      if (reached(record.ringing_timeout_secs)) {
        FailCall(snapshot, "no-answer", "The call could not be connected: nobody answered.");
      }
      return snapshot;
    case CalleeBehaviour::kFail:
      FailCall(snapshot, "failed", "The call could not be initiated.");
      return snapshot;
    case CalleeBehaviour::kAnswer:
      break;
  }

  const std::int64_t ring = durations.ring_secs;
  const std::int64_t talk = durations.talk_secs;
  if (!reached(ring)) return snapshot;
  const core::SystemTime answered = record.created + seconds(ring);
  snapshot.accepted_time_unix_secs = UnixSeconds(answered);
  if (!record.missing_variables.empty()) {
    FailCall(snapshot,
             "Missing required dynamic variables in first message: {" +
                 JoinQuoted(record.missing_variables) + "}",
             "The conversation could not start: dynamic variables were missing.");
    return snapshot;
  }

  std::vector<TranscriptTurn> script = Script(record, durations.talk_secs);
  if (!reached(ring + talk)) {
    snapshot.status = ConversationStatus::kInProgress;
    snapshot.call_duration_secs = WholeSeconds(answered, now);
    for (auto& turn : script) {
      if (turn.time_in_call_secs <= snapshot.call_duration_secs) {
        snapshot.transcript.push_back(std::move(turn));
      }
    }
    return snapshot;
  }

  snapshot.transcript = std::move(script);
  snapshot.call_duration_secs = talk;
  snapshot.termination_reason = "end_call tool was called.";
  if (!reached(ring + talk + durations.processing_secs)) {
    snapshot.status = ConversationStatus::kProcessing;
    return snapshot;
  }
  snapshot.status = ConversationStatus::kDone;
  snapshot.has_audio = true;
  snapshot.call_successful = "success";
  snapshot.call_summary_title = "Outbound call to " + record.external_number;
  snapshot.transcript_summary = "The agent called " + record.external_number +
                                " and delivered its message: \"" + snapshot.transcript[0].message +
                                "\". The callee had no questions and the agent ended the call.";
  return snapshot;
}

}  // namespace callgate::sim
