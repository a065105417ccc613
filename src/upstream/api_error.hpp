// What went wrong with a call to ElevenLabs, in one vocabulary, and the one place that maps it
// to the gateway's own answer. Pure.
//
// The API answers errors in three body shapes (elevenlabs-api.md §5): the current
// {"detail":{"type","code","message","status","request_id","param"}}, the legacy
// {"detail":{"status","message"}} and FastAPI's 422 {"detail":[{"loc","msg","type",...}]}
// (plus {"detail":"Not Found"} for unknown routes). ParseApiError reads all of them.
//
// Mapping to the gateway's answer (ToGatewayResponse):
//   upstream 401/403          -> 502 upstream_auth_failed (the gateway's key is wrong or out of
//   quota) upstream 422              -> 400 upstream_validation_failed, with the field errors
//   upstream 400              -> 400 upstream_rejected
//   upstream 404              -> 404 not_found
//   upstream 429              -> 429 upstream_rate_limited, with Retry-After
//   upstream 5xx, other 4xx   -> 502 upstream_error
//   connection failure/reset  -> 502 upstream_unavailable
//   timeout                   -> 504 upstream_timeout
//   not the documented JSON   -> 502 upstream_bad_response
#pragma once

#include "http/message.hpp"
#include "upstream/http_client.hpp"

#include <boost/json/array.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

namespace callgate::upstream {

struct ApiError {
  enum class Kind {
    kStatus,       // the API answered with an error status (upstream_status)
    kUnavailable,  // no answer: cannot connect, reset, closed
    kTimeout,      // no complete answer in time
    kBadResponse,  // an answer that is not the documented JSON (any status but 401/403/404/429)
  };
  Kind kind = Kind::kStatus;
  int upstream_status = 0;          // 0 when there was no answer
  std::string code;                 // detail.code, else detail.status (legacy), else ""
  std::string message;              // the upstream's message, or what failed
  std::string request_id;           // detail.request_id, else the x-trace-id header
  boost::json::array field_errors;  // 422: [{loc, msg, type}, ...] as received
  std::optional<std::chrono::seconds> retry_after;  // from Retry-After (seconds or HTTP date)
  bool request_sent = true;  // false when the request provably never reached the API
  // A failure that trying again cannot fix (TLS verification, an invalid URL): never retried.
  bool permanent = false;
};

// From an HTTP answer with a non-2xx status. `now_unix` resolves an HTTP-date Retry-After.
ApiError ParseApiError(const HttpResponse& response, std::int64_t now_unix);
// From a transport failure.
ApiError FromFailure(const HttpFailure& failure);
// A 2xx answer whose body is not what the operation documents.
ApiError BadResponse(std::string what, const HttpResponse& response);

// Retry-After as seconds: "120" or an HTTP date. nullopt when absent or unreadable.
std::optional<std::chrono::seconds> ParseRetryAfter(std::string_view value, std::int64_t now_unix);

// The gateway's answer for an upstream error (see the table above), in the JSON error envelope,
// with details {upstream_status, upstream_code, upstream_request_id, errors}.
http::Response ToGatewayResponse(const ApiError& error, std::string_view request_id);

}  // namespace callgate::upstream
