// The real-API routes of the simulator (elevenlabs-api.md §1-4). Each handler: validate the
// request (422), check the key (401), then act on the state under the mutex.
#include "sim/call_request.hpp"
#include "sim/fastapi_errors.hpp"
#include "sim/render.hpp"
#include "sim/simulator.hpp"
#include "sim/tokens.hpp"
#include "sim/validation.hpp"

#include <boost/json/monotonic_resource.hpp>
#include <boost/json/serialize.hpp>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>

#include <chrono>

namespace callgate::sim {
namespace {

http::Response NotFound(std::string_view code, std::string message, std::string_view param,
                        std::string_view trace_id) {
  return CurrentError(404, "not_found", code, message, trace_id, param);
}

http::Response AgentNotFound(std::string_view agent_id, std::string_view trace_id) {
  return NotFound("agent_not_found", "Agent with id '" + std::string(agent_id) + "' not found.",
                  "agent_id", trace_id);
}

// The Host header as the client sent it, when it looks like host[:port]; the signed URL points
// back at it so that the WebSocket reaches this same simulator.
std::string SafeHost(const http::Request& request) {
  const auto host = request.headers.Get("Host");
  if (!host || host->empty() || host->size() > 255) return "localhost";
  for (const char c : *host) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '-' || c == ':' || c == '[' || c == ']';
    if (!ok) return "localhost";
  }
  return std::string(*host);
}

std::string UrlEncode(std::string_view text) {
  return boost::urls::encode(text, boost::urls::unreserved_chars);
}

}  // namespace

http::Response Simulator::TwilioOutboundCall(const http::Request& request,
                                             std::string_view trace_id) {
  return OutboundCall(request, trace_id, Provider::kTwilio);
}

http::Response Simulator::SipOutboundCall(const http::Request& request, std::string_view trace_id) {
  return OutboundCall(request, trace_id, Provider::kSipTrunk);
}

http::Response Simulator::OutboundCall(const http::Request& request, std::string_view trace_id,
                                       Provider provider) {
  OutboundCallParse parsed = ParseOutboundCall(request, provider, trace_id);
  if (parsed.error) return std::move(*parsed.error);
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  const OutboundCallRequest& call = *parsed.request;

  std::lock_guard lock(mutex_);
  const AgentConfig* agent = state_.FindAgent(call.agent_id);
  if (agent == nullptr) return AgentNotFound(call.agent_id, trace_id);
  const PhoneNumberConfig* number = state_.FindPhoneNumber(call.agent_phone_number_id);
  if (number == nullptr) {
    return NotFound("phone_number_not_found",
                    "Phone number with id '" + call.agent_phone_number_id + "' not found.",
                    "agent_phone_number_id", trace_id);
  }
  if (number->provider != ProviderName(provider)) {
    const std::string endpoint = number->provider == "sip_trunk"
                                     ? "POST /v1/convai/sip-trunk/outbound-call"
                                     : "POST /v1/convai/twilio/outbound-call";
    return CurrentError(400, "validation_error", "invalid_phone_number_provider",
                        "Phone number '" + number->phone_number_id + "' is a " + number->provider +
                            " number; use " + endpoint + " for it.",
                        trace_id, "agent_phone_number_id");
  }
  if (!number->supports_outbound) {
    return CurrentError(
        400, "validation_error", "outbound_calls_not_supported",
        "Phone number '" + number->phone_number_id + "' does not support outbound calls.", trace_id,
        "agent_phone_number_id");
  }

  const CalleeBehaviour behaviour = state_.Callee(call.to_number);
  const char* const sid_key = provider == Provider::kTwilio ? "callSid" : "sip_call_id";
  if (behaviour == CalleeBehaviour::kFail) {
    const std::string reason =
        provider == Provider::kTwilio
            ? "Twilio could not place the call to " + call.to_number
            : "SIP INVITE to " + call.to_number + " was rejected: 503 Service Unavailable";
    return http::Response::Json(200, {{"success", false},
                                      {"message", "Failed to initiate call: " + reason},
                                      {"conversation_id", nullptr},
                                      {sid_key, nullptr}});
  }

  ConversationRecord record;
  record.conversation_id = NewConversationId();
  record.provider = provider;
  record.phone_number_id = number->phone_number_id;
  record.agent_number = number->phone_number;
  record.external_number = call.to_number;
  record.call_sid = provider == Provider::kTwilio ? NewCallSid() : NewSipCallId();
  if (provider == Provider::kTwilio) record.stream_sid = NewStreamSid();
  record.created = clock_.Now();
  record.behaviour = behaviour;
  record.ringing_timeout_secs = call.ringing_timeout_secs;
  boost::json::object system{{"system__agent_id", agent->agent_id},
                             {"system__current_agent_id", agent->agent_id},
                             {"system__conversation_id", record.conversation_id},
                             {"system__caller_id", number->phone_number},
                             {"system__called_number", call.to_number},
                             {"system__time_utc", FormatUtc(record.created)}};
  if (provider == Provider::kTwilio) system["system__call_sid"] = record.call_sid;
  PrepareConversation(record, *agent, call.client_data, std::move(system));

  const ConversationRecord& stored = state_.AddConversation(std::move(record));
  awaiting_end_.push_back(stored.conversation_id);
  return http::Response::Json(200, {{"success", true},
                                    {"message", "Call initiated successfully"},
                                    {"conversation_id", stored.conversation_id},
                                    {sid_key, stored.call_sid}});
}

