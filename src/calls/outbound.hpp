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
#include <mutex>
#include <optional>
#include <string>
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

class OutboundCalls {
 public:
  // `refresher` may be null (no background status refresh).
  OutboundCalls(upstream::ElevenLabsApi& api, CallLedger& ledger, IdempotencyStore& idempotency,
                StatusRefresher* refresher, OutboundOptions options);

  void AddRoutes(http::Router& router);

  // Resolves the calling number (cached); the callback gets it or a ready error response.
  void ResolveCallingNumber(
      std::string request_id,
      std::function<void(std::optional<CallingNumber>, std::optional<http::Response>)> done);

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

  std::mutex mutex_;  // the phone-number cache
  std::vector<upstream::PhoneNumber> numbers_;
  bool numbers_loaded_ = false;
};

}  // namespace callgate::calls
