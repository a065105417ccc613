#include "calls/outbound.hpp"

#include "calls/routes.hpp"
#include "core/strings.hpp"
#include "http/dispatcher.hpp"

#include <openssl/sha.h>
#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>

namespace callgate::calls {
namespace {

constexpr std::string_view kPath = "/api/calls/outbound";

// A short, non-reversible name for the presented API key: the idempotency scope, so that two
// clients never see each other's stored answers.
std::string ClientScope(const http::Request& request) {
  std::string presented(request.headers.Get("X-API-Key").value_or(""));
  if (presented.empty()) {
    const std::string_view authorization = request.headers.Get("Authorization").value_or("");
    if (authorization.size() > 7 && core::AsciiLower(authorization.substr(0, 7)) == "bearer ") {
      presented = std::string(authorization.substr(7));
    }
  }
  if (presented.empty()) return "";
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(presented.data()), presented.size(), digest);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string scope = "key:";
  for (int i = 0; i < 12; ++i) {
    scope += kHex[digest[i] >> 4];
    scope += kHex[digest[i] & 0xF];
  }
  return scope;
}

}  // namespace

struct OutboundCalls::Pending {
  http::Responder responder;
  std::string request_id;
  std::optional<IdempotencyKey> key;
  OutboundRequest request;
  NewCall call;
  CallingNumber number;
};

