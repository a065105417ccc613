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

http::Response Invalid(std::string_view field, std::string message, std::string_view request_id) {
  return http::ErrorResponse(400, "invalid_request", message, request_id, {{"field", field}});
}

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
  NewCall call;
  boost::json::object dynamic_variables;
  std::optional<std::string> first_message, language;
  std::optional<std::int64_t> ringing_timeout_secs;
  std::optional<bool> call_recording_enabled;
  CallingNumber number;
};

OutboundCalls::OutboundCalls(upstream::ElevenLabsApi& api, CallLedger& ledger,
                             IdempotencyStore& idempotency, StatusRefresher* refresher,
                             OutboundOptions options)
    : api_(api),
      ledger_(ledger),
      idempotency_(idempotency),
      refresher_(refresher),
      options_(std::move(options)) {}

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
  if (!request.json || !request.json->is_object()) {
    responder.Send(http::ErrorResponse(
        400, "invalid_request", "the body must be a JSON object with to_number and prompt", rid));
    return;
  }
  const boost::json::object& body = request.json->as_object();
  auto pending = std::make_shared<Pending>(Pending{.responder = responder, .request_id = rid});

  static const std::vector<std::string_view> kKnown = {"to_number",
                                                       "prompt",
                                                       "agent_id",
                                                       "dynamic_variables",
                                                       "first_message",
                                                       "language",
                                                       "ringing_timeout_secs",
                                                       "call_recording_enabled",
                                                       "metadata"};
  for (const auto& [name, value] : body) {
    if (std::find(kKnown.begin(), kKnown.end(), std::string_view(name)) == kKnown.end()) {
      responder.Send(Invalid(name,
                             "unknown field '" + std::string(name) +
                                 "'; accepted: to_number, prompt, agent_id, "
                                 "dynamic_variables, first_message, language, "
                                 "ringing_timeout_secs, call_recording_enabled, metadata",
                             rid));
      return;
    }
  }
  const auto* to = body.if_contains("to_number");
  if (to == nullptr || !to->is_string()) {
    responder.Send(
        Invalid("to_number",
                "to_number is required: a phone number in E.164 form such as +15551234567", rid));
    return;
  }
  const std::string to_number(core::TrimWhitespace(std::string_view(to->as_string())));
  if (!IsE164(to_number)) {
    responder.Send(Invalid("to_number",
                           "to_number must be in E.164 form: '+', a country code and up to 15 "
                           "digits in all, such as +15551234567",
                           rid));
    return;
  }
  const auto* prompt_value = body.if_contains("prompt");
  if (prompt_value == nullptr || !prompt_value->is_string() ||
      core::TrimWhitespace(std::string_view(prompt_value->as_string())).empty()) {
    responder.Send(Invalid(
        "prompt",
        "prompt is required: a non-empty string telling the agent the purpose of the call", rid));
    return;
  }
  const std::string prompt(core::TrimWhitespace(std::string_view(prompt_value->as_string())));
  if (prompt.size() > options_.max_prompt_chars) {
    responder.Send(Invalid("prompt",
                           "prompt is " + std::to_string(prompt.size()) + " bytes; at most " +
                               std::to_string(options_.max_prompt_chars) + " are accepted",
                           rid));
    return;
  }
  std::string agent_id = options_.default_agent_id;
  if (const auto* agent = body.if_contains("agent_id")) {
    if (!agent->is_string() || agent->as_string().empty() || agent->as_string().size() > 128) {
      responder.Send(Invalid("agent_id",
                             "agent_id must be a non-empty string of at most 128 characters", rid));
      return;
    }
    agent_id = agent->as_string();
  }
  if (agent_id.empty()) {
    responder.Send(http::ErrorResponse(
        503, "not_configured", "no agent: set ELEVENLABS_AGENT_ID or send agent_id in the request",
        rid));
    return;
  }
  if (const auto* vars = body.if_contains("dynamic_variables")) {
    if (!vars->is_object()) {
      responder.Send(Invalid(
          "dynamic_variables",
          "dynamic_variables must be an object of names to strings, numbers or booleans", rid));
      return;
    }
    for (const auto& [name, value] : vars->as_object()) {
      if (!(value.is_string() || value.is_number() || value.is_bool() || value.is_null())) {
        responder.Send(Invalid("dynamic_variables",
                               "dynamic variable '" + std::string(name) +
                                   "' must be a string, number, boolean or null",
                               rid));
        return;
      }
      if (std::string_view(name).starts_with("system__")) {
        responder.Send(Invalid("dynamic_variables",
                               "dynamic variable names starting with system__ are reserved", rid));
        return;
      }
    }
    pending->dynamic_variables = vars->as_object();
  }
  pending->dynamic_variables["purpose"] = prompt;
  if (const auto* first = body.if_contains("first_message")) {
    if (!first->is_string() || first->as_string().size() > options_.max_prompt_chars) {
      responder.Send(Invalid("first_message", "first_message must be a string", rid));
      return;
    }
    pending->first_message = std::string(first->as_string());
  }
  if (const auto* language = body.if_contains("language")) {
    if (!language->is_string() || language->as_string().size() < 2 ||
        language->as_string().size() > 10) {
      responder.Send(
          Invalid("language", "language must be a language code such as \"en\" or \"pt-br\"", rid));
      return;
    }
    pending->language = std::string(language->as_string());
  }
  if (const auto* ring = body.if_contains("ringing_timeout_secs")) {
    if (!ring->is_int64() || ring->as_int64() < 1 || ring->as_int64() > 600) {
      responder.Send(Invalid("ringing_timeout_secs",
                             "ringing_timeout_secs must be an integer from 1 to 600", rid));
      return;
    }
    pending->ringing_timeout_secs = ring->as_int64();
  }
  if (const auto* recording = body.if_contains("call_recording_enabled")) {
    if (!recording->is_bool()) {
      responder.Send(
          Invalid("call_recording_enabled", "call_recording_enabled must be true or false", rid));
      return;
    }
    pending->call_recording_enabled = recording->as_bool();
  }
  if (const auto* metadata = body.if_contains("metadata")) {
    if (!metadata->is_object() ||
        boost::json::serialize(*metadata).size() > options_.max_metadata_bytes) {
      responder.Send(Invalid("metadata",
                             "metadata must be an object of at most " +
                                 std::to_string(options_.max_metadata_bytes) + " bytes of JSON",
                             rid));
      return;
    }
  }

  pending->call.to_number = to_number;
  pending->call.agent_id = agent_id;
  pending->call.prompt = prompt;
  for (const auto& [name, value] : body) {
    if (name != "to_number" && name != "prompt" && name != "agent_id") {
      pending->call.options[name] = value;
    }
  }

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
  const std::string fingerprint = RequestFingerprint("POST", kPath, *request.json);
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

