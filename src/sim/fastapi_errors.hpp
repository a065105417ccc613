// The error bodies of the real API (elevenlabs-api.md §5), as pure response builders.
//
// Three shapes exist and clients must cope with all of them:
//   * 422 from FastAPI/pydantic v2: {"detail":[{"type","loc","msg","input"[,"ctx"]}, ...]}
//   * the current format: {"detail":{"type","code","message","status","request_id"[,"param"]}}
//   * the legacy format: {"detail":{"status","message"}}
// plus Starlette's framework errors ({"detail":"Not Found"}). Every builder sets x-trace-id
// when given one; detail.request_id always equals it.
#pragma once

#include "http/message.hpp"

#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace callgate::sim {

// One pydantic-v2 error item as FastAPI renders it.
struct ValidationIssue {
  std::string type;          // "missing", "string_type", "value_error", ...
  boost::json::array loc;    // e.g. ["body", "to_number"] or ["query", "page_size"]
  std::string msg;           // "Field required"
  boost::json::value input;  // the offending input; null for a missing field
  std::optional<boost::json::object> ctx;
};

boost::json::object IssueJson(const ValidationIssue& issue);

// 422 {"detail":[...issues in order...]}.
http::Response Unprocessable(const std::vector<ValidationIssue>& issues, std::string_view trace_id);

// The current format. `legacy_status` fills detail.status (defaults to `code`); `param` is
// included only when non-empty.
http::Response CurrentError(int http_status, std::string_view type, std::string_view code,
                            std::string_view message, std::string_view trace_id,
                            std::string_view param = {}, std::string_view legacy_status = {});

// The legacy format {"detail":{"status","message"}}.
http::Response LegacyError(int http_status, std::string_view status, std::string_view message,
                           std::string_view trace_id);

// 401 for a request without xi-api-key (or Authorization), and for a wrong key.
http::Response MissingApiKey(std::string_view trace_id);
http::Response InvalidApiKey(std::string_view trace_id);

// Errors the framework produces before a handler runs (404 no route, 405, 408, 413, 431, 400,
// 500), in Starlette's shapes: {"detail":"Not Found"}, {"detail":"Method Not Allowed"},
// {"detail":"<message>"} for the rest, and a plain-text "Internal Server Error" for 500.
http::Response FrameworkError(int status, std::string_view message, std::string_view trace_id);

void SetTraceId(http::Response& response, std::string_view trace_id);

}  // namespace callgate::sim
