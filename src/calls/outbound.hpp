// POST /api/calls/outbound: place a phone call through ElevenLabs' Twilio (or SIP-trunk) bridge,
// exactly once, remembered in the call ledger before it is dialed.
//
// Body (the original service's contract, plus optional fields):
//   {"to_number": "+15551234567", "prompt": "Get parking ticket dismissed...",
//    "agent_id"?, "dynamic_variables"?, "first_message"?, "language"?,
//    "ringing_timeout_secs"?, "call_recording_enabled"?, "metadata"?}
// `prompt` reaches the agent as the dynamic variable `purpose` (it wins over a `purpose` in
// dynamic_variables); `metadata` is stored in the ledger, never sent upstream. Unknown fields
// are refused (400), so a misspelt option is never silently dropped. Invalid input never
// reaches the upstream.
//
// The calling number: ELEVENLABS_AGENT_PHONE_NUMBER_ID when set, else ELEVENLABS_FROM_NUMBER
// resolved through GET /v1/convai/phone-numbers (cached; refreshed on a miss). A sip_trunk
// number is dialed through the SIP-trunk endpoint.
//
// Order of work: validate -> Idempotency-Key (calls/idempotency.hpp) -> resolve the number ->
// ledger Insert (queued) -> upstream POST -> ledger MarkInitiated/MarkFailed -> refresher Track
// -> answer 200 {success, message, conversation_id, callSid|sip_call_id, call_id, status}.
// An upstream failure is answered through upstream::ToGatewayResponse; with a key, the answer
// is stored (a retry gets the same answer, never a second call) unless the request provably
// never reached the upstream, in which case the key is released for a retry.
#pragma once

#include "calls/idempotency.hpp"
#include "calls/ledger.hpp"
#include "calls/refresher.hpp"
#include "http/router.hpp"
#include "upstream/elevenlabs.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace callgate::calls {

struct OutboundOptions {
  std::string default_agent_id;       // ELEVENLABS_AGENT_ID
  std::string agent_phone_number_id;  // ELEVENLABS_AGENT_PHONE_NUMBER_ID (preferred)
  std::string from_number;            // ELEVENLABS_FROM_NUMBER
  std::size_t max_prompt_chars = 4000;
  std::size_t max_metadata_bytes = 16 * 1024;
  std::size_t max_body_bytes = 64 * 1024;
};

// The number calls are placed from, once resolved.
struct CallingNumber {
  std::string phone_number_id;
  std::string phone_number;  // may be empty when only the id is configured
  bool sip_trunk = false;
};

// A validated outbound-call request (pure; shared with `callgate call`).
struct OutboundRequest {
  std::string to_number;
  std::string prompt;
  std::string agent_id;                   // the request's, else the configured default
  boost::json::object dynamic_variables;  // the caller's, with purpose = prompt
  std::optional<std::string> first_message, language;
  std::optional<std::int64_t> ringing_timeout_secs;
  std::optional<bool> call_recording_enabled;
  boost::json::object options;  // every optional field as given (stored in the ledger)
};

// Why a request was refused: a 400 naming the field, or 503 when the service lacks settings.
struct RequestError {
  int status = 400;
  std::string code = "invalid_request";
  std::string field;
  std::string message;
};

std::variant<OutboundRequest, RequestError> ParseOutboundRequest(const boost::json::value& body,
                                                                 const OutboundOptions& options);

// The body of POST /v1/convai/{twilio|sip-trunk}/outbound-call.
boost::json::object UpstreamCallBody(const OutboundRequest& request, const CallingNumber& number);

// ELEVENLABS_AGENT_PHONE_NUMBER_ID, or ELEVENLABS_FROM_NUMBER looked up in the account's phone
// numbers (cached; refreshed on a miss). Thread-safe.
class CallingNumberResolver {
 public:
  CallingNumberResolver(upstream::ElevenLabsApi& api, std::string agent_phone_number_id,
                        std::string from_number);
  // The callback gets the number, or a ready error response (503 not_configured,
  // 503 from_number_not_on_account listing the account's numbers, or the upstream failure).
  void Resolve(
      std::string request_id,
      std::function<void(std::optional<CallingNumber>, std::optional<http::Response>)> done);

 private:
  std::optional<CallingNumber> Lookup();

  upstream::ElevenLabsApi& api_;
  std::string agent_phone_number_id_;
  std::string from_number_;
  std::mutex mutex_;
  std::vector<upstream::PhoneNumber> numbers_;
};

class OutboundCalls {
 public:
  // `refresher` may be null (no background status refresh).
  OutboundCalls(upstream::ElevenLabsApi& api, CallLedger& ledger, IdempotencyStore& idempotency,
                StatusRefresher* refresher, OutboundOptions options);

  void AddRoutes(http::Router& router);

 private:
  struct Pending;
  void Handle(http::Request request, http::Responder responder);
  void Place(std::shared_ptr<Pending> pending);
  void Dial(std::shared_ptr<Pending> pending, CallRecord record);
  void Finish(std::shared_ptr<Pending> pending, http::Response response, bool release_key);

  upstream::ElevenLabsApi& api_;
  CallLedger& ledger_;
  IdempotencyStore& idempotency_;
  StatusRefresher* refresher_;
  OutboundOptions options_;
  CallingNumberResolver numbers_;
};

}  // namespace callgate::calls