http::Response Simulator::ListPhoneNumbers(const http::Request& request,
                                           std::string_view trace_id) {
  Issues issues;
  const auto provider = QueryEnum(request, "provider", {"twilio", "sip_trunk", "exotel"}, issues);
  if (!issues.empty()) return Unprocessable(issues, trace_id);
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  const auto agent_id = request.QueryParam("agent_id");

  boost::json::array numbers;
  for (const auto& number : state_.phone_numbers()) {  // immutable: no lock needed
    if (provider && number.provider != *provider) continue;
    if (agent_id && number.assigned_agent_id != *agent_id) continue;
    numbers.push_back(PhoneNumberJson(number, state_.FindAgent(number.assigned_agent_id)));
  }
  return http::Response::Json(200, numbers);
}

http::Response Simulator::GetPhoneNumber(const http::Request& request, std::string_view trace_id) {
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  const std::string_view id = request.PathParam("phone_number_id");
  const PhoneNumberConfig* number = state_.FindPhoneNumber(id);
  if (number == nullptr) {
    return NotFound("phone_number_not_found",
                    "Phone number with id '" + std::string(id) + "' not found.", "phone_number_id",
                    trace_id);
  }
  return http::Response::Json(
      200, PhoneNumberJson(*number, state_.FindAgent(number->assigned_agent_id)));
}

http::Response Simulator::ListConversations(const http::Request& request,
                                            std::string_view trace_id) {
  Issues issues;
  const auto page_size = QueryInt(request, "page_size", 1, 100, issues);
  ConversationFilter filter;
  filter.call_successful =
      QueryEnum(request, "call_successful", {"success", "failure", "unknown"}, issues);
  filter.call_start_before_unix =
      QueryInt(request, "call_start_before_unix", std::nullopt, std::nullopt, issues);
  filter.call_start_after_unix =
      QueryInt(request, "call_start_after_unix", std::nullopt, std::nullopt, issues);
  if (!issues.empty()) return Unprocessable(issues, trace_id);
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  filter.agent_id = request.QueryParam("agent_id");

  std::optional<std::uint64_t> before;
  if (const auto cursor = request.QueryParam("cursor"); cursor && !cursor->empty()) {
    before = DecodeCursor(*cursor);
    if (!before) {
      return CurrentError(400, "validation_error", "invalid_cursor",
                          "The cursor is not valid. Use next_cursor from a previous response.",
                          trace_id, "cursor");
    }
  }

  std::lock_guard lock(mutex_);
  const ConversationPage page = state_.ListConversations(
      filter, before, static_cast<std::size_t>(page_size.value_or(30)), clock_.Now());
  boost::json::array conversations;
  for (const auto& [record, snapshot] : page.items) {
    conversations.push_back(ConversationSummaryJson(*record, snapshot));
  }
  boost::json::value next_cursor = nullptr;
  if (page.next_before_seq) next_cursor = EncodeCursor(*page.next_before_seq);
  return http::Response::Json(200, {{"conversations", std::move(conversations)},
                                    {"next_cursor", std::move(next_cursor)},
                                    {"has_more", page.has_more}});
}

