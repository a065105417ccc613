// The body of POST /v1/convai/{twilio,sip-trunk}/outbound-call (elevenlabs-api.md §1.1-1.3),
// validated the way the real API's pydantic model does: every problem is collected into one
// 422. Fields not in the model (including call_recording_enabled on the SIP route) are ignored.
// Pure; thread-safe.
#pragma once

#include "http/message.hpp"
#include "sim/lifecycle.hpp"
#include "sim/validation.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::sim {

struct OutboundCallRequest {
  std::string agent_id;
  std::string agent_phone_number_id;
  std::string to_number;
  boost::json::object client_data;  // conversation_initiation_client_data ({} when absent/null)
  boost::json::object dynamic_variables;       // client_data.dynamic_variables ({} when absent)
  std::optional<bool> call_recording_enabled;  // Twilio only
  std::int64_t ringing_timeout_secs = 60;      // telephony_call_config.ringing_timeout_secs
};

// Exactly one of `request`, `error` is set: `error` is the 422 (or the 400 for an unreadable
// body) to send, already carrying x-trace-id.
struct OutboundCallParse {
  std::optional<OutboundCallRequest> request;
  std::optional<http::Response> error;
};
OutboundCallParse ParseOutboundCall(const http::Request& request, Provider provider,
                                    std::string_view trace_id);

// ^\+[1-9]\d{6,14}$
bool IsE164(std::string_view number);

}  // namespace callgate::sim
