// Upstream error parsing (the three documented body shapes), the gateway's mapping of them, and
// the retry policy. Pure.
#include "upstream/api_error.hpp"
#include "upstream/retry_policy.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

namespace callgate::upstream {
namespace {

using namespace std::chrono_literals;

HttpResponse Answer(int status, std::string body, std::string trace_id = "trace-1") {
  HttpResponse response;
  response.status = status;
  response.body = std::move(body);
  if (!trace_id.empty()) response.headers.Set("x-trace-id", trace_id);
  return response;
}

boost::json::object ErrorBody(const http::Response& response) {
  return boost::json::parse(response.body).at("error").as_object();
}

TEST(ParseApiError, CurrentShape) {
  const auto error = ParseApiError(
      Answer(401,
             R"({"detail":{"type":"authentication_error","code":"unauthorized",)"
             R"("message":"Invalid API key","status":"invalid_api_key","request_id":"abc123"}})"),
      0);
  EXPECT_EQ(error.kind, ApiError::Kind::kStatus);
  EXPECT_EQ(error.upstream_status, 401);
  EXPECT_EQ(error.code, "unauthorized");
  EXPECT_EQ(error.message, "Invalid API key");
  EXPECT_EQ(error.request_id, "abc123") << "detail.request_id wins over x-trace-id";
}

TEST(ParseApiError, LegacyShapeUsesStatusAsCode) {
  const auto error = ParseApiError(
      Answer(
          401,
          R"({"detail":{"status":"quota_exceeded","message":"This request exceeds your quota."}})"),
      0);
  EXPECT_EQ(error.code, "quota_exceeded");
  EXPECT_EQ(error.message, "This request exceeds your quota.");
  EXPECT_EQ(error.request_id, "trace-1");
}

TEST(ParseApiError, ValidationShapeKeepsFieldErrors) {
  const auto error = ParseApiError(
      Answer(
          422,
          R"({"detail":[{"type":"missing","loc":["body","to_number"],"msg":"Field required","input":null},)"
          R"({"type":"string_type","loc":["body","agent_id",0],"msg":"Input should be a valid string"}]})"),
      0);
  EXPECT_EQ(error.code, "validation_error");
  ASSERT_EQ(error.field_errors.size(), 2u);
  EXPECT_EQ(error.message,
            "body.to_number: Field required; body.agent_id.0: Input should be a valid string");
}

TEST(ParseApiError, StringDetailAndProxyPages) {
  EXPECT_EQ(ParseApiError(Answer(404, R"({"detail":"Not Found"})"), 0).message, "Not Found");
  const auto html = ParseApiError(Answer(502, "<html><body>502 Bad Gateway</body></html>", ""), 0);
  EXPECT_EQ(html.kind, ApiError::Kind::kBadResponse);
  EXPECT_EQ(html.upstream_status, 502);
  EXPECT_NE(html.message.find("502 Bad Gateway"), std::string::npos) << html.message;
  // A bare 429 from something in front of the API is still a rate limit.
  EXPECT_EQ(ParseApiError(Answer(429, "slow down", ""), 0).kind, ApiError::Kind::kStatus);
}

TEST(ParseRetryAfter, SecondsAndHttpDates) {
  EXPECT_EQ(ParseRetryAfter("120", 0), 120s);
  EXPECT_EQ(ParseRetryAfter(" 3 ", 0), 3s);
  // Sun, 22 Nov 2026 07:00:30 GMT is 30 s after 1795330800 (07:00:00).
  EXPECT_EQ(ParseRetryAfter("Sun, 22 Nov 2026 07:00:30 GMT", 1795330800), 30s);
  EXPECT_EQ(ParseRetryAfter("Sun, 22 Nov 2026 07:00:30 GMT", 1795330900), 0s) << "in the past";
  EXPECT_FALSE(ParseRetryAfter("soon", 0));
  EXPECT_FALSE(ParseRetryAfter("", 0));
  HttpResponse response = Answer(429, R"({"detail":{"status":"system_busy","message":"busy"}})");
  response.headers.Set("Retry-After", "7");
  EXPECT_EQ(ParseApiError(response, 0).retry_after, 7s);
}

TEST(ToGatewayResponse, MapsEveryKind) {
  struct Case {
    ApiError error;
    int status;
    std::string code;
  };
  ApiError unauthorized{
      .upstream_status = 401, .code = "unauthorized", .message = "Invalid API key"};
  ApiError validation{.upstream_status = 422, .code = "validation_error", .message = "bad"};
  validation.field_errors.push_back(boost::json::object{{"msg", "Field required"}});
  ApiError limited{.upstream_status = 429, .message = "busy", .retry_after = 9s};
  const std::vector<Case> cases = {
      {unauthorized, 502, "upstream_auth_failed"},
      {validation, 400, "upstream_validation_failed"},
      {{.upstream_status = 400, .message = "bad number"}, 400, "upstream_rejected"},
      {{.upstream_status = 404, .message = "no such"}, 404, "not_found"},
      {limited, 429, "upstream_rate_limited"},
      {{.upstream_status = 500, .message = "oops"}, 502, "upstream_error"},
      {{.kind = ApiError::Kind::kUnavailable, .message = "refused"}, 502, "upstream_unavailable"},
      {{.kind = ApiError::Kind::kTimeout, .message = "slow"}, 504, "upstream_timeout"},
      {{.kind = ApiError::Kind::kBadResponse, .message = "html"}, 502, "upstream_bad_response"},
  };
  for (const auto& c : cases) {
    const auto response = ToGatewayResponse(c.error, "req_1");
    EXPECT_EQ(response.status, c.status) << c.code;
    const auto error = ErrorBody(response);
    EXPECT_EQ(error.at("code").as_string(), c.code);
    EXPECT_EQ(error.at("request_id").as_string(), "req_1");
    EXPECT_NE(std::string(error.at("message").as_string()).find(c.error.message),
              std::string::npos);
  }
  const auto rate = ToGatewayResponse(limited, "r");
  EXPECT_EQ(rate.headers.Get("Retry-After").value_or(""), "9");
  const auto invalid = ErrorBody(ToGatewayResponse(validation, "r"));
  EXPECT_EQ(invalid.at("details").at("errors").as_array().size(), 1u);
  EXPECT_EQ(invalid.at("details").at("upstream_status").as_int64(), 422);
}

TEST(RetryDelay, GetsRetryOnTransientFailures) {
  const RetryPolicy policy{.max_attempts = 3, .base_delay = 100ms, .max_delay = 1000ms};
  const auto safe = RequestSafety::kIdempotent;
  EXPECT_EQ(RetryDelay(policy, safe, {.upstream_status = 503}, 1, 0.5), 100ms);
  EXPECT_EQ(RetryDelay(policy, safe, {.upstream_status = 500}, 2, 0.5), 200ms);
  EXPECT_FALSE(RetryDelay(policy, safe, {.upstream_status = 500}, 3, 0.5)) << "3 attempts in all";
  EXPECT_EQ(RetryDelay(policy, safe, {.upstream_status = 500}, 1, 0.0), 90ms) << "-10% jitter";
  EXPECT_EQ(RetryDelay(policy, safe, {.upstream_status = 500}, 1, 1.0), 110ms) << "+10% jitter";
  EXPECT_TRUE(RetryDelay(policy, safe, {.kind = ApiError::Kind::kUnavailable}, 1, 0.5));
  EXPECT_TRUE(RetryDelay(policy, safe, {.kind = ApiError::Kind::kBadResponse}, 1, 0.5));
  EXPECT_TRUE(RetryDelay(policy, safe, {.upstream_status = 408}, 1, 0.5));
  EXPECT_EQ(RetryDelay(policy, safe, {.upstream_status = 429, .retry_after = 0s}, 1, 0.5), 0ms);
  EXPECT_EQ(RetryDelay(policy, safe, {.upstream_status = 429, .retry_after = 120s}, 1, 0.5), 1000ms)
      << "Retry-After is capped";
  for (int status : {400, 401, 403, 404, 409, 422}) {
    EXPECT_FALSE(RetryDelay(policy, safe, {.upstream_status = status}, 1, 0.5)) << status;
  }
}

TEST(RetryDelay, ACallIsRetriedOnlyWhenItCannotHaveBeenPlaced) {
  const RetryPolicy policy{};
  const auto call = RequestSafety::kPlacesCall;
  EXPECT_TRUE(RetryDelay(policy, call,
                         {.kind = ApiError::Kind::kUnavailable, .request_sent = false}, 1, 0.5))
      << "could not connect: the API never saw it";
  EXPECT_TRUE(RetryDelay(policy, call, {.upstream_status = 429}, 1, 0.5));
  EXPECT_FALSE(RetryDelay(policy, call,
                          {.kind = ApiError::Kind::kUnavailable, .request_sent = true}, 1, 0.5))
      << "reset after sending: the call may exist";
  EXPECT_FALSE(RetryDelay(policy, call, {.kind = ApiError::Kind::kTimeout}, 1, 0.5));
  EXPECT_FALSE(RetryDelay(
      policy, call,
      {.kind = ApiError::Kind::kUnavailable, .request_sent = false, .permanent = true}, 1, 0.5))
      << "a TLS verification failure will not fix itself";
  EXPECT_FALSE(RetryDelay(policy, call, {.kind = ApiError::Kind::kBadResponse}, 1, 0.5));
  for (int status : {500, 502, 503, 504, 408}) {
    EXPECT_FALSE(RetryDelay(policy, call, {.upstream_status = status}, 1, 0.5)) << status;
  }
}

}  // namespace
}  // namespace callgate::upstream
