#include "upstream/elevenlabs.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <random>

namespace callgate::upstream {
namespace {

double RandomUnit() {
  thread_local std::mt19937_64 engine{std::random_device{}()};
  return std::uniform_real_distribution<double>(0.0, 1.0)(engine);
}

std::int64_t UnixSeconds(core::SystemTime t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

// The body of a 2xx answer as a JSON object, or the reason it is not one.
std::variant<boost::json::value, ApiError> JsonBody(const HttpResponse& response) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(response.body, ec);
  if (ec) {
    std::string excerpt = response.body.substr(0, 80);
    return BadResponse("the body is not JSON (" + ec.message() + "): " + excerpt, response);
  }
  return value;
}

std::string StringMember(const boost::json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

}  // namespace

std::string EncodeComponent(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0xF];
    }
  }
  return out;
}

struct ElevenLabsClient::Call {
  std::string method;
  std::string path;  // path and query
  std::string body;
  RequestSafety safety = RequestSafety::kIdempotent;
  std::size_t max_response_bytes = 0;
  core::SystemTime deadline;
  int attempt = 0;
  std::function<void(std::variant<HttpResponse, ApiError>)> done;
};

ElevenLabsClient::ElevenLabsClient(HttpClient& http, core::Scheduler& scheduler, core::Clock& clock,
                                   ElevenLabsOptions options, std::function<double()> jitter)
    : http_(http),
      scheduler_(scheduler),
      clock_(clock),
      options_(std::move(options)),
      jitter_(jitter ? std::move(jitter) : std::function<double()>(RandomUnit)) {
  while (!options_.base_url.empty() && options_.base_url.back() == '/')
    options_.base_url.pop_back();
}

void ElevenLabsClient::Execute(std::shared_ptr<Call> call) {
  Attempt(std::move(call));
}

void ElevenLabsClient::Attempt(std::shared_ptr<Call> call) {
  ++call->attempt;
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(call->deadline - clock_.Now());
  HttpRequest request;
  request.method = call->method;
  request.url = options_.base_url + call->path;
  request.headers.Set("xi-api-key", options_.api_key);
  request.headers.Set("Accept", "application/json");
  if (!call->body.empty()) request.headers.Set("Content-Type", "application/json");
  request.body = call->body;
  request.timeout = std::max(remaining, std::chrono::milliseconds(1));
  request.max_response_bytes = call->max_response_bytes;
  http_.Send(std::move(request), [this, call](HttpOutcome outcome) {
    ApiError error;
    if (auto* response = std::get_if<HttpResponse>(&outcome)) {
      if (response->status >= 200 && response->status < 300) {
        call->done(std::move(*response));
        return;
      }
      error = ParseApiError(*response, UnixSeconds(clock_.Now()));
    } else {
      error = FromFailure(std::get<HttpFailure>(outcome));
    }
    const auto delay = RetryDelay(options_.retry, call->safety, error, call->attempt, jitter_());
    if (!delay || clock_.Now() + *delay >= call->deadline) {
      call->done(std::move(error));
      return;
    }
    spdlog::warn("ElevenLabs {} {}: {} (attempt {}); retrying in {} ms", call->method, call->path,
                 error.message, call->attempt, delay->count());
    scheduler_.After(*delay, [this, call] { Attempt(call); });
  });
}

void ElevenLabsClient::OutboundCall(bool sip_trunk, boost::json::object body,
                                    std::function<void(ApiResult<boost::json::object>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "POST";
  call->path = sip_trunk ? "/v1/convai/sip-trunk/outbound-call" : "/v1/convai/twilio/outbound-call";
  call->body = boost::json::serialize(body);
  call->safety = RequestSafety::kPlacesCall;
  call->deadline = clock_.Now() + options_.timeout;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    const auto& response = std::get<HttpResponse>(result);
    auto json = JsonBody(response);
    if (auto* error = std::get_if<ApiError>(&json)) return done(std::move(*error));
    auto& value = std::get<boost::json::value>(json);
    // A success:false answer may carry no conversation id: it is returned for the caller to
    // report. Anything else without one is not the documented answer.
    const bool documented =
        value.is_object() && (!StringMember(value.as_object(), "conversation_id").empty() ||
                              value.as_object().contains("success"));
    if (!documented) {
      return done(BadResponse("the outbound-call answer has no conversation_id", response));
    }
    done(std::move(value.as_object()));
  };
  Execute(std::move(call));
}