std::variant<OutboundRequest, RequestError> ParseOutboundRequest(const boost::json::value& value,
                                                                 const OutboundOptions& options) {
  auto invalid = [](std::string field, std::string message) {
    return RequestError{.field = std::move(field), .message = std::move(message)};
  };
  if (!value.is_object()) {
    return invalid("", "the body must be a JSON object with to_number and prompt");
  }
  const boost::json::object& body = value.as_object();
  OutboundRequest out;
  static const std::vector<std::string_view> kKnown = {"to_number",
                                                       "prompt",
                                                       "agent_id",
                                                       "dynamic_variables",
                                                       "first_message",
                                                       "language",
                                                       "ringing_timeout_secs",
                                                       "call_recording_enabled",
                                                       "metadata"};
  for (const auto& [name, field] : body) {
    if (std::find(kKnown.begin(), kKnown.end(), std::string_view(name)) == kKnown.end()) {
      return invalid(name, "unknown field '" + std::string(name) +
                               "'; accepted: to_number, prompt, agent_id, dynamic_variables, "
                               "first_message, language, ringing_timeout_secs, "
                               "call_recording_enabled, metadata");
    }
  }
  const auto* to = body.if_contains("to_number");
  if (to == nullptr || !to->is_string()) {
    return invalid("to_number",
                   "to_number is required: a phone number in E.164 form such as +15551234567");
  }
  out.to_number = std::string(core::TrimWhitespace(std::string_view(to->as_string())));
  if (!IsE164(out.to_number)) {
    return invalid("to_number",
                   "to_number must be in E.164 form: '+', a country code and up to 15 digits in "
                   "all, such as +15551234567");
  }
  const auto* prompt = body.if_contains("prompt");
  if (prompt == nullptr || !prompt->is_string() ||
      core::TrimWhitespace(std::string_view(prompt->as_string())).empty()) {
    return invalid("prompt",
                   "prompt is required: a non-empty string telling the agent the purpose of the "
                   "call");
  }
  out.prompt = std::string(core::TrimWhitespace(std::string_view(prompt->as_string())));
  if (out.prompt.size() > options.max_prompt_chars) {
    return invalid("prompt", "prompt is " + std::to_string(out.prompt.size()) + " bytes; at most " +
                                 std::to_string(options.max_prompt_chars) + " are accepted");
  }
  out.agent_id = options.default_agent_id;
  if (const auto* agent = body.if_contains("agent_id")) {
    if (!agent->is_string() || agent->as_string().empty() || agent->as_string().size() > 128) {
      return invalid("agent_id", "agent_id must be a non-empty string of at most 128 characters");
    }
    out.agent_id = agent->as_string();
  }
  if (out.agent_id.empty()) {
    return RequestError{.status = 503,
                        .code = "not_configured",
                        .message =
                            "no agent: set ELEVENLABS_AGENT_ID or send agent_id in the "
                            "request"};
  }
  if (const auto* vars = body.if_contains("dynamic_variables")) {
    if (!vars->is_object()) {
      return invalid("dynamic_variables",
                     "dynamic_variables must be an object of names to strings, numbers or "
                     "booleans");
    }
    for (const auto& [name, v] : vars->as_object()) {
      if (!(v.is_string() || v.is_number() || v.is_bool() || v.is_null())) {
        return invalid("dynamic_variables", "dynamic variable '" + std::string(name) +
                                                "' must be a string, number, boolean or null");
      }
      if (std::string_view(name).starts_with("system__")) {
        return invalid("dynamic_variables",
                       "dynamic variable names starting with system__ are reserved");
      }
    }
    out.dynamic_variables = vars->as_object();
  }
  out.dynamic_variables["purpose"] = out.prompt;
  if (const auto* first = body.if_contains("first_message")) {
    if (!first->is_string() || first->as_string().size() > options.max_prompt_chars) {
      return invalid("first_message", "first_message must be a string");
    }
    out.first_message = std::string(first->as_string());
  }
  if (const auto* language = body.if_contains("language")) {
    if (!language->is_string() || language->as_string().size() < 2 ||
        language->as_string().size() > 10) {
      return invalid("language", "language must be a language code such as \"en\" or \"pt-br\"");
    }
    out.language = std::string(language->as_string());
  }
  if (const auto* ring = body.if_contains("ringing_timeout_secs")) {
    if (!ring->is_int64() || ring->as_int64() < 1 || ring->as_int64() > 600) {
      return invalid("ringing_timeout_secs",
                     "ringing_timeout_secs must be an integer from 1 to 600");
    }
    out.ringing_timeout_secs = ring->as_int64();
  }
  if (const auto* recording = body.if_contains("call_recording_enabled")) {
    if (!recording->is_bool()) {
      return invalid("call_recording_enabled", "call_recording_enabled must be true or false");
    }
    out.call_recording_enabled = recording->as_bool();
  }
  if (const auto* metadata = body.if_contains("metadata")) {
    if (!metadata->is_object() ||
        boost::json::serialize(*metadata).size() > options.max_metadata_bytes) {
      return invalid("metadata", "metadata must be an object of at most " +
                                     std::to_string(options.max_metadata_bytes) + " bytes of JSON");
    }
  }
  for (const auto& [name, field] : body) {
    if (name != "to_number" && name != "prompt" && name != "agent_id") out.options[name] = field;
  }
  return out;
}

boost::json::object UpstreamCallBody(const OutboundRequest& request, const CallingNumber& number) {
  boost::json::object client_data{{"dynamic_variables", request.dynamic_variables}};
  boost::json::object agent_override;
  if (request.first_message) agent_override["first_message"] = *request.first_message;
  if (request.language) agent_override["language"] = *request.language;
  if (!agent_override.empty()) {
    client_data["conversation_config_override"] = {{"agent", std::move(agent_override)}};
  }
  boost::json::object body{{"agent_id", request.agent_id},
                           {"agent_phone_number_id", number.phone_number_id},
                           {"to_number", request.to_number},
                           {"conversation_initiation_client_data", std::move(client_data)}};
  if (request.ringing_timeout_secs) {
    body["telephony_call_config"] = {{"ringing_timeout_secs", *request.ringing_timeout_secs}};
  }
  if (request.call_recording_enabled && !number.sip_trunk) {
    body["call_recording_enabled"] = *request.call_recording_enabled;
  }
  return body;
}

