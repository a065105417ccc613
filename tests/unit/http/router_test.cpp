#include "http/router.hpp"

#include <gtest/gtest.h>

namespace callgate::http {
namespace {

Handler Noop() {
  return [](Request, Responder) {};
}

TEST(Router, MatchesLiteralsAndParameters) {
  Router router;
  router.Add("GET", "/api/calls", Noop());
  router.Add("GET", "/api/calls/{call_id}", Noop());
  router.Add("GET", "/api/calls/{call_id}/events/{event_id}", Noop());

  auto match = router.Match("GET", "/api/calls");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.route->pattern, "/api/calls");

  match = router.Match("GET", "/api/calls/call_123");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.route->pattern, "/api/calls/{call_id}");
  EXPECT_EQ(match.params.at("call_id"), "call_123");

  match = router.Match("GET", "/api/calls/a/events/b");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.params.at("call_id"), "a");
  EXPECT_EQ(match.params.at("event_id"), "b");
}

TEST(Router, NotFound) {
  Router router;
  router.Add("GET", "/api/calls/{id}", Noop());
  EXPECT_EQ(router.Match("GET", "/api/calls").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "/api/calls/").kind, RouteMatch::Kind::kNotFound)
      << "an empty parameter does not match";
  EXPECT_EQ(router.Match("GET", "/api/calls/x/y").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "").kind, RouteMatch::Kind::kNotFound);
  EXPECT_EQ(router.Match("GET", "*").kind, RouteMatch::Kind::kNotFound);
}

TEST(Router, LiteralBeatsParameter) {
  Router router;
  router.Add("GET", "/webhook/sessions/{id}", Noop());
  router.Add("GET", "/webhook/sessions/active", Noop());
  auto match = router.Match("GET", "/webhook/sessions/active");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.route->pattern, "/webhook/sessions/active");
  match = router.Match("GET", "/webhook/sessions/s1");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.route->pattern, "/webhook/sessions/{id}");
}

TEST(Router, MethodNotAllowedListsAllowedMethods) {
  Router router;
  router.Add("GET", "/webhook/sessions/{id}", Noop());
  router.Add("DELETE", "/webhook/sessions/{id}", Noop());
  const auto match = router.Match("POST", "/webhook/sessions/s1");
  EXPECT_EQ(match.kind, RouteMatch::Kind::kMethodNotAllowed);
  EXPECT_EQ(match.allow, "DELETE, GET, HEAD");
}

TEST(Router, HeadUsesTheGetRoute) {
  Router router;
  router.Add("GET", "/healthz", Noop());
  const auto match = router.Match("HEAD", "/healthz");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.route->method, "GET");
}

TEST(Router, ParametersArePercentDecoded) {
  Router router;
  router.Add("GET", "/api/conversations/{id}", Noop());
  const auto match = router.Match("GET", "/api/conversations/conv%20a%2Fb");
  ASSERT_EQ(match.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(match.params.at("id"), "conv a/b");
  const auto bad = router.Match("GET", "/api/conversations/100%zz");
  ASSERT_EQ(bad.kind, RouteMatch::Kind::kFound);
  EXPECT_EQ(bad.params.at("id"), "100%zz") << "invalid escapes are kept verbatim";
}

TEST(Router, RejectsMalformedAndDuplicatePatterns) {
  Router router;
  EXPECT_THROW(router.Add("GET", "no-slash", Noop()), std::invalid_argument);
  EXPECT_THROW(router.Add("GET", "/a/{broken", Noop()), std::invalid_argument);
  router.Add("GET", "/a", Noop());
  EXPECT_THROW(router.Add("GET", "/a", Noop()), std::invalid_argument);
  EXPECT_NO_THROW(router.Add("POST", "/a", Noop()));
}

TEST(Responder, DeliversOnceAnd500WhenDropped) {
  std::vector<int> delivered;
  {
    Responder responder([&](Response r) { delivered.push_back(r.status); });
    Responder copy = responder;
    copy.Send(Response::Text(201, "x"));
    responder.Send(Response::Text(202, "ignored"));
  }
  EXPECT_EQ(delivered, std::vector<int>{201});

  delivered.clear();
  {
    Responder forgotten([&](Response r) { delivered.push_back(r.status); });
    forgotten.set_request_id("req_1");
  }
  EXPECT_EQ(delivered, std::vector<int>{500});
}

TEST(Request, QueryParametersAreDecoded) {
  Request request;
  request.query = "status=in-progress&to=%2B1555&note=a+b&empty=&flag";
  EXPECT_EQ(request.QueryParam("status"), "in-progress");
  EXPECT_EQ(request.QueryParam("to"), "+1555");
  EXPECT_EQ(request.QueryParam("note"), "a b");
  EXPECT_EQ(request.QueryParam("empty"), "");
  EXPECT_EQ(request.QueryParam("flag"), "");
  EXPECT_EQ(request.QueryParam("missing"), std::nullopt);
}

TEST(Headers, CaseInsensitiveAndSetReplaces) {
  Headers headers;
  headers.Add("X-Api-Key", "one");
  headers.Add("x-api-key", "two");
  EXPECT_EQ(headers.Get("X-API-KEY"), "one");
  headers.Set("X-API-Key", "three");
  EXPECT_EQ(headers.All().size(), 1u);
  EXPECT_EQ(headers.Get("x-api-key"), "three");
  EXPECT_EQ(headers.Get("missing"), std::nullopt);
}

}  // namespace
}  // namespace callgate::http