void ElevenLabsClient::ListPhoneNumbers(
    std::function<void(ApiResult<std::vector<PhoneNumber>>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/phone-numbers";
  call->deadline = clock_.Now() + options_.timeout;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    const auto& response = std::get<HttpResponse>(result);
    auto json = JsonBody(response);
    if (auto* error = std::get_if<ApiError>(&json)) return done(std::move(*error));
    const auto& value = std::get<boost::json::value>(json);
    if (!value.is_array()) return done(BadResponse("phone-numbers is not an array", response));
    std::vector<PhoneNumber> numbers;
    for (const auto& item : value.as_array()) {
      if (!item.is_object()) return done(BadResponse("a phone number is not an object", response));
      const auto& object = item.as_object();
      PhoneNumber number{StringMember(object, "phone_number_id"),
                         StringMember(object, "phone_number"), StringMember(object, "provider"),
                         StringMember(object, "label")};
      if (number.phone_number_id.empty() || number.phone_number.empty()) {
        return done(BadResponse("a phone number lacks phone_number_id or phone_number", response));
      }
      numbers.push_back(std::move(number));
    }
    done(std::move(numbers));
  };
  Execute(std::move(call));
}

void ElevenLabsClient::GetConversation(std::string conversation_id,
                                       std::function<void(ApiResult<boost::json::object>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/conversations/" + EncodeComponent(conversation_id);
  call->deadline = clock_.Now() + options_.timeout;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    const auto& response = std::get<HttpResponse>(result);
    auto json = JsonBody(response);
    if (auto* error = std::get_if<ApiError>(&json)) return done(std::move(*error));
    auto& value = std::get<boost::json::value>(json);
    if (!value.is_object() || StringMember(value.as_object(), "conversation_id").empty() ||
        StringMember(value.as_object(), "status").empty()) {
      return done(BadResponse("the conversation lacks conversation_id or status", response));
    }
    done(std::move(value.as_object()));
  };
  Execute(std::move(call));
}

void ElevenLabsClient::ListConversations(std::string query,
                                         std::function<void(ApiResult<boost::json::object>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/conversations" + (query.empty() ? std::string() : "?" + query);
  call->deadline = clock_.Now() + options_.timeout;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    const auto& response = std::get<HttpResponse>(result);
    auto json = JsonBody(response);
    if (auto* error = std::get_if<ApiError>(&json)) return done(std::move(*error));
    auto& value = std::get<boost::json::value>(json);
    if (!value.is_object() || !value.as_object().contains("conversations")) {
      return done(BadResponse("the listing has no conversations array", response));
    }
    done(std::move(value.as_object()));
  };
  Execute(std::move(call));
}

void ElevenLabsClient::GetConversationAudio(std::string conversation_id,
                                            std::function<void(ApiResult<Audio>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/conversations/" + EncodeComponent(conversation_id) + "/audio";
  call->deadline = clock_.Now() + options_.audio_timeout;
  call->max_response_bytes = options_.max_audio_bytes;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    auto& response = std::get<HttpResponse>(result);
    Audio audio{std::string(response.headers.Get("Content-Type").value_or("audio/mpeg")),
                std::move(response.body)};
    if (!audio.content_type.starts_with("audio/")) {
      return done(BadResponse("the recording is " + audio.content_type + ", not audio", response));
    }
    done(std::move(audio));
  };
  Execute(std::move(call));
}

void ElevenLabsClient::GetSignedUrl(std::string agent_id,
                                    std::function<void(ApiResult<std::string>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/conversation/get-signed-url?agent_id=" + EncodeComponent(agent_id);
  call->deadline = clock_.Now() + options_.timeout;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    const auto& response = std::get<HttpResponse>(result);
    auto json = JsonBody(response);
    if (auto* error = std::get_if<ApiError>(&json)) return done(std::move(*error));
    const auto& value = std::get<boost::json::value>(json);
    std::string url = value.is_object() ? StringMember(value.as_object(), "signed_url") : "";
    if (!url.starts_with("wss://") && !url.starts_with("ws://")) {
      return done(BadResponse("signed_url is missing or not a WebSocket URL", response));
    }
    done(std::move(url));
  };
  Execute(std::move(call));
}

}  // namespace callgate::upstream
