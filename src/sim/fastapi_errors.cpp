#include "sim/fastapi_errors.hpp"

namespace callgate::sim {

void SetTraceId(http::Response& response, std::string_view trace_id) {
  if (!trace_id.empty()) response.headers.Set("x-trace-id", std::string(trace_id));
}

boost::json::object IssueJson(const ValidationIssue& issue) {
  boost::json::object item{
      {"type", issue.type}, {"loc", issue.loc}, {"msg", issue.msg}, {"input", issue.input}};
  if (issue.ctx) item["ctx"] = *issue.ctx;
  return item;
}

http::Response Unprocessable(const std::vector<ValidationIssue>& issues,
                             std::string_view trace_id) {
  boost::json::array detail;
  for (const auto& issue : issues)
    detail.push_back(IssueJson(issue));
  http::Response response = http::Response::Json(422, {{"detail", std::move(detail)}});
  SetTraceId(response, trace_id);
  return response;
}

http::Response CurrentError(int http_status, std::string_view type, std::string_view code,
                            std::string_view message, std::string_view trace_id,
                            std::string_view param, std::string_view legacy_status) {
  boost::json::object detail{{"type", type},
                             {"code", code},
                             {"message", message},
                             {"status", legacy_status.empty() ? code : legacy_status},
                             {"request_id", trace_id}};
  if (!param.empty()) detail["param"] = param;
  http::Response response = http::Response::Json(http_status, {{"detail", std::move(detail)}});
  SetTraceId(response, trace_id);
  return response;
}

http::Response LegacyError(int http_status, std::string_view status, std::string_view message,
                           std::string_view trace_id) {
  http::Response response =
      http::Response::Json(http_status, {{"detail", {{"status", status}, {"message", message}}}});
  SetTraceId(response, trace_id);
  return response;
}

http::Response MissingApiKey(std::string_view trace_id) {
  return CurrentError(401, "authentication_error", "unauthorized",
                      "Neither authorization header nor xi-api-key received, please provide one.",
                      trace_id, {}, "needs_authorization");
}

http::Response InvalidApiKey(std::string_view trace_id) {
  return CurrentError(401, "authentication_error", "invalid_api_key", "Invalid API key", trace_id,
                      {}, "invalid_api_key");
}

http::Response FrameworkError(int status, std::string_view message, std::string_view trace_id) {
  http::Response response;
  if (status == 500) {
    response = http::Response::Text(500, "Internal Server Error");
  } else if (status == 404) {
    response = http::Response::Json(404, {{"detail", "Not Found"}});
  } else if (status == 405) {
    response = http::Response::Json(405, {{"detail", "Method Not Allowed"}});
  } else {
    response = http::Response::Json(status, {{"detail", message}});
  }
  SetTraceId(response, trace_id);
  return response;
}

}  // namespace callgate::sim
