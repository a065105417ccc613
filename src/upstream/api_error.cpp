#include "upstream/api_error.hpp"

#include "http/dispatcher.hpp"

#include <boost/json/parse.hpp>

#include <ctime>

namespace callgate::upstream {
namespace {

std::string StringField(const boost::json::object& object, std::string_view name) {
  const auto* value = object.if_contains(name);
  return value != nullptr && value->is_string() ? std::string(value->as_string()) : std::string();
}

std::string Excerpt(std::string_view body) {
  constexpr std::size_t kMax = 120;
  std::string out;
  for (char c : body.substr(0, kMax))
    out += (c == '\n' || c == '\r' || c == '\t') ? ' ' : c;
  if (body.size() > kMax) out += "...";
  return out;
}

}  // namespace

std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, std::int64_t now_unix) {
  while (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  while (!value.empty() && value.back() == ' ')
    value.remove_suffix(1);
  if (value.empty()) return std::nullopt;
  bool digits = true;
  for (char c : value)
    digits = digits && c >= '0' && c <= '9';
  if (digits) {
    if (value.size() > 9) return std::nullopt;
    return std::chrono::seconds(std::stoll(std::string(value)));
  }
  std::tm tm{};
  const std::string text(value);
  const char* end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S GMT", &tm);
  if (end == nullptr || *end != '\0') return std::nullopt;
  const std::int64_t at = timegm(&tm);
  return std::chrono::seconds(at > now_unix ? at - now_unix : 0);
}

ApiError ParseApiError(const HttpResponse& response, std::int64_t now_unix) {
  ApiError error;
  error.kind = ApiError::Kind::kStatus;
  error.upstream_status = response.status;
  error.request_id = std::string(response.headers.Get("x-trace-id").value_or(""));
  if (auto retry = response.headers.Get("Retry-After")) {
    error.retry_after = ParseRetryAfter(*retry, now_unix);
  } else if (auto retry_ms = response.headers.Get("retry-after-ms")) {
    try {
      error.retry_after = std::chrono::seconds((std::stoll(std::string(*retry_ms)) + 999) / 1000);
    } catch (const std::exception&) {
    }
  }
  boost::system::error_code ec;
  const boost::json::value body = boost::json::parse(response.body, ec);
  const boost::json::value* detail =
      !ec && body.is_object() ? body.as_object().if_contains("detail") : nullptr;
  if (detail == nullptr) {
    // Not the API's JSON: a proxy's page, or something else in front of the API. The statuses
    // whose meaning does not depend on the body keep it (a CDN's bare 429 is still a 429).
    const int s = response.status;
    if (s != 401 && s != 403 && s != 404 && s != 429) error.kind = ApiError::Kind::kBadResponse;
    error.message = "HTTP " + std::to_string(response.status) + " without the API's error body";
    if (!response.body.empty()) error.message += ": " + Excerpt(response.body);
    return error;
  }
  if (detail->is_object()) {
    const auto& object = detail->as_object();
    error.code = StringField(object, "code");
    if (error.code.empty()) error.code = StringField(object, "status");
    error.message = StringField(object, "message");
    if (auto id = StringField(object, "request_id"); !id.empty()) error.request_id = id;
  } else if (detail->is_array()) {
    error.code = "validation_error";
    error.field_errors = detail->as_array();
    for (const auto& item : error.field_errors) {
      if (!item.is_object()) continue;
      std::string location;
      if (const auto* loc = item.as_object().if_contains("loc"); loc && loc->is_array()) {
        for (const auto& part : loc->as_array()) {
          if (!location.empty()) location += ".";
          location += part.is_string()  ? std::string(part.as_string())
                      : part.is_int64() ? std::to_string(part.as_int64())
                                        : std::string("?");
        }
      }
      if (!error.message.empty()) error.message += "; ";
      error.message += location + ": " + StringField(item.as_object(), "msg");
    }
  } else if (detail->is_string()) {
    error.message = detail->as_string();
  }
  if (error.message.empty()) error.message = "HTTP " + std::to_string(response.status);
  return error;
}

ApiError FromFailure(const HttpFailure& failure) {
  ApiError error;
  error.message = failure.message;
  error.request_sent = failure.request_sent;
  error.permanent =
      failure.kind == HttpFailure::Kind::kTls || failure.kind == HttpFailure::Kind::kInvalidUrl;
  switch (failure.kind) {
    case HttpFailure::Kind::kTimeout:
      error.kind = ApiError::Kind::kTimeout;
      break;
    case HttpFailure::Kind::kBadResponse:
    case HttpFailure::Kind::kResponseTooLarge:
      error.kind = ApiError::Kind::kBadResponse;
      break;
    default:
      error.kind = ApiError::Kind::kUnavailable;
      break;
  }
  return error;
}

ApiError BadResponse(std::string what, const HttpResponse& response) {
  ApiError error;
  error.kind = ApiError::Kind::kBadResponse;
  error.upstream_status = response.status;
  error.request_id = std::string(response.headers.Get("x-trace-id").value_or(""));
  error.message = std::move(what);
  return error;
}

http::Response ToGatewayResponse(const ApiError& error, std::string_view request_id) {
  int status = 502;
  std::string code = "upstream_error";
  std::string message;
  switch (error.kind) {
    case ApiError::Kind::kUnavailable:
      code = "upstream_unavailable";
      message = "ElevenLabs could not be reached: " + error.message;
      break;
    case ApiError::Kind::kTimeout:
      status = 504;
      code = "upstream_timeout";
      message = "ElevenLabs did not answer in time: " + error.message;
      break;
    case ApiError::Kind::kBadResponse:
      code = "upstream_bad_response";
      message = "ElevenLabs sent an answer that is not the documented JSON: " + error.message;
      break;
    case ApiError::Kind::kStatus: {
      const int s = error.upstream_status;
      message = "ElevenLabs answered " + std::to_string(s) + ": " + error.message;
      if (s == 401 || s == 403) {
        code = "upstream_auth_failed";
        message = "ElevenLabs refused the gateway's API key (" + std::to_string(s) +
                  "): " + error.message + " (check ELEVENLABS_API_KEY)";
      } else if (s == 422) {
        status = 400;
        code = "upstream_validation_failed";
      } else if (s == 400) {
        status = 400;
        code = "upstream_rejected";
      } else if (s == 404) {
        status = 404;
        code = "not_found";
      } else if (s == 429) {
        status = 429;
        code = "upstream_rate_limited";
      }
      break;
    }
  }
  boost::json::object details;
  if (error.upstream_status != 0) details["upstream_status"] = error.upstream_status;
  if (!error.code.empty()) details["upstream_code"] = error.code;
  if (!error.request_id.empty()) details["upstream_request_id"] = error.request_id;
  if (!error.field_errors.empty()) details["errors"] = error.field_errors;
  if (error.retry_after) details["retry_after_secs"] = error.retry_after->count();
  http::Response response = http::ErrorResponse(status, code, message, request_id, details);
  if (status == 429 || status == 503) {
    response.headers.Set("Retry-After",
                         std::to_string(error.retry_after ? error.retry_after->count() : 1));
  }
  return response;
}

}  // namespace callgate::upstream