void OutboundCalls::ResolveCallingNumber(
    std::string request_id,
    std::function<void(std::optional<CallingNumber>, std::optional<http::Response>)> done) {
  auto lookup = [this]() -> std::optional<CallingNumber> {
    std::lock_guard lock(mutex_);
    for (const auto& number : numbers_) {
      const bool match = !options_.agent_phone_number_id.empty()
                             ? number.phone_number_id == options_.agent_phone_number_id
                             : number.phone_number == options_.from_number;
      if (match) {
        return CallingNumber{number.phone_number_id, number.phone_number,
                             number.provider == "sip_trunk"};
      }
    }
    return std::nullopt;
  };
  if (options_.agent_phone_number_id.empty() && options_.from_number.empty()) {
    done(std::nullopt,
         http::ErrorResponse(503, "not_configured",
                             "no calling number: set ELEVENLABS_AGENT_PHONE_NUMBER_ID (preferred) "
                             "or ELEVENLABS_FROM_NUMBER",
                             request_id));
    return;
  }
  if (auto found = lookup()) {
    done(std::move(found), std::nullopt);
    return;
  }
  // A miss (or nothing loaded yet): refresh the account's numbers.
  api_.ListPhoneNumbers([this, request_id, lookup, done = std::move(done)](
                            upstream::ApiResult<std::vector<upstream::PhoneNumber>> result) {
    if (auto* error = std::get_if<upstream::ApiError>(&result)) {
      if (!options_.agent_phone_number_id.empty()) {
        // The id is configured: dial with it even if the listing failed (Twilio assumed).
        spdlog::warn("phone numbers could not be listed ({}); dialing {} as a Twilio number",
                     error->message, options_.agent_phone_number_id);
        done(CallingNumber{options_.agent_phone_number_id, "", false}, std::nullopt);
        return;
      }
      done(std::nullopt, upstream::ToGatewayResponse(*error, request_id));
      return;
    }
    {
      std::lock_guard lock(mutex_);
      numbers_ = std::get<std::vector<upstream::PhoneNumber>>(result);
      numbers_loaded_ = true;
    }
    if (auto found = lookup()) {
      done(std::move(found), std::nullopt);
      return;
    }
    if (!options_.agent_phone_number_id.empty()) {
      done(CallingNumber{options_.agent_phone_number_id, "", false}, std::nullopt);
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
                           "ELEVENLABS_FROM_NUMBER " + options_.from_number +
                               " is not a phone number of this ElevenLabs account; its numbers: " +
                               (listed.empty() ? std::string("none") : listed),
                           request_id, {{"account_numbers", std::move(account)}}));
  });
}

void OutboundCalls::Place(std::shared_ptr<Pending> pending) {
  ResolveCallingNumber(pending->request_id, [this, pending](std::optional<CallingNumber> number,
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
  boost::json::object client_data{{"dynamic_variables", pending->dynamic_variables}};
  boost::json::object agent_override;
  if (pending->first_message) agent_override["first_message"] = *pending->first_message;
  if (pending->language) agent_override["language"] = *pending->language;
  if (!agent_override.empty()) {
    client_data["conversation_config_override"] = {{"agent", std::move(agent_override)}};
  }
  boost::json::object body{{"agent_id", record.agent_id},
                           {"agent_phone_number_id", pending->number.phone_number_id},
                           {"to_number", record.to_number},
                           {"conversation_initiation_client_data", std::move(client_data)}};
  if (pending->ringing_timeout_secs) {
    body["telephony_call_config"] = {{"ringing_timeout_secs", *pending->ringing_timeout_secs}};
  }
  if (pending->call_recording_enabled && !pending->number.sip_trunk) {
    body["call_recording_enabled"] = *pending->call_recording_enabled;
  }
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
