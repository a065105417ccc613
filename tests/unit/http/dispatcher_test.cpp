#include "http/dispatcher.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <thread>
#include <vector>

namespace callgate::http {
namespace {

Request Head(std::string method, std::string path,
             std::vector<std::pair<std::string, std::string>> headers = {}) {
  Request request;
  request.method = std::move(method);
  request.path = std::move(path);
  request.request_id = "req_test";
  for (auto& [k, v] : headers)
    request.headers.Add(k, v);
  return request;
}

boost::json::value Body(const Response& response) {
  return boost::json::parse(response.body);
}

class DispatcherTest : public ::testing::Test {
 protected:
  DispatcherTest() {
    router_.Add("POST", "/json",
                [this](Request request, Responder responder) {
                  seen_ = *request.json;
                  responder.Send(Response::Json(200, {{"ok", true}}));
                },
                {.body = BodyKind::kJson});
    router_.Add("POST", "/big", [](Request, Responder r) { r.Send(Response::Text(200, "")); },
                {.body = BodyKind::kRaw, .max_body_bytes = 10'000'000});
    router_.Add("GET", "/private", [](Request, Responder r) { r.Send(Response::Text(200, "")); },
                {.requires_api_key = true});
  }

  Response RunToEnd(Request request) {
    std::optional<Response> out;
    Prepared prepared = dispatcher_.Prepare(request);
    dispatcher_.Run(std::move(prepared), std::move(request),
                    Responder([&](Response r) { out = std::move(r); }));
    return std::move(*out);
  }

