#include "upstream/elevenlabs.hpp"

#include "upstream/conversation_parse.hpp"

#include <spdlog/spdlog.h>
#include <boost/json/monotonic_resource.hpp>
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

// A 2xx answer whose body did not parse as JSON: the parser's reason and the body's start.
ApiError NotJson(const boost::system::error_code& ec, std::string_view body,
                 const HttpResponse& response) {
  return BadResponse(
      "the body is not JSON (" + ec.message() + "): " + std::string(body.substr(0, 80)), response);
}

// The body of a 2xx answer as a JSON value, or the reason it is not one.
std::variant<boost::json::value, ApiError> JsonBody(const HttpResponse& response) {
  boost::system::error_code ec;
  boost::json::value value = boost::json::parse(response.body, ec);
  if (ec) return NotJson(ec, response.body, response);
  return value;
}

std::string StringMember(const boost::json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

bool HasNonEmptyString(const boost::json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_string() && !value->get_string().empty();
}

// A conversation must at least say which one it is and in what state.
bool IsConversation(const boost::json::object& object) {
  return HasNonEmptyString(object, "conversation_id") && HasNonEmptyString(object, "status");
}

bool IsConversation(const boost::json::value& value) {
  return value.is_object() && IsConversation(value.get_object());
}

constexpr std::string_view kNotAConversation = "the conversation lacks conversation_id or status";

// A conversation's text parsed for the gateway's answer into an arena of its own (see
// ConversationDocument and conversation_parse.hpp). `error` is set when it is not JSON; `object`
// is empty when the document is not an object.
ConversationDocument ParseDocument(std::string body, boost::system::error_code& error) {
  // The pruned document is a small part of the text (the transcript's turns, the analysis).
  auto arena = std::make_unique<boost::json::monotonic_resource>(body.size() / 2 + 1024);
  const boost::json::storage_ptr storage(arena.get());
  ConversationParse parsed = ParseConversationForRender(body, storage);
  error = parsed.error;
  // Constructed, not assigned: a moved JSON object keeps its storage only in a construction.
  boost::json::object object = parsed.root.is_object()
                                   ? boost::json::object(std::move(parsed.root.get_object()))
                                   : boost::json::object(storage);
  return ConversationDocument{
      .arena = std::move(arena), .object = std::move(object), .body = std::move(body)};
}

std::variant<ConversationDocument, ApiError> ParseConversationDocument(HttpResponse& response) {
  boost::system::error_code error;
  ConversationDocument document = ParseDocument(std::move(response.body), error);
  if (error) return NotJson(error, document.body, response);
  if (!IsConversation(document.object))
    return BadResponse(std::string(kNotAConversation), response);
  return document;
}

std::string ConversationPath(std::string_view conversation_id) {
  return "/v1/convai/conversations/" + EncodeComponent(conversation_id);
}

// The completion of a call whose 2xx answer is JSON: errors pass through, the body is parsed,
// and `decode(value, response)` turns it into the operation's result (or a BadResponse).
template <class T, class Decode>
std::function<void(std::variant<HttpResponse, ApiError>)> JsonHandler(
    std::function<void(ApiResult<T>)> done, Decode decode) {
  return [done = std::move(done),
          decode = std::move(decode)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    const auto& response = std::get<HttpResponse>(result);
    auto json = JsonBody(response);
    if (auto* error = std::get_if<ApiError>(&json)) return done(std::move(*error));
    done(decode(std::get<boost::json::value>(json), response));
  };
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

HttpRequest ElevenLabsClient::BaseRequest(const std::string& method, const std::string& path,
                                          core::SystemTime deadline) const {
  const auto remaining =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock_.Now());
  HttpRequest request;
  request.method = method;
  request.url = options_.base_url + path;
  request.headers.Set("xi-api-key", options_.api_key);
  request.headers.Set("Accept", "application/json");
  request.timeout = std::max(remaining, std::chrono::milliseconds(1));
  return request;
}

bool ElevenLabsClient::ScheduleRetry(const std::string& what, RequestSafety safety,
                                     const ApiError& error, int attempt, core::SystemTime deadline,
                                     std::function<void()> again) {
  const auto delay = RetryDelay(options_.retry, safety, error, attempt, jitter_());
  if (!delay || clock_.Now() + *delay >= deadline) return false;
  spdlog::warn("ElevenLabs {}: {} (attempt {}); retrying in {} ms", what, error.message, attempt,
               delay->count());
  scheduler_.After(*delay, std::move(again));
  return true;
}

void ElevenLabsClient::Attempt(std::shared_ptr<Call> call) {
  ++call->attempt;
  HttpRequest request = BaseRequest(call->method, call->path, call->deadline);
  if (!call->body.empty()) request.headers.Set("Content-Type", "application/json");
  request.body = call->body;
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
    if (!ScheduleRetry(call->method + " " + call->path, call->safety, error, call->attempt,
                       call->deadline, [this, call] { Attempt(call); })) {
      call->done(std::move(error));
    }
  });
}