OutboundCalls::OutboundCalls(upstream::ElevenLabsApi& api, CallLedger& ledger,
                             IdempotencyStore& idempotency, StatusRefresher* refresher,
                             OutboundOptions options)
    : api_(api),
      ledger_(ledger),
      idempotency_(idempotency),
      refresher_(refresher),
      options_(std::move(options)),
      numbers_(api, options_.agent_phone_number_id, options_.from_number) {}

void OutboundCalls::AddRoutes(http::Router& router) {
  router.Add("POST", std::string(kPath),
             [this](http::Request request, http::Responder responder) {
               Handle(std::move(request), std::move(responder));
             },
             {.body = http::BodyKind::kJson,
              .max_body_bytes = options_.max_body_bytes,
              .requires_api_key = true});
}

void OutboundCalls::Handle(http::Request request, http::Responder responder) {
  const std::string& rid = request.request_id;
  auto parsed = ParseOutboundRequest(request.json ? *request.json : boost::json::value(), options_);
  if (auto* error = std::get_if<RequestError>(&parsed)) {
    boost::json::object details;
    if (!error->field.empty()) details["field"] = error->field;
    responder.Send(http::ErrorResponse(error->status, error->code, error->message, rid, details));
    return;
  }
  auto pending = std::make_shared<Pending>(Pending{.responder = responder, .request_id = rid});
  pending->request = std::get<OutboundRequest>(std::move(parsed));
  pending->call.to_number = pending->request.to_number;
  pending->call.agent_id = pending->request.agent_id;
  pending->call.prompt = pending->request.prompt;
  pending->call.options = pending->request.options;

  const auto key_header = request.headers.Get("Idempotency-Key");
  if (!key_header) {
    Place(std::move(pending));
    return;
  }
  if (auto problem = ValidateIdempotencyKey(*key_header)) {
    responder.Send(http::ErrorResponse(400, "invalid_idempotency_key", *problem, rid));
    return;
  }
  pending->key = IdempotencyKey{ClientScope(request), std::string(*key_header)};
  const std::string fingerprint = RequestFingerprint("POST", kPath, *request.json);  // parsed
  idempotency_.Begin(*pending->key, fingerprint, [this, pending](BeginResult result) {
    const std::string& id = pending->request_id;
    switch (result.outcome) {
      case BeginOutcome::kProceed:
        Place(pending);
        return;
      case BeginOutcome::kReplay: {
        http::Response replay;
        replay.status = result.response.status;
        replay.headers.Set("Content-Type", result.response.content_type);
        replay.headers.Set("Idempotent-Replayed", "true");
        replay.body = result.response.body;
        pending->responder.Send(std::move(replay));
        return;
      }
      case BeginOutcome::kConflict:
        pending->responder.Send(http::ErrorResponse(
            409, "idempotency_key_reused",
            "this Idempotency-Key was used with a different request body; use a new key", id));
        return;
      case BeginOutcome::kInProgress: {
        auto response = http::ErrorResponse(
            409, "idempotency_key_in_use",
            "a request with this Idempotency-Key is still being processed; retry shortly", id);
        response.headers.Set("Retry-After", "1");
        pending->responder.Send(std::move(response));
        return;
      }
      case BeginOutcome::kInvalidKey:
        pending->responder.Send(http::ErrorResponse(400, "invalid_idempotency_key",
                                                    "the Idempotency-Key is invalid", id));
        return;
      case BeginOutcome::kBusy:
      case BeginOutcome::kUnavailable: {
        auto response = http::ErrorResponse(
            503, "unavailable", "the idempotency store cannot take the request now; retry", id);
        response.headers.Set("Retry-After", "1");
        pending->responder.Send(std::move(response));
        return;
      }
    }
  });
}

CallingNumberResolver::CallingNumberResolver(upstream::ElevenLabsApi& api,
                                             std::string agent_phone_number_id,
                                             std::string from_number)
    : api_(api),
      agent_phone_number_id_(std::move(agent_phone_number_id)),
      from_number_(std::move(from_number)) {}

