#include "sim/render.hpp"

#include <chrono>

namespace callgate::sim {
namespace {

std::int64_t UnixSeconds(core::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

boost::json::value OptionalString(const std::string& text) {
  if (text.empty()) return nullptr;
  return boost::json::string(text);
}

// Where the conversation came from: the telephony provider, or the SDK's source_info.source.
std::string InitiationSource(const ConversationRecord& record) {
  if (record.channel == Channel::kPhone) return std::string(ProviderName(record.provider));
  const auto* info = record.client_data.if_contains("source_info");
  const auto* source =
      info && info->is_object() ? info->as_object().if_contains("source") : nullptr;
  return source && source->is_string() ? std::string(source->as_string()) : "unknown";
}

bool Answered(const ConversationSnapshot& snapshot) {
  return snapshot.accepted_time_unix_secs.has_value();
}

boost::json::object PhoneCallJson(const ConversationRecord& record,
                                  const ConversationSnapshot& snapshot,
                                  const boost::json::storage_ptr& sp) {
  if (record.provider == Provider::kTwilio) {
    return boost::json::object(
        {{"type", "twilio"},
         {"direction", "outbound"},
         {"phone_number_id", record.phone_number_id},
         {"agent_number", record.agent_number},
         {"external_number", record.external_number},
         // The media stream exists only once the callee picked up.
         {"stream_sid", Answered(snapshot)
                            ? boost::json::value(boost::json::string(record.stream_sid))
                            : boost::json::value(nullptr)},
         {"call_sid", record.call_sid}},
        sp);
  }
  return boost::json::object({{"type", "sip_trunking"},
                              {"direction", "outbound"},
                              {"phone_number_id", record.phone_number_id},
                              {"agent_number", record.agent_number},
                              {"external_number", record.external_number},
                              {"call_id", record.call_sid},
                              {"call_sid", record.call_sid},
                              {"sip_header_dynamic_variables", boost::json::object{}}},
                             sp);
}

boost::json::array TranscriptJson(const ConversationSnapshot& snapshot,
                                  const boost::json::storage_ptr& sp) {
  boost::json::array out(sp);
  out.reserve(snapshot.transcript.size());
  for (const auto& turn : snapshot.transcript) {
    out.push_back(boost::json::object({{"role", turn.role},
                                       {"message", turn.message},
                                       {"tool_calls", nullptr},
                                       {"tool_results", nullptr},
                                       {"feedback", nullptr},
                                       {"time_in_call_secs", turn.time_in_call_secs},
                                       {"interrupted", false},
                                       {"conversation_turn_metrics", nullptr}},
                                      sp));
  }
  return out;
}

// The request's conversation_initiation_client_data over the defaults the real API echoes,
// with the merged dynamic variables (the caller's plus system__*).
boost::json::object ClientDataJson(const ConversationRecord& record,
                                   const boost::json::storage_ptr& sp) {
  boost::json::object out(
      {{"conversation_config_override",
        {{"agent", {{"prompt", nullptr}, {"first_message", nullptr}, {"language", nullptr}}},
         {"tts", {{"voice_id", nullptr}}}}},
       {"custom_llm_extra_body", boost::json::object{}},
       {"user_id", nullptr},
       {"source_info", {{"source", InitiationSource(record)}, {"version", nullptr}}},
       {"dynamic_variables", boost::json::object{}}},
      sp);
  for (const auto& [key, value] : record.client_data) {
    if (!value.is_null()) out[key] = value;
  }
  out["dynamic_variables"] = record.dynamic_variables;
  return out;
}

}  // namespace

std::string_view SummaryCallSuccessful(const ConversationSnapshot& snapshot) {
  return snapshot.call_successful ? std::string_view(*snapshot.call_successful) : "unknown";
}

boost::json::object ConversationJson(const ConversationRecord& record,
                                     const ConversationSnapshot& snapshot,
                                     const boost::json::storage_ptr& sp) {
  boost::json::value analysis(sp);
  if (snapshot.call_successful) {
    analysis = boost::json::object({{"evaluation_criteria_results", boost::json::object{}},
                                    {"data_collection_results", boost::json::object{}},
                                    {"call_successful", *snapshot.call_successful},
                                    {"transcript_summary", snapshot.transcript_summary},
                                    {"call_summary_title", snapshot.call_summary_title}},
                                   sp);
  }
  boost::json::value accepted(sp);
  if (snapshot.accepted_time_unix_secs) accepted = *snapshot.accepted_time_unix_secs;
  auto client_data = ClientDataJson(record, sp);
  boost::json::object metadata({{"start_time_unix_secs", UnixSeconds(record.created)},
                                {"accepted_time_unix_secs", accepted},
                                {"call_duration_secs", snapshot.call_duration_secs},
                                {"cost", snapshot.call_duration_secs * 10},
                                {"termination_reason", snapshot.termination_reason},
                                {"error", nullptr},
                                {"main_language", record.language},
                                {"text_only", false},
                                {"conversation_initiation_source", InitiationSource(record)},
                                {"timezone", nullptr}},
                               sp);
  if (record.channel == Channel::kPhone) {
    metadata["phone_call"] = PhoneCallJson(record, snapshot, sp);
  }
  const boost::json::value user_id = client_data.at("user_id");
  return boost::json::object({{"agent_id", record.agent_id},
                              {"agent_name", record.agent_name},
                              {"conversation_id", record.conversation_id},
                              {"status", StatusName(snapshot.status)},
                              {"user_id", user_id},
                              {"transcript", TranscriptJson(snapshot, sp)},
                              {"metadata", std::move(metadata)},
                              {"analysis", std::move(analysis)},
                              {"conversation_initiation_client_data", std::move(client_data)},
                              {"has_audio", snapshot.has_audio},
                              {"has_user_audio", false},
                              {"has_response_audio", false},
                              {"has_auxiliary_audio", false}},
                             sp);
}

boost::json::object ConversationSummaryJson(const ConversationRecord& record,
                                            const ConversationSnapshot& snapshot) {
  return {{"agent_id", record.agent_id},
          {"agent_name", record.agent_name},
          {"conversation_id", record.conversation_id},
          {"start_time_unix_secs", UnixSeconds(record.created)},
          {"call_duration_secs", snapshot.call_duration_secs},
          {"message_count", snapshot.transcript.size()},
          {"status", StatusName(snapshot.status)},
          {"call_successful", SummaryCallSuccessful(snapshot)},
          {"transcript_summary", OptionalString(snapshot.transcript_summary)},
          {"call_summary_title", OptionalString(snapshot.call_summary_title)},
          {"direction", record.channel == Channel::kPhone ? boost::json::value("outbound")
                                                          : boost::json::value(nullptr)},
          {"termination_reason", snapshot.termination_reason},
          {"main_language", record.language},
          {"conversation_initiation_source", InitiationSource(record)},
          {"tool_names", boost::json::array{}},
          {"rating", nullptr}};
}

boost::json::object PhoneNumberJson(const PhoneNumberConfig& number,
                                    const AgentConfig* assigned_agent) {
  boost::json::value assigned = nullptr;
  if (assigned_agent != nullptr) {
    assigned = boost::json::object{{"agent_id", assigned_agent->agent_id},
                                   {"agent_name", assigned_agent->name},
                                   {"environment", nullptr},
                                   {"branch_id", nullptr}};
  }
  boost::json::object out{{"provider", number.provider},
                          {"phone_number", number.phone_number},
                          {"label", number.label},
                          {"supports_inbound", number.supports_inbound},
                          {"supports_outbound", number.supports_outbound},
                          {"phone_number_id", number.phone_number_id},
                          {"assigned_agent", std::move(assigned)}};
  if (number.provider == "sip_trunk") {
    out["provider_config"] = nullptr;
    out["outbound_trunk"] = {
        {"address", "sip.simulator.invalid"}, {"transport", "auto"},
        {"media_encryption", "allowed"},      {"headers", boost::json::object{}},
        {"has_auth_credentials", false},      {"username", nullptr}};
    out["inbound_trunk"] = {{"allowed_addresses", boost::json::array{}},
                            {"allowed_numbers", nullptr},
                            {"media_encryption", "allowed"},
                            {"has_auth_credentials", false},
                            {"username", nullptr}};
    out["livekit_stack"] = number.livekit_stack;
    out["store_sip_messages"] = false;
  }
  return out;
}

}  // namespace callgate::sim