struct ElevenLabsClient::StreamCall {
  std::string path;
  core::SystemTime deadline;
  int attempt = 0;
  std::function<void(ApiResult<AudioStream>)> done;
};

void ElevenLabsClient::AttemptStream(std::shared_ptr<StreamCall> call) {
  ++call->attempt;
  HttpRequest request = BaseRequest("GET", call->path, call->deadline);
  request.read_timeout = options_.timeout;
  request.max_response_bytes = options_.max_audio_bytes;
  http_.SendStreamed(std::move(request), [this, call](HttpStreamedOutcome outcome) {
    if (auto* failure = std::get_if<HttpFailure>(&outcome)) {
      ApiError error = FromFailure(*failure);
      if (!ScheduleRetry("GET " + call->path, RequestSafety::kIdempotent, error, call->attempt,
                         call->deadline, [this, call] { AttemptStream(call); })) {
        call->done(std::move(error));
      }
      return;
    }
    auto& streamed = std::get<HttpStreamedResponse>(outcome);
    auto head = std::make_shared<HttpResponse>();
    head->status = streamed.status;
    head->headers = std::move(streamed.headers);
    if (head->status >= 200 && head->status < 300) {
      std::string content_type(head->headers.Get("Content-Type").value_or("audio/mpeg"));
      if (!content_type.starts_with("audio/")) {
        // Not retried, as with GetConversationAudio: the upstream answered, with something else.
        call->done(BadResponse("the recording is " + content_type + ", not audio", *head));
        return;
      }
      call->done(AudioStream{std::move(content_type), std::move(streamed.body)});
      return;
    }
    // An error answer is small: read it whole (bounded) for ParseApiError, then retry or report.
    constexpr std::size_t kMaxErrorBody = 64 * 1024;
    http::ReadWholeBody(
        std::move(streamed.body), kMaxErrorBody,
        [this, call, head](std::optional<std::string> bytes, std::string) {
          if (bytes) head->body = std::move(*bytes);
          ApiError error = ParseApiError(*head, UnixSeconds(clock_.Now()));
          if (!ScheduleRetry("GET " + call->path, RequestSafety::kIdempotent, error, call->attempt,
                             call->deadline, [this, call] { AttemptStream(call); })) {
            call->done(std::move(error));
          }
        });
  });
}

void ElevenLabsApi::GetConversationDocument(
    std::string conversation_id, std::function<void(ApiResult<ConversationDocument>)> done) {
  GetConversation(
      std::move(conversation_id), [done = std::move(done)](ApiResult<boost::json::object> result) {
        if (auto* error = std::get_if<ApiError>(&result)) {
          done(std::move(*error));
          return;
        }
        // The same pruned document as the client's, from the object's text.
        boost::system::error_code ignored;  // serialized JSON always parses
        done(ParseDocument(boost::json::serialize(std::get<boost::json::object>(result)), ignored));
      });
}

void ElevenLabsApi::OpenConversationAudio(std::string conversation_id,
                                          std::function<void(ApiResult<AudioStream>)> done) {
  GetConversationAudio(std::move(conversation_id), [done =
                                                        std::move(done)](ApiResult<Audio> result) {
    if (auto* error = std::get_if<ApiError>(&result)) {
      done(std::move(*error));
      return;
    }
    auto& audio = std::get<Audio>(result);
    done(AudioStream{
        std::move(audio.content_type),
        http::MakeStringBodyStream(std::make_shared<const std::string>(std::move(audio.bytes)))});
  });
}

void ElevenLabsClient::OpenConversationAudio(std::string conversation_id,
                                             std::function<void(ApiResult<AudioStream>)> done) {
  auto call = std::make_shared<StreamCall>();
  call->path = ConversationPath(conversation_id) + "/audio";
  call->deadline = clock_.Now() + options_.audio_timeout;
  call->done = std::move(done);
  AttemptStream(std::move(call));
}