std::optional<CallingNumber> CallingNumberResolver::Lookup() {
  std::lock_guard lock(mutex_);
  for (const auto& number : numbers_) {
    const bool match = !agent_phone_number_id_.empty()
                           ? number.phone_number_id == agent_phone_number_id_
                           : number.phone_number == from_number_;
    if (match) {
      return CallingNumber{number.phone_number_id, number.phone_number,
                           number.provider == "sip_trunk"};
    }
  }
  return std::nullopt;
}

void CallingNumberResolver::Resolve(
    std::string request_id,
    std::function<void(std::optional<CallingNumber>, std::optional<http::Response>)> done) {
  if (agent_phone_number_id_.empty() && from_number_.empty()) {
    done(std::nullopt,
         http::ErrorResponse(503, "not_configured",
                             "no calling number: set ELEVENLABS_AGENT_PHONE_NUMBER_ID (preferred) "
                             "or ELEVENLABS_FROM_NUMBER",
                             request_id));
    return;
  }
  if (auto found = Lookup()) {
    done(std::move(found), std::nullopt);
    return;
  }
  // A miss (or nothing loaded yet): refresh the account's numbers.
  api_.ListPhoneNumbers([this, request_id, done = std::move(done)](
                            upstream::ApiResult<std::vector<upstream::PhoneNumber>> result) {
    if (auto* error = std::get_if<upstream::ApiError>(&result)) {
      if (!agent_phone_number_id_.empty()) {
        // The id is configured: dial with it even if the listing failed (Twilio assumed).
        spdlog::warn("phone numbers could not be listed ({}); dialing {} as a Twilio number",
                     error->message, agent_phone_number_id_);
        done(CallingNumber{agent_phone_number_id_, "", false}, std::nullopt);
        return;
      }
      done(std::nullopt, upstream::ToGatewayResponse(*error, request_id));
      return;
    }
    {
      std::lock_guard lock(mutex_);
      numbers_ = std::get<std::vector<upstream::PhoneNumber>>(result);
    }
    if (auto found = Lookup()) {
      done(std::move(found), std::nullopt);
      return;
    }
    if (!agent_phone_number_id_.empty()) {
      done(CallingNumber{agent_phone_number_id_, "", false}, std::nullopt);
      return;
    }
    boost::json::array account;
    std::string listed;
    {
      std::lock_guard lock(mutex_);
      for (const auto& number : numbers_) {
        account.push_back({{"phone_number", number.phone_number},
                           {"phone_number_id", number.phone_number_id},
                           {"provider", number.provider},
                           {"label", number.label}});
        if (!listed.empty()) listed += ", ";
        listed += number.phone_number + " (" + number.phone_number_id + ")";
      }
    }
    done(std::nullopt, http::ErrorResponse(
                           503, "from_number_not_on_account",
                           "ELEVENLABS_FROM_NUMBER " + from_number_ +
                               " is not a phone number of this ElevenLabs account; its numbers: " +
                               (listed.empty() ? std::string("none") : listed),
                           request_id, {{"account_numbers", std::move(account)}}));
  });
}

void OutboundCalls::Place(std::shared_ptr<Pending> pending) {
  numbers_.Resolve(pending->request_id, [this, pending](std::optional<CallingNumber> number,
                                                        std::optional<http::Response> error) {
    if (!number) {
      Finish(pending, std::move(*error), true);
      return;
    }
    pending->number = *number;
    pending->call.agent_phone_number_id = number->phone_number_id;
    pending->call.from_number =
        !number->phone_number.empty() ? number->phone_number : options_.from_number;
    ledger_.Insert(pending->call, [this, pending](LedgerResult<CallRecord> inserted) {
      if (!inserted) {
        Finish(pending, LedgerErrorResponse(inserted.error(), pending->request_id), true);
        return;
      }
      Dial(pending, std::move(*inserted));
    });
  });
}

