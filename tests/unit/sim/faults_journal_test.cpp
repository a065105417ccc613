// Fault injection and the request journal.
#include "shape.hpp"
#include "sim/faults.hpp"
#include "sim_harness.hpp"

namespace callgate::sim::testing {
namespace {

using boost::json::parse;
using namespace std::chrono_literals;

std::string AddFault(SimHarness& sim, const std::string& spec) {
  const Reply reply = sim.Must("POST", "/_sim/faults", {}, spec);
  EXPECT_EQ(reply.status, 200) << reply.body;
  return Str(reply.Json().at("id"));
}

std::size_t ConversationCount(SimHarness& sim) {
  return sim.Api("GET", "/v1/convai/conversations").Json().at("conversations").as_array().size();
}

TEST(FaultsTest, StatusFaultsAreConsumedInOrderThenTheRealAnswerReturns) {
  SimHarness sim;
  AddFault(sim, R"({"route":"POST /v1/convai/twilio/outbound-call","count":2,"status":503})");
  AddFault(sim, R"({"route":"POST /v1/convai/twilio/outbound-call","status":500})");
  for (const int expected : {503, 503, 500, 200}) {
    const Reply reply = sim.Call();
    EXPECT_EQ(reply.status, expected) << reply.body;
    if (expected != 200) {
      EXPECT_EQ(reply.Json().at("detail").at("status"), "internal_error");
      EXPECT_TRUE(reply.Json().at("detail").at("message").is_string());
      EXPECT_FALSE(reply.Header("x-trace-id").empty());
    }
  }
  EXPECT_EQ(ConversationCount(sim), 1u) << "faulted requests took no effect";
  EXPECT_TRUE(sim.Must("GET", "/_sim/faults").Json().at("faults").as_array().empty());
}

TEST(FaultsTest, RateLimitBodiesAndRetryAfter) {
  SimHarness sim;
  AddFault(sim, R"({"route":"*","status":429,"retry_after":7,"style":"legacy"})");
  AddFault(sim, R"({"route":"*","status":429})");
  Reply reply = sim.Api("GET", "/v1/convai/phone-numbers");
  ASSERT_EQ(reply.status, 429);
  EXPECT_EQ(reply.Header("Retry-After"), "7");
  EXPECT_TRUE(HasShape(reply.Json().at("detail"),
                       {{"status", "enum:too_many_concurrent_requests"}, {"message", "string"}}));
  EXPECT_EQ(reply.Json().at("detail").as_object().size(), 2u) << "legacy: status and message";

  reply = sim.Api("GET", "/v1/convai/phone-numbers");
  ASSERT_EQ(reply.status, 429);
  EXPECT_EQ(reply.Header("Retry-After"), "");
  const auto detail = reply.Json().at("detail");
  EXPECT_TRUE(HasShape(detail, {{"type", "enum:rate_limit_error"},
                                {"code", "enum:concurrent_limit_exceeded"},
                                {"message", "string"},
                                {"status", "string"},
                                {"request_id", "regex:[0-9a-f]{32}"}}));
  EXPECT_EQ(Str(detail.at("request_id")), reply.Header("x-trace-id"));
  EXPECT_EQ(sim.Api("GET", "/v1/convai/phone-numbers").status, 200);
}

TEST(FaultsTest, RouteSelectionByPatternPathAndStar) {
  SimHarness sim;
  const std::string id = Str(sim.Call().Json().at("conversation_id"));
  AddFault(sim, R"({"route":"GET /v1/convai/conversations/{conversation_id}","status":502})");
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations").status, 200) << "other route untouched";
  EXPECT_EQ(sim.Api("DELETE", "/v1/convai/conversations/x").status, 404) << "other method";
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/" + id).status, 502);
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/" + id).status, 200);

  AddFault(sim, R"({"route":"GET /v1/convai/conversations/conv_other","status":500})");
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/" + id).status, 200);
  EXPECT_EQ(sim.Api("GET", "/v1/convai/conversations/conv_other").status, 500);

  AddFault(sim, R"({"route":"*","status":503})");
  EXPECT_EQ(sim.Must("GET", "/_sim/health").status, 200) << "control routes are never faulted";
  EXPECT_EQ(sim.Api("GET", "/v1/convai/phone-numbers").status, 503);
}

TEST(FaultsTest, UntilClearedAndClear) {
  SimHarness sim;
  AddFault(sim, R"({"route":"GET /v1/convai/phone-numbers","count":-1,"status":500})");
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(sim.Api("GET", "/v1/convai/phone-numbers").status, 500);
  const auto listed = sim.Must("GET", "/_sim/faults").Json().at("faults");
  ASSERT_EQ(listed.as_array().size(), 1u);
  EXPECT_EQ(listed.at(0).at("remaining"), -1);
  EXPECT_EQ(listed.at(0).at("applied"), 5);
  EXPECT_EQ(sim.Must("DELETE", "/_sim/faults").Json().at("cleared"), 1);
  EXPECT_EQ(sim.Api("GET", "/v1/convai/phone-numbers").status, 200);
}

TEST(FaultsTest, ResetAbortsWithoutEffectUnlessAskedTo) {
  SimHarness sim;
  AddFault(sim, R"({"route":"POST /v1/convai/twilio/outbound-call","reset":true})");
  Reply reply = sim.Call();
  EXPECT_TRUE(reply.aborted);
  EXPECT_EQ(ConversationCount(sim), 0u);

  AddFault(sim, R"({"route":"POST /v1/convai/twilio/outbound-call","reset":true,)"
                R"("process_request":true})");
  reply = sim.Call();
  EXPECT_TRUE(reply.aborted);
  EXPECT_EQ(ConversationCount(sim), 1u) << "the call was placed, the answer lost";
}

TEST(FaultsTest, HtmlProxyPage) {
  SimHarness sim;
  AddFault(sim, R"({"route":"*","html":true})");
  const Reply reply = sim.Api("GET", "/v1/convai/phone-numbers");
  EXPECT_EQ(reply.status, 502);
  EXPECT_EQ(reply.Header("Content-Type"), "text/html");
  EXPECT_NE(reply.body.find("<html>"), std::string::npos);
}

TEST(FaultsTest, TruncateCutsTheRealAnswerInHalf) {
  SimHarness sim;
  const Reply whole = sim.Api("GET", "/v1/convai/phone-numbers");
  AddFault(sim, R"({"route":"GET /v1/convai/phone-numbers","truncate":true})");
  const Reply cut = sim.Api("GET", "/v1/convai/phone-numbers");
  EXPECT_EQ(cut.status, 200);
  EXPECT_EQ(cut.body, whole.body.substr(0, whole.body.size() / 2));
  EXPECT_THROW((void)boost::json::parse(cut.body), std::exception);

  AddFault(sim, R"({"route":"POST /v1/convai/twilio/outbound-call","truncate":true})");
  EXPECT_EQ(sim.Call().status, 200);
  EXPECT_EQ(ConversationCount(sim), 1u) << "a truncated answer still took effect";
}

TEST(FaultsTest, LatencyWaitsOnTheScheduler) {
  SimHarness sim;
  AddFault(sim, R"({"route":"GET /v1/convai/phone-numbers","latency_ms":250})");
  auto reply = sim.Send("GET", "/v1/convai/phone-numbers", {{"xi-api-key", kApiKey}});
  EXPECT_FALSE(reply) << "answered before the delay";
  EXPECT_EQ(sim.scheduler.delays(), std::vector<std::chrono::milliseconds>{250ms});
  reply = sim.RunScheduled();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 200);
  EXPECT_TRUE(reply->Json().is_array());

