// The pure model of one simulated phone conversation and how it evolves with time.
//
// Nothing is scheduled: a conversation's state is computed on demand from the clock's Now() and
// its creation time, so tests move a ManualClock and read the result. Timelines, with elapsed
// time measured from the outbound-call request (all intervals half-open, [start, end)):
//   answer:    initiated [0, ring) -> in-progress [ring, ring+talk) -> processing
//              [.., +processing) -> done. The transcript grows during in-progress (a turn
//              appears once its time_in_call_secs has passed) and is complete from processing.
//              If ring >= the call's ringing timeout the callee "answers too late": no-answer.
//   busy:      initiated [0, 2 s) -> failed, termination_reason "busy".
//   no-answer: initiated [0, ringing_timeout_secs) -> failed, termination_reason "no-answer".
//   WebSocket: in-progress until ended -> processing [end, end+processing) -> done.
// A first message that references a dynamic variable the call did not supply (other than
// system__*) makes the conversation fail when answered, as the real agent refuses to start
// (termination_reason names the variables). Thread-compatible: callers synchronise.
#pragma once

#include "core/clock.hpp"
#include "sim/options.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::sim {

enum class Provider { kTwilio, kSipTrunk };
std::string_view ProviderName(Provider provider);  // "twilio" | "sip_trunk"

struct Durations {
  int ring_secs = 3;
  int talk_secs = 20;
  int processing_secs = 5;
  int busy_secs = 2;
};

enum class ConversationStatus { kInitiated, kInProgress, kProcessing, kDone, kFailed };
std::string_view StatusName(ConversationStatus status);  // "initiated", "in-progress", ...

struct TranscriptTurn {
  std::string role;  // "agent" | "user"
  std::string message;
  std::int64_t time_in_call_secs = 0;
};

// Phone calls follow the timed lifecycle; WebSocket sessions (opened by the WebSocket side of
// the simulator) are in-progress until ended, then processing, then done.
enum class Channel { kPhone, kWebSocket };

// Everything fixed when the conversation is created (plus, for WebSocket sessions, what the
// session appends as it runs).
struct ConversationRecord {
  std::uint64_t seq = 0;  // creation order, assigned by the store
  std::string conversation_id;
  std::string agent_id, agent_name, language;
  Provider provider = Provider::kTwilio;
  std::string phone_number_id, agent_number, external_number;
  std::string call_sid;    // Twilio "CA..." or the SIP call id
  std::string stream_sid;  // Twilio media stream, "MZ..." (empty for SIP)
  core::SystemTime created;
  CalleeBehaviour behaviour = CalleeBehaviour::kAnswer;
  std::int64_t ringing_timeout_secs = 60;
  std::string first_message;                   // dynamic variables already substituted
  std::vector<std::string> missing_variables;  // referenced but not supplied
  boost::json::object client_data;             // conversation_initiation_client_data, echoed
  boost::json::object dynamic_variables;       // the caller's plus system__*
  Channel channel = Channel::kPhone;
  // kWebSocket only: the turns as they happened, and when and why the session ended.
  std::vector<TranscriptTurn> live_transcript;
  std::optional<core::SystemTime> ended;
  std::string end_reason;
};

// Fills agent_id, agent_name, language, first_message, missing_variables, client_data and
// dynamic_variables from the agent and the caller's conversation_initiation_client_data.
// conversation_config_override (agent.first_message, agent.language) applies only when the agent
// allows overrides; `system_variables` (system__*) win over the caller's variables of the same
// name and are available to the first message.
void PrepareConversation(ConversationRecord& record, const AgentConfig& agent,
                         boost::json::object client_data, boost::json::object system_variables);

// The state at one instant.
struct ConversationSnapshot {
  ConversationStatus status = ConversationStatus::kInitiated;
  std::vector<TranscriptTurn> transcript;
  std::int64_t call_duration_secs = 0;
  std::optional<std::int64_t> accepted_time_unix_secs;  // when the callee answered
  std::string termination_reason;                       // "" while the call is live
  std::optional<std::string> call_successful;           // "success"/"failure" once analysed
  std::string transcript_summary, call_summary_title;   // once analysed
  bool has_audio = false;
};

ConversationSnapshot Evaluate(const ConversationRecord& record, core::SystemTime now,
                              const Durations& durations);

// The whole scripted dialogue of an answered call lasting `talk_secs`.
std::vector<TranscriptTurn> Script(const ConversationRecord& record, int talk_secs);

// "2026-01-02T03:04:05Z", the format of system__time_utc.
std::string FormatUtc(core::SystemTime time);

// Replaces {{name}} (spaces inside the braces allowed) with the variable's value (strings
// verbatim, other JSON values serialised). Unknown names are left in place and listed in
// `missing`, except system__* names, which become empty when not supplied.
struct Substitution {
  std::string text;
  std::vector<std::string> missing;
};
Substitution SubstituteVariables(std::string_view text, const boost::json::object& variables);

}  // namespace callgate::sim