void OutboundCalls::Dial(std::shared_ptr<Pending> pending, CallRecord record) {
  boost::json::object body = UpstreamCallBody(pending->request, pending->number);
  const std::string call_id = record.call_id;
  api_.OutboundCall(
      pending->number.sip_trunk, std::move(body),
      [this, pending, call_id](upstream::ApiResult<boost::json::object> result) {
        if (auto* error = std::get_if<upstream::ApiError>(&result)) {
          const bool never_sent = !error->request_sent;
          auto response = upstream::ToGatewayResponse(*error, pending->request_id);
          std::string reason =
              (never_sent ? "not placed: " : "outcome unknown or refused: ") + error->message;
          ledger_.MarkFailed(
              call_id, reason, UpdateSource::kApi,
              [this, pending, response, never_sent, call_id](LedgerResult<CallRecord>) mutable {
                // The envelope names the ledger entry, for GET /api/calls/{id}.
                auto json = boost::json::parse(response.body).as_object();
                auto& details = json["error"].as_object()["details"];
                if (!details.is_object()) details = boost::json::object();
                details.as_object()["call_id"] = call_id;
                response.body = boost::json::serialize(json);
                Finish(pending, std::move(response), never_sent);
              });
          return;
        }
        auto answer = std::get<boost::json::object>(std::move(result));
        const auto* success = answer.if_contains("success");
        const auto* conversation = answer.if_contains("conversation_id");
        const bool placed = success != nullptr && success->is_bool() && success->as_bool() &&
                            conversation != nullptr && conversation->is_string();
        if (!placed) {
          const auto* message = answer.if_contains("message");
          const std::string text = message != nullptr && message->is_string()
                                       ? std::string(message->as_string())
                                       : "the upstream did not place the call";
          ledger_.MarkFailed(
              call_id, text, UpdateSource::kApi,
              [this, pending, answer, text, call_id](LedgerResult<CallRecord>) {
                Finish(pending,
                       http::ErrorResponse(
                           502, "call_not_placed", "ElevenLabs did not place the call: " + text,
                           pending->request_id, {{"call_id", call_id}, {"upstream", answer}}),
                       false);
              });
          return;
        }
        UpstreamAccepted accepted;
        accepted.conversation_id = std::string(conversation->as_string());
        if (const auto* sid = answer.if_contains("callSid"); sid && sid->is_string()) {
          accepted.call_sid = std::string(sid->as_string());
        }
        if (const auto* sid = answer.if_contains("sip_call_id"); sid && sid->is_string()) {
          accepted.sip_call_id = std::string(sid->as_string());
        }
        accepted.agent_phone_number_id = pending->number.phone_number_id;
        ledger_.MarkInitiated(
            call_id, accepted,
            [this, pending, answer, call_id](LedgerResult<CallRecord> stored) mutable {
              boost::json::object out = std::move(answer);
              out["call_id"] = call_id;
              if (stored) {
                out["status"] = ToString(stored->status);
                if (refresher_ != nullptr && stored->conversation_id) {
                  refresher_->Track(call_id, *stored->conversation_id);
                }
              } else {
                // The call was placed; only our bookkeeping failed. Say so, do not hide the call.
                spdlog::error("call {} placed but not recorded as initiated: {}", call_id,
                              stored.error().message());
                out["status"] = "initiated";
                out["ledger_warning"] = "the call was placed but the ledger could not be updated";
              }
              Finish(pending, http::Response::Json(200, out), false);
            });
      });
}

void OutboundCalls::Finish(std::shared_ptr<Pending> pending, http::Response response,
                           bool release_key) {
  if (pending->key) {
    if (release_key) {
      idempotency_.Abandon(*pending->key);
    } else {
      StoredResponse stored{
          response.status,
          std::string(response.headers.Get("Content-Type").value_or("application/json")),
          response.body};
      idempotency_.Complete(*pending->key, std::move(stored));
    }
  }
  pending->responder.Send(std::move(response));
}

}  // namespace callgate::calls
