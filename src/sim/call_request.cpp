#include "sim/call_request.hpp"

namespace callgate::sim {
namespace {

constexpr std::int64_t kDefaultRingingTimeoutSecs = 60;

// dynamic_variables: dict[str, str | float | int | bool | None]. A value of another type fails
// every member of the union, which pydantic reports as one issue per member, tagged in loc.
void CheckDynamicVariables(const boost::json::object& variables, const boost::json::array& loc,
                           Issues& issues) {
  for (const auto& [name, value] : variables) {
    if (value.is_string() || value.is_number() || value.is_bool() || value.is_null()) continue;
    const auto at = Extend(loc, boost::json::string(name));
    issues.push_back({"string_type", Extend(at, "str"), "Input should be a valid string", value});
    issues.push_back({"float_type", Extend(at, "float"), "Input should be a valid number", value});
    issues.push_back({"int_type", Extend(at, "int"), "Input should be a valid integer", value});
    issues.push_back({"bool_type", Extend(at, "bool"), "Input should be a valid boolean", value});
  }
}

void CheckClientData(const boost::json::object& data, const boost::json::array& loc,
                     OutboundCallRequest& out, Issues& issues) {
  if (const auto* override_config =
          CheckModel(data, "conversation_config_override", "ConversationConfigClientOverrideInput",
                     Extend(loc, "conversation_config_override"), {}, issues)) {
    const auto override_loc = Extend(loc, "conversation_config_override");
    if (const auto* agent = CheckModel(*override_config, "agent", "AgentConfigOverrideInput",
                                       Extend(override_loc, "agent"), {}, issues)) {
      const auto agent_loc = Extend(override_loc, "agent");
      CheckString(*agent, "first_message", Extend(agent_loc, "first_message"), {}, issues);
      CheckString(*agent, "language", Extend(agent_loc, "language"), {}, issues);
    }
    if (const auto* tts = CheckModel(*override_config, "tts", "TtsConversationalConfigOverride",
                                     Extend(override_loc, "tts"), {}, issues)) {
      CheckString(*tts, "voice_id", Extend(Extend(override_loc, "tts"), "voice_id"), {}, issues);
    }
  }
  CheckDict(data, "custom_llm_extra_body", Extend(loc, "custom_llm_extra_body"), {}, issues);
  CheckString(data, "user_id", Extend(loc, "user_id"), {}, issues);
  CheckString(data, "branch_id", Extend(loc, "branch_id"), {}, issues);
  CheckString(data, "environment", Extend(loc, "environment"), {}, issues);
  CheckModel(data, "source_info", "ConversationInitiationSourceInfo", Extend(loc, "source_info"),
             {}, issues);
  if (const auto* variables =
          CheckDict(data, "dynamic_variables", Extend(loc, "dynamic_variables"), {}, issues)) {
    CheckDynamicVariables(*variables, Extend(loc, "dynamic_variables"), issues);
  }
  out.client_data = data;
}

}  // namespace

bool IsE164(std::string_view number) {
  if (number.size() < 8 || number.size() > 16 || number[0] != '+') return false;
  if (number[1] < '1' || number[1] > '9') return false;
  for (std::size_t i = 2; i < number.size(); ++i) {
    if (number[i] < '0' || number[i] > '9') return false;
  }
  return true;
}

OutboundCallParse ParseOutboundCall(const http::Request& request, Provider provider,
                                    std::string_view trace_id) {
  OutboundCallParse result;
  DecodedBody decoded = DecodeJsonBody(request, trace_id);
  if (decoded.error) {
    result.error = std::move(decoded.error);
    return result;
  }
  Issues issues = std::move(decoded.issues);
  OutboundCallRequest call;
  if (decoded.object) {
    const boost::json::object& body = *decoded.object;
    const FieldRule required{.required = true, .nullable = false};
    call.agent_id =
        CheckString(body, "agent_id", Loc({"body", "agent_id"}), required, issues).value_or("");
    call.agent_phone_number_id =
        CheckString(body, "agent_phone_number_id", Loc({"body", "agent_phone_number_id"}), required,
                    issues)
            .value_or("");
    const std::size_t before = issues.size();
    const auto to_number =
        CheckString(body, "to_number", Loc({"body", "to_number"}), required, issues);
    if (to_number && issues.size() == before && !IsE164(*to_number)) {
      issues.push_back({"value_error", Loc({"body", "to_number"}),
                        "Value error, Invalid phone number", boost::json::string(*to_number),
                        boost::json::object{{"error", boost::json::object{}}}});
    }
    call.to_number = to_number.value_or("");
    const auto data_loc = Loc({"body", "conversation_initiation_client_data"});
    if (const auto* data =
            CheckModel(body, "conversation_initiation_client_data",
                       "ConversationInitiationClientDataRequestInput", data_loc, {}, issues)) {
      CheckClientData(*data, data_loc, call, issues);
    }
    if (provider == Provider::kTwilio) {
      call.call_recording_enabled = CheckBool(body, "call_recording_enabled",
                                              Loc({"body", "call_recording_enabled"}), {}, issues);
    }
    const auto config_loc = Loc({"body", "telephony_call_config"});
    if (const auto* config = CheckModel(body, "telephony_call_config", "TelephonyCallConfig",
                                        config_loc, {}, issues)) {
      call.ringing_timeout_secs = CheckInt(*config, "ringing_timeout_secs",
                                           Extend(config_loc, "ringing_timeout_secs"), {}, issues)
                                      .value_or(kDefaultRingingTimeoutSecs);
      CheckBool(*config, "twilio_call_recording_enabled",
                Extend(config_loc, "twilio_call_recording_enabled"), {}, issues);
    }
  }
  if (!issues.empty()) {
    result.error = Unprocessable(issues, trace_id);
    return result;
  }
  result.request = std::move(call);
  return result;
}

}  // namespace callgate::sim