  // Latency combined with a status: the error arrives late.
  AddFault(sim, R"({"route":"*","status":503,"latency_ms":40})");
  reply = sim.Send("GET", "/v1/convai/phone-numbers", {{"xi-api-key", kApiKey}});
  EXPECT_FALSE(reply);
  reply = sim.RunScheduled();
  ASSERT_TRUE(reply);
  EXPECT_EQ(reply->status, 503);
  EXPECT_EQ(sim.scheduler.delays().back(), 40ms);
  // Without faults nothing is scheduled.
  EXPECT_TRUE(sim.Send("GET", "/v1/convai/phone-numbers", {{"xi-api-key", kApiKey}}));
  EXPECT_EQ(sim.scheduler.delays().size(), 2u);
}

TEST(FaultsTest, BadSpecsAre400) {
  SimHarness sim;
  for (const std::string spec :
       {R"({"status":418})", R"({"status":500,"reset":true})", R"({"count":0,"status":500})",
        R"({})", R"({"route":"POST /v1/nope","status":500})", R"({"route":"bogus","status":500})",
        R"({"status":500,"retry_after":3})", R"({"status":503,"style":"legacy"})",
        R"({"latency_ms":-5})", R"({"truncate":true,"process_request":true})",
        R"({"status":"500"})", R"({"stauts":500})", "[1]", "not json"}) {
    const Reply reply = sim.Must("POST", "/_sim/faults", {}, spec);
    EXPECT_EQ(reply.status, 400) << spec;
    EXPECT_TRUE(reply.Json().at("detail").is_string()) << spec;
  }
  EXPECT_TRUE(sim.Must("GET", "/_sim/faults").Json().at("faults").as_array().empty());
}

TEST(JournalTest, RecordsTheExactRequestWithSecretsRedacted) {
  SimHarness sim;
  const std::string body =
      R"({"agent_id":"agent_sim_default","agent_phone_number_id":"phnum_sim_twilio",)"
      R"("to_number":"+15551234567","conversation_initiation_client_data":)"
      R"({"dynamic_variables":{"purpose":"x","leak":")" +
      std::string(kApiKey) + R"("}}})";
  const Reply reply =
      sim.Must("POST", "/v1/convai/twilio/outbound-call?debug=" + std::string(kApiKey),
               {{"xi-api-key", kApiKey},
                {"Authorization", std::string("Bearer ") + kApiKey},
                {"Content-Type", "application/json"},
                {"X-Custom", "v1"}},
               body);
  ASSERT_EQ(reply.status, 200);
  sim.Must("GET", "/_sim/health");  // never journaled
  sim.Must("GET", "/v1/unknown/route", {{"xi-api-key", kApiKey}});

  const Reply journal = sim.Must("GET", "/_sim/requests");
  ASSERT_EQ(journal.status, 200);
  EXPECT_EQ(journal.body.find(kApiKey), std::string::npos) << journal.body;
  const auto requests = journal.Json().at("requests").as_array();
  ASSERT_EQ(requests.size(), 2u) << journal.body;
  const auto& entry = requests[0];
  EXPECT_TRUE(HasShape(entry, {{"seq", "int"},
                               {"time_unix_ms", "int"},
                               {"method", "enum:POST"},
                               {"path", "enum:/v1/convai/twilio/outbound-call"},
                               {"query", "string"},
                               {"headers", "object"},
                               {"body", "string"},
                               {"status", "int"}}));
  EXPECT_EQ(entry.at("time_unix_ms"), sim.clock.NowUnixSeconds() * 1000);
  EXPECT_EQ(entry.at("status"), 200);
  EXPECT_EQ(entry.at("query"), "debug=***");
  EXPECT_EQ(entry.at("headers").at("xi-api-key"), "***");
  EXPECT_EQ(entry.at("headers").at("authorization"), "***");
  EXPECT_EQ(entry.at("headers").at("x-custom"), "v1");
  EXPECT_EQ(entry.at("headers").at("content-type"), "application/json");
  EXPECT_EQ(Str(entry.at("trace_id")), reply.Header("x-trace-id"));
  const auto sent = parse(Str(entry.at("body")));
  EXPECT_EQ(sent.at("to_number"), "+15551234567");
  EXPECT_EQ(sent.at("conversation_initiation_client_data").at("dynamic_variables").at("leak"),
            "***");
  EXPECT_EQ(requests[1].at("path"), "/v1/unknown/route");
  EXPECT_EQ(requests[1].at("status"), 404);

  const auto filtered = sim.Must("GET", "/_sim/requests?path=/v1/unknown/route").Json();
  ASSERT_EQ(filtered.at("requests").as_array().size(), 1u);
  const auto since = sim.Must("GET", "/_sim/requests?since=" + Str(entry.at("seq"))).Json();
  EXPECT_EQ(since.at("requests").as_array().size(), 1u);

  EXPECT_EQ(sim.Must("DELETE", "/_sim/requests").Json().at("cleared"), 2);
  EXPECT_TRUE(sim.Must("GET", "/_sim/requests").Json().at("requests").as_array().empty());
}