  Router router_;
  Dispatcher dispatcher_{router_, {.default_max_body_bytes = 1000, .api_keys = {"k1", "k2"}}};
  boost::json::value seen_;
};

TEST_F(DispatcherTest, ErrorEnvelopeShape) {
  const Response response =
      ErrorResponse(418, "teapot", "short and stout", "req_9", {{"limit", 3}});
  EXPECT_EQ(response.status, 418);
  EXPECT_EQ(response.headers.Get("Content-Type"), "application/json");
  EXPECT_EQ(Body(response),
            boost::json::parse(R"({"error":{"code":"teapot","message":"short and stout",)"
                               R"("request_id":"req_9","details":{"limit":3}}})"));
}

TEST_F(DispatcherTest, NotFoundAndMethodNotAllowed) {
  auto prepared = dispatcher_.Prepare(Head("GET", "/nope"));
  ASSERT_TRUE(prepared.early);
  EXPECT_EQ(prepared.early->status, 404);
  EXPECT_EQ(Body(*prepared.early).at("error").at("request_id").as_string(), "req_test");

  prepared = dispatcher_.Prepare(Head("GET", "/json"));
  ASSERT_TRUE(prepared.early);
  EXPECT_EQ(prepared.early->status, 405);
  EXPECT_EQ(prepared.early->headers.Get("Allow"), "POST");
}

TEST_F(DispatcherTest, BodyLimitFromContentLengthBeforeReadingIt) {
  auto prepared = dispatcher_.Prepare(Head("POST", "/json", {{"Content-Length", "1001"}}));
  ASSERT_TRUE(prepared.early);
  EXPECT_EQ(prepared.early->status, 413);
  prepared = dispatcher_.Prepare(Head("POST", "/json", {{"Content-Length", "1000"}}));
  EXPECT_FALSE(prepared.early);
  EXPECT_EQ(prepared.body_limit, 1000u);
  prepared = dispatcher_.Prepare(Head("POST", "/big", {{"Content-Length", "5000000"}}));
  EXPECT_FALSE(prepared.early);
  EXPECT_EQ(prepared.body_limit, 10'000'000u);
}

TEST_F(DispatcherTest, ContentTypeMustBeJsonWhenPresent) {
  for (const char* ok :
       {"application/json", "Application/JSON; charset=utf-8", "application/vnd.api+json"}) {
    EXPECT_FALSE(dispatcher_.Prepare(Head("POST", "/json", {{"Content-Type", ok}})).early) << ok;
  }
  for (const char* bad :
       {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}) {
    auto prepared = dispatcher_.Prepare(Head("POST", "/json", {{"Content-Type", bad}}));
    ASSERT_TRUE(prepared.early) << bad;
    EXPECT_EQ(prepared.early->status, 415);
  }
  EXPECT_FALSE(dispatcher_.Prepare(Head("POST", "/json")).early);
}

TEST_F(DispatcherTest, ApiKeyFromEitherHeader) {
  auto prepared = dispatcher_.Prepare(Head("GET", "/private"));
  ASSERT_TRUE(prepared.early);
  EXPECT_EQ(prepared.early->status, 401);
  EXPECT_EQ(Body(*prepared.early).at("error").at("code").as_string(), "missing_api_key");
  EXPECT_TRUE(prepared.early->headers.Get("WWW-Authenticate"));

  prepared = dispatcher_.Prepare(Head("GET", "/private", {{"X-API-Key", "k3"}}));
  ASSERT_TRUE(prepared.early);
  EXPECT_EQ(Body(*prepared.early).at("error").at("code").as_string(), "invalid_api_key");

  EXPECT_FALSE(dispatcher_.Prepare(Head("GET", "/private", {{"X-API-Key", " k2 "}})).early);
  EXPECT_FALSE(
      dispatcher_.Prepare(Head("GET", "/private", {{"Authorization", "bearer k1"}})).early);
  EXPECT_TRUE(dispatcher_.Prepare(Head("GET", "/private", {{"Authorization", "Basic k1"}})).early);
}

TEST_F(DispatcherTest, ApiKeysMatchOnlyExactly) {
  // The keys' digests are computed once; the presented key is hashed per request (per thread).
  const std::string long_key(300, 'x');
  Dispatcher dispatcher(router_, {.api_keys = {"k1", long_key, "K\xc3\xa9y"}});
  const auto refused = [&](std::string key) {
    return dispatcher.Prepare(Head("GET", "/private", {{"X-API-Key", std::move(key)}}))
        .early.has_value();
  };
  EXPECT_FALSE(refused("k1"));
  EXPECT_FALSE(refused(long_key));
  EXPECT_FALSE(refused("K\xc3\xa9y"));
  for (const std::string& wrong :
       std::vector<std::string>{"k", "k11", "K1", "k2", std::string(299, 'x'),
                                std::string(301, 'x'), std::string("k1\0", 3), "Ky"}) {
    EXPECT_TRUE(refused(wrong)) << wrong;
  }
  // From another thread (a context of its own) too.
  bool other_thread_ok = false;
  std::thread([&] { other_thread_ok = !refused("k1") && refused("k2"); }).join();
  EXPECT_TRUE(other_thread_ok);
}

TEST_F(DispatcherTest, OpenWhenNoKeysAreConfigured) {
  Dispatcher open(router_, {.default_max_body_bytes = 1000, .api_keys = {}});
  EXPECT_FALSE(open.Prepare(Head("GET", "/private")).early);
}

TEST_F(DispatcherTest, ParsesJsonForTheHandler) {
  Request request = Head("POST", "/json");
  request.body = R"({"to_number":"+15551234567"})";
  EXPECT_EQ(RunToEnd(std::move(request)).status, 200);
  EXPECT_EQ(seen_.at("to_number").as_string(), "+15551234567");
}

TEST(ParseJsonBody, ReportsWhereParsingStopped) {
  auto result = ParseJsonBody("{\"a\": 1,\n \"b\": tru}", "req_1");
  ASSERT_TRUE(result.error);
  EXPECT_FALSE(result.value);
  const auto details = boost::json::parse(result.error->body).at("error").at("details");
  EXPECT_EQ(details.at("line").as_int64(), 2);
  EXPECT_GE(details.at("column").as_int64(), 7);
  result = ParseJsonBody("[1, 2]", "req_1");
  ASSERT_TRUE(result.value);
  EXPECT_EQ(result.value->as_array().size(), 2u);
  result = ParseJsonBody("[1] trailing", "req_1");
  EXPECT_TRUE(result.error);
}

}  // namespace
}  // namespace callgate::http