http::Response Simulator::GetConversation(const http::Request& request, std::string_view trace_id) {
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  const std::string_view id = request.PathParam("conversation_id");
  std::lock_guard lock(mutex_);
  const ConversationRecord* record = state_.FindConversation(id);
  if (record == nullptr) {
    return NotFound("conversation_not_found",
                    "Conversation with id '" + std::string(id) + "' not found.", "conversation_id",
                    trace_id);
  }
  // The document (a few hundred small values) lives in one arena, serialized once and dropped.
  boost::json::monotonic_resource arena(std::size_t{16} * 1024);
  const boost::json::object document =
      ConversationJson(*record, Evaluate(*record, clock_.Now(), state_.durations()),
                       boost::json::storage_ptr(&arena));
  return http::Response::JsonText(200, boost::json::serialize(document));
}

void Simulator::GetConversationAudio(const http::Request& request, std::string_view trace_id,
                                     Finish finish) {
  if (auto denied = CheckApiKey(request, trace_id)) {
    finish(std::move(*denied));
    return;
  }
  const std::string id(request.PathParam("conversation_id"));
  std::vector<TranscriptTurn> transcript;
  {
    std::lock_guard lock(mutex_);
    const ConversationRecord* record = state_.FindConversation(id);
    if (record == nullptr) {
      finish(NotFound("conversation_not_found", "Conversation with id '" + id + "' not found.",
                      "conversation_id", trace_id));
      return;
    }
    ConversationSnapshot snapshot = Evaluate(*record, clock_.Now(), state_.durations());
    if (!snapshot.has_audio) {
      // Unconfirmed upstream; the documented advice is to check has_audio first.
      finish(NotFound("conversation_audio_not_found",
                      "Conversation with id '" + id + "' has no audio (yet).", "conversation_id",
                      trace_id));
      return;
    }
    transcript = std::move(snapshot.transcript);
  }
  const std::string trace(trace_id);
  const bool queued = recordings_.Render(
      id, std::move(transcript),
      [finish, trace](std::shared_ptr<const std::string> mp3, const std::string& error) {
        if (!mp3) {
          finish(CurrentError(500, "internal_error", "recording_failed",
                              "The recording could not be rendered: " + error, trace));
          return;
        }
        // Streamed from the cached MP3 (shared, not copied): Content-Length, 64 KiB chunks.
        finish(http::Response::Stream(200, "audio/mpeg", http::MakeStringBodyStream(mp3)));
      });
  if (!queued) {
    finish(CurrentError(503, "service_unavailable", "system_busy",
                        "Too many recordings are being rendered; retry shortly.", trace_id));
  }
}

http::Response Simulator::DeleteConversation(const http::Request& request,
                                             std::string_view trace_id) {
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  const std::string_view id = request.PathParam("conversation_id");
  std::lock_guard lock(mutex_);
  recordings_.Forget(std::string(id));
  if (!state_.DeleteConversation(id)) {
    return NotFound("conversation_not_found",
                    "Conversation with id '" + std::string(id) + "' not found.", "conversation_id",
                    trace_id);
  }
  return http::Response::Json(200, boost::json::object{});
}

http::Response Simulator::GetSignedUrl(const http::Request& request, std::string_view trace_id) {
  Issues issues;
  const auto agent_id = RequiredQuery(request, "agent_id", issues);
  if (!issues.empty()) return Unprocessable(issues, trace_id);
  if (auto denied = CheckApiKey(request, trace_id)) return std::move(*denied);
  const AgentConfig* agent = state_.FindAgent(*agent_id);
  if (agent == nullptr) return AgentNotFound(*agent_id, trace_id);

  std::string signature;
  {
    std::lock_guard lock(mutex_);
    signature = state_.IssueSignature(agent->agent_id, clock_.Now());
  }
  const std::string url = std::string(request.tls ? "wss://" : "ws://") + SafeHost(request) +
                          "/v1/convai/conversation?agent_id=" + UrlEncode(agent->agent_id) +
                          "&conversation_signature=" + signature;
  return http::Response::Json(200, {{"signed_url", url}});
}

}  // namespace callgate::sim