TEST(JournalTest, RecordsFaultsWithTheStatusActuallySent) {
  SimHarness sim;
  const std::string fault = AddFault(sim, R"({"route":"*","status":429})");
  const std::string reset = AddFault(sim, R"({"route":"*","reset":true})");
  sim.Api("GET", "/v1/convai/phone-numbers");
  sim.Api("GET", "/v1/convai/phone-numbers");
  sim.Api("GET", "/v1/convai/phone-numbers");
  const auto requests = sim.Must("GET", "/_sim/requests").Json().at("requests").as_array();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].at("status"), 429);
  EXPECT_EQ(Str(requests[0].at("fault")), fault);
  EXPECT_EQ(requests[1].at("status"), 0) << "reset: nothing was sent";
  EXPECT_EQ(Str(requests[1].at("fault")), reset);
  EXPECT_EQ(requests[2].at("status"), 200);
  EXPECT_TRUE(requests[2].at("fault").is_null());
}

TEST(JournalTest, IsBounded) {
  SimOptions options;
  options.max_journal_entries = 3;
  SimHarness sim(options);
  for (int i = 0; i < 5; ++i)
    sim.Api("GET", "/v1/convai/phone-numbers/n" + std::to_string(i));
  const auto requests = sim.Must("GET", "/_sim/requests").Json().at("requests").as_array();
  ASSERT_EQ(requests.size(), 3u);
  EXPECT_EQ(requests[0].at("path"), "/v1/convai/phone-numbers/n2");
}

}  // namespace
}  // namespace callgate::sim::testing