void ElevenLabsClient::OutboundCall(bool sip_trunk, boost::json::object body,
                                    std::function<void(ApiResult<boost::json::object>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "POST";
  call->path = sip_trunk ? "/v1/convai/sip-trunk/outbound-call" : "/v1/convai/twilio/outbound-call";
  call->body = boost::json::serialize(body);
  call->safety = RequestSafety::kPlacesCall;
  call->deadline = clock_.Now() + options_.timeout;
  call->done = JsonHandler(
      std::move(done),
      [](boost::json::value& value,
         const HttpResponse& response) -> ApiResult<boost::json::object> {
        // A success:false answer may carry no conversation id: it is returned for the caller to
        // report. Anything else without one is not the documented answer.
        const bool documented =
            value.is_object() && (!StringMember(value.as_object(), "conversation_id").empty() ||
                                  value.as_object().contains("success"));
        if (!documented)
          return BadResponse("the outbound-call answer has no conversation_id", response);
        return std::move(value.as_object());
      });
  Execute(std::move(call));
}

void ElevenLabsClient::ListPhoneNumbers(
    std::function<void(ApiResult<std::vector<PhoneNumber>>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/phone-numbers";
  call->deadline = clock_.Now() + options_.timeout;
  call->done = JsonHandler(
      std::move(done),
      [](boost::json::value& value,
         const HttpResponse& response) -> ApiResult<std::vector<PhoneNumber>> {
        if (!value.is_array()) return BadResponse("phone-numbers is not an array", response);
        std::vector<PhoneNumber> numbers;
        for (const auto& item : value.as_array()) {
          if (!item.is_object()) return BadResponse("a phone number is not an object", response);
          const auto& object = item.as_object();
          PhoneNumber number{StringMember(object, "phone_number_id"),
                             StringMember(object, "phone_number"), StringMember(object, "provider"),
                             StringMember(object, "label")};
          if (number.phone_number_id.empty() || number.phone_number.empty()) {
            return BadResponse("a phone number lacks phone_number_id or phone_number", response);
          }
          numbers.push_back(std::move(number));
        }
        return numbers;
      });
  Execute(std::move(call));
}

void ElevenLabsClient::GetConversation(std::string conversation_id,
                                       std::function<void(ApiResult<boost::json::object>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = ConversationPath(conversation_id);
  call->deadline = clock_.Now() + options_.timeout;
  call->done = JsonHandler(std::move(done),
                           [](boost::json::value& value,
                              const HttpResponse& response) -> ApiResult<boost::json::object> {
                             if (!IsConversation(value))
                               return BadResponse(std::string(kNotAConversation), response);
                             return std::move(value.as_object());
                           });
  Execute(std::move(call));
}

void ElevenLabsClient::GetConversationDocument(
    std::string conversation_id, std::function<void(ApiResult<ConversationDocument>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = ConversationPath(conversation_id);
  call->deadline = clock_.Now() + options_.timeout;
  call->done = [done = std::move(done)](std::variant<HttpResponse, ApiError> result) {
    if (auto* error = std::get_if<ApiError>(&result)) return done(std::move(*error));
    auto document = ParseConversationDocument(std::get<HttpResponse>(result));
    if (auto* error = std::get_if<ApiError>(&document)) return done(std::move(*error));
    done(std::move(std::get<ConversationDocument>(document)));
  };
  Execute(std::move(call));
}

void ElevenLabsClient::ListConversations(std::string query,
                                         std::function<void(ApiResult<boost::json::object>)> done) {
  auto call = std::make_shared<Call>();
  call->method = "GET";
  call->path = "/v1/convai/conversations" + (query.empty() ? std::string() : "?" + query);
  call->deadline = clock_.Now() + options_.timeout;
  call->done =
      JsonHandler(std::move(done),
                  [](boost::json::value& value,
                     const HttpResponse& response) -> ApiResult<boost::json::object> {
                    if (!value.is_object() || !value.as_object().contains("conversations")) {
                      return BadResponse("the listing has no conversations array", response);
                    }
                    return std::move(value.as_object());
                  });
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
  call->done = JsonHandler(
      std::move(done),
      [](boost::json::value& value, const HttpResponse& response) -> ApiResult<std::string> {
        std::string url = value.is_object() ? StringMember(value.as_object(), "signed_url") : "";
        if (!url.starts_with("wss://") && !url.starts_with("ws://")) {
          return BadResponse("signed_url is missing or not a WebSocket URL", response);
        }
        return url;
      });
  Execute(std::move(call));
}

}  // namespace callgate::upstream
